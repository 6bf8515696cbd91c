"""The grounder's output format and its forgiving parser.

What the model writes (docs/architecture.md):

    <think> ... <timestamp>S to E</timestamp> ... </think><answer>S to E</answer>

S and E are seconds *relative to the window the model saw*, one decimal. Converting them to
absolute video time happens in the scan, not here. Parsing never raises: swapped ends are
swapped, values outside the window are clipped, and text with no usable answer gives
`span=None` with the reason, so a trace can show what went wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A time is seconds ("12", "12.5", "12.5s") or clock time ("1:05", "01:02:03.5").
_TIME = r"(?:\d+:)?(?:\d+:)?\d+(?:\.\d+)?"
_RANGE = re.compile(
    rf"(-?{_TIME})\s*(?:s|sec|secs|seconds)?\s*(?:to|-|–|—|~|until|and)\s*(-?{_TIME})\s*(?:s|sec|secs|seconds)?",
    re.IGNORECASE,
)
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)
_ANCHOR = re.compile(r"<timestamp>(.*?)</timestamp>", re.DOTALL | re.IGNORECASE)
_NUM = r"\d+(?:\.\d+)?"
# The strict form that earns the format reward: nothing outside the two blocks but whitespace.
_STRICT = re.compile(
    rf"^\s*<think>((?:(?!</?think>|</?answer>).)*)</think>\s*<answer>\s*({_NUM})\s+to\s+({_NUM})\s*</answer>\s*$",
    re.DOTALL,
)
NOT_PRESENT = re.compile(r"\b(not (?:in|present|visible|shown)|absent|none|no such)\b", re.IGNORECASE)


@dataclass
class ParsedAnswer:
    """What a completion says. `span` is window-relative seconds, or None with a `reason`."""

    span: tuple[float, float] | None
    anchors: list[tuple[float, float]] = field(default_factory=list)
    strict: bool = False  # exactly the trained format (what format_reward checks)
    says_absent: bool = False  # the model answered that the event is not in this window
    reason: str = ""


def to_seconds(text: str) -> float:
    """'12.5' -> 12.5, '1:05' -> 65.0, '01:02:03.5' -> 3723.5."""
    text = text.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    secs = 0.0
    for part in text.lstrip("-").split(":"):
        secs = secs * 60.0 + float(part)
    return sign * secs


def parse_range(text: str) -> tuple[float, float] | None:
    """The first 'S to E' in text, ends ordered; None when there is none."""
    m = _RANGE.search(text)
    if not m:
        return None
    a, b = to_seconds(m.group(1)), to_seconds(m.group(2))
    return (a, b) if a <= b else (b, a)


def _clip(span: tuple[float, float], window: float | None) -> tuple[float, float]:
    s, e = span
    if window is not None:
        s, e = min(max(s, 0.0), window), min(max(e, 0.0), window)
    return (s, e)


def parse_answer(text: str, window: float | None = None) -> ParsedAnswer:
    """Parse a completion; `window` (seconds the model saw) bounds the values when given."""
    if not isinstance(text, str) or not text.strip():
        return ParsedAnswer(None, reason="empty output")
    think = _THINK.search(text)
    anchors = [r for r in (parse_range(a) for a in _ANCHOR.findall(think.group(1) if think else text)) if r]
    anchors = [_clip(a, window) for a in anchors]
    strict = _STRICT.match(text) is not None
    answers = _ANSWER.findall(text)
    body = answers[-1] if answers else None
    source = "answer tag"
    if body is None:
        # No <answer> tag: fall back to the last range outside the reasoning.
        rest = _THINK.sub(" ", text)
        ranges = list(_RANGE.finditer(rest))
        if not ranges:
            absent = bool(NOT_PRESENT.search(rest))
            return ParsedAnswer(None, anchors, strict, absent, reason="no <answer> and no 'S to E' in the text")
        body, source = ranges[-1].group(0), "untagged range"
    span = parse_range(body)
    if span is None:
        absent = bool(NOT_PRESENT.search(body))
        why = "answer says the event is not in this window" if absent else f"no 'S to E' in answer {body.strip()[:60]!r}"
        return ParsedAnswer(None, anchors, strict, absent, reason=why)
    clipped = _clip(span, window)
    if clipped[1] <= clipped[0]:
        return ParsedAnswer(None, anchors, strict, reason=f"empty span after clipping to the window: {span}")
    reason = source if clipped == span else f"{source}, clipped from {span}"
    return ParsedAnswer(clipped, anchors, strict, reason=reason)


def format_answer(start: float, end: float) -> str:
    """The canonical answer text, one decimal, as the model is trained to write it."""
    return f"<answer>{start:.1f} to {end:.1f}</answer>"
