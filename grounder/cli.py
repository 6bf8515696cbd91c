"""`groundqa ground`: find when a query happens in a video."""

from __future__ import annotations

import typer

from grounder.errors import GroundQAError


def register(app: typer.Typer) -> None:
    @app.command("ground")
    def ground(
        video: str = typer.Argument(..., help="Video file."),
        query: str = typer.Argument(..., help="What to find, e.g. 'the red circle enters'."),
        model: str = typer.Option(None, "--model", help="Model folder or name (default: embedded)."),
        strategy: str = typer.Option("coarse-to-fine", "--strategy", help="coarse-to-fine | uniform | sliding"),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Find the time segments of VIDEO that match QUERY."""
        raise GroundQAError("`groundqa ground` is not built yet (issue #3: the grounder)")
