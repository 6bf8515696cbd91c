"""`groundqa train sft|grpo|difficulty` and `groundqa data scenes|annotate|traces`."""

from __future__ import annotations

import typer

from grounder.errors import GroundQAError


def register(app: typer.Typer) -> None:
    train_app = typer.Typer(help="Train the grounder (SFT, GRPO, difficulty).", no_args_is_help=True)
    app.add_typer(train_app, name="train")

    for stage in ("sft", "grpo"):
        def _train(config: str = typer.Argument(..., help="Recipe YAML (see trainer/recipes/)."),
                   overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. train.steps=50."),
                   as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
                   _stage: str = stage) -> None:
            from grounder.cliutil import emit
            from trainer.config import load_recipe
            from trainer.loop import run

            recipe = load_recipe(config, _stage, list(overrides or []))
            summary = run(_stage, recipe, progress=True)
            last = summary["last"] or {}
            human = (f"{_stage}: {summary['steps']} steps (resumed at {summary['resumed_from']}); "
                     + " ".join(f"{k}={v:.3f}" for k, v in last.items() if k in ("loss", "reward", "reward/iou", "kl"))
                     + f"\nmodel: {summary['model']}\ncurves: {summary['curves']}")
            emit(summary, as_json, human)

        train_app.command(stage, help=f"Run the {stage} stage from a recipe YAML (+ key=value overrides).")(_train)

    def _difficulty(config: str = typer.Argument(..., help="Recipe YAML."),
                    overrides: list[str] = typer.Argument(None, help="key=value overrides.")) -> None:
        raise GroundQAError("`groundqa train difficulty` is not built yet (issue #4: the trainer)")

    train_app.command("difficulty", help="Run the difficulty stage from a recipe.")(_difficulty)

    data_app = typer.Typer(help="Build training data (scenes, annotations, traces).", no_args_is_help=True)
    app.add_typer(data_app, name="data")

    for tool in ("scenes", "annotate", "traces"):
        def _data(args: list[str] = typer.Argument(None), _tool: str = tool) -> None:
            raise GroundQAError(f"`groundqa data {_tool}` is not built yet (issue #8: data construction)")

        data_app.command(tool, help=f"Data tool: {tool}.")(_data)
