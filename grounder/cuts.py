"""Scene cuts and the queries anchored on them (pure numpy; the retriever's temporal anchor).

A query like "when does the blue circle enter right after the scene turns striped" names a
moment by what happens *before* it. A frame-text retriever scores every appearance of the blue
circle in a striped scene alike; what singles out the asked one is the cut just before it. Cuts
are cheap to find without any model, as shot-boundary detectors do: when the scene changes, most
of the picture changes at once, whereas a thing moving changes only the part it covers. So a
frame's `change` is the *median* over the pixels of a small grey thumbnail of how much each
pixel moved since the previous sampled frame (0..255): objects crossing the frame leave the
median at ~0, a new background moves it by tens of levels. Measured on the synthetic worlds
(2026-12-07, 0.5 fps, 32 x 32 thumbnails): >= 13.7 at every scene change, 0.0 elsewhere.

Not `trainer.scenes`, the exact-frame shot detector for data preparation: that one decodes the
video a second time around each candidate to find the cut's frame, which would cost more than
the retrieval index itself (about 200 s per video-hour against 4); this one reads only the frames
the index already decodes, and its median ignores the large moving objects whose mean change the
detector's signature would count. A cut here is known to within one sampling step (2 s).

    changes = frame_changes(frames)                  # [N], one per sampled frame, first = 0
    cuts = scene_cuts(times, changes, threshold=10)  # times of the cuts
    if names_scene_change(query):
        weights = after_cut_weights(times, cuts, within=15.0, floor=0.05)
"""

from __future__ import annotations

import re

import numpy as np

THUMB = 32  # thumbnail side: enough to see a background change, too coarse to see noise

_SCENE_CHANGE = re.compile(
    r"\b(?:right |just |immediately |shortly |soon )?after (?:the |a )?"
    r"(?:(?:scene|shot|background|setting|view) (?:turns|changes|cuts|switches|becomes|goes)|cut)\b",
    re.IGNORECASE,
)


def names_scene_change(query: str) -> bool:
    """Does the query place its moment right after a scene change ("... right after the scene
    turns grey", "after the cut")?"""
    return bool(_SCENE_CHANGE.search(str(query)))


def thumbnails(frames: np.ndarray, side: int = THUMB) -> np.ndarray:
    """uint8 frames [N, H, W, 3] -> grey thumbnails float32 [N, s, s] (block means; s = `side`,
    or less for frames smaller than that)."""
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[-1] != 3:
        raise ValueError(f"frames must be [N, H, W, 3], got {f.shape}")
    n, h, w, _ = f.shape
    s = max(1, min(side, h, w))
    bh, bw = h // s, w // s
    grey = f[:, : bh * s, : bw * s].astype(np.float32).mean(axis=-1)
    return grey.reshape(n, s, bh, s, bw).mean(axis=(2, 4))


def frame_changes(frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """For each frame, the median over its thumbnail's pixels of |this - the frame before| (0..255);
    the first frame is compared with `previous` (a thumbnail from an earlier batch), else 0."""
    th = thumbnails(frames)
    if not len(th):
        return np.zeros(0, np.float32)
    before = np.concatenate([th[:1] if previous is None else previous[None], th[:-1]])
    return np.median(np.abs(th - before).reshape(len(th), -1), axis=1).astype(np.float32)


def scene_cuts(times: np.ndarray, changes: np.ndarray, threshold: float = 10.0) -> np.ndarray:
    """Times of the cuts: half-way between each frame whose change is >= `threshold` and the frame
    before it (a cut somewhere in that gap)."""
    t = np.asarray(times, dtype=np.float64)
    c = np.asarray(changes, dtype=np.float64)
    if t.shape != c.shape:
        raise ValueError(f"times {t.shape} and changes {c.shape} must match")
    i = np.flatnonzero(c[1:] >= threshold) + 1
    return (t[i - 1] + t[i]) / 2


def after_cut_weights(times: np.ndarray, cuts: np.ndarray, within: float, floor: float = 0.05) -> np.ndarray:
    """1 for the times at most `within` seconds after a cut (the cut itself included), `floor`
    for the others: how much of the retrieval score a moment keeps when the query says it comes
    right after a scene change. Without cuts, all 1 (nothing to anchor on)."""
    t = np.asarray(times, dtype=np.float64)
    c = np.sort(np.asarray(cuts, dtype=np.float64))
    if not len(c):
        return np.ones_like(t)
    j = np.searchsorted(c, t, side="right") - 1  # the last cut at or before t
    since = np.where(j >= 0, t - c[np.clip(j, 0, None)], np.inf)
    return np.where(since <= within, 1.0, float(floor))
