"""The `groundqa` command line: gathers the subcommands that live next to the code they drive.

Errors a user can cause (`GroundQAError`) end as one line on stderr and a non-zero exit code,
never a traceback. Set GROUNDQA_DEBUG=1 to see tracebacks of unexpected errors.
"""

from __future__ import annotations

import os
import sys

import typer

from grounder import cliutil
from grounder.errors import GroundQAError, Interrupted

app = typer.Typer(
    name="groundqa",
    help="Ask questions about long videos: ground first (when?), then answer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _register() -> None:
    # Imported here, not at module top, so each package's CLI module stays the one place
    # that knows its commands; these modules keep heavy imports inside the commands.
    from agent import cli as agent_cli
    from evals import cli as evals_cli
    from grounder import cli as grounder_cli
    from groundqa.web import cli as web_cli
    from trainer import cli as trainer_cli

    agent_cli.register(app)
    grounder_cli.register(app)
    evals_cli.register(app)
    trainer_cli.register(app)
    web_cli.register(app)


_register()


def _print_version(value: bool) -> None:
    if value:
        from groundqa import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.",
                                 is_eager=True, callback=_print_version),
) -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code.

    Typer runs in standalone mode, so usage errors print their usage line and exit 2 through
    SystemExit; our own errors propagate here and are printed as one line.
    """
    cliutil.ARGV = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=argv, prog_name="groundqa")
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Interrupted as e:
        print(f"groundqa: interrupted: {e}", file=sys.stderr)
        return e.exit_code
    except GroundQAError as e:
        print(f"groundqa: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("groundqa: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: one line unless debugging
        if os.environ.get("GROUNDQA_DEBUG"):
            raise
        print(f"groundqa: internal error: {type(e).__name__}: {e} (GROUNDQA_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
