"""Multiple-choice QA metrics and the grounded-QA metrics of NExT-GQA and ReXTime.

Percentages throughout. Answers are compared after `normalize_choice`, so "B", "b", "(B)",
"B." and the index 1 are the same choice; a missing answer (None) is always wrong.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from evals.metrics.grounding import Span, best_iou

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# the truth of a row none of whose options is the answer (MLVU's template gives it the letter before
# "A"): it counts in the accuracy and no prediction is right (MLVU's own check_ans would count a reply
# "(@)" right: `--protocol official` on MLVU does so, see evals.score)
NO_OPTION = "@"


def normalize_choice(x: object) -> str | None:
    """A comparable form of an answer: ints become letters (0 -> "A"), a lone letter with
    brackets/dots around it becomes that upper-case letter, other text is lower-cased and
    stripped. None and empty text stay None (never correct)."""
    if x is None or isinstance(x, bool):
        return None
    if isinstance(x, int):
        return LETTERS[x] if 0 <= x < len(LETTERS) else str(x)
    s = str(x).strip()
    m = re.fullmatch(r"\(?\s*([A-Za-z])\s*[\).:]?", s)
    if m:
        return m.group(1).upper()
    return s.lower() or None


def is_correct(pred: object, answer: object) -> bool:
    p = normalize_choice(pred)
    return p is not None and p != NO_OPTION and p == normalize_choice(answer)


def _pct(num: float, den: int) -> float:
    return 100.0 * num / den if den else 0.0


def qa_accuracy(
    preds: Sequence[object],
    answers: Sequence[object],
    categories: Sequence[str | None] | None = None,
) -> dict[str, object]:
    """{"accuracy", "n"} plus "per_category": {cat: accuracy} when categories are given
    (benchmarks report per task type / duration bucket). None categories are left out of the
    breakdown but still count overall."""
    if len(preds) != len(answers) or (categories is not None and len(categories) != len(preds)):
        raise ValueError("preds, answers and categories must have the same length")
    ok = [is_correct(p, a) for p, a in zip(preds, answers)]
    out: dict[str, object] = {"accuracy": _pct(sum(ok), len(ok)), "n": len(ok)}
    if categories is not None:
        hits: dict[str, list[bool]] = defaultdict(list)
        for c, o in zip(categories, ok):
            if c is not None:
                hits[str(c)].append(o)
        out["per_category"] = {c: _pct(sum(v), len(v)) for c, v in sorted(hits.items())}
        out["per_category_n"] = {c: len(v) for c, v in sorted(hits.items())}
    return out


# ----------------------------------------------------------------------------- NExT-GQA

def nextgqa_iou_iop(gt: Span, pred: Span) -> tuple[float, float]:
    """(IoU, IoP) as doc-doc/NExT-GQA's `get_tIoU`: IoP is the overlap over the *predicted*
    length; a zero-length prediction has IoU 0 and IoP 1 when it lies inside the GT span.
    Negative overlaps (disjoint spans) come out <= 0 and lose to the 0 start of the max."""
    if pred[0] == pred[-1]:
        return 0.0, 1.0 if gt[0] <= pred[0] <= gt[1] else 0.0
    u0, u1 = min(gt[0], pred[0]), max(gt[-1], pred[-1])
    inter = min(gt[-1], pred[-1]) - max(gt[0], pred[0])
    iou_ = inter / (u1 - u0) if u1 > u0 else 0.0
    iop_ = inter / (pred[-1] - pred[0]) if pred[-1] > pred[0] else 0.0
    return iou_, iop_


def nextgqa_metrics(
    preds: Sequence[Span | None],
    gts: Sequence[Sequence[Span]],
    correct: Sequence[bool] | None = None,
) -> dict[str, float]:
    """NExT-GQA grounded QA: mIoP, IoP@0.3/0.5, mIoU, IoU@0.3/0.5 (best over the GT spans,
    each maximised separately, as the official `eval_ground`), and with `correct` (QA
    right or wrong per question) Acc@QA and Acc@GQA = answered right AND IoP >= 0.5, over
    all questions (not only the well-grounded ones). A None prediction scores 0."""
    if len(preds) != len(gts) or (correct is not None and len(correct) != len(preds)):
        raise ValueError("preds, gts and correct must have the same length")
    ious, iops = [], []
    for p, g in zip(preds, gts):
        pairs = [nextgqa_iou_iop(gg, p) for gg in g] if p is not None else []
        ious.append(max([0.0] + [a for a, _ in pairs]))
        iops.append(max([0.0] + [b for _, b in pairs]))
    n = len(preds)
    out = {
        "mIoP": _pct(sum(iops), n),
        "IoP@0.3": _pct(sum(v >= 0.3 for v in iops), n),
        "IoP@0.5": _pct(sum(v >= 0.5 for v in iops), n),
        "mIoU": _pct(sum(ious), n),
        "IoU@0.3": _pct(sum(v >= 0.3 for v in ious), n),
        "IoU@0.5": _pct(sum(v >= 0.5 for v in ious), n),
    }
    if correct is not None:
        out["Acc@QA"] = _pct(sum(bool(c) for c in correct), n)
        out["Acc@GQA"] = _pct(sum(bool(c) and v >= 0.5 for c, v in zip(correct, iops)), n)
    return out


# ----------------------------------------------------------------------------- ReXTime

def rextime_metrics(
    preds: Sequence[Span | None],
    gts: Sequence[Sequence[Span]],
    correct: Sequence[bool] | None = None,
) -> dict[str, float]:
    """ReXTime: mIoU, R1@0.3, R1@0.5 of the top-1 span, and with `correct` Acc (QA) and
    Acc@IoU>=0.5 = answered right AND grounded with IoU >= 0.5, over all questions."""
    if len(preds) != len(gts) or (correct is not None and len(correct) != len(preds)):
        raise ValueError("preds, gts and correct must have the same length")
    ious = [best_iou(p, g) for p, g in zip(preds, gts)]
    n = len(ious)
    out = {
        "mIoU": _pct(sum(ious), n),
        "R1@0.3": _pct(sum(v >= 0.3 for v in ious), n),
        "R1@0.5": _pct(sum(v >= 0.5 for v in ious), n),
    }
    if correct is not None:
        out["Acc"] = _pct(sum(bool(c) for c in correct), n)
        out["Acc@IoU>=0.5"] = _pct(sum(bool(c) and v >= 0.5 for c, v in zip(correct, ious)), n)
    return out


def rextime_official_metrics(preds: Sequence[Span | None], gts: Sequence[Sequence[Span]],
                             pred_ans: Sequence[object] | None = None,
                             gt_ans: Sequence[object] | None = None) -> dict[str, float]:
    """ReXTime's own scorer (ReXTime/ReXTime@504bbea evaluation/rextime_eval.py, utils.py): of the
    truth's windows, the one the prediction overlaps best (IoU inter / (len_p + len_g - inter));
    against it the "paired" IoU max(0, overlap) / (max end - min start), 0 where that is 0; mIoU and
    R1@0.3 / R1@0.5 (IoU >= t) as percentages rounded to 2 decimals. With answers: Acc = the answer
    strings equal as they are (no normalising: "a" is not "A"), Acc@IoU>=0.5 = equal and IoU >= 0.5
    (its GQA@0.5), in percent. Every row given must have a prediction (its scorer asserts it)."""
    import numpy as np

    ious = []
    for p, g in zip(preds, gts):
        if p is None or not g:
            ious.append(0.0)
            continue
        ps, pe = float(p[0]), float(p[1])
        gw = np.asarray(g, dtype=np.float64)
        inter = np.clip(np.minimum(pe, gw[:, 1]) - np.maximum(ps, gw[:, 0]), 0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = inter / ((pe - ps) + (gw[:, 1] - gw[:, 0]) - inter)
        gs, ge = gw[int(np.argmax(cross))]
        i = max(0.0, min(pe, ge) - max(ps, gs))
        u = max(pe, ge) - min(ps, gs)
        ious.append(i / u if u != 0 else 0.0)
    v = np.asarray(ious)
    out = {"mIoU": float(f"{np.mean(v) * 100:.2f}") if len(v) else 0.0,
           "R1@0.3": float(f"{np.mean(v >= 0.3) * 100:.2f}") if len(v) else 0.0,
           "R1@0.5": float(f"{np.mean(v >= 0.5) * 100:.2f}") if len(v) else 0.0}
    if pred_ans is not None and gt_ans is not None and len(v):
        same = [a == b for a, b in zip(pred_ans, gt_ans)]
        out["Acc"] = 100.0 * sum(same) / len(same)
        out["Acc@IoU>=0.5"] = 100.0 * sum(s and x >= 0.5 for s, x in zip(same, v)) / len(same)
    return out


# ----------------------------------------------------------------------------- as-is string scorers

def exact_accuracy(given: Sequence[str | None], rows: Sequence[dict[str, Any]], answered_only: bool = False,
                   groups: Sequence[str] = ("qtype",)) -> dict[str, Any]:
    """Accuracy as the scorers that compare strings as they are count it (LVBench, MLVU, Video-MME):
    `given` is each row's reply already read by the benchmark's own reader (None or "" when it
    found nothing), right when it equals the truth's string exactly. `answered_only`: rows read as
    nothing leave the denominator (Video-MME). `accuracy` overall, and per value of each `groups`
    key ("per_<key>"; "qtype" gives "per_category"; a list value, as LVBench's `qtypes`, counts the
    row in every category it lists). Percent."""
    right = total = 0
    hits: dict[str, dict[str, list[bool]]] = {g: {} for g in groups}
    for a, r in zip(given, rows):
        if answered_only and not a:
            continue
        ok = bool(a) and a == str(r.get("answer_raw", r.get("answer")))
        right += ok
        total += 1
        for g in groups:
            cats = r.get(g + "s") if isinstance(r.get(g + "s"), list) else r.get(g)
            for c in (cats if isinstance(cats, list) else [cats] if cats else []):
                hits[g].setdefault(str(c), []).append(ok)
    out: dict[str, Any] = {"accuracy": 100.0 * right / total if total else 0.0, "answered": total}
    for g in groups:
        name = "per_category" if g == "qtype" else f"per_{g}"
        out[name] = {c: 100.0 * sum(v) / len(v) for c, v in sorted(hits[g].items())}
    return out
