"""Question forms (pure): which questions the timeline reader answers by watching, read by grammar."""

from __future__ import annotations

import pytest

from agent.question_forms import Event, Form, parse, parse_event


@pytest.mark.parametrize("question, form", [
    ("from which side does the blue cross enter?", Form("side", "the blue cross", "enter")),
    ("Through which side does the cyan star leave", Form("side", "the cyan star", "leave")),
    ("which side did the red car appear from?", Form("side", "the red car", "enter")),
    ("what colour is the shape that enters right after the red star leaves through the bottom?",
     Form("color", "the shape", "enter", Event("the red star", "leave", "bottom"))),
    ("what shape enters right after the purple circle leaves?",
     Form("shape", "a shape", "enter", Event("the purple circle", "leave"))),
    ("What color is the square that enters just after the scene turns grey?",
     Form("color", "the square", "enter", Event(scene="grey"))),
    ("what shape appears immediately after the background changes to striped",
     Form("shape", "a shape", "enter", Event(scene="striped"))),
    ("what colour is the triangle that leaves after the green circle enters from the left?",
     Form("color", "the triangle", "leave", Event("the green circle", "enter", "left"))),
])
def test_the_three_forms_are_read_off_the_grammar(question, form):
    assert parse(question) == form


@pytest.mark.parametrize("question", [
    "when does the blue cross enter?",  # a grounding query, not a question about what is seen
    "how many circles are on screen?",
    "what colour is the shape that enters right after the dog barks?",  # an anchor it cannot watch
    "what is the person holding after the scene turns grey?",  # not colour / shape / side
    "",
])
def test_other_questions_are_none(question):
    assert parse(question) is None


def test_events():
    assert parse_event("the scene turns checkered") == Event(scene="checkered")
    assert parse_event("the orange triangle leaves through the top") == Event("the orange triangle", "leave", "top")
    assert parse_event("it rains") is None
