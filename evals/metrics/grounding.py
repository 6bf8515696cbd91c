"""Temporal grounding metrics: IoU, R1@IoU, mIoU, R@k, under the scoring protocols papers use.

Pure functions over plain lists, so the runner, the reports and the tests share one definition.
All results are percentages (0-100), as papers report them.

Protocols (`PROTOCOLS`; `groundqa eval score --protocol`). Every one scores the ground truth as
published (not clipped to the video) and gives a reversed prediction (end < start) IoU 0, as
every official scorer does; an unparsed prediction counts as IoU 0. They differ in:

- `timezero`: TimeZero's `evaluate.py` (www-Ye/TimeZero @ a7c3523, lines 152, 205-236), the
  official scorer of Charades-STA and ActivityNet Captions here (their papers ship none):
  R1@t counts IoU >= t; rows never predicted are left out; a row whose prediction and truth are
  the same instant (union 0: a ZeroDivisionError there) is left out too.
- `time-r1`: Time-R1's `src/vllm_inference/eval_all.py` (xiaomi-research/time-r1 @ 7f2b594,
  lines 65-129), official for TVGBench: R1@t counts IoU > t (strict); rows never predicted are
  left out; union 0 gives NaN (numpy's 0/0), which makes mIoU NaN, as there.
- `groundqa`: ours, a named choice: every ground-truth row counts (a missing prediction is
  IoU 0, so failures cannot shrink the denominator), IoU >= t, union 0 gives IoU 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Span = Sequence[float]

# The thresholds every grounding paper reports (Charades-STA, ActivityNet, TVGBench, ...).
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)


@dataclass(frozen=True)
class Protocol:
    """How a scorer counts (module docstring)."""

    name: str
    strict: bool  # R1@t counts IoU > t instead of >= t
    missing: str  # "zero": a ground-truth row without prediction scores 0; "skip": left out
    degenerate: str  # union 0 (prediction and truth the same instant): "zero" | "skip" | "nan"
    source: str  # where the rule comes from
    unread: str = "wrong"  # QA: a reply its reader reads as nothing is "wrong", or leaves the denominator ("skip")


PROTOCOLS: dict[str, Protocol] = {
    "groundqa": Protocol("groundqa", strict=False, missing="zero", degenerate="zero",
                         source="groundqa: every ground-truth row counts"),
    "timezero": Protocol("timezero", strict=False, missing="skip", degenerate="skip",
                         source="www-Ye/TimeZero@a7c3523 evaluate.py:152,205-236"),
    "time-r1": Protocol("time-r1", strict=True, missing="skip", degenerate="nan",
                        source="xiaomi-research/time-r1@7f2b594 src/vllm_inference/eval_all.py:65-129"),
    # NExT-GQA's own: IoU / IoP as its get_tIoU (evals.metrics.qa.nextgqa_iou_iop), over the grounded
    # questions that have a prediction (eval_ground walks gsub's locations and skips unpredicted ones)
    "nextgqa": Protocol("nextgqa", strict=False, missing="skip", degenerate="zero",
                        source="doc-doc/NExT-GQA@8331fcc code/TempCLIP/eval_ground.py:3-72"),
    # ReXTime's own: see evals.metrics.qa.rextime_official_metrics
    "rextime": Protocol("rextime", strict=False, missing="skip", degenerate="zero",
                        source="ReXTime/ReXTime@504bbea evaluation/rextime_eval.py:10-60, utils.py:14-48"),
    # LVBench's own (QA only): answered questions only, raw string equality after its polish_answer,
    # a question counted in every category it lists (evals.score)
    "lvbench": Protocol("lvbench", strict=False, missing="skip", degenerate="zero",
                        source="THUDM/LVBench@dd7d99d lvbench/metrics/compute_accuracy.py:5-35, "
                               "@1dd4612 lvbench/utils/answer_util.py"),
    # MLVU's own (QA only): the reply read by its check_ans, compared with the letter as is; per-task
    # accuracy over the questions run, M-Avg their mean
    "mlvu": Protocol("mlvu", strict=False, missing="skip", degenerate="zero",
                     source="JUNJIE99/MLVU@fd060c1 evaluation/multiple_choice_evaluation/choice_bench.py:105-119,"
                            "149-205"),
    # Video-MME's own (QA only): its extract_characters_regex; a reply it reads as nothing is left out
    # of the denominator ("answered"); overall and per duration and task type
    "videomme": Protocol("videomme", strict=False, missing="skip", degenerate="zero", unread="skip",
                         source="thanku-all/parse_answer@afd52cf eval_your_results.py:65-89,163-181,255-259"),
    # LongVideoBench's own (QA only), as lmms-eval carries the authors' parser: the first of A-E after
    # its prefixes, equal to the letter of correct_choice; accuracy over every question run, and per
    # duration group and question category (a reply read as nothing: see evals.metrics.extract)
    "longvideobench": Protocol("longvideobench", strict=False, missing="skip", degenerate="zero",
                               source="EvolvingLMMs-Lab/lmms-eval@75571cf lmms_eval/tasks/longvideobench/"
                                      "utils.py:187-246,263-306"),
}
def protocol_for(name: str, official: str = "groundqa") -> Protocol:
    """A protocol by name; "official" is `official`, the benchmark's own (the caller looks it up:
    `evals.loaders.official_protocol`)."""
    key = str(name).strip().lower()
    if key == "official":
        key = official
    if key not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r} (choose from official, {', '.join(PROTOCOLS)})")
    return PROTOCOLS[key]


def iou(a: Span | None, b: Span | None, degenerate: str = "zero") -> float:
    """Temporal IoU of two [start, end] spans as the official scorers compute it: the overlap
    (0 when none, and so for a prediction whose end is before its start) over the hull.
    0 when either is missing. Both the same instant (hull 0): 0, or NaN with `degenerate="nan"`
    ("skip" callers test `hull` themselves)."""
    if a is None or b is None or a[0] is None or a[1] is None:
        return 0.0
    s, e, gs, ge = float(a[0]), float(a[1]), float(b[0]), float(b[1])
    inter = max(0.0, min(e, ge) - max(s, gs))
    hull = max(e, ge) - min(s, gs)
    if hull <= 0:
        return math.nan if degenerate == "nan" else 0.0
    return inter / hull


def best_iou(pred: Span | None, gts: Iterable[Span], degenerate: str = "zero") -> float:
    """IoU of a prediction with its best-matching ground-truth span (0 if none)."""
    return max((iou(pred, g, degenerate) for g in gts), default=0.0)


def is_degenerate(pred: Span | None, gts: Sequence[Span]) -> bool:
    """Prediction and every truth the same instant (the hull has no length)."""
    if pred is None or pred[0] is None or pred[1] is None or not gts:
        return False
    return all(max(float(pred[1]), float(g[1])) - min(float(pred[0]), float(g[0])) <= 0 for g in gts)


def iop(pred: Span | None, gt: Span | None) -> float:
    """Intersection over the *prediction* length (NExT-GQA's IoP): how much of what we
    showed is inside the evidence. 0 for missing or zero-length predictions."""
    if pred is None or gt is None:
        return 0.0
    p0, p1 = float(pred[0]), float(pred[1])  # a reversed prediction covers nothing, as for IoU
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
    protocol: str | Protocol = "groundqa",
) -> dict[str, float]:
    """R1@IoU for each threshold and mIoU, in percent.

    `preds[i]` is the top-1 [s, e] of sample i or None (unparsed or missing: IoU 0; a protocol
    that skips missing rows is given only the rows it scores, `evals.score`); `gts[i]` lists its
    ground-truth spans and the best match counts. Thresholds: IoU >= t, or > t under a strict
    protocol. An empty input gives zeros rather than NaN.
    """
    _check_lengths(preds, gts)
    proto = protocol if isinstance(protocol, Protocol) else protocol_for(protocol)
    pairs = list(zip(preds, gts))
    if proto.degenerate == "skip":
        pairs = [(p, g) for p, g in pairs if not is_degenerate(p, g)]
    ious = [best_iou(p, g, proto.degenerate) for p, g in pairs]
    n = len(ious)

    def hit(i: float, t: float) -> bool:
        return i > t if proto.strict else i >= t

    out = {f"R1@{t:g}": _pct(sum(hit(i, t) for i in ious) / n) if n else 0.0 for t in thresholds}
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
