"""Open a file with PyAV and read its video metadata, turning every failure into VideoError.

All backends probe with PyAV first, so metadata and error messages are the same whichever
backend decodes.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

from grounder import errors
from grounder.errors import VideoError
from grounder.video.base import VideoInfo


def check_file(path: str | os.PathLike[str]) -> Path:
    """The path if it names a non-empty regular file; else a one-line VideoError."""
    p = Path(path).expanduser()
    if not p.exists():
        raise VideoError(f"video not found: {p}")
    if p.is_dir():
        raise VideoError(f"not a video file (it is a directory): {p}")
    if not p.is_file():
        raise VideoError(f"not a regular file: {p}")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise VideoError(f"cannot read video {p}: {exc.strerror or exc}") from None
    if size == 0:
        raise VideoError(f"video file is empty (0 bytes): {p}")
    return p


def one_line(exc: BaseException) -> str:
    """An FFmpeg error as one short line: its `strerror` (PyAV's messages repeat the file name)."""
    strerror = getattr(exc, "strerror", None)
    return errors.one_line(strerror) if strerror else errors.one_line(exc)


def open_container(path: Path) -> Any:
    """``av.open`` for reading, with a VideoError naming the file when it is not media."""
    import av

    try:
        return av.open(str(path), mode="r")
    except PermissionError:
        raise VideoError(f"cannot read video (permission denied): {path}") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise VideoError(
            f"cannot read video (not a media file, or corrupt/truncated: {one_line(exc)}): {path}"
        ) from None


def read_info(path: Path, container: Any) -> VideoInfo:
    """Metadata of the first video stream, from the header only (fast on long files)."""
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise VideoError(f"no video stream in {path} (it has: {', '.join(kinds)})")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    if not ctx.width or not ctx.height:
        raise VideoError(f"video stream has no frame size (corrupt header?): {path}")
    time_base = stream.time_base or Fraction(1, 1_000_000)
    start_pts = stream.start_time if stream.start_time is not None else 0
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate

    duration = 0.0
    if stream.duration:
        duration = float(stream.duration * time_base)
    elif container.duration:
        duration = container.duration / 1_000_000 - float(start_pts * time_base)
    num_frames = int(stream.frames or 0)
    if not num_frames and rate and duration:
        num_frames = max(1, round(duration * float(rate)))
    if not rate and num_frames and duration:
        rate = Fraction(num_frames) / Fraction(duration)
    if not num_frames or not duration or not rate:
        raise VideoError(f"video stream has no frames or no duration (truncated?): {path}")

    return VideoInfo(
        path=path,
        duration=duration,
        fps=float(rate),
        num_frames=num_frames,
        width=int(ctx.width),
        height=int(ctx.height),
        has_audio=bool(container.streams.audio),
        time_base=Fraction(time_base),
        start_pts=int(start_pts),
    )


def probe(path: str | os.PathLike[str]) -> tuple[VideoInfo, Any]:
    """Check the file, open it, read its metadata: (info, open PyAV container)."""
    p = check_file(path)
    container = open_container(p)
    try:
        return read_info(p, container), container
    except BaseException:
        container.close()
        raise
