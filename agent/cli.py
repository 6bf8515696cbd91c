"""`groundqa ask` and `groundqa demo`."""

from __future__ import annotations

import typer

from grounder.errors import GroundQAError


def register(app: typer.Typer) -> None:
    @app.command("ask")
    def ask(
        video: str = typer.Argument(..., help="Video file."),
        question: str = typer.Argument(None, help="The question."),
        option: list[str] = typer.Option(None, "--option", help="A multiple-choice option (repeat)."),
        questions: str = typer.Option(None, "--questions", help="JSONL file of {question, options?}."),
        model: str = typer.Option(None, "--model", help="Model folder or name (default: embedded)."),
        session: str = typer.Option(None, "--session", help="Keep a conversation under this name."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Answer QUESTION about VIDEO from the moments where the answer happens."""
        raise GroundQAError("`groundqa ask` is not built yet (issue #5: the agent)")
