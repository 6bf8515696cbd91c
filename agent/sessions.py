"""Sessions: a conversation about a video kept across processes in SQLite.

The database is `$GROUNDQA_HOME/sessions.sqlite`, `GROUNDQA_HOME` defaulting to
`~/.cache/groundqa`. A session name is the LangGraph thread id; the graph's state for that
thread (checkpointed by `langgraph.checkpoint.sqlite.SqliteSaver` after every node) holds the
earlier questions and answers (`history`), which the QA prompt shows.
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
