"""Our transcription of MLVU's multiple-choice scorer, kept apart from the package so that a test can
hold `evals.score` to it. Written by us from reading the code (not copied); each rule cites its line.

JUNJIE99/MLVU @ fd060c1, evaluation/multiple_choice_evaluation/choice_bench.py.

Inputs: `rows` = (task type, the truth's letter, the reply) for each question run. Percent.
"""

from __future__ import annotations


def check_ans(pred: str, gt_letter: str) -> bool:
    # lines 108-110: the truth is "(X) text"; X is what sits between its brackets
    if ")" in pred:  # lines 112-114: the one character before the reply's first ")"
        at = pred.index(")")
        pred = pred[at - 1:at]  # a ")" at 0 gives pred[-1:0] == ""
    return pred == gt_letter  # line 116: as it is


def choice_bench(rows: list[tuple[str, str, str]]) -> dict[str, float]:
    acc: dict[str, list[int]] = {}
    for task, gt, pred in rows:  # lines 149-153: every question run counts in its task
        acc.setdefault(task, [0, 0])[1] += 1
        if check_ans(pred, gt):  # lines 185-187
            acc[task][0] += 1
    out = {task: v[0] / v[1] * 100 for task, v in acc.items()}  # lines 201-204
    out["Avg"] = sum(out.values()) / len(acc)  # line 205: the plain mean of the tasks
    return out
