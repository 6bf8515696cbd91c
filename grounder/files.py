"""Writing files so that a reader never sees half of one: temp file beside it, then rename."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """`path` holds the old text or the new, never a mix (the parent folder is made if missing)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)


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
