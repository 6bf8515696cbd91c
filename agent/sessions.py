"""Sessions: a conversation about a video kept across processes in SQLite.

The database is `$GROUNDQA_HOME/sessions.sqlite`, `GROUNDQA_HOME` defaulting to
`~/.cache/groundqa`. A session name is the LangGraph thread id; the graph's state for that
thread (checkpointed by `langgraph.checkpoint.sqlite.SqliteSaver` after every node) holds the
earlier questions and answers (`history`), which the planner and the QA prompt see. Turns of one
session run one at a time, also across processes (`session_lock`).
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from grounder.errors import InputError

SESSION_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def home() -> Path:
    return Path(os.environ.get("GROUNDQA_HOME") or Path.home() / ".cache" / "groundqa").expanduser()


def db_path() -> Path:
    return home() / "sessions.sqlite"


def check_session(name: Any) -> str:
    if not isinstance(name, str) or not SESSION_NAME.fullmatch(name):
        raise InputError(f"bad session name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
    return name


LOCK_TIMEOUT = 900.0  # s a turn waits for the session's previous turn (another process) to finish


def session_lock(name: str, timeout: float = LOCK_TIMEOUT) -> Any:
    """A lock held for one whole turn of session `name`, across processes: a turn reads the
    session's history, runs, and writes it back with its own turn added; two turns at once would
    both start from the same history and the later write would drop the earlier turn. The lock
    file lives beside the database (`<home>/locks/<name>.lock`)."""
    from filelock import FileLock

    folder = db_path().parent / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot make the session lock folder {str(folder)!r}: {exc}") from None
    return FileLock(str(folder / f"{check_session(name)}.lock"), timeout=timeout)


def open_saver(path: Path | None = None) -> Any:
    """A SqliteSaver on its own connection (created with its folder when missing)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    p = Path(path) if path is not None else db_path()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(p), check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise InputError(f"cannot open the session store {str(p)!r}: {exc}") from None
    return SqliteSaver(conn)
