"""Window arithmetic of the scan strategies: which part of the video each model call sees.

Pure functions, no decoding. A `Window` is a time range and how many frames the model gets
from it; its frame times sit at the starts of equal slices (frame i at start + i * length / n),
which is where a video processor puts frame i of a clip sampled at n / length frames per
second, so the times the model is shown are the frames' own times whether the frames reach it
from our reader or as a clip file through a server (`grounder.qwen.clip_metadata`).
Neighbouring windows never share a frame (a window's last frame is one slice before its end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    num_frames: int
    level: int = 0  # 0 = coarse pass, 1.. = zoom levels

    @property
    def length(self) -> float:
        return self.end - self.start

    @property
    def fps(self) -> float:
        return self.num_frames / self.length if self.length > 0 else 0.0

    def times(self) -> list[float]:
        """Frame times: starts of `num_frames` equal slices of the window."""
        step = self.length / self.num_frames
        return [self.start + i * step for i in range(self.num_frames)]


def uniform_windows(duration: float, num_frames: int = 16) -> list[Window]:
    """One call over the whole video (what most papers do)."""
    return [Window(0.0, float(duration), num_frames)]


def tile(duration: float, window: float, num_frames: int, level: int = 0,
         min_frames: int = 2) -> list[Window]:
    """Cover [0, duration] with back-to-back windows of `window` seconds.

    The last window is shorter and gets proportionally fewer frames (at least `min_frames`),
    so the sampling rate is the same everywhere.
    """
    if duration <= 0 or window <= 0:
        return []
    n = max(1, math.ceil(duration / window - 1e-9))
    out = []
    for i in range(n):
        s, e = i * window, min((i + 1) * window, duration)
        frames = max(min_frames, round(num_frames * (e - s) / window))
        out.append(Window(s, e, min(frames, num_frames), level))
    return out


def sliding_windows(duration: float, fps: float = 1.0, frames_per_call: int = 16) -> list[Window]:
    """The exhaustive baseline: the whole video at `fps`, `frames_per_call` frames per call."""
    return tile(duration, frames_per_call / fps, frames_per_call)


def zoom(span: tuple[float, float], duration: float, margin: float, min_length: float,
         max_length: float | None = None) -> tuple[float, float]:
    """A span grown by `margin` x its length on each side, at least `min_length`, inside the video.

    `max_length` (optional) caps the result, centred on the span: a zoom level must not look
    at a longer stretch than the level above it did.
    """
    s, e = sorted(span)
    pad = (e - s) * margin
    s, e = s - pad, e + pad
    if e - s < min_length:
        c = (s + e) / 2
        s, e = c - min_length / 2, c + min_length / 2
    if max_length is not None and e - s > max_length:
        c = (s + e) / 2
        s, e = c - max_length / 2, c + max_length / 2
    if s < 0:
        s, e = 0.0, min(duration, e - s)
    if e > duration:
        s, e = max(0.0, s - (e - duration)), duration
    return (float(s), float(e))


def zoom_lengths(length: float, fine_length: float) -> list[float]:
    """Window lengths of the zoom levels below a coarse window of `length` seconds.

    Halved each level until `fine_length` (the stretch `frames_per_call` frames cover at the
    target fps), so each level doubles the frame rate and a level's window is twice the
    previous level's uncertainty wide. A window no longer than `fine_length` gets one level:
    one look at its whole length at the target fps.
    """
    if length <= 0 or fine_length <= 0:
        return []
    if length <= fine_length * (1 + 1e-9):
        return [float(length)]
    out: list[float] = []
    while length > fine_length * (1 + 1e-9):
        length = max(fine_length, length / 2)
        out.append(float(length))
    return out
