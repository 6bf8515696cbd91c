"""Difficulty control's pure maths (`trainer.difficulty` is the stage that measures it): filter
rows by difficulty, Gaussian sampling weights (Time-R1), the TAR-TVG trace filter. Imports
nothing heavy; below the dataset, which filters and weights rows with it."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from grounder.answer_format import parse_answer
from trainer.rewards import anchor_reward, iou


def row_difficulty(row: Any) -> float | None:
    """`"difficulty"` of a dataset row (a dict or a `GroundingRow`), None when absent."""
    d = row.get("difficulty") if isinstance(row, dict) else getattr(row, "extra", {}).get("difficulty")
    return None if d is None else float(d)


def filter_by_range(rows: Sequence[Any], lo: float, hi: float) -> list[Any]:
    """Rows with lo <= difficulty <= hi: drops the too easy (mean IoU above hi) and the
    hopeless (below lo). Rows without a difficulty are kept (nothing is known about them)."""
    if lo > hi:
        raise ValueError(f"filter_by_range: lo {lo} > hi {hi}")
    out = []
    for r in rows:
        d = row_difficulty(r)
        if d is None or lo <= d <= hi:
            out.append(r)
    return out


def gaussian_weights(difficulties: Sequence[float | None], target: float, sigma: float) -> list[float]:
    """w_i = exp(-(d_i - target)^2 / (2 sigma^2)), normalised to sum 1 (Time-R1).

    A missing difficulty (None) counts as `target` (weight 1 before normalising)."""
    if not sigma > 0:
        raise ValueError(f"gaussian_weights: sigma must be > 0, got {sigma}")
    if not difficulties:
        return []
    raw = [math.exp(-((target if d is None else float(d)) - target) ** 2 / (2 * sigma * sigma))
           for d in difficulties]
    total = sum(raw)
    if total <= 0:  # every weight underflowed: fall back to uniform
        return [1.0 / len(raw)] * len(raw)
    return [w / total for w in raw]


def weighted_order(weights: Sequence[float], n: int, seed: int, epoch: int) -> list[int]:
    """`n` row indices drawn with replacement by `weights`; a function of (seed, epoch) only,
    so a resumed run sees the same order."""
    if not weights:
        return []
    rng = random.Random(f"{seed}/weighted/{epoch}")
    return rng.choices(range(len(weights)), weights=list(weights), k=n)


def histogram(values: Sequence[float], bins: int = 10) -> list[int]:
    """Counts of values in `bins` equal bins over [0, 1] (1.0 falls in the last bin)."""
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(float(v) * bins)))] += 1
    return counts


def is_distilled_trace(text: str, span: Sequence[float] | None, length: float, min_iou: float) -> bool:
    """TAR-TVG's trace filter: anchors improve at every step (`anchor_reward == 1.0`) and the
    answer's IoU with the truth is >= `min_iou`. Windows without the event never qualify."""
    if span is None:
        return False
    if anchor_reward(text, span) != 1.0:
        return False
    return iou(parse_answer(text, window=length).span, span) >= min_iou
