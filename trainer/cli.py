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

    def _difficulty(config: str = typer.Argument(..., help="Recipe YAML (e.g. trainer/recipes/tar.yaml)."),
                    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. difficulty.k=8."),
                    traces: str = typer.Option(None, "--traces",
                                               help="Also write TAR-TVG traces (anchors improve, IoU >= "
                                                    "difficulty.trace_min_iou) as SFT rows to this JSONL."),
                    as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
        from grounder.cliutil import emit
        from trainer.config import load_recipe
        from trainer.difficulty import run_difficulty

        extra = [f"difficulty.traces={traces}"] if traces else []
        recipe = load_recipe(config, "difficulty", list(overrides or []) + extra)
        s = run_difficulty(recipe, progress=True)
        bars = " ".join(f"{i / 10:.1f}:{n}" for i, n in enumerate(s["histogram"]))
        human = (f"difficulty: {s['rows']} rows, k={s['k']}, mean IoU {s['mean']:.3f}, "
                 f"{s['easy']} easy (>= 0.8), {s['hopeless']} hopeless (0.0)\nhistogram: {bars}\nout: {s['out']}"
                 + (f"\nplot: {s['plot']}" if s["plot"] else "")
                 + (f"\ntraces: {s['traces']} ({s['traces_kept']} kept)" if s["traces"] else ""))
        emit(s, as_json, human)

    train_app.command("difficulty", help="Sample k answers per row with the model; write the dataset "
                                         "with \"difficulty\" = mean IoU (and optionally TAR traces).")(_difficulty)

    data_app = typer.Typer(help="Build training data (scenes, annotations, traces).", no_args_is_help=True)
    app.add_typer(data_app, name="data")

    for tool in ("scenes", "annotate", "traces"):
        def _data(args: list[str] = typer.Argument(None), _tool: str = tool) -> None:
            raise GroundQAError(f"`groundqa data {_tool}` is not built yet (issue #8: data construction)")

        data_app.command(tool, help=f"Data tool: {tool}.")(_data)
