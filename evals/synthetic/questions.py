"""Grounding queries and multiple-choice questions of the synthetic world.

Every query/question is a structured *event* (a dict) rendered through one fixed
template; `parse_text` turns the text back into the event, so a deterministic planner
can read it. `resolve(spec, event)` finds every moment in a video that fits the event;
a row is written only when exactly one moment fits (the query is unique with all its
attributes, while look-alikes that share some attributes exist elsewhere).

Grounding events ("kind": "grounding", "qtype" = event type):
  enter              {"color", "shape", "side"}   span: the object crossing that edge inwards
  leave              {"color", "shape", "side"}   span: crossing that edge outwards
  visible            {"color", "shape"}           span: first pixel on screen -> last
  enter_after_scene  {"color", "shape", "scene"}  the first object to enter after a change to
                                                  that scene; span: its entry
QA events ("kind": "qa"; answer = 0-based index into "options", always 4 options):
  after_leave   {"color", "shape", "side"|None, "ask": "color"|"shape"} about the first object
                that starts entering after the anchor starts leaving (through `side` if given);
                evidence span: anchor starts leaving -> that object fully inside
  after_scene   {"shape", "scene", "ask": "color"} the first object entering after a change to
                `scene`, which has `shape`; evidence: the change -> that object fully inside
  enter_side    {"color", "shape", "ask": "side"} evidence: the entry
  exit_side     {"color", "shape", "ask": "side"} evidence: the exit
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from evals.synthetic.shapes import COLOR_NAMES, SCENES, SHAPES
from evals.synthetic.world import SIDES, ObjectTrack, VideoSpec

N_OPTIONS = 4
LETTERS = "ABCD"
ANSWER_VALUES: dict[str, tuple[str, ...]] = {"color": COLOR_NAMES, "shape": SHAPES, "side": SIDES}

GROUNDING_TYPES = ("enter", "leave", "visible", "enter_after_scene")
QA_TYPES = ("after_leave", "after_scene", "enter_side", "exit_side")


@dataclass(frozen=True)
class Match:
    """One moment fitting an event: the object it is about, its span, the answer value."""

    target: int
    span: tuple[float, float]
    answer: str | None = None


# ---- text templates -----------------------------------------------------------------

def _through(side: str | None) -> str:
    return f" through the {side}" if side else ""


def render_text(event: dict[str, Any]) -> str:
    """The grounding query of a grounding event, or the question of a QA event."""
    t, e = event["type"], event
    if t == "enter":
        return f"when does the {e['color']} {e['shape']} enter from the {e['side']}?"
    if t == "leave":
        return f"when does the {e['color']} {e['shape']} leave through the {e['side']}?"
    if t == "visible":
        return f"when is the {e['color']} {e['shape']} on screen?"
    if t == "enter_after_scene":
        return f"when does the {e['color']} {e['shape']} enter right after the scene turns {e['scene']}?"
    if t == "after_leave":
        anchor = f"the {e['color']} {e['shape']} leaves{_through(e.get('side'))}"
        if e["ask"] == "color":
            return f"what colour is the shape that enters right after {anchor}?"
        return f"what shape enters right after {anchor}?"
    if t == "after_scene":
        return f"what colour is the {e['shape']} that enters right after the scene turns {e['scene']}?"
    if t == "enter_side":
        return f"from which side does the {e['color']} {e['shape']} enter?"
    if t == "exit_side":
        return f"through which side does the {e['color']} {e['shape']} leave?"
    raise ValueError(f"unknown event type {t!r}")


def evidence_query(event: dict[str, Any]) -> str:
    """A grounding query whose span is a QA event's evidence moment (the row's "query")."""
    t, e = event["type"], event
    if t == "after_leave":
        return f"when does the next shape enter after the {e['color']} {e['shape']} leaves{_through(e.get('side'))}?"
    if t == "after_scene":
        return f"when does the {e['shape']} enter right after the scene turns {e['scene']}?"
    if t == "enter_side":
        return f"when does the {e['color']} {e['shape']} enter?"
    if t == "exit_side":
        return f"when does the {e['color']} {e['shape']} leave?"
    return render_text(event)


_C = "(?P<color>" + "|".join(COLOR_NAMES) + ")"
_S = "(?P<shape>" + "|".join(SHAPES) + ")"
_SD = "(?P<side>" + "|".join(SIDES) + ")"
_SC = "(?P<scene>" + "|".join(SCENES) + ")"
_PATTERNS: list[tuple[str, str, dict[str, Any]]] = [
    (f"when does the {_C} {_S} enter from the {_SD}", "enter", {}),
    (f"when does the {_C} {_S} leave through the {_SD}", "leave", {}),
    (f"when is the {_C} {_S} on screen", "visible", {}),
    (f"when does the {_C} {_S} enter right after the scene turns {_SC}", "enter_after_scene", {}),
    (f"what colour is the shape that enters right after the {_C} {_S} leaves(?: through the {_SD})?",
     "after_leave", {"ask": "color"}),
    (f"what shape enters right after the {_C} {_S} leaves(?: through the {_SD})?", "after_leave",
     {"ask": "shape"}),
    (f"what colou?r is the {_S} that enters right after the scene turns {_SC}", "after_scene",
     {"ask": "color"}),
    (f"from which side does the {_C} {_S} enter", "enter_side", {"ask": "side"}),
    (f"through which side does the {_C} {_S} leave", "exit_side", {"ask": "side"}),
    # evidence queries of QA rows
    (f"when does the next shape enter after the {_C} {_S} leaves(?: through the {_SD})?",
     "after_leave", {}),
    (f"when does the {_S} enter right after the scene turns {_SC}", "after_scene", {}),
    (f"when does the {_C} {_S} enter", "enter_side", {}),
    (f"when does the {_C} {_S} leave", "exit_side", {}),
]


def parse_text(text: str) -> dict[str, Any] | None:
    """Template text -> event dict (the inverse of render_text / evidence_query); None if
    the text is not one of the templates. Evidence queries parse without an "ask"."""
    s = " ".join(text.strip().lower().replace("color", "colour").split()).rstrip("?. ")
    for pattern, typ, extra in _PATTERNS:
        m = re.fullmatch(pattern, s)
        if m:
            ev = {"type": typ, **{k: v for k, v in m.groupdict().items()}, **extra}
            if typ == "after_leave":
                ev.setdefault("side", None)
            return {k: v for k, v in ev.items() if v is not None or k == "side"}
    return None


# ---- resolving events against the exact timeline -------------------------------------

def _scene_changes(spec: VideoSpec, scene: str) -> list[float]:
    return [s.start for i, s in enumerate(spec.scenes) if i > 0 and s.name == scene]


def _fits(o: ObjectTrack, e: dict[str, Any]) -> bool:
    return o.color == e["color"] and o.shape == e["shape"]


def resolve(spec: VideoSpec, event: dict[str, Any]) -> list[Match]:
    """Every moment of the video that fits the event (exact, from the timeline)."""
    t, e = event["type"], event
    out: list[Match] = []
    if t in ("enter", "enter_side"):
        for o in spec.objects:
            if _fits(o, e) and (t == "enter_side" or o.enter_side == e["side"]):
                out.append(Match(o.id, (o.t_in, o.t_inside), o.enter_side))
    elif t in ("leave", "exit_side"):
        for o in spec.objects:
            if _fits(o, e) and (t == "exit_side" or o.exit_side == e["side"]):
                out.append(Match(o.id, (o.t_out, o.t_gone), o.exit_side))
    elif t == "visible":
        out = [Match(o.id, (o.t_in, o.t_gone)) for o in spec.objects if _fits(o, e)]
    elif t in ("enter_after_scene", "after_scene"):
        for c in _scene_changes(spec, e["scene"]):
            f = spec.first_entry_at_or_after(c)
            if f is None or f.shape != e["shape"] or (t == "enter_after_scene" and f.color != e["color"]):
                continue
            span = (f.t_in, f.t_inside) if t == "enter_after_scene" else (c, f.t_inside)
            out.append(Match(f.id, span, f.color))
    elif t == "after_leave":
        for a in spec.objects:
            if not _fits(a, e) or (e.get("side") and a.exit_side != e["side"]):
                continue
            f = spec.first_entry_at_or_after(a.t_out, exclude=a.id)
            if f is not None:
                out.append(Match(f.id, (a.t_out, f.t_inside), getattr(f, e.get("ask") or "color")))
    else:
        raise ValueError(f"unknown event type {t!r}")
    return out


# ---- rows ---------------------------------------------------------------------------

def _options(rng: np.random.Generator, ask: str, correct: str) -> tuple[list[str], int]:
    """4 options; the correct position is uniform and the others a uniform sample."""
    others = [v for v in ANSWER_VALUES[ask] if v != correct]
    picked = [others[int(i)] for i in rng.permutation(len(others))[: N_OPTIONS - 1]]
    pos = int(rng.integers(N_OPTIONS))
    return picked[:pos] + [correct] + picked[pos:], pos


def _span(span: tuple[float, float]) -> list[float]:
    return [round(span[0], 2), round(span[1], 2)]


def candidate_events(spec: VideoSpec) -> list[tuple[dict[str, Any], int]]:
    """The events worth asking about in this video, each with the object it must resolve to."""
    counts: dict[tuple[str, str], int] = {}
    for o in spec.objects:
        counts[(o.color, o.shape)] = counts.get((o.color, o.shape), 0) + 1
    out: list[tuple[dict[str, Any], int]] = []
    for o in spec.objects:
        if o.role != "anchor":
            continue
        single = counts[(o.color, o.shape)] == 1
        cs = {"color": o.color, "shape": o.shape}
        out.append(({"type": "enter", **cs, "side": o.enter_side}, o.id))
        out.append(({"type": "leave", **cs, "side": o.exit_side}, o.id))
        if single:
            out.append(({"type": "visible", **cs}, o.id))
            out.append(({"type": "enter_side", **cs, "ask": "side"}, o.id))
            out.append(({"type": "exit_side", **cs, "ask": "side"}, o.id))
    for p in spec.plants:
        tgt = spec.objects[p.target]
        if p.kind == "after_leave":
            a = spec.objects[p.anchor]
            side = None if counts[(a.color, a.shape)] == 1 else a.exit_side
            out.append(({"type": "after_leave", "color": a.color, "shape": a.shape, "side": side,
                         "ask": p.ask}, tgt.id))
        else:
            scene = spec.scenes[p.anchor].name
            out.append(({"type": "enter_after_scene", "color": tgt.color, "shape": tgt.shape,
                         "scene": scene}, tgt.id))
            out.append(({"type": "after_scene", "shape": tgt.shape, "scene": scene, "ask": "color"},
                        tgt.id))
    return out


def make_rows(spec: VideoSpec, video: str) -> list[dict[str, Any]]:
    """Annotation rows for one video; `video` is its path relative to annotations.jsonl."""
    rng = np.random.default_rng([spec.seed, spec.index, 7])
    grounding: list[dict[str, Any]] = []
    qa: list[dict[str, Any]] = []
    for event, target in candidate_events(spec):
        matches = resolve(spec, event)
        if len(matches) != 1 or matches[0].target != target:
            continue  # not unique after all (fillers or another plant got in the way)
        m = matches[0]
        if not (0.0 <= m.span[0] < m.span[1] <= spec.duration):
            continue
        base = {"video": video, "duration": spec.duration}
        if event["type"] in GROUNDING_TYPES:
            grounding.append({**base, "kind": "grounding", "qtype": event["type"],
                              "query": render_text(event), "spans": [_span(m.span)],
                              "event": {**event, "target": target}})
        else:
            ask = event["ask"]
            options, answer = _options(rng, ask, str(m.answer))
            qtype = event["type"] + ("_" + ask if event["type"] in ("after_leave", "after_scene") else "")
            qa.append({**base, "kind": "qa", "qtype": qtype, "query": evidence_query(event),
                       "question": render_text(event), "options": options, "answer": answer,
                       "spans": [_span(m.span)], "event": {**event, "target": target}})
    rows = sorted(grounding, key=lambda r: r["spans"][0][0]) + sorted(qa, key=lambda r: r["spans"][0][0])
    for i, r in enumerate(rows):
        r["id"] = f"{spec.video_id}-{'g' if r['kind'] == 'grounding' else 'q'}{i:03d}"
    # stable, readable key order
    keys = ["id", "video", "duration", "kind", "qtype", "query", "question", "options", "answer",
            "spans", "event"]
    return [{k: r[k] for k in keys if k in r} for r in rows]


def vocabulary() -> list[str]:
    """Every word the templates can write (queries, questions, options), sorted; for
    tokenizers of tiny models trained on this world."""
    words: set[str] = set(COLOR_NAMES) | set(SHAPES) | set(SIDES) | set(SCENES)
    for pattern, _, _ in _PATTERNS:
        text = re.sub(r"\(\?P<\w+>[^)]*\)", " ", pattern)
        text = re.sub(r"\(\?:|\)\?|\?", " ", text).replace("colou r", "colour")
        words.update(w for w in text.split() if w.isalpha())
    return sorted(words)
