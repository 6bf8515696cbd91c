"""The span math and the forgiving parser of the grounder's output."""

import pytest

from grounder import spans
from grounder.answer_format import format_answer, parse_answer, to_seconds


def test_iou_hand_computed():
    assert spans.iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert spans.iou((2, 4), (0, 10)) == pytest.approx(0.2)
    assert spans.iou((0, 1), (2, 3)) == 0.0
    assert spans.iou((3, 3), (0, 10)) == 0.0  # empty prediction
    assert spans.iou((5, 2), (0, 10)) == 0.0  # inverted prediction
    assert spans.iou(None, (0, 10)) == 0.0
    assert spans.best_iou((0, 10), [(50, 60), (0, 5)]) == pytest.approx(0.5)


def test_merge_keeps_max_score_and_orders_by_score():
    merged = spans.merge([(0, 5, 0.2), (4, 8, 0.9), (20, 30, 0.5)])
    assert merged == [(0.0, 8.0, 0.9), (20.0, 30.0, 0.5)]
    assert spans.merge([(0, 5, 0.2), (6, 8, 0.1)], gap=1.0) == [(0.0, 8.0, 0.2)]


def test_clip_orders_and_bounds():
    assert spans.clip((12, -3), 0, 10) == (0.0, 10.0)


def test_parse_well_formed():
    p = parse_answer("<think>I see it <timestamp>1.0 to 9.0</timestamp></think><answer>2.5 to 7.0</answer>", 30)
    assert p.span == (2.5, 7.0) and p.strict and p.anchors == [(1.0, 9.0)]


@pytest.mark.parametrize(
    "text, span",
    [
        ("<answer>7.0 to 2.5</answer>", (2.5, 7.0)),  # swapped ends
        ("<answer>-3 to 50</answer>", (0.0, 30.0)),  # dash is the separator; clipped to window
        ("<answer> 3 - 40 s </answer>", (3.0, 30.0)),  # clipped to window
        ("<answer>0:05 to 0:12.5</answer>", (5.0, 12.5)),  # clock time
        ("the event happens from 4 to 6 seconds", (4.0, 6.0)),  # untagged
        ("<think>maybe 1 to 2</think> it is 10 to 20", (10.0, 20.0)),  # reasoning ranges ignored
        ("<answer>4 to 6</answer><answer>8 to 9</answer>", (8.0, 9.0)),  # last answer wins
        ("<answer>12.0 to 15.", (12.0, 15.0)),  # truncated generation
    ],
)
def test_parse_forgiving(text, span):
    assert parse_answer(text, window=30).span == span


@pytest.mark.parametrize(
    "text",
    ["", "   ", "<answer>somewhere</answer>", "no idea", "<answer>40 to 50</answer>", "\x00\xff<think>",
     "<answer>5 to 5</answer>", None, 12],
)
def test_parse_never_raises_and_explains(text):
    p = parse_answer(text, window=30)
    assert p.span is None and p.reason


def test_parse_absent_answer():
    p = parse_answer("<think>nothing</think><answer>not in this window</answer>", 30)
    assert p.span is None and p.says_absent


def test_format_answer_round_trips():
    assert parse_answer(format_answer(1.26, 7.0)).span == (1.3, 7.0)
    assert to_seconds("01:02:03.5") == 3723.5
