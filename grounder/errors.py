"""Errors a user can cause. The CLI prints them as one line and exits non-zero.

Anything else that escapes is a bug in groundqa and keeps its traceback
(set GROUNDQA_DEBUG=1 to see it at the CLI).
"""


class GroundQAError(Exception):
    """Base class: bad input or configuration, reported to the user in one line."""

    exit_code = 2


class VideoError(GroundQAError):
    """A video file is missing, empty, corrupt, truncated or has no video stream."""


class InputError(GroundQAError):
    """A bad argument: empty query, unknown option, invalid session name, ..."""


class ConfigError(GroundQAError):
    """A config file or key=value override that cannot be used."""


class ModelError(GroundQAError):
    """A model folder or name that cannot be loaded."""
