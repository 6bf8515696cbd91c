"""Free-text answers to letters (pure), mode by mode, on the replies where the modes part ways;
and `eval score --extract` on a real benchmark file."""

from __future__ import annotations

import json

import pytest

from evals.metrics.extract import extract_letter, first_letter, ranked_letter
from evals.score import score


@pytest.mark.parametrize("reply, first, ranked", [
    ("B", "B", "B"),
    ("(C)", "C", "C"),
    ("The answer is (B).", "B", "B"),
    ("The best answer is: D", "D", "D"),
    # "Based" starts with a capital B: the first-letter rule reads it; the ranked one prefers the end
    ("Based on the video, C", "B", "C"),
    # a reply that starts with a letter: both read it (the ranked rule ranks "starts with" first)
    ("A is wrong because it leaves early; the answer is C", "A", "A"),
    ("I think (A) at first, but the correct answer is (D)", "A", "D"),
    # more than 10 words and no valid capital: the first-letter rule gives up, the ranked one too
    ("i really cannot tell which of these options is right from the frames i saw", None, None),
    ("", None, None),
])
def test_the_modes_on_replies_where_they_part(reply, first, ranked):
    assert first_letter(reply, "ABCD") == first
    assert ranked_letter(reply, "ABCD") == ranked


def test_valid_letters_follow_the_options():
    assert extract_letter("E", 5, "lmms-eval") == "E" and extract_letter("E", 4, "lmms-eval") is None
    assert extract_letter("E", 4, "first-letter") is None  # only A-D for four options
    assert extract_letter("Answer: E", 4, "first-letter") == "A"  # the capital A of "Answer"
    assert extract_letter("B", 4, "strict") is None  # strict reads nothing: the reply is the answer
    with pytest.raises(ValueError):
        extract_letter("B", 4, "loose")


def test_eval_score_reads_replies_by_the_chosen_mode(shared_data, tmp_path):
    d = shared_data / "benchmarks" / "longvideobench" / "lvb_val.json"
    rows = json.loads(d.read_text())[:4]
    gt = tmp_path / "lvb4.json"
    gt.write_text(json.dumps(rows))
    truth = ["ABCDE"[r["correct_choice"]] for r in rows]
    replies = [f"Based on the video, the answer is ({t})." for t in truth]
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps({"id": r["id"], "answer": a}) + "\n" for r, a in zip(rows, replies)))
    strict = score("longvideobench", str(gt), str(pred), protocol="groundqa")
    assert strict["extract"] == "strict" and strict["accuracy"] == 0.0 and strict["unparsed"] == 4
    ranked = score("longvideobench", str(gt), str(pred), protocol="groundqa", extract="lmms-eval")
    assert ranked["accuracy"] == 100.0 and ranked["unparsed"] == 0
    first = score("longvideobench", str(gt), str(pred), protocol="groundqa", extract="first-letter")
    assert first["accuracy"] == 100.0 * sum(t == "B" for t in truth) / 4  # reads the B of "Based"
    # the official protocol reads with the benchmark's own parser (the first of A-E: "B" again),
    # whatever --extract says, and the result says so
    official = score("longvideobench", str(gt), str(pred), extract="lmms-eval")
    assert official["extract"] == "longvideobench's own reader" and official["accuracy"] == first["accuracy"]
