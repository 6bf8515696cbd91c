"""Our transcription of Video-MME's scorer, kept apart from the package so that a test can hold
`evals.score` to it. Written by us from reading the code (not copied); each rule cites its line.

thanku-all/parse_answer @ afd52cf, eval_your_results.py (the scorer Video-MME's README points to).

Input: its results layout, a list of videos `{duration: short|medium|long, questions: [{task_type,
answer, response}]}`. Percent.
"""

from __future__ import annotations

import re

# lines 67-80, in order; a missing comma there runs two pairs together, so they are kept so
PREFIXES = ["The best answer is", "The correct answer is", "The answer is", "The answer",
            ("The best option is" "The correct option is"), ("Best answer:" "Best option:"),
            "Answer:", "Option:", "The correct answer", "The correct option"]


def extract(s: str) -> str:
    s = s.strip()  # line 66
    for prefix in PREFIXES:  # lines 81-82
        s = s.replace(prefix, "")
    if len(s.split()) > 10 and not re.search("[ABCD]", s):  # lines 83-84
        return ""
    m = re.search(r"[ABCD]", s)  # lines 86-89: the first of A-D anywhere
    return "" if m is None else m[0]


def eval_results(results: list[dict]) -> dict[str, float]:
    right: dict[str, int] = {}
    answered: dict[str, int] = {}
    task_right: dict[str, int] = {}
    task_answered: dict[str, int] = {}
    for video in results:
        dur = video["duration"]  # line 132: grouped by duration type
        for q in video["questions"]:  # lines 163-181
            got = extract(q["response"])
            if got != "":  # line 173: only what it could read counts
                answered[dur] = answered.get(dur, 0) + 1
                right[dur] = right.get(dur, 0) + (got == q["answer"])
                t = q["task_type"]
                task_answered[t] = task_answered.get(t, 0) + 1
                task_right[t] = task_right.get(t, 0) + (got == q["answer"])
    out = {dur: 100 * right[dur] / answered[dur] for dur in answered}  # lines 185-214
    out.update({f"task:{t}": 100 * task_right[t] / task_answered[t] for t in task_answered})
    out["Overall"] = 100 * sum(right.values()) / sum(answered.values())  # lines 255-259
    return out
