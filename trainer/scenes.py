"""Scene (shot) boundaries for long videos, without decoding everything at full rate.

    from trainer.scenes import detect_scenes, write_scenes

    result = detect_scenes("talk.mp4", fps=2.0)        # -> SceneResult(cuts=[...], scenes=[...])
    path = write_scenes("talk.mp4", "out/")             # -> out/talk.scenes.json + thumbnails

How (own implementation; evals/bench/scenes.py compares it with PySceneDetect):

1. Coarse pass: frames at ``fps`` (default 2) on tiny frames (``max_pixels=64*64``) through
   ``grounder.video``; each frame becomes a signature: normalised HSV histograms
   (16 bins per channel) plus an 8x8 grey thumbnail.
2. Candidates: the distance between consecutive signatures (mean of the histogram L1/2
   distance and the thumbnail's mean absolute difference, both in [0, 1]) is a candidate when
   it is above ``median + k * MAD`` of the distances in a sliding window around it
   (``window`` seconds each side, itself left out; k = ``threshold``, default 1: generous, the
   next step decides) and above an absolute floor ``min_distance``.
3. Refinement and verification: the frames between the two coarse samples around each
   candidate are decoded at the source rate (small frames again; all candidates in ascending
   batches so the reader decodes forward instead of seeking back); the largest frame-to-frame
   jump is the cut (the first frame of the new shot, exact to the frame) if it carries at
   least half of the coarse change and is 4x the interval's median step. Camera motion and
   fades/dissolves spread their change over many small steps, so they are not cut (a slow
   dissolve between two shots leaves them one scene: hard cuts only). Cuts closer than
   ``min_scene`` to a stronger one are dropped.

A scene is ``[start, end)`` in seconds: ``start`` is the presentation time of its first frame,
``end`` the next scene's start (or the video's duration).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grounder.errors import InputError
from grounder.files import write_bytes_atomic

SMALL = 64 * 64  # pixels per frame for both passes
CHUNK = 120  # coarse samples per reader call (bounds memory; drives the progress bar)
THUMB_PIXELS = 320 * 180
REFINE_BATCH = 64  # candidate intervals per reader call in the dense pass


@dataclass
class Scene:
    start: float
    end: float
    thumbnail: str | None = None


@dataclass
class SceneResult:
    video: str
    duration: float
    fps: float  # the source's frame rate
    cuts: list[float]  # exact cut times (first frame of each new shot), ascending
    scenes: list[Scene]
    params: dict[str, Any] = field(default_factory=dict)
    coarse_frames: int = 0
    dense_frames: int = 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["num_scenes"] = len(self.scenes)
        return d


# -- frame signatures -----------------------------------------------------------------

def signatures(frames: np.ndarray, bins: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(HSV histograms [N, 3, bins] each summing to 1, grey 8x8 thumbnails [N, 64] in [0, 1])."""
    f = frames.astype(np.float32) / 255.0
    n, h, w, _ = f.shape
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    mx = f.max(axis=-1)
    mn = f.min(axis=-1)
    delta = mx - mn
    safe = np.where(delta > 0, delta, 1.0)
    hue = np.where(mx == r, ((g - b) / safe) % 6.0,
                   np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) / 6.0
    hue = np.where(delta > 0, hue, 0.0)
    sat = np.where(mx > 0, delta / np.where(mx > 0, mx, 1.0), 0.0)
    hists = np.empty((n, 3, bins), np.float32)
    for c, chan in enumerate((hue, sat, mx)):
        idx = np.minimum((chan.reshape(n, -1) * bins).astype(np.int64), bins - 1)
        counts = np.bincount((idx + np.arange(n)[:, None] * bins).ravel(), minlength=n * bins)
        hists[:, c] = counts.reshape(n, bins) / idx.shape[1]
    grey = 0.299 * r + 0.587 * g + 0.114 * b
    ys = np.linspace(0, h, 9).astype(int)
    xs = np.linspace(0, w, 9).astype(int)
    thumbs = np.empty((n, 8, 8), np.float32)
    for i in range(8):
        for j in range(8):
            thumbs[:, i, j] = grey[:, ys[i]:max(ys[i + 1], ys[i] + 1), xs[j]:max(xs[j + 1], xs[j] + 1)].mean(axis=(1, 2))
    return hists, thumbs.reshape(n, 64)


def distances(hists: np.ndarray, thumbs: np.ndarray) -> np.ndarray:
    """Distance between each signature and the one before it ([N-1], each in [0, 1])."""
    if len(hists) < 2:
        return np.zeros(0, np.float32)
    dh = 0.5 * np.abs(np.diff(hists, axis=0)).sum(axis=-1).mean(axis=-1)
    dt = np.abs(np.diff(thumbs, axis=0)).mean(axis=-1)
    return 0.5 * (dh + dt)


def change_points(d: np.ndarray, half_window: int, k: float, min_distance: float,
                  min_gap: int) -> list[int]:
    """Indices i of ``d`` that stand out: d[i] > median + k * MAD of the window around i
    (itself left out), d[i] >= min_distance, and the largest within ``min_gap`` indices
    (ties go to the earlier one)."""
    n = len(d)
    cand: list[int] = []
    for i in range(n):
        lo, hi = max(0, i - half_window), min(n, i + half_window + 1)
        ctx = np.concatenate([d[lo:i], d[i + 1:hi]])
        if len(ctx) == 0:
            med, mad = 0.0, 0.0
        else:
            med = float(np.median(ctx))
            mad = float(np.median(np.abs(ctx - med)))
        # 1.4826 * MAD estimates a standard deviation; floor it so a static shot's near-zero
        # MAD does not make every flicker a cut.
        if d[i] >= min_distance and d[i] > med + k * max(1.4826 * mad, 0.01):
            cand.append(i)
    if min_gap <= 1:
        return cand
    kept: list[int] = []
    for i in sorted(cand, key=lambda j: (-d[j], j)):
        if all(abs(i - j) >= min_gap for j in kept):
            kept.append(i)
    return sorted(kept)


# -- detection --------------------------------------------------------------------------

def detect_scenes(
    video: str | os.PathLike[str],
    fps: float = 2.0,
    threshold: float = 1.0,
    window: float = 10.0,
    min_scene: float = 1.0,
    min_distance: float = 0.06,
    refine: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> SceneResult:
    """Cuts and scenes of ``video`` (see the module docstring).

    ``fps``: coarse sampling rate; ``threshold``: k in median + k * MAD; ``window``: seconds
    of context each side; ``min_scene``: shortest scene (s); ``min_distance``: absolute floor
    on the coarse distance; ``refine``: find the exact frame (else the coarse sample's time).
    ``on_progress(n)`` is called with the number of coarse samples done since the last call.
    Raises ``VideoError`` (missing / corrupt video) or ``InputError`` (bad parameters).
    """
    from grounder.video import open_video

    if not (fps > 0 and math.isfinite(fps)):
        raise InputError(f"--fps must be > 0, got {fps}")
    if not threshold > 0:
        raise InputError(f"--threshold must be > 0, got {threshold}")
    if min_scene < 0 or window <= 0:
        raise InputError(f"min_scene must be >= 0 and window > 0, got {min_scene}, {window}")
    with open_video(video) as reader:
        duration, src_fps = float(reader.duration), float(reader.fps)
        step = 1.0 / fps
        times = np.arange(0.0, duration, step)
        hists, thumbs, stamps = [], [], []
        for s in range(0, len(times), CHUNK):
            frames, ts = reader.sample(times[s:s + CHUNK], max_pixels=SMALL)
            h, t = signatures(frames)
            hists.append(h)
            thumbs.append(t)
            stamps.append(ts)
            if on_progress:
                on_progress(len(ts))
        hist = np.concatenate(hists) if hists else np.zeros((0, 3, 16), np.float32)
        thumb = np.concatenate(thumbs) if thumbs else np.zeros((0, 64), np.float32)
        stamp = np.concatenate(stamps) if stamps else np.zeros(0)
        d = distances(hist, thumb)
        # With refinement the coarse pass only proposes (every outlier, no suppression: two
        # cuts may sit in neighbouring intervals); the dense pass decides.
        idx = change_points(d, half_window=max(2, round(window * fps)), k=threshold,
                            min_distance=min_distance,
                            min_gap=1 if refine else max(1, math.ceil(min_scene * fps)))
        found: list[tuple[float, float]] = []  # (cut time, strength)
        dense = 0
        spans = [(i, float(stamp[i]), float(stamp[i + 1])) for i in idx if stamp[i + 1] > stamp[i]]
        if not refine:
            found = [(t1, float(d[i])) for i, _, t1 in spans]
            spans = []
        # All intervals' dense times go to the reader in ascending batches, so it decodes
        # forward through neighbouring intervals instead of seeking back to a keyframe each time.
        for s in range(0, len(spans), REFINE_BATCH):
            batch = spans[s:s + REFINE_BATCH]
            grids = [np.linspace(t0, t1, max(2, round((t1 - t0) * src_fps) + 1)) for _, t0, t1 in batch]
            frames, ts = reader.sample(np.concatenate(grids), max_pixels=SMALL)
            h_all, th_all = signatures(frames)
            pos = 0
            for (i, _, _), grid in zip(batch, grids):
                sl = slice(pos, pos + len(grid))
                pos += len(grid)
                t_i = ts[sl]
                keep = np.concatenate([[True], np.diff(t_i) > 0])  # drop repeated frames
                dense += int(keep.sum())
                if keep.sum() < 2:
                    continue
                dd = distances(h_all[sl][keep], th_all[sl][keep])
                j = int(np.argmax(dd))
                peak = float(dd[j])
                rest = np.delete(dd, j)
                base = float(np.median(rest)) if len(rest) else 0.0
                # A hard cut is one frame-to-frame jump that carries most of the coarse change
                # and dwarfs the other steps; camera motion and fades spread it over many steps.
                if peak >= min_distance and peak >= 0.5 * float(d[i]) and peak >= 4.0 * max(base, 0.005):
                    found.append((float(t_i[keep][j + 1]), peak))
    cuts = _enforce_min_scene(found, duration, min_scene)
    bounds = [0.0, *cuts, duration]
    scenes = [Scene(round(a, 6), round(b, 6)) for a, b in itertools.pairwise(bounds)]
    params = {"fps": fps, "threshold": threshold, "window": window, "min_scene": min_scene,
              "min_distance": min_distance, "refine": refine, "max_pixels": SMALL}
    return SceneResult(str(video), duration, src_fps, [round(c, 6) for c in cuts], scenes, params,
                       coarse_frames=len(stamp), dense_frames=dense)


def _enforce_min_scene(found: list[tuple[float, float]], duration: float, min_scene: float) -> list[float]:
    """Strongest cuts first; drop any closer than ``min_scene`` to a kept one or to an end."""
    kept: list[float] = []
    for c, _ in sorted(found, key=lambda x: (-x[1], x[0])):
        if min(c, duration - c) <= 0 or any(abs(c - k) < min_scene for k in kept):
            continue
        kept.append(c)
    return sorted(kept)


# -- output -----------------------------------------------------------------------------

def write_scenes(
    video: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    thumbnails: bool = True,
    on_progress: Callable[[int], None] | None = None,
    **kwargs: Any,
) -> tuple[Path, SceneResult]:
    """Detect scenes and write ``out_dir/<stem>.scenes.json`` (+ ``<stem>.scene0003.jpg``,
    the middle frame of each scene, next to it). Every file is written to a temp file and
    renamed. ``kwargs`` go to ``detect_scenes``. Returns (json path, result)."""
    import io

    from PIL import Image

    from grounder.video import open_video

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out is not a folder: {out}")
    out.mkdir(parents=True, exist_ok=True)
    result = detect_scenes(video, on_progress=on_progress, **kwargs)
    stem = Path(video).stem
    if thumbnails and result.scenes:
        mids = [min(0.5 * (s.start + s.end), max(0.0, result.duration - 1e-3)) for s in result.scenes]
        with open_video(video) as reader:
            frames, _ = reader.sample(mids, max_pixels=THUMB_PIXELS)
        for k, (scene, frame) in enumerate(zip(result.scenes, frames)):
            name = f"{stem}.scene{k:04d}.jpg"
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=85)
            write_bytes_atomic(out / name, buf.getvalue())
            scene.thumbnail = name
    path = out / f"{stem}.scenes.json"
    write_bytes_atomic(path, (json.dumps(result.to_json(), indent=1) + "\n").encode())
    return path, result
