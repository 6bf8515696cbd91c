"""`groundqa train sft|grpo|difficulty` and `groundqa data scenes|annotate|traces`."""

from __future__ import annotations

import typer

from grounder.errors import GroundQAError


def register(app: typer.Typer) -> None:
    train_app = typer.Typer(help="Train the grounder (SFT, GRPO, difficulty).", no_args_is_help=True)
    app.add_typer(train_app, name="train")

    for stage in ("sft", "grpo", "difficulty"):
        def _cmd(config: str = typer.Argument(..., help="Recipe YAML."),
                 overrides: list[str] = typer.Argument(None, help="key=value overrides."),
                 _stage: str = stage) -> None:
            raise GroundQAError(f"`groundqa train {_stage}` is not built yet (issue #4: the trainer)")

        train_app.command(stage, help=f"Run the {stage} stage from a recipe.")(_cmd)

    data_app = typer.Typer(help="Build training data (scenes, annotations, traces).", no_args_is_help=True)
    app.add_typer(data_app, name="data")

    for tool in ("scenes", "annotate", "traces"):
        def _data(args: list[str] = typer.Argument(None), _tool: str = tool) -> None:
            raise GroundQAError(f"`groundqa data {_tool}` is not built yet (issue #8: data construction)")

        data_app.command(tool, help=f"Data tool: {tool}.")(_data)
