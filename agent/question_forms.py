"""question forms: the shapes of question a timeline reader answers by looking, read by English grammar.

    parse("from which side does the blue cross enter?")
      -> Form(ask="side", subject="the blue cross", verb="enter")
    parse("what colour is the shape that enters right after the red star leaves through the bottom?")
      -> Form(ask="color", subject="the shape", verb="enter",
              after=Event(subject="the red star", verb="leave", side="bottom"))
    parse("what shape enters right after the scene turns grey?")
      -> Form(ask="shape", subject="a shape", verb="enter", after=Event(scene="grey"))

Three forms, each a thing a reader can check frame by frame (`agent.timeline`):
- which side something enters from / leaves through;
- what colour / shape the thing is that enters (or leaves) right after an event;
- the same after a scene change ("the scene turns / changes to / becomes X").
Anything else is None, and the question goes to the answerer's general route. Pure: no model,
no vocabulary (which words are colours is the reader's business).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.planner import normalise
from grounder.tracks import crossing_event, crossing_verb

_SUBJ = r"(?:the|a|an)\s+(?:[\w'-]+\s+){0,3}?[\w'-]+"
_VERB = r"(?:enters|leaves|enter|leave|appears|disappears|appear|disappear)"
_SIDE_Q = re.compile(rf"^(?:from|through|on|at|via)?\s*(?:which|what)\s+(?:side|edge|direction)\s+"
                     rf"(?:does|did|do)\s+(?P<subj>{_SUBJ})\s+(?P<verb>{_VERB})(?:\s+(?:from|through))?$")
_ASK_IS = re.compile(rf"^(?:what|which)\s+(?P<ask>colou?r|shape)\s+(?:is|was)\s+(?P<subj>{_SUBJ})\s+(?:that|which)\s+"
                     rf"(?P<verb>{_VERB})\s+after\s+(?P<anchor>.+)$")
_ASK_VERB = re.compile(rf"^(?:what|which)\s+(?P<ask>colou?r|shape)\s+(?P<verb>{_VERB})\s+after\s+(?P<anchor>.+)$")
_SCENE = re.compile(r"^the\s+(?:scene|shot|background)\s+(?:turns|changes\s+to|becomes|switches\s+to|"
                    r"turns\s+into|changes\s+into)\s+(?:a\s+|an\s+)?(?P<scene>[\w'-]+)(?:\s+(?:scene|one|background))?$")


@dataclass(frozen=True)
class Event:
    """What happens at the anchor: `subject` doing `verb` (through `side`), or the scene turning `scene`."""

    subject: str = ""
    verb: str = ""
    side: str | None = None
    scene: str | None = None


@dataclass(frozen=True)
class Form:
    """ask: "side" | "color" | "shape"; `subject` does `verb` ("enter" / "leave"), `after` an event."""

    ask: str
    subject: str
    verb: str
    after: Event | None = None


def parse_event(clause: str) -> Event | None:
    """'the scene turns grey' / 'the red star leaves through the bottom' -> Event; else None."""
    text = normalise(clause)
    m = _SCENE.match(text)
    if m:
        return Event(scene=m.group("scene"))
    crossing = crossing_event(text)  # one thing entering / leaving (through a side): grounder.tracks
    return None if crossing is None else Event(*crossing)


def parse(question: str) -> Form | None:
    """The question's form (module docstring), or None when it is none of the three."""
    text = normalise(question)
    m = _SIDE_Q.match(text)
    if m:
        return Form("side", m.group("subj"), crossing_verb(m.group("verb")))
    for pattern in (_ASK_IS, _ASK_VERB):
        m = pattern.match(text)
        if not m:
            continue
        anchor = parse_event(m.group("anchor"))
        if anchor is None:
            return None
        ask = "color" if m.group("ask").startswith("col") else "shape"
        subject = m.groupdict().get("subj") or f"a {ask}"
        return Form(ask, subject, crossing_verb(m.group("verb")), anchor)
    return None
