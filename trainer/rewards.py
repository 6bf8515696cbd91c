"""GRPO rewards for temporal grounding. Pure functions of the completion text and the truth.

- `iou`: temporal IoU (VTG-R1, Time-R1, TimeZero).
- `cendist`: 1 - |centre distance| / window length; dense where IoU is zero, which matters
  for sparse events in long windows (LongVTG-R1's CenDist).
- `format_reward`: the completion is exactly `<think>...</think><answer>S to E</answer>`.
- `anchor_reward`: timestamp anchors in the reasoning that get closer to the truth step by
  step (TAR-TVG).
- `qa_reward`: the chosen option is the answer.

All spans are in the same time frame as the completion (window-relative seconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grounder import spans
from grounder.answer_format import parse_answer


def iou(pred: Sequence[float] | None, gt: Sequence[float]) -> float:
    """max(0, min(pe, ge) - max(ps, gs)) / (max(pe, ge) - min(ps, gs)); 0 for None or end <= start."""
    return spans.iou(pred, gt)


def cendist(pred: Sequence[float] | None, gt: Sequence[float], duration: float) -> float:
    """max(0, 1 - |c_pred - c_gt| / duration); `duration` is the window the model saw; 0 for None."""
    if not spans.is_valid(pred) or duration <= 0:
        return 0.0
    return max(0.0, 1.0 - abs(spans.center(pred) - spans.center(gt)) / duration)


def format_reward(text: str) -> float:
    """1.0 for exactly `<think>...</think><answer>S to E</answer>` (whitespace allowed), else 0.0."""
    return 1.0 if parse_answer(text).strict else 0.0


def anchor_reward(text: str, gt: Sequence[float]) -> float:
    """Fraction of consecutive steps a1 -> a2 -> ... -> aK -> answer whose IoU with gt strictly rises.

    0.0 when there are no anchors or the format is invalid.
    """
    parsed = parse_answer(text)
    if not parsed.strict or not parsed.anchors or parsed.span is None:
        return 0.0
    ious = [spans.iou(a, gt) for a in parsed.anchors] + [spans.iou(parsed.span, gt)]
    rises = sum(1 for a, b in zip(ious, ious[1:]) if b > a)
    return rises / (len(ious) - 1)


def _option_key(x: object) -> str:
    s = str(x).strip().strip("().").upper()
    return s


def qa_reward(chosen: object, answer: object) -> float:
    """1.0 when the chosen option is the answer (letters or indices compared loosely)."""
    if chosen is None:
        return 0.0
    a, b = _option_key(chosen), _option_key(answer)
    if a.isdigit() and len(b) == 1 and b.isalpha():
        a = chr(ord("A") + int(a))
    if b.isdigit() and len(a) == 1 and a.isalpha():
        b = chr(ord("A") + int(b))
    return 1.0 if a == b else 0.0


@dataclass
class RewardWeights:
    """Weights of the composite grounding reward; each component is logged on its own."""

    iou: float = 1.0
    cendist: float = 0.5
    format: float = 0.5
    anchor: float = 0.0


def grounding_reward(text: str, gt: Sequence[float], duration: float,
                     weights: RewardWeights | None = None) -> tuple[float, dict[str, float]]:
    """Weighted sum of the grounding rewards for one completion, and each component."""
    w = weights or RewardWeights()
    pred = parse_answer(text, window=duration).span
    parts = {
        "iou": iou(pred, gt),
        "cendist": cendist(pred, gt, duration),
        "format": format_reward(text),
        "anchor": anchor_reward(text, gt) if w.anchor else 0.0,
    }
    total = w.iou * parts["iou"] + w.cendist * parts["cendist"] + w.format * parts["format"] + w.anchor * parts["anchor"]
    return total, parts


def window_reward(text: str, gt: Sequence[float] | None, duration: float,
                  weights: RewardWeights | None = None) -> tuple[float, dict[str, float]]:
    """`grounding_reward`, plus windows without the event (`gt` None, the scan's negatives):
    there iou and cendist are 1.0 when the answer says the event is absent (else 0.0), and the
    format reward asks for `<think>...</think><answer>...</answer>`."""
    if gt is not None:
        return grounding_reward(text, gt, duration, weights)
    import re

    w = weights or RewardWeights()
    parsed = parse_answer(text, window=duration)
    hit = 1.0 if parsed.says_absent and parsed.span is None else 0.0
    shape = re.match(r"^\s*<think>.*?</think>\s*<answer>[^<]*</answer>\s*$", text or "", re.DOTALL)
    parts = {"iou": hit, "cendist": hit, "format": 1.0 if shape else 0.0, "anchor": 0.0}
    total = w.iou * hit + w.cendist * hit + w.format * parts["format"]
    return total, parts
