"""`groundqa synth` and `groundqa eval run|report|score`."""

from __future__ import annotations

import typer

from grounder.errors import GroundQAError


def register(app: typer.Typer) -> None:
    @app.command("synth")
    def synth(
        out: str = typer.Option(..., "--out", help="Output folder (videos + annotations.jsonl)."),
        videos: int = typer.Option(4, "--videos", help="How many videos."),
        minutes: str = typer.Option("15-30", "--minutes", help="Length range A-B in minutes."),
        seed: int = typer.Option(0, "--seed", help="Seed; same seed, same files."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Generate synthetic long videos with exact grounding and QA annotations."""
        from evals.synthetic.cli import synth_command

        synth_command(out=out, videos=videos, minutes=minutes, seed=seed, as_json=as_json)

    @app.command("demo")
    def demo(
        out: str = typer.Option("groundqa-demo", "--out", help="Folder for the demo video and results."),
        minutes: float = typer.Option(20.0, "--minutes", help="Length of the synthetic demo video."),
        seed: int = typer.Option(0, "--seed"),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Ground a query in a synthetic long video, offline, with the embedded default model."""
        from evals.demo import run_demo

        run_demo(out=out, minutes=minutes, seed=seed, as_json=as_json)

    eval_app = typer.Typer(help="Run benchmarks, score predictions, report results.", no_args_is_help=True)
    app.add_typer(eval_app, name="eval")

    @eval_app.command("run")
    def run(bench: str = typer.Argument(...), ann: str = typer.Option(..., "--ann"),
            out: str = typer.Option(..., "--out")) -> None:
        """Run a benchmark (resumable)."""
        raise GroundQAError("`groundqa eval run` is not built yet (issue #6: evals)")

    @eval_app.command("report")
    def report(run_dir: str = typer.Argument(...),
               as_json: bool = typer.Option(False, "--json")) -> None:
        """Summarise a run folder."""
        raise GroundQAError("`groundqa eval report` is not built yet (issue #6: evals)")

    @eval_app.command("score")
    def score_cmd(
        bench: str = typer.Option(..., "--bench", help="Benchmark name (qvhighlights, charades, nextgqa, ...)."),
        gt: str = typer.Option(..., "--gt", help="Ground truth: the official file or a dataset JSONL."),
        pred: str = typer.Option(..., "--pred", help="Predictions JSONL."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Score a prediction file with the benchmark's official metrics."""
        from evals.score import format_human, score
        from grounder.cliutil import emit

        result = score(bench, gt, pred)
        emit(result, as_json, human=format_human(result))
