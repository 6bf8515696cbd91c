"""Temporal grounding metrics: IoU, R1@IoU, mIoU, R@k.

Pure functions over plain lists, so the runner, the reports and the tests share one definition.
All results are percentages (0-100), as papers report them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from grounder import spans

Span = Sequence[float]

# The thresholds every grounding paper reports (Charades-STA, ActivityNet, TVGBench, ...).
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)


def iou(a: Span | None, b: Span | None) -> float:
    """Temporal IoU of two [start, end] spans; 0 when either is missing or both are empty.

    Ends are sorted first, so a swapped prediction is scored as the span it covers (the
    arithmetic itself is `grounder.spans.iou`, the one IoU of the project).
    """
    if a is None or b is None:
        return 0.0
    return spans.iou(sorted((float(a[0]), float(a[1]))), sorted((float(b[0]), float(b[1]))))


def best_iou(pred: Span | None, gts: Iterable[Span]) -> float:
    """IoU of a prediction with its best-matching ground-truth span (0 if none)."""
    return max((iou(pred, g) for g in gts), default=0.0)


def iop(pred: Span | None, gt: Span | None) -> float:
    """Intersection over the *prediction* length (NExT-GQA's IoP): how much of what we
    showed is inside the evidence. 0 for missing or zero-length predictions."""
    if pred is None or gt is None:
        return 0.0
    p0, p1 = sorted((float(pred[0]), float(pred[1])))
    g0, g1 = sorted((float(gt[0]), float(gt[1])))
    inter = max(0.0, min(p1, g1) - max(p0, g0))
    return inter / (p1 - p0) if p1 > p0 else 0.0


def _check_lengths(preds: Sequence, gts: Sequence) -> None:
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground truths")


def _pct(x: float) -> float:
    return 100.0 * x


def grounding_metrics(
    preds: Sequence[Span | None],
    gts: Sequence[Sequence[Span]],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, float]:
    """R1@IoU for each threshold and mIoU, in percent.

    `preds[i]` is the top-1 [s, e] of sample i or None (counts as IoU 0, so failures are not
    silently dropped); `gts[i]` lists its ground-truth spans and the best match counts.
    Thresholds are inclusive (IoU >= t), as in the official Charades-STA / moment_detr code.
    An empty input gives zeros rather than NaN.
    """
    _check_lengths(preds, gts)
    ious = [best_iou(p, g) for p, g in zip(preds, gts)]
    n = len(ious)
    out = {f"R1@{t:g}": _pct(sum(i >= t for i in ious) / n) if n else 0.0 for t in thresholds}
    out["mIoU"] = _pct(sum(ious) / n) if n else 0.0
    return out


def recall_at_k(
    preds_ranked: Sequence[Sequence[Span] | None],
    gts: Sequence[Sequence[Span]],
    k: int = 5,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, float]:
    """R{k}@IoU in percent: a sample counts when any of its first k ranked predictions reaches
    the threshold with any ground-truth span. `None` or [] means no prediction (a miss)."""
    if k < 1:
        raise ValueError("k must be >= 1")
    _check_lengths(preds_ranked, gts)
    best = [max((best_iou(p, g) for p in (ranked or [])[:k]), default=0.0)
            for ranked, g in zip(preds_ranked, gts)]
    n = len(best)
    return {f"R{k}@{t:g}": _pct(sum(b >= t for b in best) / n) if n else 0.0 for t in thresholds}
