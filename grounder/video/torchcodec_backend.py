"""torchcodec backend: ``get_frames_played_at``. Optional: its library needs the system
FFmpeg shared libraries (Debian 12: ``apt-get install libavcodec59 libavformat59
libavdevice59 libavfilter8 libswscale6 libswresample4``, or ``apt-get install ffmpeg``);
``available()`` says whether it loads here. Imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grounder.errors import VideoError
from grounder.video.base import (
    DEFAULT_CACHE_BYTES,
    Decoded,
    VideoInfo,
    VideoReader,
    resize_rgb,
    snap_to_time_base,
)

_AVAILABLE: bool | None = None


def available() -> bool:
    """Whether torchcodec's native library loads (tried once per process)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            from torchcodec.decoders import VideoDecoder  # noqa: F401

            # Importing works without FFmpeg (torchcodec 0.17+ loads its decoders lazily): load
            # them now, where versions have it, so a machine without FFmpeg says so here.
            try:
                from torchcodec._core.ops import load_core_libraries
            except ImportError:
                load_core_libraries = None
            if load_core_libraries is not None:
                load_core_libraries()
            _AVAILABLE = True
        except (ImportError, OSError, RuntimeError):  # a missing .so surfaces as any of these
            _AVAILABLE = False
    return _AVAILABLE


class TorchCodecReader(VideoReader):
    """Frames via torchcodec in its "exact" seek mode.

    "exact" scans every packet at open (slow to open on long files); "approximate" maps
    times to frames through the average frame rate and so returns wrong frames on
    variable-frame-rate files (tests/test_video.py::test_variable_frame_rate).
    """

    backend = "torchcodec"
    exact = True  # tests/test_video.py and the 1-hour bench: frames and times identical

    def __init__(
        self, info: VideoInfo, cache_bytes: int = DEFAULT_CACHE_BYTES, threads: int = 1
    ) -> None:
        super().__init__(info, cache_bytes)
        if not available():
            raise VideoError("torchcodec backend unavailable (its FFmpeg libraries do not load)")
        from torchcodec.decoders import VideoDecoder

        try:
            self._dec: Any = VideoDecoder(
                str(info.path),
                seek_mode="exact",
                num_ffmpeg_threads=threads,
                dimension_order="NHWC",
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise VideoError(
                f"torchcodec cannot open video ({str(exc).splitlines()[0]}): {info.path}"
            ) from None
        self._start = info.start_pts * info.time_base.numerator / info.time_base.denominator
        meta = self._dec.metadata
        end = meta.end_stream_seconds
        self._last = float(np.nextafter(end - self._start, 0.0)) if end else info.duration

    def _decode(self, times: np.ndarray, size: tuple[int, int]) -> list[Decoded]:
        query = np.minimum(times, self._last) + self._start
        batch = self._dec.get_frames_played_at(seconds=query.tolist())
        data = batch.data.numpy()
        pts = snap_to_time_base(self.info, batch.pts_seconds.numpy().astype(np.float64))
        dur = batch.duration_seconds.numpy().astype(np.float64)
        by_pts: dict[float, Decoded] = {}
        out = []
        for k in range(len(times)):
            p = float(pts[k])
            if p not in by_pts:
                by_pts[p] = Decoded(p, p + float(dur[k]), resize_rgb(data[k], size))
            out.append(by_pts[p])
        return out

    def _close_backend(self) -> None:
        del self._dec
