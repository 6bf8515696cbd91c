"""Retrieval proposals: find candidate moments for a text query from frame embeddings.

    from grounder.retrieval import Embedder, FrameIndex, Retriever, proposals

    embedder = Embedder.load("path/to/clip-folder")          # a sentence-transformers CLIP model
    index = FrameIndex.load_or_build("talk.mp4", embedder)    # cached on disk per video + settings
    hits = index.search("the speaker shows the chart", k=8)   # [(time, score)], best first
    spans = proposals(hits, margin=5.0, merge_gap=10.0, duration=index.duration)
    result = grounder.ground("talk.mp4", query, proposals=spans)   # seeds coarse-to-fine zoom chains

    # or let the grounder ask for proposals itself:
    Grounder(backend, retriever=Retriever(embedder)).ground("talk.mp4", query)

Frames are sampled evenly (`fps` frames per second of video, each at the middle of its own
stretch of time, shrunk to `max_pixels`), embedded with an image-text model (CLIP-style:
images and texts in one space, L2-normalised) and kept in a FAISS inner-product index, so a
hit's score is the cosine similarity between the query and the frame.

The index is cached on disk, under `cache_dir` (default `$GROUNDQA_HOME/retrieval`,
GROUNDQA_HOME defaulting to ~/.cache/groundqa). The cache key hashes

- the video file's *content* (`file_fingerprint`): its size, plus the SHA-256 of the whole
  file when it is at most `FULL_HASH_BYTES` (64 MiB: about a tenth of a second to read),
  otherwise of `SAMPLED_CHUNKS` chunks of `CHUNK_BYTES` at evenly spaced offsets (the first
  and last included). Renaming or touching a file keeps its cache; rewriting it with other
  content (of any size below the limit, or changing a sampled chunk or the size above it)
  invalidates it. A path never enters the key, so copies of one video share one index;
- the model: its folder's files, each by the same fingerprint (`Embedder.fingerprint`);
- the settings: fps, max_pixels, and the sampling scheme's version.

Each index is three files, `<key>.times.npy`, `<key>.vectors.npy` (float32, no pickle) and
`<key>.json` (metadata plus the SHA-256 of both arrays), each written to a temporary file in
the same folder and renamed into place, the JSON last. A missing, truncated or mismatched
file is treated as absent and the index is rebuilt (never a crash, never pickle). The FAISS
index itself is rebuilt from the vectors on load (a flat index: no cost worth caching); on a
machine with GPUs (the `gpu` extra, faiss-gpu) it is moved to GPU 0.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grounder.errors import InputError, ModelError

__all__ = [
    "CACHE_VERSION",
    "DEFAULT_FPS",
    "DEFAULT_MAX_PIXELS",
    "Embedder",
    "FrameIndex",
    "Retriever",
    "default_cache_dir",
    "file_fingerprint",
    "proposals",
]

log = logging.getLogger(__name__)

CACHE_VERSION = 1           # bump when the sampling scheme or file layout changes
DEFAULT_FPS = 0.5           # frames embedded per second of video
DEFAULT_MAX_PIXELS = 224 * 224
FULL_HASH_BYTES = 64 << 20  # files up to this size are hashed whole
CHUNK_BYTES = 1 << 20
SAMPLED_CHUNKS = 16


def default_cache_dir() -> Path:
    """`$GROUNDQA_HOME/retrieval` (GROUNDQA_HOME defaults to ~/.cache/groundqa)."""
    home = os.environ.get("GROUNDQA_HOME") or os.path.join("~", ".cache", "groundqa")
    return Path(home).expanduser() / "retrieval"


def file_fingerprint(path: str | os.PathLike[str], full_hash_bytes: int = FULL_HASH_BYTES) -> str:
    """SHA-256 hex of a file's size and content (whole file if small, else sampled chunks)."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(f"size={size};".encode())
    with open(p, "rb") as f:
        if size <= full_hash_bytes:
            h.update(b"full;")
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f"chunks={SAMPLED_CHUNKS}x{CHUNK_BYTES};".encode())
            last = max(0, size - CHUNK_BYTES)
            for i in range(SAMPLED_CHUNKS):
                f.seek(round(i * last / (SAMPLED_CHUNKS - 1)))
                h.update(f.read(CHUNK_BYTES))
    return h.hexdigest()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Embedder:
    """An image-text model: frames and texts -> L2-normalised float32 vectors in one space.

    Wraps a sentence-transformers `SentenceTransformer` (anything with `encode(list of PIL
    images or strings, normalize_embeddings=True)`). `images_embedded` / `texts_embedded`
    count the inputs encoded so far (tests check that a cached index embeds nothing).
    """

    def __init__(self, model: Any, name: str, fingerprint: str, batch_size: int = 32) -> None:
        self.model = model
        self.name = name
        self.fingerprint = fingerprint
        self.batch_size = batch_size
        self.images_embedded = 0
        self.texts_embedded = 0

    @classmethod
    def load(cls, folder: str | os.PathLike[str], device: str = "cpu", batch_size: int = 32) -> Embedder:
        """Load a local sentence-transformers CLIP folder (or a transformers CLIPModel folder,
        which sentence-transformers wraps itself); a one-line `ModelError` if it cannot be used."""
        p = Path(folder).expanduser()
        if not p.is_dir():
            raise ModelError(f"retrieval model folder not found: {folder}")
        if not (p / "config.json").is_file() and not (p / "modules.json").is_file():
            raise ModelError(f"not a model folder (no config.json or modules.json): {folder}")
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(p), device=device, local_files_only=True)
        except Exception as exc:  # any loading failure is the folder's fault from the user's side
            raise ModelError(f"cannot load retrieval model {folder}: {_one_line(exc)}") from exc
        for modality in ("image", "text"):
            supports = getattr(model, "supports", None)
            if supports is not None and not supports(modality):
                raise ModelError(f"retrieval model {folder} cannot embed {modality}s "
                                 "(an image-text model such as CLIP is needed)")
        return cls(model, p.resolve().name, model_fingerprint(p), batch_size=batch_size)

    def _encode(self, items: list[Any]) -> np.ndarray:
        out = self.model.encode(items, batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        out = np.ascontiguousarray(np.asarray(out, dtype=np.float32))
        if out.ndim != 2 or out.shape[0] != len(items):
            raise ModelError(f"retrieval model {self.name} returned embeddings of shape {out.shape}")
        return out

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        """uint8 [N, H, W, 3] RGB -> float32 [N, D], unit norm."""
        from PIL import Image

        if len(frames) == 0:
            return np.zeros((0, self.dim), np.float32)
        self.images_embedded += len(frames)
        return self._encode([Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames])

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """strings -> float32 [N, D], unit norm."""
        self.texts_embedded += len(texts)
        return self._encode(list(texts))

    @property
    def dim(self) -> int:
        if not hasattr(self, "_dim"):
            self._dim = int(self._encode(["a"]).shape[1])
        return self._dim


def model_fingerprint(folder: Path) -> str:
    """SHA-256 over every file of a model folder (relative path + `file_fingerprint`)."""
    h = hashlib.sha256()
    for f in sorted(q for q in folder.rglob("*") if q.is_file() and not q.name.startswith(".")):
        h.update(f"{f.relative_to(folder).as_posix()}={file_fingerprint(f)};".encode())
    return h.hexdigest()


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


def sample_times(duration: float, fps: float) -> np.ndarray:
    """ceil(duration * fps) times (at least 1), each at the middle of its own stretch."""
    n = max(1, math.ceil(duration * fps - 1e-9))
    return (np.arange(n, dtype=np.float64) + 0.5) * (duration / n)


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through `write(file)` to a temp file beside `path`, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class FrameIndex:
    """Embedded frames of one video: `times` float64 [N] (the frames' own times, s),
    `vectors` float32 [N, D] (unit norm), and a FAISS inner-product index over them."""

    def __init__(self, times: np.ndarray, vectors: np.ndarray, meta: dict[str, Any],
                 embedder: Embedder | None = None) -> None:
        self.times = np.asarray(times, dtype=np.float64)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.times) != len(self.vectors):
            raise ValueError(f"times {self.times.shape} and vectors {self.vectors.shape} do not match")
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
    def build(cls, reader: Any, embedder: Embedder, fps: float = DEFAULT_FPS,
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
        for i in range(0, len(want), batch_frames):
            frames, stamps = reader.sample(want[i:i + batch_frames], max_pixels=max_pixels)
            times.append(np.asarray(stamps, dtype=np.float64))
            vectors.append(embedder.encode_images(frames))
            if advance is not None:
                advance(len(frames))
        t = np.concatenate(times) if times else np.zeros(0)
        v = np.concatenate(vectors) if vectors else np.zeros((0, embedder.dim), np.float32)
        meta = {"version": CACHE_VERSION, "model": embedder.name, "model_fingerprint": embedder.fingerprint,
                "fps": float(fps), "max_pixels": max_pixels, "duration": duration,
                "video": str(getattr(reader, "path", "")), "frames": len(t), "dim": int(v.shape[1])}
        return cls(t, v, meta, embedder)

    @classmethod
    def load_or_build(cls, video: Any, embedder: Embedder, cache_dir: str | os.PathLike[str] | None = None,
                      fps: float = DEFAULT_FPS, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                      advance: Callable[[int], None] | None = None) -> FrameIndex:
        """The cached index of `video` (a path or an open reader) for these settings, or a new
        one built and cached. `.from_cache` says which."""
        from grounder.grounder import as_reader

        reader = as_reader(video)
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
        """Write `<key>.times.npy`, `<key>.vectors.npy`, then `<key>.json`, each atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(folder / f"{key}.times.npy", lambda f: np.save(f, self.times, allow_pickle=False))
        _atomic_write(folder / f"{key}.vectors.npy", lambda f: np.save(f, self.vectors, allow_pickle=False))
        meta = dict(self.meta, key=key, times_sha256=_sha(self.times), vectors_sha256=_sha(self.vectors))
        text = json.dumps(meta, indent=1, sort_keys=True) + "\n"
        _atomic_write(folder / f"{key}.json", lambda f: f.write(text.encode()))

    @classmethod
    def load(cls, folder: str | os.PathLike[str], key: str, embedder: Embedder | None = None) -> FrameIndex | None:
        """The index saved under `key`, or None when missing, corrupt or inconsistent."""
        folder = Path(folder)
        meta_path = folder / f"{key}.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            times = np.load(folder / f"{key}.times.npy", allow_pickle=False)
            vectors = np.load(folder / f"{key}.vectors.npy", allow_pickle=False)
            if (meta.get("version") != CACHE_VERSION or meta.get("key") != key
                    or _sha(times) != meta.get("times_sha256") or _sha(vectors) != meta.get("vectors_sha256")):
                raise ValueError("metadata does not match the arrays")
            index = cls(times, vectors, meta, embedder)
        except Exception as exc:  # noqa: BLE001 -- corrupt cache: rebuild
            log.warning("ignoring a corrupt retrieval cache entry %s: %s", meta_path, _one_line(exc))
            return None
        index.from_cache = True
        return index

    def search(self, text: str, k: int = 8) -> list[tuple[float, float]]:
        """The `k` frames most similar to `text`: [(time, score)], best first (score = cosine)."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("the retrieval query is empty")
        if self.embedder is None:
            raise InputError("this frame index has no embedder to encode the query")
        k = min(int(k), len(self))
        if k <= 0:
            return []
        query = self.embedder.encode_texts([" ".join(text.split())])
        scores, ids = self.index.search(query, k)
        return [(float(self.times[i]), float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]


def cache_key(video_path: str | os.PathLike[str], embedder: Embedder, fps: float,
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


class Retriever:
    """`retriever(reader, query) -> proposal spans`: load-or-build the frame index, search
    the query's top-k frames, merge them into spans. Pass to `Grounder(..., retriever=)`."""

    def __init__(self, embedder: Embedder, k: int = 8, margin: float = 5.0, merge_gap: float = 10.0,
                 max_spans: int | None = 4, fps: float = DEFAULT_FPS,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.embedder = embedder
        self.k, self.margin, self.merge_gap, self.max_spans = k, margin, merge_gap, max_spans
        self.fps, self.max_pixels, self.cache_dir = fps, max_pixels, cache_dir

    def index(self, video: Any, advance: Callable[[int], None] | None = None) -> FrameIndex:
        return FrameIndex.load_or_build(video, self.embedder, cache_dir=self.cache_dir, fps=self.fps,
                                        max_pixels=self.max_pixels, advance=advance)

    def __call__(self, video: Any, query: str,
                 advance: Callable[[int], None] | None = None) -> list[tuple[float, float]]:
        index = self.index(video, advance)
        return proposals(index.search(query, self.k), self.margin, self.merge_gap,
                         duration=index.duration, max_spans=self.max_spans)
