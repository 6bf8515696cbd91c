"""Bounded frame cache: LRU by bytes, so a second question on the same video decodes nothing."""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024


class FrameCache:
    """Least-recently-used frames, evicted once their total size passes ``max_bytes``.

    Bounded by bytes rather than by count because frame sizes differ by 100x between a
    thumbnail and a full-HD frame. A frame larger than the whole budget is not stored.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> np.ndarray | None:
        frame = self._items.get(key)
        if frame is not None:
            self._items.move_to_end(key)
        return frame

    def put(self, key: Hashable, frame: np.ndarray) -> None:
        if frame.nbytes > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._items[key] = frame
        self.nbytes += frame.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0


class SpanIndex:
    """Which frame is on screen over which time interval, as learned while decoding.

    Decoding the frame on screen at ``t`` also reveals the next frame's timestamp, so we
    know the frame covers ``[start, end)``. Remembering that lets a repeated request be
    answered from the cache without knowing every frame's timestamp up front (which would
    need a scan of the whole file). Entries are two floats, so the index is not bounded.
    """

    def __init__(self) -> None:
        self._starts: list[float] = []
        self._ends: list[float] = []

    def __len__(self) -> int:
        return len(self._starts)

    def add(self, start: float, end: float) -> None:
        i = bisect.bisect_left(self._starts, start)
        if i < len(self._starts) and self._starts[i] == start:
            self._ends[i] = max(self._ends[i], end)
            return
        self._starts.insert(i, start)
        self._ends.insert(i, end)

    def lookup(self, t: float) -> float | None:
        """Start time of the known frame on screen at ``t``, or None if not known."""
        i = bisect.bisect_right(self._starts, t) - 1
        if i >= 0 and t < self._ends[i]:
            return self._starts[i]
        return None
