"""QVHighlights moment retrieval (MR) and highlight detection (HL), as the official
jayleicn/moment_detr `standalone_eval/eval.py` computes them.

Our own code, reproducing that script's numbers to the reported 0.01 (a test checks it against
the official output for real predictions). The details that move the numbers, all kept:

- MR mAP: per query, up to 10 predictions (the first 10 as submitted), sorted by score;
  greedy matching per IoU threshold (0.5:0.05:0.95) where each prediction takes the free GT
  window of highest IoU, ActivityNet/VOC-style AP (precision made monotone, summed over
  recall steps, recall completed to 1 with precision 0); averaged over queries. Queries with
  no predicted window are left out of the average, as the official code does.
- MR R1: the first prediction against the GT window it overlaps most (IoU >= threshold).
- Length buckets short (0, 10], middle (10, 30], long (30, 150] seconds: a query keeps only
  its GT windows of that length and is dropped from the bucket when none remain, so a query
  with windows of several lengths counts in several buckets. "full" uses every query with
  all its windows, untouched.
- HL: clips of 2 s; a clip is positive when an annotator's saliency >= 2/3/4
  (Fair/Good/VeryGood); mAP is averaged over (query, annotator) pairs with the video2gif
  interpolated AP (mean of the monotone precision at each recall step; all-negative -> 0,
  all-positive -> 1); Hit1 takes the top-scored clip and counts it when any annotator marks
  it positive. Predicted scores are cut or zero-padded to the number of clips.
- Every number is rounded to 2 decimals in percent, each threshold separately, and the
  "average" is the mean of the unrounded per-threshold values.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

MR_IOU_THRESHOLDS: tuple[float, ...] = tuple(float(f"{t:.2f}") for t in np.linspace(0.5, 0.95, 10))
LENGTH_BUCKETS: dict[str, tuple[float, float]] = {
    "short": (0, 10), "middle": (10, 30), "long": (30, 150), "full": (0, 150)}
HL_MIN_SCORES: dict[str, int] = {"Fair": 2, "Good": 3, "VeryGood": 4}
MAX_PRED_WINDOWS = 10
CLIP_LENGTH = 2.0


def _round2(x: float) -> float:
    """The official rounding: format to 2 decimals, back to float."""
    return float(f"{x:.2f}")


# ----------------------------------------------------------------------------- IoU

def cross_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every span in a (N, 2) against every span in b (M, 2) -> (N, M)."""
    a = np.asarray(a, dtype=float).reshape(-1, 2)
    b = np.asarray(b, dtype=float).reshape(-1, 2)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    right = np.minimum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(right - left, 0, None)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


# ----------------------------------------------------------------------------- MR

def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> np.ndarray | float:
    """ActivityNet-style AP: pad (0, p, 0) / (0, r, 1), make precision monotone from the
    right, sum precision times each recall step. Rows of 2-D inputs are separate curves."""
    p = np.atleast_2d(np.asarray(precision, dtype=float))
    r = np.atleast_2d(np.asarray(recall, dtype=float))
    zeros, ones = np.zeros((len(p), 1)), np.ones((len(p), 1))
    mp = np.hstack([zeros, p, zeros])
    mr = np.hstack([zeros, r, ones])
    mp = np.maximum.accumulate(mp[:, ::-1], axis=1)[:, ::-1]
    ap = np.sum((mr[:, 1:] - mr[:, :-1]) * mp[:, 1:], axis=1)  # zero steps add nothing
    return float(ap[0]) if np.ndim(precision) == 1 else ap


def detection_ap(
    gt_windows: Sequence[Sequence[float]],
    pred_windows: Sequence[Sequence[float]],
    thresholds: Sequence[float] = MR_IOU_THRESHOLDS,
) -> np.ndarray:
    """AP of one query's scored predictions `[s, e, score]` against its GT windows, one value
    per IoU threshold. Each GT window can be matched once; a prediction tries the GT windows
    from highest IoU down and stops at the first one below the threshold."""
    if len(pred_windows) == 0:
        return np.zeros(len(thresholds))
    preds = sorted(pred_windows, key=lambda w: -w[2])  # stable, like list.sort in the original
    gts = np.asarray([w[:2] for w in gt_windows], dtype=float).reshape(-1, 2)
    n_pred, n_gt = len(preds), len(gts)
    tp = np.zeros((len(thresholds), n_pred))
    lock = np.full((len(thresholds), n_gt), -1)
    if n_gt:
        ious = cross_iou(np.asarray([p[:2] for p in preds], dtype=float), gts)
        for i in range(n_pred):
            order = ious[i].argsort()[::-1]  # same tie order as the official code
            for t, thr in enumerate(thresholds):
                for j in order:
                    if ious[i, j] < thr:
                        break
                    if lock[t, j] >= 0:
                        continue
                    tp[t, i], lock[t, j] = 1, i
                    break
    fp = 1 - tp
    tp_c, fp_c = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    # Zero GT windows: recall is undefined; the official code divides by 0 (nan -> AP 0).
    recall = tp_c / n_gt if n_gt else np.zeros_like(tp_c)
    precision = tp_c / (tp_c + fp_c)
    return interpolated_ap(precision, recall)


def mr_map(
    preds: dict[Any, list[list[float]]],
    gts: dict[Any, list[list[float]]],
    thresholds: Sequence[float] = MR_IOU_THRESHOLDS,
    max_pred_windows: int | None = MAX_PRED_WINDOWS,
) -> dict[str, float]:
    """mAP per IoU threshold and their "average" over queries, percent, officially rounded.

    `preds` maps qid -> ranked `[s, e, score]` windows; `gts` qid -> `[s, e]` windows."""
    aps = [detection_ap(gts.get(q, []), w[:max_pred_windows] if max_pred_windows else w, thresholds)
           for q, w in preds.items() if len(w) > 0]
    per_thr = np.mean(aps, axis=0) if aps else np.zeros(len(thresholds))
    out = {str(t): _round2(100 * v) for t, v in zip(thresholds, per_thr)}
    out["average"] = _round2(100 * float(np.mean(per_thr)))
    return out


def mr_r1(
    preds: dict[Any, list[list[float]]],
    gts: dict[Any, list[list[float]]],
    thresholds: Sequence[float] = MR_IOU_THRESHOLDS,
) -> dict[str, float]:
    """R1@IoU in percent: the top prediction against its best-overlapping GT window.
    A query with no predicted window counts as a miss."""
    ious = []
    for q, windows in preds.items():
        g = gts.get(q, [])
        if not windows or not g:
            ious.append(0.0)
            continue
        ious.append(float(cross_iou(np.asarray([windows[0][:2]]), np.asarray(g)[:, :2]).max()))
    arr = np.asarray(ious)
    return {str(t): _round2(float(np.mean(arr >= t)) * 100 if len(arr) else 0.0) for t in thresholds}


def _window_len(w: Sequence[float]) -> float:
    return w[1] - w[0]


def filter_by_length(
    submission: list[dict], ground_truth: list[dict], len_range: tuple[float, float]
) -> tuple[list[dict], list[dict]]:
    """Queries with GT windows of length in (lo, hi], keeping only those windows; (0, 150] is
    the whole set untouched (the official shortcut, which also keeps windows outside it)."""
    lo, hi = len_range
    if (lo, hi) == LENGTH_BUCKETS["full"]:
        return submission, ground_truth
    gt_in: list[dict] = []
    for d in ground_truth:
        windows = [w for w in d["relevant_windows"] if lo < _window_len(w) <= hi]
        if windows:
            d = copy.copy(d)
            d["relevant_windows"] = windows
            gt_in.append(d)
    qids = {d["qid"] for d in gt_in}
    return [d for d in submission if d["qid"] in qids], gt_in


def eval_moment_retrieval(submission: list[dict], ground_truth: list[dict]) -> dict[str, dict]:
    """{bucket: {"MR-mAP": {thr: v, "average": v}, "MR-R1": {thr: v}}} for the 4 buckets."""
    out: dict[str, dict] = {}
    for name, rng in LENGTH_BUCKETS.items():
        sub, gt = filter_by_length(submission, ground_truth, rng)
        preds = {d["qid"]: d["pred_relevant_windows"] for d in sub}
        gts = {d["qid"]: d["relevant_windows"] for d in gt}
        out[name] = {"MR-mAP": mr_map(preds, gts), "MR-R1": mr_r1(preds, gts)}
    return out


# ----------------------------------------------------------------------------- HL

def ranking_ap(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """video2gif interpolated AP of a ranking (what moment_detr's `get_ap` returns): at each
    distinct score threshold from the top, precision and recall; precision made monotone
    (max over lower thresholds); mean of it at the thresholds where recall grows.
    All-negative labels give 0, all-positive 1."""
    y_true = np.asarray(y_true, dtype=float)
    y_score = np.asarray(y_score, dtype=float)
    if len(y_true) == 0:
        return 0.0
    if np.all(y_true == y_true[0]):
        return 0.0 if y_true[0] == 0 else 1.0
    order = np.argsort(y_score, kind="mergesort")[::-1]
    s, t = y_score[order], y_true[order]
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True))  # end of each run of tied scores
    tps = np.cumsum(t)[last]
    precision = tps / (last + 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # max over lower thresholds
    grows = np.diff(tps, prepend=0.0) > 0
    return float(np.mean(precision[grows]))


def gt_clip_scores(gt: dict, clip_length: float = CLIP_LENGTH) -> np.ndarray:
    """(#clips, 3) saliency of every clip in the video (0 outside relevant clips).
    Clip ids past the video's end (none in the official data) are ignored."""
    n = int(gt["duration"] / clip_length)
    full = np.zeros((n, 3))
    ids = np.asarray(gt.get("relevant_clip_ids", []), dtype=int)
    scores = np.asarray(gt.get("saliency_scores", []), dtype=float).reshape(-1, 3)
    keep = ids < n
    full[ids[keep]] = scores[keep]
    return full


def _fit(pred: np.ndarray, n: int) -> np.ndarray:
    """Predicted clip scores cut or zero-padded to the GT clip count."""
    if len(pred) >= n:
        return pred[:n]
    return np.r_[pred, np.zeros(n - len(pred))]


def eval_highlight(submission: list[dict], ground_truth: list[dict]) -> dict[str, dict]:
    """{"HL-min-Fair|Good|VeryGood": {"HL-mAP", "HL-Hit1"}} in percent."""
    gt_full = {d["qid"]: gt_clip_scores(d) for d in ground_truth}
    out: dict[str, dict] = {}
    for name, min_score in HL_MIN_SCORES.items():
        aps, hits = [], []
        for d in submission:
            binary = (gt_full[d["qid"]] >= min_score).astype(float)
            pred = np.asarray(d["pred_saliency_scores"], dtype=float)
            top = int(np.argmax(pred)) if len(pred) else len(binary)
            hits.append(binary[top].max() if top < len(binary) else 0.0)
            fitted = _fit(pred, len(binary))
            aps.extend(ranking_ap(binary[:, k], fitted) for k in range(3))
        out[f"HL-min-{name}"] = {
            "HL-mAP": _round2(100 * float(np.mean(aps))) if aps else 0.0,
            "HL-Hit1": _round2(100 * float(np.mean(hits))) if hits else 0.0,
        }
    return out


# ----------------------------------------------------------------------------- both

def eval_submission(submission: list[dict], ground_truth: list[dict],
                    match_number: bool = True) -> dict[str, Any]:
    """The official result object: {"brief": {...}, "HL-min-*": ..., "full"|"long"|...: ...}.

    With `match_number` the qids of both sides must be the same set (ValueError otherwise);
    without it, only the shared qids are scored."""
    pred_qids = {d["qid"] for d in submission}
    gt_qids = {d["qid"] for d in ground_truth}
    if match_number and pred_qids != gt_qids:
        raise ValueError(
            f"qids differ: {len(pred_qids - gt_qids)} predicted qids not in the ground truth, "
            f"{len(gt_qids - pred_qids)} ground-truth qids without a prediction")
    shared = pred_qids & gt_qids
    submission = [d for d in submission if d["qid"] in shared]
    ground_truth = [d for d in ground_truth if d["qid"] in shared]
    if not submission:
        raise ValueError("no prediction shares a qid with the ground truth")

    metrics: dict[str, Any] = {}
    brief: dict[str, float] = {}
    if "pred_relevant_windows" in submission[0]:
        mr = eval_moment_retrieval(submission, ground_truth)
        metrics.update(mr)
        mr_brief = {
            "MR-full-mAP": mr["full"]["MR-mAP"]["average"],
            "MR-full-mAP@0.5": mr["full"]["MR-mAP"]["0.5"],
            "MR-full-mAP@0.75": mr["full"]["MR-mAP"]["0.75"],
            "MR-short-mAP": mr["short"]["MR-mAP"]["average"],
            "MR-middle-mAP": mr["middle"]["MR-mAP"]["average"],
            "MR-long-mAP": mr["long"]["MR-mAP"]["average"],
            "MR-full-R1@0.5": mr["full"]["MR-R1"]["0.5"],
            "MR-full-R1@0.7": mr["full"]["MR-R1"]["0.7"],
        }
        brief.update(sorted(mr_brief.items()))
    if "pred_saliency_scores" in submission[0]:
        hl = eval_highlight(submission, ground_truth)
        metrics.update(hl)
        brief.update({f"{k}-{sub.split('-')[1]}": v for k, d in hl.items() for sub, v in d.items()})
    return {"brief": brief, **dict(sorted(metrics.items()))}
