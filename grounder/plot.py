"""Timeline plot of a grounding result: the video as a bar, the segments found, thumbnails.

Written atomically (a temp file in the same folder, then rename), so a crash never leaves a
half-written PNG behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from grounder.errors import InputError
from grounder.scan import GroundingResult


def thumbnail_times(result: GroundingResult, n: int = 4) -> list[float]:
    """Times to show: spread over the best segment, else over the whole video."""
    if n < 1:
        return []
    start, end = (result.segments[0].start, result.segments[0].end) if result.segments else (
        0.0, result.duration)
    return [start + (i + 0.5) * (end - start) / n for i in range(n)]


def plot_timeline(result: GroundingResult, reader: Any, path: str | os.PathLike[str],
                  thumbnails: int = 4) -> Path:
    """Write a PNG: top, the timeline with segments (score-coloured, labelled); below, frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    if not out.parent.is_dir():
        raise InputError(f"cannot write the plot: folder {str(out.parent)!r} does not exist")
    times = thumbnail_times(result, thumbnails)
    frames = reader.sample(times, max_pixels=160 * 160)[0] if times else np.zeros((0, 1, 1, 3))
    duration = max(result.duration, 1e-6)

    fig = plt.figure(figsize=(10, 3.6 if len(frames) else 1.8))
    rows = 2 if len(frames) else 1
    ax = fig.add_subplot(rows, 1, 1)
    ax.barh(0, duration, height=0.5, color="#dddddd", edgecolor="#888888")
    cmap = plt.get_cmap("viridis")
    for rank, seg in enumerate(result.segments):
        width = max(seg.end - seg.start, duration * 0.002)  # short segments stay visible
        ax.barh(0, width, left=seg.start, height=0.5, color=cmap(seg.score), edgecolor="black")
        ax.annotate(f"#{rank + 1} {seg.score:.2f}", (seg.start + width / 2, 0.3), ha="center",
                    va="bottom", fontsize=8)
    ax.set_xlim(0, duration)
    ax.set_ylim(-0.5, 0.8)
    ax.set_yticks([])
    ax.set_xlabel("seconds")
    title = f"{result.query!r} ({result.strategy}): {len(result.segments)} segment(s)"
    ax.set_title(title if result.segments else f"{title} - {result.reason[:60]}", fontsize=9)
    for k, (frame, t) in enumerate(zip(frames, times)):
        sub = fig.add_subplot(2, len(frames), len(frames) + k + 1)
        sub.imshow(frame)
        sub.set_axis_off()
        sub.set_title(f"{t:.1f} s", fontsize=8)
    fig.tight_layout()
    return save_png(fig, out, dpi=100)


def save_png(fig: Any, path: str | os.PathLike[str], dpi: int = 100, **savefig_kw: Any) -> Path:
    """Save a matplotlib figure as PNG atomically (temp file beside it, then rename) and close it.

    Every plot groundqa writes goes through here, so none is ever left half-written.
    """
    import matplotlib.pyplot as plt

    out = Path(path)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, format="png", dpi=dpi, **savefig_kw)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
