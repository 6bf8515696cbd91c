"""What every backend shares: metadata, time checks, resizing, cache, video_metadata."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Self

import numpy as np

from grounder.errors import InputError, VideoError
from grounder.video.cache import DEFAULT_CACHE_BYTES, FrameCache, SpanIndex

# A frame counts as on screen at t when its time <= t + TIME_EPS. Float seconds such as
# i * 1001 / 30000 computed in another order can land one ulp below the frame's own time;
# 1 ns is far below any frame interval, so this tolerance never picks a wrong frame.
TIME_EPS = 1e-9


class BadTimesError(InputError, ValueError):
    """Requested times that cannot be sampled (NaN, infinite, wrong shape)."""


@dataclass(frozen=True)
class VideoInfo:
    """Stream metadata read once at open (from the container header, no decoding)."""

    path: Path
    duration: float  # seconds, from the first frame's start to the last frame's end
    fps: float  # average frame rate (30000/1001 -> 29.97002997...)
    num_frames: int
    width: int
    height: int
    has_audio: bool
    time_base: Fraction
    start_pts: int  # pts of the first frame; timestamps are relative to it


@dataclass(frozen=True)
class Decoded:
    """One frame a backend decoded for a requested time."""

    time: float  # the frame's own presentation time (s, relative to the stream start)
    end: float  # next frame's time (or +inf at the end of the stream)
    rgb: np.ndarray  # uint8 [H, W, 3]


def snap_to_time_base(info: VideoInfo, seconds: np.ndarray) -> np.ndarray:
    """Absolute float seconds from another library -> our exact frame times.

    Other libraries compute pts * (1 / time_base) in floating point, which can differ from
    our (pts * num) / den by an ulp; rounding back to the integer pts removes that.
    """
    num, den = info.time_base.numerator, info.time_base.denominator
    pts = np.rint(np.asarray(seconds, np.float64) * den / num).astype(np.int64)
    return np.array([(int(p) - info.start_pts) * num / den for p in pts], dtype=np.float64)


def output_size(width: int, height: int, max_pixels: int | None) -> tuple[int, int]:
    """Frame size under a pixel budget, keeping the aspect ratio and never upscaling.

    Both sides are scaled by sqrt(max_pixels / (width * height)) and rounded down to an
    even number (at least 2), so width * height <= max_pixels always holds and the size
    suits the 2x2 chroma of most codecs.
    """
    if max_pixels is None or width * height <= max_pixels:
        return width, height
    if max_pixels < 4:
        raise BadTimesError(f"max_pixels must be at least 4, got {max_pixels}")
    scale = math.sqrt(max_pixels / (width * height))
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    while w * h > max_pixels:  # the 2-pixel floor can overshoot for extreme aspect ratios
        if w >= h:
            w -= 2
        else:
            h -= 2
    return w, h


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-resize an RGB frame with swscale (for backends that only hand out full frames)."""
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.to_ndarray(format="rgb24", width=size[0], height=size[1], interpolation="AREA")


class VideoReader:
    """Random access to the frames of one video file. Use ``open_video`` to get one.

    Times are seconds from the first frame (which is at 0.0). ``sample(times)`` returns, for
    each time, the frame on screen then (the last frame whose presentation time is <= t)
    and that frame's own time. Times below 0 or above ``duration`` are clipped into
    [0, duration] (a model's -0.2 s or end + 1 s means the first / last frame); NaN or
    infinite times raise ``BadTimesError`` (an ``InputError`` and a ``ValueError``).

    Frames are cached per reader (LRU, ``cache_bytes``), so asking again for times already
    sampled decodes nothing. A reader is safe to share between threads (one lock).
    """

    backend = "base"
    exact = True  # frames and timestamps identical to a sequential PyAV decode

    def __init__(self, info: VideoInfo, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.info = info
        self.cache = FrameCache(cache_bytes)
        self._spans = SpanIndex()
        self._lock = threading.RLock()
        self._closed = False
        self.frames_decoded = 0  # distinct frames decoded to RGB so far (cache misses)

    # -- metadata -------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def duration(self) -> float:
        return self.info.duration

    @property
    def fps(self) -> float:
        return self.info.fps

    @property
    def num_frames(self) -> int:
        return self.info.num_frames

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height

    @property
    def has_audio(self) -> bool:
        return self.info.has_audio

    def __repr__(self) -> str:
        i = self.info
        return (
            f"<{type(self).__name__} {i.path.name} {i.width}x{i.height} {i.fps:.3f} fps "
            f"{i.duration:.2f} s backend={self.backend}>"
        )

    # -- sampling -------------------------------------------------------------------
    def sample(self, times: Any, max_pixels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frames on screen at ``times``: (uint8 [N, H, W, 3] RGB, float64 [N] frame times).

        ``max_pixels`` shrinks frames to fit that many pixels (see ``output_size``).
        Results follow the order of ``times``; repeated times give repeated frames.
        """
        query = self._check_times(times)
        size = output_size(self.width, self.height, max_pixels)
        with self._lock:
            self._check_open()
            frames, stamps = self._sample_locked(query, size)
        if not frames:
            return np.zeros((0, size[1], size[0], 3), np.uint8), np.zeros(0, np.float64)
        return np.stack(frames), np.asarray(stamps, dtype=np.float64)

    def sample_range(
        self,
        start: float,
        end: float,
        fps: float = 1.0,
        max_frames: int | None = None,
        max_pixels: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Evenly spaced frames over the window [start, end] (clipped to the video).

        The window is cut into n equal parts and the frame at the start of each part is
        taken (frame i at start + i * length / n: a clip of these frames at n / length frames
        per second shows each at its own time, as `grounder.windows` explains). n = ceil(length * fps),
        at least 1 and at most ``max_frames``. Build transformers' ``video_metadata`` from
        the returned timestamps with ``video_metadata(timestamps)``.
        """
        if not (math.isfinite(start) and math.isfinite(end)):
            raise BadTimesError(f"window must be finite, got [{start}, {end}] for {self.path}")
        if not fps > 0:
            raise BadTimesError(f"fps must be > 0, got {fps}")
        if max_frames is not None and max_frames < 1:
            raise BadTimesError(f"max_frames must be >= 1, got {max_frames}")
        lo = min(max(start, 0.0), self.duration)
        hi = min(max(end, 0.0), self.duration)
        if hi < lo:
            raise BadTimesError(f"window end {end} is before its start {start} ({self.path})")
        n = max(1, math.ceil((hi - lo) * fps - 1e-9))
        if max_frames is not None:
            n = min(n, max_frames)
        times = lo + np.arange(n) * ((hi - lo) / n)
        return self.sample(times, max_pixels=max_pixels)

    def frame_indices(self, timestamps: Any) -> np.ndarray:
        """Frame indices to pair with ``fps`` for transformers: round(timestamp * fps).

        transformers' Qwen-VL processors turn ``frames_indices`` back into seconds as
        index / fps. For a constant frame rate this is the true frame index; for a
        variable one it is the index that makes that division give our timestamp back
        (to within half a frame), which is what the model's time encoding needs.
        """
        ts = np.asarray(timestamps, dtype=np.float64)
        idx = np.rint(ts * self.fps).astype(np.int64)
        return np.clip(idx, 0, max(self.num_frames - 1, 0))

    def video_metadata(
        self, timestamps: Any, sample_fps: float | None = None, origin: float = 0.0
    ) -> dict[str, Any]:
        """Keyword arguments for ``transformers.video_utils.VideoMetadata`` for frames of this video.

        The one definition lives in ``grounder.qwen.video_metadata`` (why each field is what it
        is); this adds the frame size. ``sample_fps`` is the rate the frames were taken at
        (n / window length), ``origin`` the window start that prompt times are relative to.
        """
        from grounder.qwen import video_metadata

        meta = video_metadata(timestamps, self.fps, sample_fps=sample_fps, origin=origin)
        meta.update(width=self.width, height=self.height, video_backend=f"groundqa-{self.backend}")
        return meta

    # -- lifecycle ------------------------------------------------------------------
    def close(self) -> None:
        """Release the decoder and the cached frames. Safe to call twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.cache.clear()
                self._close_backend()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise VideoError(f"video reader is closed: {self.path}")

    def _check_times(self, times: Any) -> np.ndarray:
        """Clip times into [0, duration] and nudge them by TIME_EPS (see there)."""
        try:
            arr = np.asarray(times, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise BadTimesError(f"times must be numbers (seconds): {exc}") from None
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise BadTimesError(f"times must be a 1-D list of seconds, got shape {arr.shape}")
        bad = ~np.isfinite(arr)
        if bad.any():
            raise BadTimesError(f"times must be finite seconds, got {arr[bad][0]} ({self.path})")
        return np.clip(arr, 0.0, self.duration) + TIME_EPS

    def _sample_locked(
        self, query: np.ndarray, size: tuple[int, int]
    ) -> tuple[list[np.ndarray], list[float]]:
        frames: list[np.ndarray | None] = [None] * len(query)
        stamps = [0.0] * len(query)
        missing: list[int] = []
        for k, t in enumerate(query.tolist()):
            start = self._spans.lookup(t)
            hit = self.cache.get((start, size)) if start is not None else None
            if hit is None:
                missing.append(k)
            else:
                frames[k], stamps[k] = hit, start
        if missing:
            wanted = np.unique(query[missing])  # sorted: decoding runs forward once
            decoded = self._decode(wanted, size)
            by_time = dict(zip(wanted.tolist(), decoded, strict=True))
            for k in missing:
                d = by_time[float(query[k])]
                frames[k], stamps[k] = d.rgb, d.time
            unique = {id(d): d for d in decoded}.values()
            self.frames_decoded += len(unique)
            for d in unique:
                self._spans.add(d.time, d.end)
                self.cache.put((d.time, size), d.rgb)
        return frames, stamps  # type: ignore[return-value]

    def _decode(self, times: np.ndarray, size: tuple[int, int]) -> list[Decoded]:
        """Frames on screen at sorted, unique, clipped ``times``, one per time, at ``size``.

        Backends may return the same Decoded object for times that share a frame.
        """
        raise NotImplementedError

    def _close_backend(self) -> None:
        raise NotImplementedError
