"""Reading an option letter out of a free-text reply (pure), the ways published scorers do.

`groundqa eval score --extract MODE` picks one; the result records which.

- `strict` (our default): the reply *is* the answer: a lone letter ("B", "(B)", "B."), an option
  index, or an option's text; anything longer is unparsed.
- `first-letter`: lmms-eval's Video-MME rule before 2026 (`extract_characters_regex` in
  EvolvingLMMs-Lab/lmms-eval @ 86a293d, lmms_eval/tasks/videomme/utils.py): remove the stock answer
  prefixes ("The best answer is", ...; two of its prefixes run together for want of a comma, and
  are kept so), then the first valid capital letter anywhere, even inside a word ("Based on ..."
  reads as B); its "more than 10 words without a letter" rule changes nothing.
- `lmms-eval`: its shared extractor of 2026 (`extract_mcq_answer` in
  lmms_eval/tasks/_task_utils/mcq_extract.py @ c228e27): every way a letter can stand in the reply
  is a candidate with a rank (the reply starts with it 10, ends with it 9, after an answer phrase
  7, "(X)" 6, "X." 5, "X:" 4, "X)" 3, "X " 2, anywhere 0 only when nothing else matched); the
  highest rank wins, and within it the last occurrence.

Valid letters are those of the row's options (A-D for four).

The benchmarks whose released scorers read the reply themselves have their reader here too;
`--protocol official` applies it on that benchmark (`READERS`), whatever `--extract` says:
- `polish_answer`: LVBench's clean-up before its scorer compares strings (THUDM/LVBench @ 1dd4612,
  lvbench/utils/answer_util.py).
- `mlvu_letter`: MLVU's `check_ans` (JUNJIE99/MLVU @ fd060c1,
  evaluation/multiple_choice_evaluation/choice_bench.py:105-119).
- `videomme_letter`: Video-MME's `extract_characters_regex` (thanku-all/parse_answer @ afd52cf,
  eval_your_results.py:65-89), the scorer the Video-MME authors point to.
- `longvideobench_letter`: LongVideoBench's `parse_multi_choice_response` as lmms-eval carries it from
  the authors (EvolvingLMMs-Lab/lmms-eval @ 75571cf, lmms_eval/tasks/longvideobench/utils.py:187-213).
  One deliberate difference: where it finds no letter, that code draws a random valid letter
  (`random.choice`, whatever the global random state is); we count the reply unparsed and wrong,
  so a score here can sit below theirs by at most (unparsed / n) x (1 / options), in expectation.
"""

from __future__ import annotations

import re

MODES = ("strict", "first-letter", "lmms-eval")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# lmms-eval's Video-MME prefixes, in its order; the run-together pairs are as it has them
_VIDEOMME_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                      "The best option isThe correct option is", "Best answer:Best option:")

_PHRASES = ("the answer is", "answer is", "the correct answer is", "correct answer is", "the best answer is",
            "best answer is", "the correct option is", "correct option is", "the best option is", "best option is",
            "the choice is", "choice is", "the correct choice is", "correct choice is", "i choose", "i select",
            "i pick", "my answer is", "my choice is", "옵션", "정답은", "답은", "답:", "答案是", "答案为", "选", "答えは")
_RANK = {"start": 10, "end": 9, "phrase": 7, "(X)": 6, "X.": 5, "X:": 4, "X)": 3, "X ": 2, "anywhere": 0}


def polish_answer(reply: str) -> str:
    """LVBench's rule (module docstring): the text before the first ")", after a "(" if there is
    one, its first word's first character ("(B) 1366" -> "B", "B. 1366" -> "B"); "" for an empty reply."""
    text = str(reply).strip().split(")")[0].strip()
    if "(" in text:
        text = text.split("(")[1].strip()
    word = text.split(" ")[0]
    return word[0] if word else word


def mlvu_letter(reply: str) -> str:
    """MLVU's reading: the one character before the first ")" when there is one ("(B) a cat" -> "B";
    ")" first -> ""), else the reply as it is; its scorer then compares that with the letter exactly
    ("b" and "B." are wrong)."""
    text = str(reply)
    at = text.find(")")
    return text[max(at - 1, 0):at] if at != -1 else text


# Video-MME's prefixes in its order; two pairs run together for want of a comma there, kept so
_VIDEOMME_OFFICIAL_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                               "The best option isThe correct option is", "Best answer:Best option:",
                               "Answer:", "Option:", "The correct answer", "The correct option")


def _after_prefixes(reply: str, prefixes: tuple[str, ...], letters: str) -> str:
    """The rule lmms-eval's Video-MME reader, Video-MME's own and LongVideoBench's share: each stock
    answer prefix removed, then the first of `letters` anywhere (even inside a word: "Based on ..."
    reads B); "" when there is none. (Their "over 10 words without a letter gives nothing" test
    adds nothing to that: without a letter there is nothing either way.)"""
    s = str(reply).strip()
    for prefix in prefixes:
        s = s.replace(prefix, "")
    found = re.search(f"[{re.escape(letters)}]", s)
    return found.group(0) if found else ""


def videomme_letter(reply: str) -> str:
    """Video-MME's reading (`_after_prefixes` with its prefixes, A-D). Its scorer leaves "" out of
    the denominator."""
    return _after_prefixes(reply, _VIDEOMME_OFFICIAL_PREFIXES, "ABCD")


_LVB_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                 "The best option is", "The correct option is", "Best answer:", "Best option:")


def longvideobench_letter(reply: str) -> str:
    """LongVideoBench's reading (`_after_prefixes` with its prefixes, A-E; module docstring: "" where
    its code draws a random letter)."""
    return _after_prefixes(reply, _LVB_PREFIXES, "ABCDE")


# the official protocols whose scorers read raw replies: protocol name -> reader
READERS = {"lvbench": polish_answer, "mlvu": mlvu_letter, "videomme": videomme_letter,
           "longvideobench": longvideobench_letter}


def valid_letters(n_options: int) -> str:
    return _LETTERS[: max(1, min(int(n_options), len(_LETTERS)))]


def first_letter(reply: str, letters: str = "ABCD") -> str | None:
    """The `first-letter` mode (module docstring: `_after_prefixes` with lmms-eval's prefixes); None
    when it finds none."""
    return _after_prefixes(reply, _VIDEOMME_PREFIXES, letters) or None


def ranked_letter(reply: str, letters: str = "ABCDEFGH") -> str | None:
    """The `lmms-eval` mode (module docstring); None when it finds none."""
    if not str(reply).strip():
        return None
    text = str(reply).strip()
    text = text.strip(",.!?;:'\"")
    padded = f" {text} "
    found: list[tuple[int, int, str]] = []  # (rank, position, letter)
    for ch in letters:
        for shape in ("(X)", "X.", "X:", "X)", "X "):
            at = padded.rfind(shape.replace("X", ch))
            if at != -1:
                found.append((_RANK[shape], at, ch))
    lower = padded.lower()
    for phrase in _PHRASES:
        at = lower.find(phrase)
        if at == -1:
            continue
        for ch in letters:
            pos = padded.find(ch, at + len(phrase))
            if pos != -1:
                found.append((_RANK["phrase"], pos, ch))
    core = padded.strip()
    for ch in letters:
        if core.startswith(ch) and (len(core) == 1 or not core[1].isalpha()):
            found.append((_RANK["start"], 0, ch))
        if core.endswith(ch) and (len(core) == 1 or not core[-2].isalpha()):
            found.append((_RANK["end"], len(padded) - 1, ch))
    if not found:
        found = [(_RANK["anywhere"], padded.rfind(ch), ch) for ch in letters if ch in padded]
    if not found:
        return None
    return max(found, key=lambda f: (f[0], f[1]))[2]


def extract_letter(reply: str, n_options: int, mode: str) -> str | None:
    """The letter `mode` reads in `reply` for a row of `n_options` options ("strict" reads none:
    the caller keeps the reply as it is)."""
    if mode not in MODES:
        raise ValueError(f"unknown extract mode {mode!r} (choose from {', '.join(MODES)})")
    if mode == "strict":
        return None
    letters = valid_letters(n_options)
    return first_letter(reply, letters) if mode == "first-letter" else ranked_letter(reply, letters)
