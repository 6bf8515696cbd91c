"""Frame access for long videos: keyframe seeking, exact frame times, a bounded frame cache.

    from grounder.video import open_video

    with open_video("talk.mp4") as video:
        frames, times = video.sample([0.0, 61.5, 3599.9], max_pixels=448 * 448)
        frames, times = video.sample_range(600, 660, fps=2, max_frames=64)
        meta = video.video_metadata(times)  # -> transformers VideoMetadata(**meta)

``frames`` is uint8 [N, H, W, 3] RGB; ``times`` float64 [N] are the frames' own
presentation times (s, first frame at 0.0); frame k is the one on screen at the k-th
requested time (the last frame whose time is <= t). See ``VideoReader`` for the rules on
out-of-range times, and ``shared_reader`` to reuse one reader per file across calls.

Backends (``reader.exact`` says whether frames and times equal a sequential PyAV decode):

- "pyav", the default: exact, and the fastest in evals/bench/video.py (about 0.8x the time of
  the fastest raw library on 64 frames over an hour, 2 cores; see BENCHMARKS.md).
- "torchcodec": exact ("exact" seek mode); only where its native library loads, which
  needs the system FFmpeg shared libraries (Debian 12: libavcodec59 & co.); imports torch.
- "decord": not exact on long videos (float32 frame times); leaks memory across readers.

Importing this module imports neither torch nor any decoder library.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

from grounder.errors import VideoError
from grounder.video.base import (
    TIME_EPS,
    BadTimesError,
    VideoInfo,
    VideoReader,
    output_size,
)
from grounder.video.cache import DEFAULT_CACHE_BYTES, FrameCache

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_CACHE_BYTES",
    "TIME_EPS",
    "BadTimesError",
    "FrameCache",
    "VideoError",
    "VideoInfo",
    "VideoReader",
    "available_backends",
    "clear_shared_readers",
    "open_video",
    "output_size",
    "shared_reader",
    "unusable_backends",
]

BACKENDS = ("pyav", "decord", "torchcodec")
DEFAULT_BACKEND = "pyav"
_ALIASES = {"av": "pyav", "pyav": "pyav", "decord": "decord", "torchcodec": "torchcodec"}


def unusable_backends() -> dict[str, str]:
    """{backend: why it cannot decode here} for the backends that cannot (torchcodec needs the
    system FFmpeg libraries; it is probed by decoding a small clip).

    Imports decord and torchcodec (and so torch): not for hot paths.
    """
    out: dict[str, str] = {}
    try:
        import decord  # noqa: F401
    except ImportError as exc:
        out["decord"] = f"ImportError: {exc}"
    from grounder.video.torchcodec_backend import unusable_reason

    reason = unusable_reason()
    if reason is not None:
        out["torchcodec"] = reason
    return out


def available_backends() -> list[str]:
    """Backends that decode in this environment (`unusable_backends` says why the others cannot)."""
    bad = unusable_backends()
    return [b for b in BACKENDS if b not in bad]


def open_video(
    path: str | os.PathLike[str],
    backend: str | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    threads: int | None = None,
    workers: int | None = None,
) -> VideoReader:
    """Open a video for random frame access; a one-line ``VideoError`` if it cannot be used.

    Reads only the container header (fast on hour-long files). ``backend``: None or
    "pyav" (default), "decord", "torchcodec". ``cache_bytes`` bounds this reader's frame
    cache; ``threads`` is the decoder's own thread count (0 = automatic; None = 1, the fastest
    for sparse sampling with every backend: frame threads stall at each seek); ``workers``
    is how many decoders (threads) a PyAV reader may run on calls spanning many GOPs
    (None = min(2, CPU cores)).
    """
    from grounder.video.probe import probe

    name = _ALIASES.get((backend or DEFAULT_BACKEND).lower())
    if name is None:
        raise VideoError(f"unknown video backend {backend!r} (choose from {', '.join(BACKENDS)})")
    info, container = probe(path)
    if name == "pyav":
        from grounder.video.pyav_backend import PyAVReader

        return PyAVReader(
            info,
            container,
            cache_bytes=cache_bytes,
            threads=1 if threads is None else threads,
            workers=workers,
        )
    container.close()
    if name == "decord":
        from grounder.video.decord_backend import DecordReader

        return DecordReader(
            info, cache_bytes=cache_bytes, threads=1 if threads is None else threads
        )
    from grounder.video.torchcodec_backend import TorchCodecReader

    return TorchCodecReader(
        info, cache_bytes=cache_bytes, threads=1 if threads is None else threads
    )


_SHARED: OrderedDict[tuple[str, int, int, str], VideoReader] = OrderedDict()
_SHARED_LOCK = threading.Lock()
MAX_SHARED_READERS = 8


def shared_reader(path: str | os.PathLike[str], backend: str | None = None) -> VideoReader:
    """One open reader per file (and backend) for the whole process, so that a second
    question on the same video reuses its decoder, keyframe index and frame cache.

    Keyed by the resolved path, size and modification time, so a rewritten file is
    reopened. At most MAX_SHARED_READERS stay open (least recently used are closed).
    Do not ``close()`` a shared reader yourself; call ``clear_shared_readers()``.
    """
    from grounder.video.probe import check_file

    p = check_file(path).resolve()
    st = p.stat()
    key = (
        str(p),
        st.st_size,
        st.st_mtime_ns,
        _ALIASES.get((backend or DEFAULT_BACKEND).lower(), ""),
    )
    with _SHARED_LOCK:
        reader = _SHARED.get(key)
        if reader is not None and not reader.closed:
            _SHARED.move_to_end(key)
            return reader
    reader = open_video(p, backend=backend)
    with _SHARED_LOCK:
        _SHARED[key] = reader
        while len(_SHARED) > MAX_SHARED_READERS:
            _, old = _SHARED.popitem(last=False)
            old.close()
    return reader


def clear_shared_readers() -> None:
    """Close every reader ``shared_reader`` opened."""
    with _SHARED_LOCK:
        readers = list(_SHARED.values())
        _SHARED.clear()
    for reader in readers:
        reader.close()
