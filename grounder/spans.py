"""Time spans in seconds: the one IoU every part of groundqa uses, plus small span helpers.

A span is `(start, end)` in seconds. Functions here are pure and never raise on odd spans:
an empty or inverted span has no extent and overlaps nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Span = tuple[float, float]


def is_valid(span: Sequence[float] | None) -> bool:
    """A span with a positive length (end > start)."""
    return span is not None and len(span) == 2 and float(span[1]) > float(span[0])


def iou(pred: Sequence[float] | None, gt: Sequence[float] | None) -> float:
    """Temporal IoU: overlap / (max end - min start); 0 for None or end <= start."""
    if not is_valid(pred) or not is_valid(gt):
        return 0.0
    ps, pe = float(pred[0]), float(pred[1])
    gs, ge = float(gt[0]), float(gt[1])
    inter = max(0.0, min(pe, ge) - max(ps, gs))
    union = max(pe, ge) - min(ps, gs)
    return inter / union if union > 0 else 0.0


def best_iou(pred: Sequence[float] | None, gts: Iterable[Sequence[float]]) -> float:
    """IoU against the best-matching ground-truth span (benchmarks with several spans)."""
    return max((iou(pred, g) for g in gts), default=0.0)


def center(span: Sequence[float]) -> float:
    return (float(span[0]) + float(span[1])) / 2.0


def clip(span: Sequence[float], lo: float, hi: float) -> Span:
    """Clip both ends into [lo, hi] (ends are ordered first)."""
    s, e = sorted((float(span[0]), float(span[1])))
    return (min(max(s, lo), hi), min(max(e, lo), hi))


def merge(spans: Iterable[tuple[float, float, float]], gap: float = 0.0) -> list[tuple[float, float, float]]:
    """Merge overlapping (start, end, score) spans (closer than `gap`), keeping the max score.

    Returned best score first, ties by start time.
    """
    items = sorted((float(s), float(e), float(c)) for s, e, c in spans if e > s)
    out: list[list[float]] = []
    for s, e, c in items:
        if out and s <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], e)
            out[-1][2] = max(out[-1][2], c)
        else:
            out.append([s, e, c])
    return [tuple(x) for x in sorted(out, key=lambda x: (-x[2], x[0]))]  # type: ignore[misc]
