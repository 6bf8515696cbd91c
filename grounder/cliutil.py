"""Small helpers every `groundqa` subcommand shares: JSON vs human output, progress on stderr.

Kept free of heavy imports (torch, transformers) so `groundqa --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# Progress and human messages go to stderr so `--json` stdout stays one clean object per line.
stderr = Console(stderr=True)


def emit(obj: dict[str, Any], as_json: bool, human: str | None = None) -> None:
    """Print a result: one JSON object on stdout with --json, else a human summary."""
    if as_json:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        print(human if human is not None else json.dumps(obj, indent=2, ensure_ascii=False))


@contextmanager
def progress(description: str, total: float | None, enabled: bool = True) -> Iterator[Any]:
    """A progress bar on stderr; yields `advance(n=1)`. Disabled (no-op) when not wanted."""
    if not enabled or not stderr.is_terminal and not _force_progress():
        yield lambda n=1: None
        return
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=stderr, transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def _force_progress() -> bool:
    import os

    return os.environ.get("GROUNDQA_PROGRESS") == "1"


# The arguments of this `groundqa` invocation (set by `groundqa.cli.main`): what a resume hint repeats.
ARGV: list[str] = []


def command(*extra: str) -> str:
    """This invocation as a command line to paste (with `extra` arguments appended)."""
    import shlex

    return "groundqa " + shlex.join([*ARGV, *extra])


@contextmanager
def resumable(hint: Any) -> Iterator[None]:
    """Ctrl-C inside becomes `Interrupted(hint())`: what was saved and the command that goes on
    (the CLI prints it in one line and exits 130)."""
    from grounder.errors import Interrupted

    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(hint()) from None
