"""PyAV backend: keyframe seeking, decode forward, convert only the frames asked for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from grounder.errors import VideoError
from grounder.video.base import DEFAULT_CACHE_BYTES, Decoded, VideoInfo, VideoReader
from grounder.video.probe import one_line

# Without a keyframe index (some MKV/TS files), re-seek only past this gap (seconds);
# shorter gaps are decoded through, since a GOP is rarely longer.
SEEK_GAP_WITHOUT_INDEX = 2.0
MAX_SEEK_RETRIES = 24

_KEYFRAME_CACHE: dict[tuple[str, int, int], np.ndarray] = {}


class PyAVReader(VideoReader):
    """Exact frame access with PyAV (the reference every other backend is checked against).

    For sorted request times: seek to the keyframe at or before the first one, decode
    forward, and for each later time either keep decoding (when no keyframe lies between
    the current position and it, so a seek would re-decode the same GOP) or seek again.
    Only the frames returned are converted to RGB (the costly step after decoding).
    """

    backend = "pyav"
    exact = True

    def __init__(
        self,
        info: VideoInfo,
        container: Any,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        threads: int = 0,
    ) -> None:
        super().__init__(info, cache_bytes)
        self._container = container
        self._stream = container.streams.video[0]
        ctx = self._stream.codec_context
        # Frame+slice threads: ~1.5x faster decoding on 2 cores (see BENCHMARKS.md).
        ctx.thread_type = "AUTO"
        ctx.thread_count = threads
        self._keyframes: np.ndarray | None = None
        self._tb_num = info.time_base.numerator
        self._tb_den = info.time_base.denominator

    # -- time conversions (exact integer arithmetic, then one rounding) -----------------
    def _time_of(self, pts: int) -> float:
        return (pts - self.info.start_pts) * self._tb_num / self._tb_den

    def _pts_of(self, t: float) -> int:
        return int(t * self._tb_den // self._tb_num) + self.info.start_pts

    def keyframe_times(self) -> np.ndarray:
        """Sorted keyframe times (s) from the container index; empty when it has none.

        Read from the index the demuxer already parsed (MP4 stss), so no file scan; kept
        per file so reopening a long video does not rebuild it. Index times are decode
        times, which may be a frame or two before the keyframe's presentation time: they
        only steer the seek-or-decode-on choice, correctness never depends on them.
        """
        if self._keyframes is None:
            st = self.path.stat()
            key = (str(self.path.resolve()), st.st_size, st.st_mtime_ns)
            cached = _KEYFRAME_CACHE.get(key)
            if cached is None:
                entries = self._stream.index_entries
                ts = [e.timestamp for e in entries if e.is_keyframe]
                cached = np.array(sorted(self._time_of(p) for p in ts), dtype=np.float64)
                if len(_KEYFRAME_CACHE) > 64:
                    _KEYFRAME_CACHE.clear()
                _KEYFRAME_CACHE[key] = cached
            self._keyframes = cached
        return self._keyframes

    def _should_seek(self, position: float, t: float) -> bool:
        """Seek when a keyframe lies after the decoder's position and at or before t."""
        keys = self.keyframe_times()
        if len(keys) == 0:
            return t - position > SEEK_GAP_WITHOUT_INDEX
        i = int(np.searchsorted(keys, t, side="right")) - 1
        return i >= 0 and keys[i] > position

    # -- decoding -----------------------------------------------------------------------
    def _frames(self) -> Iterator[tuple[float, Any]]:
        """(time, frame) in presentation order from the demuxer's current position."""
        for packet in self._container.demux(self._stream):
            for frame in packet.decode():
                if frame.pts is not None:
                    yield self._time_of(frame.pts), frame

    def _seek(self, t: float) -> tuple[Iterator[tuple[float, Any]], tuple[float, Any]]:
        """Seek so that the first decoded frame is at or before t: (iterator, first frame).

        The demuxer seeks by decode time, so with B-frames it can land on a keyframe shown
        just after t; then (and on a truncated file) we step back further and try again.
        """
        target, step = t, 0.5
        for _ in range(MAX_SEEK_RETRIES):
            self._container.seek(self._pts_of(target), stream=self._stream, backward=True)
            frames = self._frames()
            first = next(frames, None)
            if first is not None and (first[0] <= t or target <= 0.0):
                return frames, first
            if first is not None:
                target = min(target, first[0])
            target, step = max(0.0, target - step), step * 2
        raise VideoError(f"cannot seek to {t:.3f} s (corrupt or truncated?): {self.path}")

    def _decode(self, times: np.ndarray, size: tuple[int, int]) -> list[Decoded]:
        try:
            return self._decode_sorted(times.tolist(), size)
        except VideoError:
            raise
        except Exception as exc:
            import av

            if isinstance(exc, av.error.FFmpegError):
                raise VideoError(f"cannot decode video ({one_line(exc)}): {self.path}") from None
            raise

    def _decode_sorted(self, times: list[float], size: tuple[int, int]) -> list[Decoded]:
        out: list[Decoded] = []
        frames: Iterator[tuple[float, Any]] | None = None
        cur: tuple[float, Any] = (0.0, None)
        nxt: tuple[float, Any] | None = None
        i = 0
        while i < len(times):
            t = times[i]
            position = nxt[0] if nxt is not None else cur[0]
            if frames is None or self._should_seek(position, t):
                frames, cur = self._seek(t)
                nxt = next(frames, None)
            while nxt is not None and nxt[0] <= t:
                cur, nxt = nxt, next(frames, None)
            end = nxt[0] if nxt is not None else float("inf")
            if nxt is None:  # decoder drained: the next time needs a fresh seek
                frames = None
            decoded = Decoded(cur[0], end, self._to_rgb(cur[1], size))
            while i < len(times) and times[i] < end:
                out.append(decoded)
                i += 1
        return out

    def _to_rgb(self, frame: Any, size: tuple[int, int]) -> np.ndarray:
        self.frames_decoded += 1
        if (frame.width, frame.height) == size:
            return frame.to_ndarray(format="rgb24")
        return frame.to_ndarray(format="rgb24", width=size[0], height=size[1], interpolation="AREA")

    def _close_backend(self) -> None:
        self._container.close()
