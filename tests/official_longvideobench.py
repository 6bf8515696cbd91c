"""Our transcription of LongVideoBench's scorer as lmms-eval carries it from the authors, kept apart
from the package so that a test can hold `evals.score` to it. Written by us from reading the code
(not copied); each rule cites its line.

EvolvingLMMs-Lab/lmms-eval @ 75571cf, lmms_eval/tasks/longvideobench/utils.py.

Input: (reply, number of options, truth's letter, duration group, question category) per question.
`guess(choices)` stands for its `random.choice` where it finds no letter. Percent.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def parse(reply: str, choices: list[str], guess: Callable[[list[str]], str]) -> str:
    s = reply.strip()  # line 193
    for prefix in ["The best answer is", "The correct answer is", "The answer is", "The answer",
                   "The best option is", "The correct option is", "Best answer:", "Best option:"]:
        s = s.replace(prefix, "")  # lines 194-205
    if len(s.split()) > 10 and not re.search("[ABCDE]", s):  # lines 207-208
        return guess(choices)
    m = re.search(r"[ABCDE]", s)  # lines 210-213: the first of A-E anywhere, even past the options
    return guess(choices) if m is None else m[0]


def aggregate(rows: list[tuple[str, int, str, str, str]], guess: Callable[[list[str]], str]) -> dict[str, float]:
    groups: dict[str, list[bool]] = {}
    for reply, n, answer, dur, cat in rows:
        ok = parse(reply, [chr(65 + i) for i in range(n)], guess) == answer  # lines 264-276, 235-246
        groups.setdefault(f"dur:{dur}", []).append(ok)  # lines 288-290: each sample in two subsets
        groups.setdefault(f"cat:{cat}", []).append(ok)
    out = {k: 100 * sum(v) / len(v) for k, v in groups.items()}
    # line 302 calculate_ins_level_acc: the subsets' accuracies weighted by size; every sample is
    # in two of them, so this is the pooled accuracy
    out["Overall"] = 100 * sum(sum(v) for v in groups.values()) / sum(len(v) for v in groups.values())
    return out
