"""Our transcription of ReXTime's scorer for a submission with windows and answers, kept apart from
the package so that a test can hold `evals.score` to it. Written by us from reading the code (not
copied); each rule cites the line it follows.

ReXTime/ReXTime @ 504bbeaeb04ad4840a67e309f0799db0413e73e3, evaluation/rextime_eval.py and
evaluation/utils.py (@ af363dfc)

Inputs: `submission` = [{"qid", "pred_relevant_windows": [[s, e, score], ...], "ans"}],
`ground_truth` = the val jsonl rows (`qid`, `relevant_windows`, `ans`). Percent, 2 decimals where
the code rounds. (For a submission with both windows and answers the released script then reads a
key its GQA function never writes and stops with a KeyError after computing these numbers.)
"""

from __future__ import annotations

import numpy as np


def _cross_iou(p: list[float], windows: np.ndarray) -> np.ndarray:
    # utils.py compute_temporal_iou_batch_cross: inter clipped at 0, union = both lengths - inter
    inter = np.clip(np.minimum(p[1], windows[:, 1]) - np.maximum(p[0], windows[:, 0]), 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / ((p[1] - p[0]) + (windows[:, 1] - windows[:, 0]) - inter)


def _paired_iou(p: list[float], g: list[float]) -> float:
    # utils.py compute_temporal_iou_batch_paired: "not the correct union", 0 where it is 0
    inter = max(0.0, min(p[1], g[1]) - max(p[0], g[0]))
    union = max(p[1], g[1]) - min(p[0], g[0])
    return inter / union if union != 0 else 0.0


def rextime_scores(submission: list[dict], ground_truth: list[dict]) -> dict[str, float]:
    pred = {d["qid"]: d["pred_relevant_windows"][0][:2] for d in submission}  # the first window (eval.py:13)
    ans = {d["qid"]: d["ans"] for d in submission}
    gt_ans = {d["qid"]: d["ans"] for d in ground_truth}
    gt_win = {}
    for d in ground_truth:  # the truth window the prediction overlaps best (eval.py:16-24)
        windows = np.asarray(d["relevant_windows"], dtype=float)
        k = int(np.argmax(_cross_iou(pred[d["qid"]], windows))) if len(windows) else 0
        gt_win[d["qid"]] = d["relevant_windows"][k]
    qids = list(pred)
    ious = np.asarray([_paired_iou(pred[q], gt_win[q]) for q in qids])
    same = [ans[q] == gt_ans[q] for q in qids]  # raw string equality (eval.py:132-138)
    return {"mIoU": float(f"{np.mean(ious) * 100:.2f}"),  # eval.py:29
            "R1@0.3": float(f"{np.mean(ious >= 0.3) * 100:.2f}"),  # eval.py:30-31, IoU >= t
            "R1@0.5": float(f"{np.mean(ious >= 0.5) * 100:.2f}"),
            "Acc": 100.0 * sum(same) / len(same),
            "Acc@IoU>=0.5": 100.0 * sum(s and i >= 0.5 for s, i in zip(same, ious)) / len(same)}  # utils.py:27-31
