"""Errors a user can cause. The CLI prints them as one line and exits non-zero.

Anything else that escapes is a bug in groundqa and keeps its traceback
(set GROUNDQA_DEBUG=1 to see it at the CLI).
"""

import math


class GroundQAError(ValueError):
    """Base class: bad input or configuration, reported to the user in one line.

    A ValueError, so that servers which show a client only the messages of the standard
    bad-value errors (the LangGraph server does) show ours instead of "an internal error"."""

    exit_code = 2


class VideoError(GroundQAError):
    """A video file is missing, empty, corrupt, truncated or has no video stream."""


class InputError(GroundQAError):
    """A bad argument: empty query, unknown option, invalid session name, ..."""


class ConfigError(GroundQAError):
    """A config file or key=value override that cannot be used."""


class ModelError(GroundQAError):
    """A model folder or name that cannot be loaded."""


def check_number(name: str, value: float | None, *, gt: float | None = None, ge: float | None = None,
                 le: float | None = None, optional: bool = False) -> None:
    """A config number inside its range, else a one-line ConfigError naming the key (None passes
    when `optional`). Written so that NaN fails every bound."""
    if value is None and optional:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (gt is None or value > gt) and (ge is None or value >= ge) and (le is None or value <= le)
    ok = ok and math.isfinite(value)
    if not ok:
        want = " and ".join(f"{op} {b:g}" for op, b in ((">", gt), (">=", ge), ("<=", le)) if b is not None)
        raise ConfigError(f"{name} must be {want or 'a finite number'}, got {value!r}")


class Interrupted(GroundQAError):
    """Ctrl-C during a long command; the message says what was kept and how to go on."""

    exit_code = 130


def one_line(exc: BaseException | str, typed: bool = False, limit: int = 200) -> str:
    """The first non-blank line of an error (or text), at most `limit` characters, prefixed by
    the exception's type when `typed`: how third-party errors reach our one-line messages."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    name = type(exc).__name__ if isinstance(exc, BaseException) else ""
    if not lines:
        return name or "error"
    text = lines[0][:limit]
    return f"{name}: {text}" if typed and name else text
