"""torchcodec backend: ``get_frames_played_at``. Optional: its library needs the system
FFmpeg shared libraries (Debian 12: ``apt-get install libavcodec59 libavformat59
libavdevice59 libavfilter8 libswscale6 libswresample4``, or ``apt-get install ffmpeg``);
``available()`` says whether it loads here. Imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grounder.errors import VideoError, one_line
from grounder.video.base import (
    DEFAULT_CACHE_BYTES,
    Decoded,
    VideoInfo,
    VideoReader,
    resize_rgb,
    snap_to_time_base,
)

_PROBE: list[str | None] = []  # [reason it cannot decode, or None], once per process


def _probe_clip() -> bytes:
    """A 4-frame 32x32 MPEG-4 clip, encoded here with PyAV (a required dependency)."""
    import io

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=4)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def unusable_reason() -> str | None:
    """None when torchcodec decodes on this machine, else why not (one line). Probed by decoding
    a small clip, not by importing: torchcodec 0.17+ imports without FFmpeg and loads its
    decoders (and fails) only at the first decode. Tried once per process."""
    if not _PROBE:
        try:
            from torchcodec.decoders import VideoDecoder

            frames = VideoDecoder(_probe_clip(), seek_mode="exact").get_frames_played_at([0.0, 0.5])
            ok = tuple(frames.data.shape) == (2, 3, 32, 32)
            _PROBE.append(None if ok else f"decoded frames of shape {tuple(frames.data.shape)}")
        except Exception as exc:  # noqa: BLE001 - a missing .so surfaces as ImportError, OSError, RuntimeError...
            said = " ".join(str(exc).split())
            _PROBE.append(f"{type(exc).__name__}: {said[:200]}{'...' if len(said) > 200 else ''}")
    return _PROBE[0]


def available() -> bool:
    """Whether torchcodec decodes here (`unusable_reason` is None)."""
    return unusable_reason() is None


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
                f"torchcodec cannot open video ({one_line(exc)}): {info.path}"
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
