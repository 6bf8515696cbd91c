"""Writing files so that a reader never sees half of one: temp file beside it, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """`write(f)` fills a temp file beside `path` (opened "wb"), which then replaces `path`: it
    holds the old content or the new, never a mix; a `write` that raises leaves no file behind.
    The parent folder is made if missing."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """`write_atomic` of these bytes."""
    write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """`write_atomic` of this text, UTF-8."""
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether `path` (relative ones taken from `folder`) names something inside `folder`, read
    from the names alone (`..` folded, links not followed: a dataset may hold links to its videos)."""
    base = os.path.normpath(os.path.abspath(folder))
    target = os.path.normpath(os.path.join(base, os.fspath(path)))
    return target == base or target.startswith(base.rstrip(os.sep) + os.sep)


def outside_error(name: str, folder: str | os.PathLike[str], where: str, flag: str) -> str:
    """The one line for a dataset path that leaves its folder."""
    return (f"{where}: video {name!r} lies outside {folder} (a dataset names its videos inside its own "
            f"folder; {flag} allows others)")
