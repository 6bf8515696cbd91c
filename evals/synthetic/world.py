"""The synthetic world's timeline: scenes, moving objects, and the exact state at any time.

A video is a `VideoSpec`: a list of scenes (background changes) and a list of
`ObjectTrack`s. Each object enters through one side of the frame, wanders through a few
waypoints, and leaves through a side; its centre is piecewise linear in time, so the
state at any t is exact and cheap (`VideoSpec.state(t)`), and the renderer draws frames
from the very same positions.

Hardness is planted, not hoped for:
- a few colour+shape combinations are *reserved* per video for the objects that queries
  ask about (anchors); fillers never use them, so "the red circle" names one object (or,
  for a pair, two objects that differ only in their entry/exit side);
- every anchor is followed, shortly after it leaves, by a brief "follower"; the QA asks
  about followers and about the first object after a scene change, which are on screen
  only for a few seconds;
- fillers (all other combinations, so same colour/other shape and same shape/other colour
  look-alikes abound) keep the screen busy the whole video.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

import grounder.synthetic_words as WORDS
from evals.synthetic.shapes import COLOR_NAMES, SCENES, SHAPES, shape_mask

SIDES: tuple[str, ...] = WORDS.SIDES


@dataclass(frozen=True)
class WorldConfig:
    """Knobs of the world; the defaults are what `groundqa synth` writes."""

    width: int = 112
    height: int = 112
    fps: float = 2.0
    keyframe_s: float = 2.0  # a keyframe every 2 s: seeking decodes at most 3 extra frames
    sizes: tuple[int, ...] = (18, 20, 22, 24, 26)
    max_on_screen: int = 3
    scene_s: tuple[float, float] = (120.0, 420.0)  # how long a background lasts
    cross_s: tuple[float, float] = (2.0, 4.0)  # time to cross the frame edge (enter / leave)
    filler_dwell_s: tuple[float, float] = (3.0, 50.0)  # time fully inside, fillers
    anchor_dwell_s: tuple[float, float] = (4.0, 25.0)  # objects named in queries
    brief_dwell_s: tuple[float, float] = (3.0, 12.0)  # objects asked about: seen only briefly
    filler_gap_s: tuple[float, float] = (3.0, 25.0)  # between filler entries
    follow_gap_s: tuple[float, float] = (1.0, 6.0)  # anchor gone -> follower starts entering
    scene_delay_s: tuple[float, float] = (2.0, 8.0)  # scene change -> planted object enters
    groups_per_minute: float = 0.4  # reserved combos (query targets) per minute of video
    min_groups: int = 2
    max_groups: int = 16
    pair_prob: float = 0.5  # a reserved combo appears twice (different sides) instead of once
    scene_plant_prob: float = 0.6  # a scene change gets a planted first object


@dataclass(frozen=True)
class Scene:
    name: str
    start: float
    end: float


@dataclass(frozen=True)
class ObjectTrack:
    """One object's life. Knots: times[0] t_in (fully outside, starts entering),
    times[1] t_inside (just fully inside), ..., times[-2] t_out (starts leaving),
    times[-1] t_gone (fully outside again). Centre (xs, ys) is linear between knots."""

    id: int
    color: str
    shape: str
    size: int
    enter_side: str
    exit_side: str
    times: tuple[float, ...]
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    role: str  # "filler" | "anchor" | "follower" | "scene_follower"

    @property
    def t_in(self) -> float:
        return self.times[0]

    @property
    def t_inside(self) -> float:
        return self.times[1]

    @property
    def t_out(self) -> float:
        return self.times[-2]

    @property
    def t_gone(self) -> float:
        return self.times[-1]

    def centers(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.interp(t, self.times, self.xs), np.interp(t, self.times, self.ys)

    def top_lefts(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer top-left corner of the mask; the renderer and `state` both use this."""
        cx, cy = self.centers(np.asarray(t, dtype=np.float64))
        half = self.size / 2.0
        return np.floor(cx - half + 0.5).astype(np.int64), np.floor(cy - half + 0.5).astype(np.int64)


@dataclass(frozen=True)
class ObjectState:
    """An object as seen at one instant: `pixels` of its mask inside the frame
    (occlusion by other objects is not subtracted; see render.label_map for that)."""

    id: int
    color: str
    shape: str
    size: int
    center: tuple[float, float]
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 clipped to the frame
    pixels: int


@dataclass(frozen=True)
class FrameState:
    t: float
    scene: str
    objects: tuple[ObjectState, ...]  # drawing order (later ids on top)


@dataclass(frozen=True)
class Plant:
    """A planted question moment: `target` is the object asked about.
    kind "after_leave": anchor = object id that leaves just before the target enters;
    kind "after_scene": anchor = index into `scenes` of the change the target follows."""

    kind: str
    anchor: int
    target: int
    ask: str  # "color" | "shape"


@dataclass
class VideoSpec:
    video_id: str
    seed: int
    index: int
    duration: float
    n_frames: int
    config: WorldConfig
    scenes: list[Scene]
    objects: list[ObjectTrack]  # sorted by t_in; objects[i].id == i
    reserved: list[tuple[str, str]]
    plants: list[Plant]
    _t_in: np.ndarray = field(init=False, repr=False, compare=False)
    _t_gone: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._t_in = np.array([o.t_in for o in self.objects], dtype=np.float64)
        self._t_gone = np.array([o.t_gone for o in self.objects], dtype=np.float64)

    # ---- time queries -------------------------------------------------------------
    def frame_times(self) -> np.ndarray:
        """Timestamps of the encoded frames (frame i is on screen during [i/fps, (i+1)/fps))."""
        return np.arange(self.n_frames, dtype=np.float64) / self.config.fps

    def scene_index(self, t: float) -> int:
        starts = [s.start for s in self.scenes]
        return max(0, bisect.bisect_right(starts, t) - 1)

    def scene_at(self, t: float) -> Scene:
        return self.scenes[self.scene_index(t)]

    def active_ids(self, t0: float, t1: float | None = None) -> np.ndarray:
        """Ids of objects whose life [t_in, t_gone] meets [t0, t1]."""
        t1 = t0 if t1 is None else t1
        return np.nonzero((self._t_in <= t1) & (self._t_gone >= t0))[0]

    def first_entry_at_or_after(self, t: float, exclude: int | None = None) -> ObjectTrack | None:
        i = int(np.searchsorted(self._t_in, t, side="left"))
        while i < len(self.objects):
            if self.objects[i].id != exclude:
                return self.objects[i]
            i += 1
        return None

    def state(self, t: float) -> FrameState:
        """Exact scene state at time t: the scene and every object with pixels on screen."""
        w, h = self.config.width, self.config.height
        seen = []
        for oid in self.active_ids(t):
            o = self.objects[int(oid)]
            x0a, y0a = o.top_lefts(np.array([t]))
            x0, y0 = int(x0a[0]), int(y0a[0])
            xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + o.size, w), min(y0 + o.size, h)
            if xa >= xb or ya >= yb:
                continue
            pixels = int(shape_mask(o.shape, o.size)[ya - y0 : yb - y0, xa - x0 : xb - x0].sum())
            if pixels == 0:
                continue
            cx, cy = o.centers(np.array([t]))
            seen.append(ObjectState(o.id, o.color, o.shape, o.size, (float(cx[0]), float(cy[0])),
                                    (xa, ya, xb, yb), pixels))
        return FrameState(float(t), self.scene_at(t).name, tuple(seen))

    # ---- (de)serialisation ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id, "seed": self.seed, "index": self.index,
            "duration": self.duration, "n_frames": self.n_frames, "config": asdict(self.config),
            "scenes": [asdict(s) for s in self.scenes],
            "objects": [asdict(o) for o in self.objects],
            "reserved": [list(c) for c in self.reserved],
            "plants": [asdict(p) for p in self.plants],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoSpec:
        cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in d["config"].items()}
        objects = [ObjectTrack(**{k: tuple(v) if isinstance(v, list) else v for k, v in o.items()})
                   for o in d["objects"]]
        return cls(d["video_id"], d["seed"], d["index"], d["duration"], d["n_frames"],
                   WorldConfig(**cfg), [Scene(**s) for s in d["scenes"]], objects,
                   [tuple(c) for c in d["reserved"]], [Plant(**p) for p in d["plants"]])


# ---- generation ---------------------------------------------------------------------

def _r(t: float) -> float:
    """Knot times live on a 10 ms grid so annotations print exactly what the state uses."""
    return round(float(t), 2)


@dataclass
class _Draft:
    color: str
    shape: str
    size: int
    enter_side: str
    exit_side: str
    times: list[float]
    xs: list[float]
    ys: list[float]
    role: str


class _Builder:
    """Places plants (anchor + follower episodes, scene followers), then fillers."""

    def __init__(self, rng: np.random.Generator, cfg: WorldConfig, duration: float,
                 scenes: list[Scene]) -> None:
        self.rng, self.cfg, self.duration, self.scenes = rng, cfg, duration, scenes
        self.drafts: list[_Draft] = []
        self.windows: list[tuple[float, float]] = []  # plant episodes, never overlapping
        self.protected: list[tuple[float, float]] = []  # no other object may start entering
        self.reserved: list[tuple[str, str]] = []
        self.plants: list[tuple[str, int, int, str]] = []  # kind, anchor (draft/scene), target draft, ask
        self.scene_shapes: dict[str, set[str]] = {}  # scene name -> shapes planted after it

    def u(self, lo_hi: tuple[float, float]) -> float:
        return float(self.rng.uniform(lo_hi[0], lo_hi[1]))

    def pick(self, seq: list[str] | tuple[str, ...]) -> str:
        return seq[int(self.rng.integers(len(seq)))]

    # -- one object's path --
    def track(self, t_in: float, color: str, shape: str, enter_side: str, exit_side: str,
              dwell: float, role: str) -> _Draft:
        cfg, rng = self.cfg, self.rng
        size = int(cfg.sizes[int(rng.integers(len(cfg.sizes)))])
        half = size / 2.0
        lo_x, hi_x = half + 1, cfg.width - half - 1
        lo_y, hi_y = half + 1, cfg.height - half - 1

        def edge(side: str) -> tuple[tuple[float, float], tuple[float, float]]:
            # (outside point: mask just off screen, inside point: mask just fully on screen)
            if side in ("left", "right"):
                y = float(rng.uniform(lo_y, hi_y))
                return ((-half, y), (lo_x, y)) if side == "left" else ((cfg.width + half, y), (hi_x, y))
            x = float(rng.uniform(lo_x, hi_x))
            return ((x, -half), (x, lo_y)) if side == "top" else ((x, cfg.height + half), (x, hi_y))

        p_start, p_inside = edge(enter_side)
        p_end, p_edge_out = edge(exit_side)
        n_way = int(rng.integers(1, 4))
        way = [(float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y))) for _ in range(n_way)]
        inner = [p_inside] + way + [p_edge_out]
        lengths = [math.dist(a, b) for a, b in itertools.pairwise(inner)]
        total = sum(lengths) or 1.0
        # constant speed inside; every segment gets >= 0.1 s so knot times stay increasing
        seg_min = 0.1
        dwell = max(dwell, seg_min * len(lengths) + 0.1)
        seg_t = [seg_min + (dwell - seg_min * len(lengths)) * ln / total for ln in lengths]
        cross_in, cross_out = self.u(cfg.cross_s), self.u(cfg.cross_s)
        cum = [t_in, t_in + cross_in]
        for st in seg_t:
            cum.append(cum[-1] + st)
        cum.append(cum[-1] + cross_out)
        pts = [p_start] + inner + [p_end]
        times = [_r(t) for t in cum]
        return _Draft(color, shape, size, enter_side, exit_side, times,
                      [round(p[0], 3) for p in pts], [round(p[1], 3) for p in pts], role)

    # -- constraints --
    def overlaps_window(self, a: float, b: float) -> bool:
        return any(a < wb and wa < b for wa, wb in self.windows)

    def protected_end(self, t: float) -> float | None:
        for a, b in self.protected:
            if a <= t <= b:
                return b
        return None

    def max_concurrent(self, a: float, b: float) -> int:
        """Most objects on screen at once within [a, b] (already placed ones)."""
        ev = []
        for d in self.drafts:
            if d.times[0] < b and d.times[-1] > a:
                ev.append((max(d.times[0], a), 1))
                ev.append((min(d.times[-1], b), -1))
        ev.sort(key=lambda e: (e[0], e[1]))
        cur = best = 0
        for _, k in ev:
            cur += k
            best = max(best, cur)
        return best

    def free_combo(self, ask: str,
                   forbid_shapes: set[str] | frozenset[str] = frozenset()) -> tuple[str, str] | None:
        """A non-reserved combo whose *asked* attribute is uniform (no answer prior)."""
        res = set(self.reserved)
        for _ in range(200):
            if ask == "color":
                c = self.pick(COLOR_NAMES)
                shapes = [s for s in SHAPES if (c, s) not in res and s not in forbid_shapes]
                if shapes:
                    return c, self.pick(shapes)
            else:
                s = self.pick(SHAPES)
                if s in forbid_shapes:
                    continue
                colors = [c for c in COLOR_NAMES if (c, s) not in res]
                if colors:
                    return self.pick(colors), s
        return None  # every allowed shape is used up (a scene name that came back many times)

    # -- plants --
    def place_groups(self) -> None:
        cfg, rng = self.cfg, self.rng
        combos = [(c, s) for c in COLOR_NAMES for s in SHAPES]
        n = int(np.clip(round(self.duration / 60.0 * cfg.groups_per_minute), cfg.min_groups, cfg.max_groups))
        order = rng.permutation(len(combos))
        self.reserved = [combos[int(i)] for i in order[:n]]
        self.episodes: list[tuple[str, str, str, str]] = []
        for color, shape in self.reserved:
            k = 2 if rng.random() < cfg.pair_prob else 1
            ins = rng.permutation(4)[:k]
            outs = rng.permutation(4)[:k]
            for j in range(k):  # a pair differs in both its entry and its exit side
                self.episodes.append((color, shape, SIDES[int(ins[j])], SIDES[int(outs[j])]))

    def place_episodes(self) -> None:
        for color, shape, side_in, side_out in self.episodes:
            self.place_episode(color, shape, side_in, side_out)

    def place_episode(self, color: str, shape: str, side_in: str, side_out: str) -> None:
        cfg = self.cfg
        ask = "color" if self.rng.random() < 0.5 else "shape"
        combo = self.free_combo(ask)
        if combo is None:
            return
        f_color, f_shape = combo
        dwell_x, dwell_y = self.u(cfg.anchor_dwell_s), self.u(cfg.brief_dwell_s)
        gap = self.u(cfg.follow_gap_s)
        f_in, f_out = self.pick(SIDES), self.pick(SIDES)
        for _ in range(50):
            t0 = _r(self.u((2.0, max(2.0, self.duration - 2.0))))
            x = self.track(t0, color, shape, side_in, side_out, dwell_x, "anchor")
            y = self.track(_r(x.times[-1] + gap), f_color, f_shape, f_in, f_out, dwell_y, "follower")
            a, b = t0 - 3.0, y.times[-1] + 3.0
            if y.times[-1] > self.duration - 1.0 or self.overlaps_window(a, b):
                continue
            self.windows.append((a, b))
            # nothing else starts entering from the anchor's exit until the follower is in
            self.protected.append((x.times[-2] - 2.0, y.times[1] + 1.0))
            self.drafts += [x, y]
            self.plants.append(("after_leave", len(self.drafts) - 2, len(self.drafts) - 1, ask))
            return

    def place_scene_plants(self) -> None:
        cfg = self.cfg
        for i, sc in enumerate(self.scenes):
            if i == 0 or self.rng.random() >= cfg.scene_plant_prob:
                continue
            used = self.scene_shapes.setdefault(sc.name, set())
            combo = self.free_combo("color", forbid_shapes=used)
            if combo is None:
                continue
            color, shape = combo
            t_in = _r(sc.start + self.u(cfg.scene_delay_s))
            z = self.track(t_in, color, shape, self.pick(SIDES), self.pick(SIDES),
                           self.u(cfg.brief_dwell_s), "scene_follower")
            a, b = sc.start - 5.0, z.times[-1] + 2.0
            if z.times[-1] > self.duration - 1.0 or self.overlaps_window(a, b):
                continue
            if self.max_concurrent(z.times[0], z.times[-1]) >= cfg.max_on_screen:
                continue
            self.windows.append((a, b))
            self.protected.append((sc.start - 4.0, z.times[1] + 1.0))
            used.add(shape)
            self.drafts.append(z)
            self.plants.append(("after_scene", i, len(self.drafts) - 1, "color"))

    # -- fillers --
    def fill(self) -> None:
        cfg = self.cfg
        res = set(self.reserved)
        free = [(c, s) for c in COLOR_NAMES for s in SHAPES if (c, s) not in res]
        starts = [s.start for s in self.scenes]
        t = self.u((0.0, cfg.filler_gap_s[1] / 2))
        while t < self.duration - 1.0:
            t = _r(t)
            end = self.protected_end(t)
            if end is not None:
                t = end + 0.01
                continue
            # the first object after a scene change must not repeat a shape planted after
            # another change to the same scene ("the star that enters right after ... dark")
            si = max(0, bisect.bisect_right(starts, t) - 1)
            forbid: set[str] = set()
            if si > 0:
                c0 = starts[si]
                if not any(c0 <= d.times[0] < t for d in self.drafts):
                    forbid = self.scene_shapes.get(self.scenes[si].name, set())
            options = [cs for cs in free if cs[1] not in forbid] or free
            color, shape = options[int(self.rng.integers(len(options)))]
            d = self.track(t, color, shape, self.pick(SIDES), self.pick(SIDES),
                           self.u(cfg.filler_dwell_s), "filler")
            if self.max_concurrent(d.times[0], d.times[-1]) >= cfg.max_on_screen:
                t += 2.0
                continue
            self.drafts.append(d)
            t += self.u(cfg.filler_gap_s)


def make_scenes(rng: np.random.Generator, cfg: WorldConfig, duration: float) -> list[Scene]:
    scenes: list[Scene] = []
    t, prev = 0.0, None
    while t < duration:
        name = str(rng.choice([s for s in SCENES if s != prev]))
        length = float(rng.uniform(*cfg.scene_s))
        end = min(duration, _r(t + length))
        if duration - end < cfg.scene_s[0] / 2:  # no sliver of a scene at the very end
            end = duration
        scenes.append(Scene(name, _r(t), end))
        t, prev = end, name
    return scenes


def make_video_spec(seed: int, index: int, minutes: tuple[float, float],
                    config: WorldConfig | None = None) -> VideoSpec:
    """The timeline of video `index` of a world with `seed` (independent of how many videos)."""
    cfg = config or WorldConfig()
    rng = np.random.default_rng([seed, index])
    n_frames = max(2, round(float(rng.uniform(minutes[0], minutes[1])) * 60.0 * cfg.fps))
    duration = n_frames / cfg.fps
    scenes = make_scenes(rng, cfg, duration)
    b = _Builder(rng, cfg, duration, scenes)
    b.place_groups()  # choose the reserved combos first: every plant avoids them
    b.place_scene_plants()  # pinned to scene changes, so placed before the movable episodes
    b.place_episodes()
    b.fill()
    order = sorted(range(len(b.drafts)), key=lambda i: (b.drafts[i].times[0], i))
    new_id = {old: new for new, old in enumerate(order)}
    objects = [ObjectTrack(new_id[i], d.color, d.shape, d.size, d.enter_side, d.exit_side,
                           tuple(d.times), tuple(d.xs), tuple(d.ys), d.role)
               for i, d in ((i, b.drafts[i]) for i in order)]
    plants = [Plant(kind, new_id[a] if kind == "after_leave" else a, new_id[tg], ask)
              for kind, a, tg, ask in b.plants]
    plants.sort(key=lambda p: objects[p.target].t_in)
    return VideoSpec(f"v{index:04d}", seed, index, duration, n_frames, cfg, scenes, objects,
                     list(b.reserved), plants)
