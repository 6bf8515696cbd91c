"""groundqa: ask questions about long videos. Grounds first (when?), then answers.

The code lives in the packages `grounder`, `agent`, `trainer` and `evals`; this package only
holds the version and the `groundqa` command line that gathers their subcommands.
"""

__version__ = "0.1.0"
