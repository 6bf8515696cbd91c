"""Boundary looks: training windows shaped like the closer looks of the retrieve-then-ground scan.

With a retriever (`grounder.scan.Scanner.retrieve_then_ground`) the VLM no longer ranks coarse
windows of an hour; it takes one short look (`fine_length`, 8 s at 2 fps for the embedded default)
centred on each place where the retriever sees the named thing appear or disappear, and must say
whether the queried event is there and where. So its negatives are no longer random windows
(easy: the named object is not even on screen) but the hard ones the retriever hands it: the
same object's other end ("enter from the bottom" shown at the moment it leaves), the other
appearance of a twice-seen object (through another side), and look-alikes (same colour or same
shape) appearing or disappearing.

`WindowConfig(place="boundary")` draws such windows from the synthetic world's timeline
(`DIR/specs/*.json` beside the videos, read through `trainer.vision_pretrain`): a positive look
is centred, give or take `jitter` seconds, on the end of a named object's visibility nearest the
target span (the moment it is half on screen, which is what the retriever's dense profile
finds); a negative one (`negative_prob`) on the end of a named object or a look-alike that does
not overlap the target span. Rows without a timeline (not a synthetic world) are a one-line error.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from typing import Any

from grounder.errors import ConfigError
from grounder.synthetic_words import COLORS, SHAPES
from trainer.clip_labels import named_attributes
from trainer.vision_pretrain import Timeline, Track, read_timeline, spec_path


def half_visible(track: Track) -> tuple[float, float]:
    """When the track is half on screen entering and leaving (the middle of each crossing)."""
    t = track.times
    return (t[0] + t[1]) / 2.0, (t[-2] + t[-1]) / 2.0


def _matches(track: Track, named: dict[str, str]) -> bool:
    c, s = COLORS[track.combo // len(SHAPES)], SHAPES[track.combo % len(SHAPES)]
    return s == named.get("shape") and named.get("color", c) == c


def _look_alike(track: Track, named: dict[str, str]) -> bool:
    c, s = COLORS[track.combo // len(SHAPES)], SHAPES[track.combo % len(SHAPES)]
    return not _matches(track, named) and (s == named.get("shape") or c == named.get("color"))


@lru_cache(maxsize=256)
def timeline_of(video: str) -> Timeline:
    spec = spec_path(video)
    if not spec.is_file():
        raise ConfigError(f"window.place=boundary needs the synthetic world's timeline: no {spec} "
                          f"for {video} (make the data with `groundqa synth`)")
    return read_timeline(spec)


def _window(centre: float, length: float, duration: float) -> tuple[float, float]:
    start = min(max(0.0, centre - length / 2), max(0.0, duration - length))
    return start, min(duration, start + length)


def choose_look(video: Path, duration: float, spans: list[tuple[float, float]], event: dict[str, Any],
                length: float, negative_prob: float, jitter: float,
                rng: random.Random) -> tuple[float, float, tuple[float, float] | None]:
    """(start, end, target span relative to start or None): one boundary look (module docstring)."""
    tl = timeline_of(str(video))
    named = named_attributes(event or {})
    if "shape" not in named:
        raise ConfigError(f"window.place=boundary: the row for {video} names no object (event {event!r})")
    s, e = spans[rng.randrange(len(spans))]
    ends = [x for tr in tl.tracks if _matches(tr, named) for x in half_visible(tr)]
    if negative_prob and rng.random() < negative_prob:
        decoys = [x for tr in tl.tracks if _look_alike(tr, named) for x in half_visible(tr)]
        pool = ends + decoys if rng.random() < 0.5 or not decoys else decoys
        for _ in range(16):
            a, b = _window(rng.choice(pool) + rng.uniform(-jitter, jitter), length, duration)
            if all(ee <= a or ss >= b for ss, ee in spans):
                return a, b, None
    centre = min(ends, key=lambda x: abs(x - (s + e) / 2)) if ends else (s + e) / 2
    if not s - length / 2 <= centre <= e + length / 2:
        centre = (s + e) / 2  # the named object's ends are far from the span: look at the span
    a, b = _window(centre + rng.uniform(-jitter, jitter), length, duration)
    lo, hi = max(s, a), min(e, b)
    if hi <= lo:  # the jitter moved the span out of the look: centre on the span instead
        a, b = _window((s + e) / 2, length, duration)
        lo, hi = max(s, a), min(e, b)
    return a, b, (round(lo - a, 3), round(hi - a, 3))
