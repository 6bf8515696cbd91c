"""Reading a named thing's presence over time (pure): when it comes, when it goes, which edge.

A reader (`agent.timeline`) samples clips densely over a stretch of video and asks the retriever,
per clip, how likely the named thing is on screen and where (`DualEncoder.locate`). From those
curves:

- `rises` / `falls`: the clips where presence crosses `threshold` upwards (the thing has come in)
  or downwards (it has gone). A crossing needs a clip on the other side before it, so a thing
  already on screen when the stretch starts never "enters" in it;
- `crossing`: the clip where it comes in (first rise) or goes (last fall) on the smoothed curve,
  moved to the nearest clip it is seen on, where its position is read;
- `nearest_side` / `edge_side`: the frame edge a position is closest to, which is the side a thing
  came in from at its first clip on screen, or left through at its last (`edge_side`: only when it
  is close to that edge, else the crossing was missed);
- `crossing_event` / `named_crossing`: the subject, verb and side of a text that is one thing
  crossing the frame's edge ("the red cross enter from the left"), by English grammar.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

SIDES = ("left", "right", "top", "bottom")
# "(when does) the red cross enter(s) (from the left)": a subject of an article and up to four words
_CROSSING = re.compile(r"^(?:when\s+(?:does|did|do)\s+)?(?P<subj>(?:the|a|an)\s+(?:[\w'-]+\s+){0,3}?[\w'-]+)\s+"
                       r"(?P<verb>enters?|leaves?|exits?|appears?|disappears?)(?:\s+(?:from|through|via|at|on)\s+"
                       r"the\s+(?P<side>left|right|top|bottom)(?:\s+(?:side|edge))?)?$")


def smooth(presence: Sequence[float], width: int = 3) -> np.ndarray:
    """Mean over `width` clips centred on each (edges repeated): a thing half hidden by another, or
    crossing a busy background, flickers around the threshold clip to clip."""
    p = np.asarray(presence, dtype=np.float64)
    w = max(1, int(width))
    if w == 1 or len(p) == 0:
        return p.copy()
    padded = np.pad(p, (w // 2, w - 1 - w // 2), mode="edge")
    return np.convolve(padded, np.ones(w) / w, mode="valid")


def rises(presence: Sequence[float], threshold: float = 0.5, hold: int = 1) -> np.ndarray:
    """Indices i where presence is >= threshold for `hold` clips from i on and below it for the
    `hold` clips before i (hold > 1 ignores a one-clip flicker, e.g. a thing passing behind another)."""
    on = np.asarray(presence, dtype=np.float64) >= threshold
    n, h = len(on), max(1, int(hold))
    return np.asarray([i for i in range(h, n - h + 1) if on[i:i + h].all() and not on[i - h:i].any()],
                      dtype=np.int64)


def falls(presence: Sequence[float], threshold: float = 0.5, hold: int = 1) -> np.ndarray:
    """Indices i of the last clip on screen: >= threshold for `hold` clips up to i, below it for the
    `hold` clips after."""
    on = np.asarray(presence, dtype=np.float64) >= threshold
    n, h = len(on), max(1, int(hold))
    return np.asarray([i for i in range(h - 1, n - h) if on[i - h + 1:i + 1].all() and not on[i + 1:i + 1 + h].any()],
                      dtype=np.int64)


def onset(presence: Sequence[float], i: int, level: float = 0.1, most: int | None = None) -> int:
    """Walk back from a rise at clip i while the clip before still shows a trace of the thing
    (presence > `level`): the clip where it started to come in (a thing crossing the edge is
    partly on screen for a few seconds before it counts as present); at most `most` clips back
    when given (on the validation world a cap of 4 or 8 clips did no better than none)."""
    p = np.asarray(presence, dtype=np.float64)
    j = int(i)
    while j > 0 and (most is None or j > i - most) and p[j - 1] > level:
        j -= 1
    return j


_RELATIVE = re.compile(r"\b(?:after|before|while|until|during|once|as soon as|right after)\b")


def crossing(presence: Sequence[float], verb: str, threshold: float = 0.5, width: int = 3,
             hold: int = 3) -> int | None:
    """The clip where a thing comes in ("enter": first rise) or goes (else: last fall) on the curve
    smoothed over `width` clips, moved to the nearest clip where the raw presence says it is seen;
    None when it does not cross."""
    p = np.asarray(presence, dtype=np.float64)
    curve = smooth(p, width)
    idx = rises(curve, threshold, hold) if verb == "enter" else falls(curve, threshold, hold)
    if not len(idx):
        return None
    i = int(idx[0] if verb == "enter" else idx[-1])
    seen = np.flatnonzero(p >= threshold)
    if not len(seen):
        return i
    # the nearest seen clip; of two as near, the one on the side the thing is on (later when leaving)
    later = verb != "enter"
    return int(min(seen, key=lambda j: (abs(j - i), -j if later else j)))


def crossing_event(text: str) -> tuple[str, str, str | None] | None:
    """(subject, "enter" | "leave", side or None) when the whole text is one thing crossing the
    frame's edge ("the red star leaves through the bottom", "when does the cross appear"), by
    English grammar; else None. The one reading of this grammar (`named_crossing`, and the
    agent's question forms)."""
    t = " ".join(str(text).lower().split()).rstrip(" ?.!")
    m = _CROSSING.match(t)
    if not m or _RELATIVE.search(t):  # "... enter after X leaves through the top": X's side
        return None
    return m.group("subj"), crossing_verb(m.group("verb")), m.group("side")


def crossing_verb(word: str) -> str:
    """"enter" for enter(s) / appear(s), "leave" for leave(s) / exit(s) / disappear(s)."""
    return "enter" if word.lower().startswith(("enter", "appear")) else "leave"


def named_crossing(query: str) -> tuple[str, str] | None:
    """("enter" | "leave", side) when the whole query is one thing crossing one named side."""
    event = crossing_event(query)
    return None if event is None or event[2] is None else (event[1], event[2])


def nearest_side(x: float, y: float) -> str:
    """The frame edge nearest to (x, y), both in 0..1 from the top-left corner."""
    d = {"left": x, "right": 1.0 - x, "top": y, "bottom": 1.0 - y}
    return min(SIDES, key=lambda s: d[s])


def edge_side(x: float, y: float, within: float = 0.2) -> str | None:
    """`nearest_side` when (x, y) is within `within` of that edge, else None: a thing seen first
    (last) in the middle of the frame was missed while it crossed, and says nothing of the side."""
    side = nearest_side(x, y)
    d = {"left": x, "right": 1.0 - x, "top": y, "bottom": 1.0 - y}[side]
    return side if d <= within else None


def first_entry_after(times: Sequence[float], presence: Sequence[float], after: float,
                      threshold: float = 0.5, hold: int = 1, level: float = 0.1) -> tuple[int, int] | None:
    """(onset, rise) clip indices of the first rise whose onset is at or after time `after`, else None."""
    t = np.asarray(times, dtype=np.float64)
    for i in rises(presence, threshold, hold):
        j = onset(presence, int(i), level)
        if t[j] >= after:
            return j, int(i)
    return None
