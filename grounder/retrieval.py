"""Retrieval: score every sampled frame of a video against a text query, propose windows.

The coarse pass of the scan when a retriever is present (`grounder.scan`, "retrieve, then
ground"): a frame-text embedder (`grounder.embedders`: the embedded default's own dual encoder,
or a CLIP / SigLIP checkpoint) embeds frames at a fixed rate over the whole video once, the
query is scored against all of them, and score peaks become at most k candidate windows, inside
which the VLM then grounds precisely.

    from grounder.embedders import load_embedder
    from grounder.retrieval import FrameIndex, Retriever, candidate_windows, proposals

    embedder = load_embedder("path/to/siglip-folder")        # or grounder/default_model/retriever
    index = FrameIndex.load_or_build("talk.mp4", embedder)    # cached on disk per video + settings
    curve = index.scores("the speaker shows the chart")      # cosine per frame, in time order
    hits = index.search("the speaker shows the chart", k=8)   # [(time, score)], best first (FAISS)
    windows = candidate_windows(index.times, curve, k=5, duration=index.duration)
    Retriever(embedder).retrieve(reader, query, budget)       # all of it, with its cost

Frames are sampled evenly (`fps` frames per second of video, each at the middle of its own
stretch of time, shrunk to `max_pixels`), embedded (L2-normalised) and kept in a FAISS
inner-product index, so a hit's score is the cosine similarity between query and frame.

The index is cached on disk, under `cache_dir` (default `$GROUNDQA_HOME/retrieval`,
GROUNDQA_HOME defaulting to ~/.cache/groundqa). The cache key hashes

- the video file's *content* (`grounder.fingerprint.file_fingerprint`): its size, plus the
  SHA-256 of the whole file when it is at most 64 MiB, otherwise of 16 chunks of 1 MiB at evenly
  spaced offsets. Renaming or touching a file keeps its cache; rewriting it with other content
  invalidates it. A path never enters the key, so copies of one video share one index;
- the model: its folder's files, each by the same fingerprint (`embedder.fingerprint`);
- the settings: fps, max_pixels, and the sampling scheme's version.

Each index is four files, `<key>.times.npy`, `<key>.vectors.npy`, `<key>.changes.npy` (float32,
no pickle) and `<key>.json` (metadata plus the SHA-256 of the arrays), each written to a temporary file in
the same folder and renamed into place, the JSON last. A missing, truncated or mismatched
file is treated as absent and the index is rebuilt (never a crash, never pickle). The FAISS
index itself is rebuilt from the vectors on load (a flat index: no cost worth caching); on a
machine with GPUs (the `gpu` extra, faiss-gpu) it is moved to GPU 0.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grounder.cuts import (
    after_cut_weights,
    frame_changes,
    names_scene_change,
    scene_cuts,
    thumbnails,
)
from grounder.embedders import FrameTextEmbedder
from grounder.errors import InputError, one_line
from grounder.files import write_atomic
from grounder.fingerprint import file_fingerprint
from grounder.tracks import crossing, edge_side, named_crossing

__all__ = [
    "CACHE_VERSION",
    "DEFAULT_FPS",
    "DEFAULT_MAX_PIXELS",
    "Candidate",
    "FrameIndex",
    "Retrieved",
    "Retriever",
    "candidate_windows",
    "default_cache_dir",
    "file_fingerprint",
    "proposals",
]

log = logging.getLogger(__name__)

CACHE_VERSION = 3           # bump when the sampling scheme or file layout changes (3: changes.npy)
DEFAULT_FPS = 0.5           # frames embedded per second of video
DEFAULT_MAX_PIXELS = 224 * 224


def default_cache_dir() -> Path:
    """`$GROUNDQA_HOME/retrieval` (GROUNDQA_HOME defaults to ~/.cache/groundqa)."""
    home = os.environ.get("GROUNDQA_HOME") or os.path.join("~", ".cache", "groundqa")
    return Path(home).expanduser() / "retrieval"




def _faiss_index(vectors: np.ndarray, use_gpu: bool | None = None) -> Any:
    """A flat inner-product FAISS index over `vectors` (on GPU 0 when faiss has GPUs)."""
    import faiss

    index = faiss.IndexFlatIP(int(vectors.shape[1]))
    num_gpus = getattr(faiss, "get_num_gpus", lambda: 0)()
    if (use_gpu is None or use_gpu) and num_gpus > 0 and hasattr(faiss, "StandardGpuResources"):
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    if len(vectors):
        index.add(vectors)
    return index


def sample_clips(reader: Any, times: Sequence[float], offsets: Sequence[float],
                 max_pixels: int | None) -> tuple[np.ndarray, np.ndarray]:
    """What an embedder sees at `times`: frames [N, H, W, 3] and their own times when it embeds
    single frames (`offsets == (0.0,)`); else clips [N, K, H, W, 3] of the frames on screen at
    t + offset (clipped to the video) and the requested times, each clip's time."""
    t = np.asarray(times, dtype=np.float64)
    offsets = tuple(float(o) for o in offsets)
    if offsets == (0.0,):
        frames, stamps = reader.sample(t, max_pixels=max_pixels)
        return frames, np.asarray(stamps, dtype=np.float64)
    last = max(0.0, float(reader.duration) - 1e-3)
    want = np.clip(t[:, None] + np.asarray(offsets)[None, :], 0.0, last).reshape(-1)
    frames, _ = reader.sample(want, max_pixels=max_pixels)
    return frames.reshape(len(t), len(offsets), *frames.shape[1:]), t


def sample_times(duration: float, fps: float) -> np.ndarray:
    """ceil(duration * fps) times (at least 1), each at the middle of its own stretch."""
    n = max(1, math.ceil(duration * fps - 1e-9))
    return (np.arange(n, dtype=np.float64) + 0.5) * (duration / n)


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


class FrameIndex:
    """Embedded frames of one video: `times` float64 [N] (the frames' own times, s),
    `vectors` float32 [N, D] (unit norm), a FAISS inner-product index over them, and `changes`
    float32 [N]: how much of the picture changed since the frame before (`grounder.cuts`), from
    which the scene cuts are read."""

    def __init__(self, times: np.ndarray, vectors: np.ndarray, meta: dict[str, Any],
                 embedder: FrameTextEmbedder | None = None, changes: np.ndarray | None = None) -> None:
        self.times = np.asarray(times, dtype=np.float64)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.times) != len(self.vectors):
            raise ValueError(f"times {self.times.shape} and vectors {self.vectors.shape} do not match")
        self.changes = (np.zeros(len(self.times), np.float32) if changes is None
                        else np.asarray(changes, dtype=np.float32))
        if self.changes.shape != self.times.shape:
            raise ValueError(f"times {self.times.shape} and changes {self.changes.shape} do not match")
        self.meta = meta
        self.embedder = embedder
        self.from_cache = False
        self.index = _faiss_index(self.vectors)

    @property
    def duration(self) -> float:
        return float(self.meta.get("duration", self.times[-1] if len(self.times) else 0.0))

    def __len__(self) -> int:
        return len(self.times)

    @classmethod
    def build(cls, reader: Any, embedder: FrameTextEmbedder, fps: float = DEFAULT_FPS,
              max_pixels: int | None = DEFAULT_MAX_PIXELS, batch_frames: int = 64,
              advance: Callable[[int], None] | None = None) -> FrameIndex:
        """Sample `reader` at `fps` frames per second and embed the frames.

        `advance(n)` is called after each batch of n frames (progress bars)."""
        if not fps > 0 or not math.isfinite(fps):
            raise InputError(f"retrieval fps must be > 0, got {fps}")
        duration = float(reader.duration)
        want = sample_times(duration, fps)
        times: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        changes: list[np.ndarray] = []
        offsets = embedder.clip_offsets
        now = min(range(len(offsets)), key=lambda k: (abs(offsets[k]), -k))  # the clip's frame at t
        last = None
        for i in range(0, len(want), batch_frames):
            frames, stamps = sample_clips(reader, want[i:i + batch_frames], offsets, max_pixels)
            times.append(stamps)
            vectors.append(embedder.embed_frames(frames))
            current = frames if frames.ndim == 4 else frames[:, now]
            changes.append(frame_changes(current, last))
            last = thumbnails(current[-1:])[0]
            if advance is not None:
                advance(len(frames))
        t = np.concatenate(times) if times else np.zeros(0)
        v = np.concatenate(vectors) if vectors else np.zeros((0, embedder.dim), np.float32)
        c = np.concatenate(changes) if changes else np.zeros(0, np.float32)
        meta = {"version": CACHE_VERSION, "model": embedder.name, "model_fingerprint": embedder.fingerprint,
                "fps": float(fps), "max_pixels": max_pixels, "duration": duration,
                "video": str(getattr(reader, "path", "")), "frames": len(t), "dim": int(v.shape[1])}
        return cls(t, v, meta, embedder, c)

    @classmethod
    def load_or_build(cls, video: Any, embedder: FrameTextEmbedder, cache_dir: str | os.PathLike[str] | None = None,
                      fps: float = DEFAULT_FPS, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                      advance: Callable[[int], None] | None = None) -> FrameIndex:
        """The cached index of `video` (a path or an open reader) for these settings, or a new
        one built and cached. `.from_cache` says which."""
        reader = _reader(video)
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        key = cache_key(reader.path, embedder, fps, max_pixels)
        index = cls.load(folder, key, embedder)
        if index is not None:
            return index
        index = cls.build(reader, embedder, fps=fps, max_pixels=max_pixels, advance=advance)
        index.meta["key"] = key
        try:
            index.save(folder, key)
        except OSError as exc:  # an unwritable cache costs time, not the answer
            log.warning("cannot write the retrieval cache in %s: %s", folder, exc)
        return index

    def save(self, folder: str | os.PathLike[str], key: str) -> None:
        """Write `<key>.times.npy`, `<key>.vectors.npy`, `<key>.changes.npy`, then `<key>.json`,
        each atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{key}.times.npy", lambda f: np.save(f, self.times, allow_pickle=False))
        write_atomic(folder / f"{key}.vectors.npy", lambda f: np.save(f, self.vectors, allow_pickle=False))
        write_atomic(folder / f"{key}.changes.npy", lambda f: np.save(f, self.changes, allow_pickle=False))
        meta = dict(self.meta, key=key, times_sha256=_sha(self.times), vectors_sha256=_sha(self.vectors),
                    changes_sha256=_sha(self.changes))
        text = json.dumps(meta, indent=1, sort_keys=True) + "\n"
        write_atomic(folder / f"{key}.json", lambda f: f.write(text.encode()))

    @classmethod
    def load(cls, folder: str | os.PathLike[str], key: str, embedder: FrameTextEmbedder | None = None) -> FrameIndex | None:
        """The index saved under `key`, or None when missing, corrupt or inconsistent."""
        folder = Path(folder)
        meta_path = folder / f"{key}.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            times = np.load(folder / f"{key}.times.npy", allow_pickle=False)
            vectors = np.load(folder / f"{key}.vectors.npy", allow_pickle=False)
            changes = np.load(folder / f"{key}.changes.npy", allow_pickle=False)
            if (meta.get("version") != CACHE_VERSION or meta.get("key") != key
                    or _sha(times) != meta.get("times_sha256") or _sha(vectors) != meta.get("vectors_sha256")
                    or _sha(changes) != meta.get("changes_sha256")):
                raise ValueError("metadata does not match the arrays")
            index = cls(times, vectors, meta, embedder, changes)
        except Exception as exc:  # noqa: BLE001 -- corrupt cache: rebuild
            log.warning("ignoring a corrupt retrieval cache entry %s: %s", meta_path, one_line(exc, typed=True))
            return None
        index.from_cache = True
        return index

    def scores(self, text: str) -> np.ndarray:
        """Cosine of every frame (in time order) with `text`: the whole curve the scan ranks."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("the retrieval query is empty")
        if self.embedder is None:
            raise InputError("this frame index has no embedder to encode the query")
        if not len(self):
            return np.zeros(0, np.float64)
        query = self.embedder.embed_text([" ".join(text.split())])
        return (self.vectors @ query[0]).astype(np.float64)

    def search(self, text: str, k: int = 8) -> list[tuple[float, float]]:
        """The `k` frames most similar to `text`: [(time, score)], best first (score = cosine)."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("the retrieval query is empty")
        if self.embedder is None:
            raise InputError("this frame index has no embedder to encode the query")
        k = min(int(k), len(self))
        if k <= 0:
            return []
        query = self.embedder.embed_text([" ".join(text.split())])
        scores, ids = self.index.search(query, k)
        return [(float(self.times[i]), float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]


def _reader(video: Any) -> Any:
    """An open reader as it is; a path -> the process-wide shared reader of that file."""
    from grounder.video import VideoReader, shared_reader

    return video if isinstance(video, VideoReader) else shared_reader(video)


def cache_key(video_path: str | os.PathLike[str], embedder: FrameTextEmbedder, fps: float,
              max_pixels: int | None) -> str:
    settings = {"version": CACHE_VERSION, "video": file_fingerprint(video_path),
                "model": embedder.fingerprint, "fps": float(fps), "max_pixels": max_pixels}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:40]


def proposals(hits: Sequence[tuple[float, float]], margin: float = 5.0, merge_gap: float = 10.0,
              duration: float | None = None, max_spans: int | None = None) -> list[tuple[float, float]]:
    """Frame hits [(time, score)] -> proposal spans [(start, end)], best first.

    Hits at most `merge_gap` seconds apart (in time order) join one span, which is then widened
    by `margin` on each side (clipped to [0, duration]); spans are ordered by their best hit's
    score and, after widening, overlapping spans are merged (keeping the better rank).
    """
    if margin < 0 or merge_gap < 0:
        raise InputError(f"margin and merge_gap must be >= 0, got {margin}, {merge_gap}")
    groups: list[list[float]] = []  # [start, end, best score]
    for t, s in sorted((float(t), float(s)) for t, s in hits):
        if groups and t - groups[-1][1] <= merge_gap:
            groups[-1][1] = t
            groups[-1][2] = max(groups[-1][2], s)
        else:
            groups.append([t, t, s])
    hi = math.inf if duration is None else float(duration)
    spans = [[max(0.0, a - margin), min(hi, b + margin)] for a, b, _ in sorted(groups, key=lambda g: -g[2])]
    # widened spans that now overlap become one, at the better-ranked place
    merged = True
    while merged:
        merged = False
        for i in range(len(spans)):
            for j in range(i + 1, len(spans)):
                if spans[i][0] <= spans[j][1] and spans[j][0] <= spans[i][1]:
                    spans[i] = [min(spans[i][0], spans[j][0]), max(spans[i][1], spans[j][1])]
                    del spans[j]
                    merged = True
                    break
            if merged:
                break
    out = [(a, b) for a, b in spans if b > a]
    return out[:max_spans] if max_spans is not None else out




# -- retrieve, then ground: candidate windows from the score curve ---------------------------------

_WHEN = re.compile(r"^(?:when|where|at what time)\s+(?:does|do|did|is|are|was|were|will|can)\s+", re.IGNORECASE)


def retrieval_text(query: str) -> str:
    """The text a retriever embeds for a grounding query: one line, no trailing '?', and no
    leading "when does / when is ..." (a frame shows "the red cross entering", not "when").
    The dual encoder is trained on texts made by this same function."""
    text = " ".join(str(query).split()).rstrip(" ?.!")
    stripped = _WHEN.sub("", text, count=1)
    return stripped or text


def statement_text(question: str, option: str) -> str:
    """A multiple-choice question and one of its options as one claim to match against clips
    ("what colour is the shape that enters right after the red cross leaves blue"): how a
    dual encoder answers (`agent.retrieval_answerer`), and what ours is trained on."""
    return f"{retrieval_text(question)} {' '.join(str(option).split())}".strip()


@dataclass(frozen=True)
class Candidate:
    """A window worth a closer look: the frames near a score peak, grown by a margin."""

    start: float
    end: float
    peak: float  # time of the best frame
    score: float  # its presence probability (or the curve normalised within the video), 0..1
    run: tuple[float, float]  # first and last frame of the stretch that scored near the peak
    # (times, scores) of the dense re-scoring of the window (`sharpen`), when it was done; `moment`:
    # the same times scored by the retriever's "moment" head, when it has one
    profile: tuple[np.ndarray, np.ndarray] | None = field(default=None, compare=False, repr=False)
    moment: np.ndarray | None = field(default=None, compare=False, repr=False)
    # the query's anchor: 1, or `retrieval_anchor_floor` when the query says "right after the scene
    # turns X" and the peak is not shortly after a cut (`grounder.cuts`), times `retrieval_side_floor`
    # when it names the side a thing crosses and the thing crosses another one here (`side_checked`)
    anchor: float = 1.0

    def score_in(self, start: float, end: float) -> float:
        """The best score within [start, end] of the window's dense "moment" profile (else of its
        dense profile; the candidate's score without one, or without frames there): how well a
        closer look's stretch matches what the query says happens, e.g. the named thing entering
        from the named side; times the anchor weight."""
        if self.profile is None:
            return self.anchor * self.score
        t, p = self.profile
        p = self.moment if self.moment is not None else p
        inside = (t >= start) & (t <= end)
        return self.anchor * (float(p[inside].max()) if inside.any() else self.score)

    def to_dict(self) -> dict[str, Any]:
        out = {"start": round(self.start, 3), "end": round(self.end, 3), "peak": round(self.peak, 3),
               "score": round(self.score, 4), "run": [round(self.run[0], 3), round(self.run[1], 3)]}
        if self.anchor != 1.0:
            out["anchor"] = round(self.anchor, 4)
        return out


def normalise_curve(cos: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Cosines of a model without a presence calibration (CLIP) -> 0..1 within this video:
    the median frame of `reference` (default: `cos` itself) is 0 and its best frame 1."""
    cos = np.asarray(cos, dtype=np.float64)
    ref = cos if reference is None else np.asarray(reference, dtype=np.float64)
    if not len(cos) or not len(ref):
        return cos
    lo, hi = float(np.median(ref)), float(ref.max())
    return np.clip((cos - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(cos)


def sharpen(c: Candidate, times: Sequence[float], scores: Sequence[float], rel: float = 0.5,
            gap: float = 1.0) -> Candidate:
    """A candidate's run re-measured on a denser profile of its window (pure).

    The run becomes the stretch around the profile's best frame scoring >= `rel` x its score
    (bridging `gap` seconds), its ends where the profile crosses that level (linear between
    frames): where the named thing appears and disappears, to a frame or so. The score becomes
    the better of the coarse and the dense peak. An empty profile leaves the candidate as it is.
    """
    t = np.asarray(times, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    if not len(t) or t.shape != p.shape:
        return c
    m = int(np.argmax(p))
    thr = rel * p[m]
    lo = hi = m
    j = m - 1
    while j >= 0 and t[lo] - t[j] <= gap + 1e-9:
        if p[j] >= thr:
            lo = j
        j -= 1
    j = m + 1
    while j < len(t) and t[j] - t[hi] <= gap + 1e-9:
        if p[j] >= thr:
            hi = j
        j += 1

    def cross(a: int, b: int) -> float:  # time between frames a (below) and b (above) at level thr
        if p[b] == p[a]:
            return float((t[a] + t[b]) / 2)
        return float(t[a] + (t[b] - t[a]) * (thr - p[a]) / (p[b] - p[a]))

    onset = cross(lo - 1, lo) if lo > 0 else float(t[lo])
    offset = cross(hi + 1, hi) if hi + 1 < len(t) else float(t[hi])
    return Candidate(c.start, c.end, float(t[m]), float(max(c.score, p[m])), (onset, max(onset, offset)),
                     (t, p), anchor=c.anchor)


def shift_run(c: Candidate, onset: float, offset: float, min_width: float = 0.5) -> Candidate:
    """The candidate with its run's ends moved by a retriever's measured bias (pure). A run the
    shift would make shorter than `min_width` (a glimpse: the bias is larger than it) becomes
    `min_width` around its shifted middle; never a point, which the scan would not look at."""
    a, b = c.run[0] + onset, c.run[1] + offset
    if b - a < min_width:
        mid = (a + b) / 2
        a, b = mid - min_width / 2, mid + min_width / 2
    return dataclasses.replace(c, run=(a, b))


def candidate_windows(times: Sequence[float], scores: Sequence[float], k: int = 5, *,
                      duration: float, margin: float = 8.0, min_length: float = 16.0,
                      max_length: float = 64.0, rel: float = 0.5,
                      gap: float | None = None) -> list[Candidate]:
    """Score peaks -> at most `k` windows, best first (pure; `times` ascending, `scores` >= 0).

    Repeatedly: the best frame not yet inside a window is a peak; its run is the stretch of
    frames around it scoring >= `rel` x the peak's score, bridging up to `gap` seconds of lower
    frames (default: three sampling intervals); the window is the run grown by `margin` on each
    side, at least `min_length` and at most `max_length` long (centred on the run, or on the
    peak when the run alone is too long), shifted inside [0, duration]. Frames inside a window
    cannot start another (non-maximum suppression), so the k windows are k different places.
    """
    t = np.asarray(times, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if t.shape != s.shape or t.ndim != 1:
        raise InputError(f"times {t.shape} and scores {s.shape} must be two equal 1-D arrays")
    if k < 1 or min_length <= 0 or max_length < min_length or margin < 0 or not 0 < rel <= 1:
        raise InputError("candidate_windows: need k >= 1, 0 < min_length <= max_length, margin >= 0, 0 < rel <= 1")
    if not len(t):
        return []
    step = float(np.median(np.diff(t))) if len(t) > 1 else float(duration)
    bridge = 3.0 * step if gap is None else float(gap)
    used = np.zeros(len(t), dtype=bool)
    out: list[Candidate] = []
    for i in np.argsort(-s, kind="stable"):
        if len(out) >= k:
            break
        if used[i]:
            continue
        floor = rel * s[i]
        lo = hi = int(i)
        j = lo - 1
        while j >= 0 and not used[j] and t[lo] - t[j] <= bridge + 1e-9:
            if s[j] >= floor:
                lo = j
            j -= 1
        j = hi + 1
        while j < len(t) and not used[j] and t[j] - t[hi] <= bridge + 1e-9:
            if s[j] >= floor:
                hi = j
            j += 1
        a, b = float(t[lo]) - margin, float(t[hi]) + margin
        if b - a > max_length:
            c = float(t[i])
            a, b = c - max_length / 2, c + max_length / 2
        elif b - a < min_length:
            c = (a + b) / 2
            a, b = c - min_length / 2, c + min_length / 2
        a, b = _inside(a, b, float(duration))
        used |= (t >= a) & (t <= b)
        out.append(Candidate(a, b, float(t[i]), float(s[i]), (float(t[lo]), float(t[hi]))))
    return out


def _inside(a: float, b: float, duration: float) -> tuple[float, float]:
    """Shift [a, b] inside [0, duration] keeping its length (cut when the video is shorter)."""
    if a < 0:
        a, b = 0.0, b - a
    if b > duration:
        a, b = max(0.0, a - (b - duration)), duration
    return a, min(b, duration)


def anchor_weights(query: str, index: FrameIndex, budget: Any) -> tuple[np.ndarray | None, np.ndarray]:
    """(cuts, per-frame weights) for a query anchored on a scene change ("... right after the scene
    turns X": `grounder.cuts`): frames within `retrieval_after_cut_s` after a cut keep their score,
    the others keep `retrieval_anchor_floor` of it. (None, ones) for any other query, when the
    anchor is off (`retrieval_after_cut_s` 0), or when the video has no cut to anchor on."""
    ones = np.ones(len(index.times))
    if budget.retrieval_after_cut_s <= 0 or not names_scene_change(query):
        return None, ones
    cuts = scene_cuts(index.times, index.changes, budget.retrieval_cut_threshold)
    if not len(cuts):
        return None, ones
    return cuts, after_cut_weights(index.times, cuts, budget.retrieval_after_cut_s, budget.retrieval_anchor_floor)


@dataclass
class Retrieved:
    """One query's retrieval: the candidate windows and what they cost."""

    candidates: list[Candidate]
    embedder: str
    fps: float
    frames_embedded: int  # frames embedded by this call (0 when the index came from the cache)
    seconds: float  # wall time: decoding + embedding (or loading the cache) + scoring
    from_cache: bool
    times: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    scores: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # 0..1 per frame
    # the scene cuts the candidates were anchored on, when the query says "right after the scene
    # turns X" (else None)
    cuts: np.ndarray | None = field(repr=False, default=None)

    def to_dict(self) -> dict[str, Any]:
        out = {"embedder": self.embedder, "fps": self.fps, "frames": len(self.times),
               "frames_embedded": self.frames_embedded, "seconds": round(self.seconds, 3),
               "from_cache": self.from_cache, "candidates": [c.to_dict() for c in self.candidates]}
        if self.cuts is not None:
            out["anchor"] = {"kind": "after scene cut", "cuts": [round(float(x), 3) for x in self.cuts]}
        return out


class Retriever:
    """An embedder plus its per-video index cache: `retrieve(reader, query, budget) -> Retrieved`.

    The `budget` (`grounder.scan.ScanBudget`) sets the frame rate and pixels of the index and the
    shape of the windows (`retrieval_*` fields)."""

    def __init__(self, embedder: FrameTextEmbedder, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.embedder = embedder
        self.cache_dir = cache_dir

    @classmethod
    def load(cls, path_or_name: str | os.PathLike[str], device: str = "cpu",
             cache_dir: str | os.PathLike[str] | None = None) -> Retriever:
        from grounder.embedders import load_embedder

        return cls(load_embedder(path_or_name, device=device), cache_dir)

    @property
    def name(self) -> str:
        return self.embedder.name

    def index(self, video: Any, fps: float = DEFAULT_FPS, max_pixels: int | None = DEFAULT_MAX_PIXELS,
              advance: Callable[[int], None] | None = None) -> FrameIndex:
        return FrameIndex.load_or_build(video, self.embedder, cache_dir=self.cache_dir, fps=fps,
                                        max_pixels=max_pixels, advance=advance)

    def retrieve(self, video: Any, query: str, budget: Any,
                 advance: Callable[[int], None] | None = None) -> Retrieved:
        t0 = time.perf_counter()
        before = self.embedder.images_embedded
        index = self.index(video, budget.retrieval_fps, budget.retrieval_max_pixels, advance)
        cos = index.scores(retrieval_text(query))
        prob = self.embedder.presence(cos)
        curve = np.asarray(prob, dtype=np.float64) if prob is not None else normalise_curve(cos)
        cuts, weights = anchor_weights(query, index, budget)
        cands = candidate_windows(index.times, curve * weights, budget.retrieval_windows, duration=index.duration,
                                  margin=budget.retrieval_margin, min_length=budget.retrieval_min_window,
                                  max_length=budget.retrieval_max_window)
        if cuts is not None:  # the score stays the retriever's; the anchor is kept beside it
            at = [int(np.searchsorted(index.times, c.peak)) for c in cands]  # the peak's frame
            cands = [dataclasses.replace(c, score=float(curve[i]), anchor=float(weights[i])) for c, i in zip(cands, at)]
        if budget.retrieval_dense_fps > 0 and index.embedder is not None:
            text = retrieval_text(query)
            qvec = self.embedder.embed_text([text])[0]
            cands = [self.sharpened(video, c, qvec, text, budget, cos if prob is None else None) for c in cands]
            shift = (budget.retrieval_onset_shift, budget.retrieval_offset_shift)
            if any(shift):
                cands = [shift_run(c, *shift) for c in cands]
        return Retrieved(cands, self.embedder.name, float(budget.retrieval_fps),
                         self.embedder.images_embedded - before, time.perf_counter() - t0,
                         index.from_cache, index.times, curve, cuts)

    def sharpened(self, video: Any, c: Candidate, qvec: np.ndarray, text: str, budget: Any,
                  reference: np.ndarray | None) -> Candidate:
        """`sharpen` on clips of the candidate's window at `retrieval_dense_fps` (not cached: a
        few dozen a window, whose frames the reader's frame cache keeps for the VLM's looks), and
        the same clips scored against `text` by the "moment" head when the retriever has one."""
        reader = _reader(video)
        n = max(2, math.ceil((c.end - c.start) * budget.retrieval_dense_fps - 1e-9))
        times = c.start + (np.arange(n) + 0.5) * ((c.end - c.start) / n)
        frames, stamps = sample_clips(reader, times, self.embedder.clip_offsets, budget.retrieval_max_pixels)
        named = named_crossing(text) if budget.retrieval_side_floor < 1.0 and hasattr(self.embedder, "locate") \
            else None
        if named is not None:  # one pass of the image tower: the presence curve and where the thing is
            presence, where = self.embedder.locate(frames, [text])
            dense = np.asarray(presence[0], dtype=np.float64)
        else:
            cos = (self.embedder.embed_frames(frames) @ qvec).astype(np.float64)
            prob = self.embedder.presence(cos)
            dense = np.asarray(prob, dtype=np.float64) if prob is not None else normalise_curve(cos, reference)
        out = sharpen(c, stamps, dense)
        if "moment" in getattr(self.embedder, "heads", ()) and out.profile is not None:
            out = dataclasses.replace(out, moment=np.asarray(self.embedder.moment(frames, [text])[0]))
        return out if named is None else side_checked(out, dense, where[0], named, budget.retrieval_side_floor)


def side_checked(c: Candidate, presence: np.ndarray, where: np.ndarray, named: tuple[str, str],
                 floor: float) -> Candidate:
    """A query that is one thing crossing a named side ("the red cross enter from the left",
    `named` = (verb, side)): where the retriever sees the thing cross in this window
    (`grounder.tracks.crossing` on `presence`, its position in `where`) and it is near another
    edge, the window keeps `floor` of its score (in `anchor`): the same thing's other appearance,
    through another side, is the usual decoy. (Pure.)"""
    verb, side = named
    i = crossing(presence, verb)
    if i is None:
        return c
    seen = edge_side(*where[i])
    if seen is None or seen == side:  # first / last seen mid-frame: it was missed crossing
        return c
    return dataclasses.replace(c, anchor=c.anchor * floor)
