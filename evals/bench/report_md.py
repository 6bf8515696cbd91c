"""The one writer of BENCHMARKS.md: each bench replaces its own `## ...` section, atomically."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from grounder.files import write_text_atomic

BENCHMARKS = Path(__file__).resolve().parents[2] / "BENCHMARKS.md"


def write_section(text: str, path: Path = BENCHMARKS) -> Path:
    """Replace the section whose heading is `text`'s first line (or append it at the end).

    Sections run from their `## ` heading to the next one; the file is written to a temp file
    and renamed, so a crash never leaves a half-written BENCHMARKS.md.
    """
    heading = text.lstrip().splitlines()[0]
    if not heading.startswith("## "):
        raise ValueError(f"a section must start with a '## ' heading, got {heading[:40]!r}")
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    body = text.strip("\n") + "\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(old):
        new = pattern.sub(lambda _: body + "\n", old, count=1).rstrip("\n") + "\n"
    else:
        new = old.rstrip("\n") + "\n\n" + body
    write_text_atomic(path, new)
    return path


def publish(text: str, results: Any, write: bool = True) -> None:
    """A bench's end: its section on stdout, its raw results as JSON on stderr, and (unless
    `write` is off) the section in BENCHMARKS.md."""
    print(text)
    print(json.dumps(results), file=sys.stderr)
    if write:
        write_section(text)
