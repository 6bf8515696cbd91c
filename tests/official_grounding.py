"""Our transcriptions of two papers' grounding scorers, kept apart from the package so that a
test can hold `evals.metrics.grounding` to them. Written by us from reading the code (not
copied); each rule cites the line it follows.

- TimeZero, www-Ye/TimeZero @ a7c3523367cbff9f166baae10bc34568cffc26f3, evaluate.py
- Time-R1, xiaomi-research/time-r1 @ 7f2b5944a0c35993da80634a459d5a48a3a5431e,
  src/vllm_inference/eval_all.py

Inputs: `rows` = [(prediction or None when unparsed, [gt_start, gt_end])] for the rows that
were run (rows never run are simply absent in both). Results in percent, as we report.
"""

from __future__ import annotations

import numpy as np


def timezero_scores(rows: list[tuple[list[float] | None, list[float]]]) -> dict[str, float]:
    ious: list[float] = []
    hits = {0.3: 0, 0.5: 0, 0.7: 0}  # evaluate.py:152
    for pred, (s, e) in rows:
        try:
            if pred is None:  # no "a to b" in the reply: (None, None) -> IoU 0 (evaluate.py:213)
                ious.append(0.0)
                continue
            sp, ep = pred
            iou = (min(e, ep) - max(s, sp)) / (max(e, ep) - min(s, sp))  # evaluate.py:209, no epsilon
            ious.append(max(iou, 0.0))  # evaluate.py:210
            for t in hits:
                if t <= iou:  # evaluate.py:211: IoU >= t
                    hits[t] += 1
        except ZeroDivisionError:  # evaluate.py:229-230: the row is left out
            continue
    n = len(ious)  # evaluate.py:234-236: over the rows that finished
    out = {f"R1@{t:g}": 100.0 * hits[t] / n for t in hits}
    out["mIoU"] = 100.0 * sum(ious) / n
    return out


def time_r1_scores(rows: list[tuple[list[float] | None, list[float]]]) -> dict[str, float]:
    scores = []
    for pred, (gs, ge) in rows:
        score = 0.0  # eval_all.py:107-110: an unparsed [None, None] stays 0
        if pred is not None:
            ps, pe = np.float64(pred[0]), np.float64(pred[1])
            inter = np.maximum(0, np.minimum(pe, ge) - np.maximum(ps, gs))  # eval_all.py:75-77
            union = np.maximum(0, np.maximum(pe, ge) - np.minimum(ps, gs))  # eval_all.py:78-80
            with np.errstate(invalid="ignore", divide="ignore"):
                score = float(inter / union)  # eval_all.py:81: 0/0 is NaN
        scores.append(score)
    arr = np.array(scores)
    out = {f"R1@{t:g}": float(np.sum(arr > t) / len(arr) * 100) for t in (0.3, 0.5, 0.7)}  # eval_all.py:125-127
    out["mIoU"] = float(np.mean(arr) * 100)  # eval_all.py:124
    return out
