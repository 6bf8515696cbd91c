"""Content fingerprints of files and folders: what caches are keyed on (never a path)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

FULL_HASH_BYTES = 64 << 20  # files up to this size are hashed whole
CHUNK_BYTES = 1 << 20
SAMPLED_CHUNKS = 16


def file_fingerprint(path: str | os.PathLike[str], full_hash_bytes: int = FULL_HASH_BYTES) -> str:
    """SHA-256 hex of a file's size and content: the whole file when it is at most
    `full_hash_bytes` (64 MiB: about a tenth of a second to read), otherwise `SAMPLED_CHUNKS`
    chunks of `CHUNK_BYTES` at evenly spaced offsets (the first and last included)."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(f"size={size};".encode())
    with open(p, "rb") as f:
        if size <= full_hash_bytes:
            h.update(b"full;")
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f"chunks={SAMPLED_CHUNKS}x{CHUNK_BYTES};".encode())
            last = max(0, size - CHUNK_BYTES)
            for i in range(SAMPLED_CHUNKS):
                f.seek(round(i * last / (SAMPLED_CHUNKS - 1)))
                h.update(f.read(CHUNK_BYTES))
    return h.hexdigest()


def folder_fingerprint(folder: str | os.PathLike[str]) -> str:
    """SHA-256 over every file of a folder (relative path + `file_fingerprint`), hidden files left out."""
    root = Path(folder)
    h = hashlib.sha256()
    for f in sorted(q for q in root.rglob("*") if q.is_file() and not q.name.startswith(".")):
        h.update(f"{f.relative_to(root).as_posix()}={file_fingerprint(f)};".encode())
    return h.hexdigest()
