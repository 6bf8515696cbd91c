"""Our transcription of LVBench's scorer, kept apart from the package so that a test can hold
`evals.score` to it. Written by us from reading the code (not copied); each rule cites its line.

THUDM/LVBench @ dd7d99db5fefe0da59bfe9415a4afb64ed1f4801, lvbench/metrics/compute_accuracy.py, and
@ 1dd4612d63907c2836627c665a7bbccc050df3b8, lvbench/utils/answer_util.py (the reply clean-up its
test script applies before scoring).

Inputs: `answers` = {uid (str): reply}, `videos` = the rows of video_info.meta.jsonl. Percent.
"""

from __future__ import annotations


def polish(reply: str) -> str:
    text = reply.strip().split(")")[0].strip()  # answer_util.py:2-5: up to the first ")"
    if "(" in text:  # lines 7-12: after the "("
        text = text.split("(")[1].strip()
    text = text.split(" ")[0]  # line 14: the first word
    return text[0] if text else text  # lines 16-18: its first character


def compute_accuracy(answers: dict[str, str], videos: list[dict]) -> dict[str, float]:
    total = right = 0
    cat_total: dict[str, int] = {}
    cat_right: dict[str, int] = {}
    for video in videos:
        for qa in video["qa"]:
            uid = str(qa["uid"])  # compute_accuracy.py:18
            if uid not in answers:  # line 19: unanswered questions are left out
                continue
            given = polish(answers[uid])
            for c in qa["question_type"]:  # lines 21-24: every category the question lists
                cat_total[c] = cat_total.get(c, 0) + 1
                cat_right[c] = cat_right.get(c, 0) + (given == qa["answer"])
            right += given == qa["answer"]  # line 25: the strings as they are
            total += 1
    out = {c: 100.0 * cat_right[c] / cat_total[c] for c in cat_total}
    out["acc"] = 100.0 * right / total
    return out
