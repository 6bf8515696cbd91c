"""What a synthetic-world text names, and whether a short clip shows it (pure; the retriever's labels).

A text names an object (colour + shape, or a shape alone), and sometimes the scene it is in, the
side it crosses and which way it moves ("enter" / "leave"): `named_attributes` reads that off a row's
structured `event`. A clip is a few frames at offsets around a time (`grounder.dual_encoder`'s
`clip_offsets`); `clip_objects` says, from the world's timeline, what each object does in it. Then
`pair_label(named, clip objects, scene)` is

    1    the clip shows what the text says: for a text with a verb, a named object crossing a frame
         edge (the named side, if any) while its share on screen grows ("enter") or shrinks
         ("leave"); without a verb, a named object with >= `min_visible` of its box on screen; in the
         named scene, if any, and for "right after the scene turns X" also a different scene in the
         clip's first frame, when the clip reaches that far back (a context frame);
    `elsewhere`  (0 by default) a text with a verb and the named object on screen doing something
         else (still inside, or crossing another side or the other way): the right object at the
         wrong moment, which is exactly the mistake the scan must not make;
    nan  (left out of the loss) a text without a verb and the named object only partly on screen;
    0    otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from grounder.synthetic_words import COLORS, SCENES, SHAPES
from trainer.vision_pretrain import Timeline, scene_at, track_box

ENTER_TYPES = ("enter", "enter_side", "enter_after_scene", "after_scene")
LEAVE_TYPES = ("leave", "exit_side", "after_leave")
MOVING = 0.02  # share change over a clip that counts as moving in or out


def answer_statement(event: dict[str, Any], answer: str) -> dict[str, str]:
    """What the statement "QUESTION ANSWER" of a synthetic multiple-choice row claims a clip shows:
    an object with the answered attribute doing the asked thing (the object that enters right after
    the anchor leaves is the only one entering then; the anchor itself is not in the claim)."""
    kind, ask = event.get("type"), event.get("ask")
    if kind == "after_leave":
        return {ask: answer, "verb": "enter"}
    if kind == "after_scene":
        return {"color": answer, "shape": str(event["shape"]), "scene": str(event["scene"]), "change": "1",
                "verb": "enter"}
    if kind in ("enter_side", "exit_side"):
        return {"color": str(event["color"]), "shape": str(event["shape"]), "side": answer,
                "verb": "enter" if kind == "enter_side" else "leave"}
    raise ValueError(f"no statement for a {kind!r} question")


def named_attributes(event: dict[str, Any]) -> dict[str, str]:
    """What a synthetic row's query names: the object (for "after_leave" questions the anchor that
    leaves; for "after_scene" the shape alone), the scene it follows, the side it crosses, and the
    verb ("enter" / "leave") of the object it names."""
    keys: tuple[str, ...] = ("color", "shape")
    kind = event.get("type")
    if kind in ("enter_after_scene", "after_scene"):
        keys = ("color", "shape", "scene", "change")
        event = {**event, "change": "1"}  # "right after the scene turns X": X has just begun
    if kind in ("enter", "leave", "after_leave"):
        keys = (*keys, "side")
    out = {k: str(event[k]) for k in keys if event.get(k)}
    if kind in ENTER_TYPES:
        out["verb"] = "enter"
    elif kind in LEAVE_TYPES:
        out["verb"] = "leave"
    return out


@dataclass(frozen=True)
class ClipObject:
    """One object during a clip: its share of box on screen at the first and last frame (and the
    most at any), and the frame edges its box crosses in any frame."""

    combo: int
    share: float
    first: float
    last: float
    edges: frozenset[str]

    @property
    def color(self) -> str:
        return COLORS[self.combo // len(SHAPES)]

    @property
    def shape(self) -> str:
        return SHAPES[self.combo % len(SHAPES)]


def _share_edges(tl: Timeline, tr: Any, t: float) -> tuple[float, frozenset[str]]:
    box = track_box(tr, t, tl.width, tl.height)
    if box is None:
        return 0.0, frozenset()
    x0, y0, x1, y1 = box
    cx, cy = float(np.interp(t, tr.times, tr.xs)), float(np.interp(t, tr.times, tr.ys))
    ux, uy = math.floor(cx - tr.size / 2 + 0.5), math.floor(cy - tr.size / 2 + 0.5)  # unclipped corner
    edges = frozenset(e for e, hit in (("left", ux < 0), ("top", uy < 0), ("right", ux + tr.size > tl.width),
                                       ("bottom", uy + tr.size > tl.height)) if hit)
    return (x1 - x0) * (y1 - y0) / float(tr.size * tr.size), edges


def clip_objects(tl: Timeline, t: float, offsets: tuple[float, ...]) -> list[ClipObject]:
    """Every object with a box on screen in the clip's last two frames (t + offsets[-2:]: what
    moves; earlier frames are context, e.g. the scene before)."""
    times = [min(max(t + o, 0.0), tl.duration) for o in offsets[-2:]]
    out = []
    for tr in tl.tracks:
        if tr.times[-1] < times[0] or tr.times[0] > times[-1]:
            continue
        seen = [_share_edges(tl, tr, x) for x in times]
        shares = [s for s, _ in seen]
        if max(shares) <= 0:
            continue
        edges = frozenset().union(*(e for s, e in seen if s > 0))
        out.append(ClipObject(tr.combo, max(shares), shares[0], shares[-1], edges))
    return out


def clip_scenes(tl: Timeline, t: float, offsets: tuple[float, ...]) -> tuple[int, int | None]:
    """(scene at t, scene in the clip's first frame when the clip has a context frame, else None)."""
    before = scene_at(tl, min(max(t + offsets[0], 0.0), tl.duration)) if len(offsets) > 2 else None
    return scene_at(tl, t), before


def _is_named(o: ClipObject, named: dict[str, str]) -> bool:
    """The object has every named attribute (a colour alone names any shape of it)."""
    return named.get("shape", o.shape) == o.shape and named.get("color", o.color) == o.color


def does(o: ClipObject, named: dict[str, str]) -> bool:
    """Does this (named) object do what the text's verb and side say during the clip?"""
    verb = named.get("verb")
    if not verb:
        return False
    moving = o.last - o.first > MOVING if verb == "enter" else o.first - o.last > MOVING
    side = named.get("side")
    return moving and bool(o.edges) and (side is None or side in o.edges)


def pair_label(named: dict[str, str], objects: list[ClipObject], scene: int, min_visible: float = 0.5,
               elsewhere: float = 0.0, scene_before: int | None = None) -> float:
    """1 / `elsewhere` / 0 / nan (left out) for a text naming `named` and a clip (module docstring)."""
    if "scene" in named and SCENES[scene] != named["scene"]:
        return 0.0
    match = [o for o in objects if _is_named(o, named)]
    if not match:
        return 0.0
    if named.get("verb"):
        just_changed = not named.get("change") or scene_before is None or SCENES[scene_before] != named.get("scene")
        return 1.0 if just_changed and any(does(o, named) for o in match) else elsewhere
    best = max(o.share for o in match)
    return 1.0 if best >= min_visible else float("nan")


def decoy_kind(named: dict[str, str], objects: list[ClipObject]) -> set[str]:
    """Which kinds of negative a clip is for a text: it shows another shape of the named colour,
    another colour of the named shape, the named object at another moment, other objects, nothing."""
    if not objects:
        return {"empty"}
    kinds = set()
    for o in objects:
        if o.color == named.get("color") and "shape" in named and o.shape != named["shape"]:
            kinds.add("same_colour")
        if o.shape == named.get("shape") and "color" in named and o.color != named["color"]:
            kinds.add("same_shape")
        if _is_named(o, named):
            kinds.add("moment")
    return kinds or {"other"}
