"""Perfect-perception answerers: they see the exact state at chosen frame times and
nothing else. With the evidence moment's frames they should answer (almost) everything;
with a few uniformly spaced frames of a long video they should be at chance, which is
what the generator's hardness checks assert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evals.synthetic.world import FrameState, ObjectState, VideoSpec
from grounder.tracks import nearest_side


def uniform_times(duration: float, n: int) -> np.ndarray:
    """n frame times at the centres of n equal slices of the video."""
    return (np.arange(n) + 0.5) * duration / n


def evidence_times(span: Sequence[float], fps: float) -> np.ndarray:
    """Frames at `fps` across a span (both ends included)."""
    return np.arange(span[0], span[1] + 1e-9, 1.0 / fps)


def _nearest_side(o: ObjectState, width: int, height: int) -> str:
    x, y = o.center
    return nearest_side(x / width, y / height)


def _fits(o: ObjectState, e: dict[str, Any]) -> bool:
    return o.color == e["color"] and o.shape == e["shape"]


def perceive(event: dict[str, Any], frames: list[FrameState], width: int, height: int) -> str | None:
    """The answer value (colour/shape/side) the frames show, or None if they do not tell."""
    t = event["type"]
    if t in ("enter_side", "exit_side"):
        seen = [o for f in frames for o in f.objects if _fits(o, event)]
        if not seen:
            return None
        # first sighting of an entering object is at its entry edge, last of a leaving one at its exit
        return _nearest_side(seen[0] if t == "enter_side" else seen[-1], width, height)
    if t == "after_leave":
        for i, f in enumerate(frames):
            if not any(_fits(o, event) for o in f.objects):
                continue
            prev = {o.id for o in f.objects}
            for g in frames[i + 1 :]:
                anchor_here = any(_fits(o, event) for o in g.objects)
                new = [o for o in g.objects if o.id not in prev]
                if new and not anchor_here:
                    return str(getattr(max(new, key=lambda o: o.id), event["ask"]))
                prev = {o.id for o in g.objects}
        return None
    if t == "after_scene":
        for i, f in enumerate(frames):
            if f.scene != event["scene"] or (i > 0 and frames[i - 1].scene == f.scene):
                continue  # not the first frame of a change to that scene
            prev = {o.id for o in (frames[i - 1] if i > 0 else f).objects}
            for g in frames[i:]:
                if g.scene != f.scene:
                    break
                new = [o for o in g.objects if o.id not in prev]
                if new:
                    first = max(new, key=lambda o: o.id)
                    if first.shape == event["shape"]:
                        return first.color
                    break
                prev = {o.id for o in g.objects}
        # fall back to any object of that shape seen in that scene: the best fit on offer
        fits = [o for f in frames if f.scene == event["scene"] for o in f.objects if o.shape == event["shape"]]
        return fits[0].color if fits else None
    raise ValueError(f"not a QA event: {t!r}")


def answer_from_times(spec: VideoSpec, row: dict[str, Any], times: Sequence[float],
                      rng: np.random.Generator) -> int:
    """Option index a perfect-perception model picks from the states at `times` (guesses
    uniformly when the frames do not tell)."""
    frames = [spec.state(float(t)) for t in times]
    value = perceive(row["event"], frames, spec.config.width, spec.config.height)
    if value is not None and value in row["options"]:
        return row["options"].index(value)
    return int(rng.integers(len(row["options"])))
