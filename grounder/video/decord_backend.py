"""decord backend: ``get_batch`` on frame indices found from decord's own frame timestamps.

decord builds its frame table by reading every packet at open (slow to open on long
files) and leaks memory across readers, so reuse readers (``shared_reader``).
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


class DecordReader(VideoReader):
    """Frames via decord. Times map to indices through decord's per-frame start times.

    Not exact: decord reports frame times as float32, whose step at one hour is ~0.24 ms,
    so on long videos returned timestamps are off by up to a few time-base ticks and a
    time within that distance of a frame boundary can get the neighbouring frame
    (evals/bench/video.py shows it on the 1-hour video; short clips pass the tests).
    """

    backend = "decord"
    exact = False

    def __init__(
        self, info: VideoInfo, cache_bytes: int = DEFAULT_CACHE_BYTES, threads: int = 1
    ) -> None:
        super().__init__(info, cache_bytes)
        import decord

        try:
            self._vr: Any = decord.VideoReader(
                str(info.path), ctx=decord.cpu(0), num_threads=threads
            )
        except decord.DECORDError as exc:
            raise VideoError(
                f"decord cannot open video ({one_line(exc)}): {info.path}"
            ) from None
        stamps = np.asarray(self._vr.get_frame_timestamp(np.arange(len(self._vr))), np.float64)
        self._starts = snap_to_time_base(info, stamps[:, 0])

    def _decode(self, times: np.ndarray, size: tuple[int, int]) -> list[Decoded]:
        idx = np.searchsorted(self._starts, times, side="right") - 1
        idx = np.clip(idx, 0, len(self._starts) - 1)
        uniq, inverse = np.unique(idx, return_inverse=True)
        batch = self._vr.get_batch(uniq.tolist()).asnumpy()
        decoded = []
        for k, j in enumerate(uniq.tolist()):
            end = self._starts[j + 1] if j + 1 < len(self._starts) else float("inf")
            decoded.append(Decoded(float(self._starts[j]), float(end), resize_rgb(batch[k], size)))
        return [decoded[k] for k in inverse.tolist()]

    def _close_backend(self) -> None:
        del self._vr
