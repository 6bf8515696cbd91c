"""The timeline reader: answers "which side" and "what comes right after" questions by watching.

Statement matching (`agent.retrieval_answerer`) asks the retriever whether a clip looks like
"QUESTION OPTION". For three forms of question (`agent.question_forms`) a retriever that can say
*where* a named thing is (`locate`: presence and position per clip) can do better by reading the
grounded stretches clip by clip (2 per second), as a person scrubbing the video would:

- "from which side does X enter" / "through which side does X leave": the clip where X's
  presence rises (falls) inside a found segment; the frame edge nearest to X there;
- "what colour / shape is the thing that enters right after Y leaves": the clip where Y's presence
  falls (through the named side, if any), then, among the options, the first whose presence rises
  after it (each option made a probe with the attribute filled in, e.g. "the blue square");
- "... right after the scene turns Z": the scene cuts inside the segments (`grounder.cuts`, from
  the frames read), the first thing that comes in after each, and which cut's new scene is Z
  (the retriever's "what" head was trained on "X ... right after the scene turns Z").

It reads only the segments it is handed, so the no-grounding baseline (no segments) does not get
it for free. An attribute the question leaves open is filled with each word the retriever was
trained on (`slots` in its config): "a shape" -> every shape. When a form does not parse or nothing
crosses, `read` returns None and the caller falls back to statement matching.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.question_forms import Event, Form
from grounder.cuts import frame_changes, scene_cuts
from grounder.retrieval import sample_clips
from grounder.tracks import crossing, edge_side, first_entry_after, smooth


@dataclass
class Reading:
    """What the reader saw: the chosen option, at which time, why, from which clips."""

    choice: int
    time: float
    strength: float  # presence step at the deciding crossing, 0..1
    note: str
    frame_times: list[float] = field(default_factory=list)


@dataclass
class TimelineReader:
    """Reads the segments it is given at `fps` clips per second, `pad` s around each (the
    grounder's span can be a few seconds off); "after" questions look `after_s` s past the anchor.
    The settings were chosen on a validation world (seed 9300), never on the held-out worlds.
    It keeps no state between calls: `read` says how many clips it embedded."""

    embedder: Any  # has locate(clips, texts) and slots (grounder.embedders.DualEncoderEmbedder)
    fps: float = 2.0
    pad: float = 6.0
    after_s: float = 16.0
    threshold: float = 0.5
    smooth: int = 3  # presence is averaged over this many clips before looking for crossings
    hold: int = 3  # clips a crossing must hold on both sides (1.5 s at 2 fps): flickers are not crossings
    min_step: float = 0.5  # a crossing this clear in a better-ranked segment ends the search there
    entry_threshold: float = 0.5  # what comes in "right after": on the smoothed curve, held `entry_hold`
    entry_hold: int = 2  # clips (it is often half hidden by what is already there)
    lead_s: float = 1.5  # it may start to show this long before the anchor's last clip on screen
    cut_threshold: float = 10.0
    max_pixels: int | None = None

    @staticmethod
    def usable(embedder: Any) -> bool:
        slots = getattr(embedder, "slots", None) or {}
        return hasattr(embedder, "locate") and bool(slots.get("color")) and bool(slots.get("shape"))

    # -- probes ----------------------------------------------------------------------------
    def attributes(self, text: str) -> dict[str, str]:
        """The colour / shape words of `text` that the retriever knows."""
        words = text.lower().replace("colour", "color").split()
        out = {}
        for key in ("color", "shape"):
            for w in words:
                if w in self.embedder.slots.get(key, ()):
                    out[key] = w
                    break
        return out

    def probes(self, attrs: dict[str, str]) -> list[str]:
        """"the COLOR SHAPE" for the named attributes, every known word for a missing one."""
        colors = [attrs["color"]] if "color" in attrs else list(self.embedder.slots["color"])
        shapes = [attrs["shape"]] if "shape" in attrs else list(self.embedder.slots["shape"])
        return [f"the {c} {s}" for c in colors for s in shapes]

    def _clips(self, reader: Any, start: float, end: float, used: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Clips at `fps` over [start, end] (inside the video); their number is added to `used`."""
        start, end = max(0.0, start), min(float(reader.duration), end)
        n = max(2, math.ceil((end - start) * self.fps))
        times = start + (np.arange(n) + 0.5) * ((end - start) / n)
        clips, stamps = sample_clips(reader, times, self.embedder.clip_offsets, self.max_pixels)
        used[0] += len(clips)
        return clips, np.asarray(stamps, dtype=np.float64)

    # -- the three forms -------------------------------------------------------------------
    def read(self, reader: Any, form: Form, options: Sequence[str],
             segments: Sequence[dict[str, float]]) -> tuple[Reading | None, int]:
        """(what it read, or None when nothing crossed; the clips it embedded either way)."""
        segs, used = list(segments), [0]
        reading = None
        if not segs:
            pass
        elif form.ask == "side" and form.after is None:
            reading = self._side(reader, form, options, segs, used)
        elif form.after is not None and form.ask in ("color", "shape") and form.verb == "enter":
            if form.after.scene:
                reading = self._after_scene(reader, form, options, segs, used)
            elif form.after.subject:
                reading = self._after_event(reader, form, options, segs, used)
        return reading, used[0]

    def _crossing(self, presence: np.ndarray, verb: str) -> int | None:
        return crossing(presence, verb, self.threshold, self.smooth, self.hold)

    def _step(self, presence: np.ndarray, i: int, verb: str) -> float:
        """How clearly the thing crosses at clip i: mean presence on its side minus the other's."""
        presence = smooth(presence, self.smooth)
        h = self.hold
        inside, outside = (presence[i:i + h], presence[i - h:i]) if verb == "enter" else \
            (presence[i - h + 1:i + 1], presence[i + 1:i + 1 + h])
        return float(np.mean(inside) - np.mean(outside))

    def _side(self, reader: Any, form: Form, options: Sequence[str], segs: list[dict[str, float]],
              used: list[int]) -> Reading | None:
        probes = self.probes(self.attributes(form.subject))
        best: tuple[float, str, float, list[float]] | None = None
        before, after = (2 * self.pad, self.pad) if form.verb == "enter" else (self.pad, 2 * self.pad)
        for s in segs:
            clips, stamps = self._clips(reader, s["start"] - before, s["end"] + after, used)
            p, xy = self.embedder.locate(clips, probes)
            for k in range(len(probes)):
                i = self._crossing(p[k], form.verb)
                if i is None:
                    continue
                side = edge_side(*xy[k, i])
                if side is None:
                    continue  # first / last seen mid-frame: its crossing was missed
                strength = self._step(p[k], i, form.verb)
                if best is None or strength > best[0]:
                    best = (strength, side, float(stamps[i]), [float(t) for t in stamps])
            if best is not None and best[0] >= self.min_step:
                break  # the best-ranked segment where the thing clearly crosses: the grounder's pick
        if best is None:
            return None
        strength, side, at, times = best
        choice = _option_with(options, side)
        if choice is None:
            return None
        how = "comes in" if form.verb == "enter" else "is last seen"
        return Reading(choice, at, strength, f"{form.subject} {how} at {at:.1f} s nearest the {side} edge", times)

    def _after_event(self, reader: Any, form: Form, options: Sequence[str],
                     segs: list[dict[str, float]], used: list[int]) -> Reading | None:
        ev: Event = form.after  # type: ignore[assignment]
        anchor = self.probes(self.attributes(ev.subject))
        named = self.attributes(form.subject)
        option_probes = [self.probes({**named, form.ask: o.strip().lower()}) for o in options]
        texts = anchor + [t for ps in option_probes for t in ps]
        best: Reading | None = None
        for s in segs:
            clips, stamps = self._clips(reader, s["start"] - self.pad, s["end"] + self.pad + self.after_s, used)
            p, xy = self.embedder.locate(clips, texts)
            for k in range(len(anchor)):
                i = self._crossing(p[k], ev.verb)
                if i is None:
                    continue
                if ev.side and edge_side(*xy[k, i]) != ev.side:
                    continue
                at = float(stamps[i])
                strength = self._step(p[k], i, ev.verb)
                # the anchor's last clip on screen is about half-way through its leaving; what comes in
                # right after it starts to show no earlier than that, less a little
                pick = self._first_in(stamps, p[len(anchor):], option_probes, at - self.lead_s, at + self.after_s,
                                      skip=anchor)
                if pick is None:
                    continue
                choice, when, _ = pick
                if best is None or strength > best.strength:
                    how = "leaves" if ev.verb == "leave" else "comes in"
                    best = Reading(choice, when, strength,
                                   f"{ev.subject} {how} at {at:.1f} s; the first option to come in after it: "
                                   f"{options[choice]} at {when:.1f} s", [float(t) for t in stamps])
            if best is not None and best.strength >= self.min_step:
                break  # the best-ranked segment where the anchor clearly crosses
        return best

    def _first_in(self, stamps: np.ndarray, p: np.ndarray, option_probes: list[list[str]],
                  after: float, until: float, skip: Sequence[str] = ()) -> tuple[int, float, str] | None:
        """(option, time, probe) of the probe that starts coming in first in [after, until] (its
        onset: the first trace of it before it counts as present); probes in `skip` are not looked at.
        `p` has one row per probe, in the order of `option_probes` flattened."""
        first: tuple[float, int, str] | None = None
        row = -1
        for o, ps in enumerate(option_probes):
            for text in ps:
                row += 1
                if text in skip:
                    continue
                hit = first_entry_after(stamps, smooth(p[row], self.smooth), after, self.entry_threshold,
                                        self.entry_hold)
                if hit is not None and stamps[hit[0]] <= until and (first is None or stamps[hit[0]] < first[0]):
                    first = (float(stamps[hit[0]]), o, text)
        return None if first is None else (first[1], first[0], first[2])

    def _after_scene(self, reader: Any, form: Form, options: Sequence[str],
                     segs: list[dict[str, float]], used: list[int]) -> Reading | None:
        scene = str(form.after.scene)  # type: ignore[union-attr]
        scenes = list(self.embedder.slots.get("scene") or [])
        if scene not in scenes:
            return None
        named = self.attributes(form.subject)
        everyone = self.probes({})  # any thing coming in first, named or not
        option_probes = [self.probes({**named, form.ask: o.strip().lower()}) for o in options]
        best: Reading | None = None
        for s in segs:
            clips, stamps = self._clips(reader, s["start"] - self.after_s, s["end"] + self.pad, used)
            frames = clips[:, -1] if clips.ndim == 5 else clips
            cuts = scene_cuts(stamps, frame_changes(frames), self.cut_threshold)
            if not len(cuts):
                continue
            p, _ = self.embedder.locate(clips, everyone + [t for ps in option_probes for t in ps])
            for c in cuts:
                pick = self._first_in(stamps, p[len(everyone):], option_probes, c - self.lead_s, c + self.after_s)
                if pick is None:
                    continue
                choice, when, probe = pick
                anyone = self._first_in(stamps, p[: len(everyone)], [[e] for e in everyone], c - self.lead_s,
                                        c + self.after_s)
                if anyone is not None and anyone[1] < when - 0.5:
                    continue  # something else came in first
                # which scene is this: the thing that came in (its own probe), in each scene the
                # retriever knows, on the clips where it comes in
                i = int(np.searchsorted(stamps, when))
                sc = [f"{probe} enter right after the scene turns {z}" for z in scenes]
                q, _ = self.embedder.locate(clips[i:i + 3], sc)
                score = q.max(axis=1)
                if scenes[int(np.argmax(score))] != scene:
                    continue
                strength = float(score[scenes.index(scene)])
                if best is None or strength > best.strength:
                    best = Reading(choice, when, strength,
                                   f"the scene changes at {c:.1f} s (to {scene}: {strength:.2f}); the first thing "
                                   f"to come in after it: {options[choice]} at {when:.1f} s",
                                   [float(t) for t in stamps])
        return best


def _option_with(options: Sequence[str], word: str) -> int | None:
    """The option whose words include `word` (exactly one), else None."""
    hits = [i for i, o in enumerate(options) if word in o.lower().replace(",", " ").split()]
    return hits[0] if len(hits) == 1 else None
