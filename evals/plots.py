"""Plots of `groundqa eval report`: IoU histogram, accuracy by video length, cost vs accuracy.

Each figure is written atomically (a temp file in the same folder, then rename), so a crash
never leaves a half-written PNG behind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

THRESHOLDS = (0.3, 0.5, 0.7)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: str | os.PathLike) -> Path:
    from grounder.plot import save_png

    return save_png(fig, path, dpi=110, bbox_inches="tight")


def iou_hist(ious: Sequence[float], path: str | os.PathLike, title: str = "") -> Path:
    """Histogram of each item's best IoU with its ground truth, R1 thresholds marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.hist(list(ious), bins=[i / 20 for i in range(21)], color="#4c78a8", edgecolor="white")
    for t in THRESHOLDS:
        ax.axvline(t, color="#e45756", ls="--", lw=1)
        ax.text(t, ax.get_ylim()[1] * 0.95, f" {t:g}", color="#e45756", va="top", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU of the top-1 segment with the ground truth")
    ax.set_ylabel("items")
    ax.set_title(title or f"IoU of {len(ious)} items", fontsize=10)
    return save(fig, path)


def accuracy_by_length(buckets: Sequence[dict[str, Any]], path: str | os.PathLike,
                       title: str = "") -> Path:
    """Bars per video-length bucket: grounding R1@0.5 and mIoU, and QA accuracy when present."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    labels = [f"{b['bucket']}\n(n={b['n']})" for b in buckets]
    series = [("R1@0.5", "#4c78a8"), ("mIoU", "#72b7b2"), ("accuracy", "#f58518")]
    series = [(k, c) for k, c in series if any(b.get(k) is not None for b in buckets)]
    width = 0.8 / max(len(series), 1)
    for j, (key, color) in enumerate(series):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(buckets))]
        ys = [b.get(key) if b.get(key) is not None else 0.0 for b in buckets]
        ax.bar(xs, ys, width=width, color=color, label="QA accuracy" if key == "accuracy" else key)
    ax.set_xticks(range(len(buckets)), labels, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_xlabel("video length")
    if series:
        ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title or "accuracy by video length", fontsize=10)
    return save(fig, path)


def cost_vs_accuracy(runs: Sequence[dict[str, Any]], path: str | os.PathLike,
                     items: Sequence[tuple[float, float]] | None = None) -> Path:
    """One point per run: mean visual tokens per item vs R1@0.5 / mIoU (and QA accuracy),
    labelled by strategy. `items` (cost, IoU%) adds a faint per-item scatter (one run)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    if items:
        ax.scatter([c for c, _ in items], [v for _, v in items], s=10, color="#bbbbbb",
                   label="items (IoU %)", zorder=1)
    marks = [("R1@0.5", "o", "#4c78a8"), ("mIoU", "s", "#72b7b2")]
    for key, marker, color in marks:
        pts = [(r["cost"].get("visual_tokens", 0.0), r["grounding"][key], r)
               for r in runs if r.get("grounding")]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, ls="none",
                    color=color, ms=8, label=key, zorder=3)
    qa = [(r["cost"].get("visual_tokens", 0.0), r["qa"]["accuracy"], r) for r in runs if r.get("qa")]
    if qa:
        ax.plot([p[0] for p in qa], [p[1] for p in qa], marker="^", ls="none", color="#f58518",
                ms=8, label="QA accuracy", zorder=3)
    for r in runs:
        g = r.get("grounding") or {}
        y = g.get("R1@0.5", (r.get("qa") or {}).get("accuracy", 0.0))
        ax.annotate(f" {r.get('strategy') or '?'}", (r["cost"].get("visual_tokens", 0.0), y),
                    fontsize=8, zorder=4)
    xs = [r["cost"].get("visual_tokens", 0.0) for r in runs] + [c for c, _ in (items or [])]
    if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.set_ylim(-2, 102)
    ax.set_xlabel("visual tokens per item (mean)")
    ax.set_ylabel("%")
    ax.legend(fontsize=8, loc="best")
    ax.set_title("cost vs accuracy" + (f" ({len(runs)} runs)" if len(runs) > 1 else ""), fontsize=10)
    return save(fig, path)
