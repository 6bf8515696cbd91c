"""Our transcription of NExT-GQA's grounding scorer, kept apart from the package so that a test can
hold `evals.score` to it. Written by us from reading the code (not copied); each rule cites the
line it follows.

doc-doc/NExT-GQA @ 8331fcce57bd1a58b04c4331c217bf29f061fd97, code/TempCLIP/eval_ground.py

Inputs: `gsub` = the gsub_*.json object ({video: {"duration", "location": {qid: [[s, e], ...]}}}),
`pred_ground` = {"<video>_<qid>": [s, e]}, `pred_qa` = {"<video>_<qid>": {"answer", "prediction"}}.
Results in percent (the code prints them with one decimal; we keep all of them).
"""

from __future__ import annotations


def t_iou(loc: list[float], span: list[float]) -> tuple[float, float]:
    # loc is the ground truth, span the prediction (eval_ground.py:3)
    if span[0] == span[-1]:  # a point prediction: IoU 0, IoP 1 inside the truth (lines 5-9)
        return 0.0, (1.0 if loc[0] <= span[0] <= loc[1] else 0.0)
    union = (min(loc[0], span[0]), max(loc[-1], span[-1]))  # line 11
    inter = max(loc[0], span[0]), min(loc[-1], span[-1])  # line 12
    d = inter[1] - inter[0]  # may be negative: disjoint spans (line 13)
    iou = d / (union[1] - union[0]) if union[1] > union[0] else 0.0  # lines 14-17
    iop = d / (span[-1] - span[0]) if span[-1] > span[0] else 0.0  # lines 18-21, over the prediction
    return iou, iop


def eval_ground(gsub: dict, pred_ground: dict, pred_qa: dict | None = None) -> dict[str, float]:
    cnt = cqt = crt3 = crt5 = crtp3 = crtp5 = 0
    m_iou = m_iop = 0.0
    for vid, anno in gsub.items():  # the grounded questions only (line 31)
        for qid, locs in anno["location"].items():
            key = f"{vid}_{qid}"
            if key not in pred_ground:  # unpredicted: left out, not counted (lines 33-35)
                continue
            best_iou = best_iop = 0.0  # maxima start at 0 (line 40)
            for loc in locs:
                a, b = t_iou(loc, pred_ground[key])
                best_iou, best_iop = max(best_iou, a), max(best_iop, b)  # each maximised alone (45-48)
            if best_iop >= 0.3:  # lines 49-58: Acc@GQA needs IoP >= 0.5 and the right answer
                crtp3 += 1
                if best_iop >= 0.5:
                    crtp5 += 1
                    if pred_qa and pred_qa[key]["answer"] == pred_qa[key]["prediction"]:
                        cqt += 1
            if best_iou >= 0.3:  # lines 60-62
                crt3 += 1
                if best_iou >= 0.5:
                    crt5 += 1
            cnt += 1
            m_iou += best_iou
            m_iop += best_iop
    return {"Acc@GQA": cqt / cnt * 100, "mIoP": m_iop / cnt * 100, "IoP@0.3": crtp3 / cnt * 100,
            "IoP@0.5": crtp5 / cnt * 100, "mIoU": m_iou / cnt * 100, "IoU@0.3": crt3 / cnt * 100,
            "IoU@0.5": crt5 / cnt * 100}
