"""`groundqa synth` and `groundqa eval run|report|score`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("synth")
    def synth(
        out: str = typer.Option(..., "--out", help="Output folder (videos + annotations.jsonl)."),
        videos: int = typer.Option(4, "--videos", help="How many videos."),
        minutes: str = typer.Option("15-30", "--minutes", help="Length range A-B in minutes."),
        seed: int = typer.Option(0, "--seed", help="Seed; same seed, same files."),
        sizes: str = typer.Option("", "--sizes", help="Object sizes in px, e.g. 32,36,40 (default 18-26)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Generate synthetic long videos with exact grounding and QA annotations."""
        from evals.synthetic.cli import synth_command

        synth_command(out=out, videos=videos, minutes=minutes, seed=seed, as_json=as_json, sizes=sizes)

    @app.command("repro")
    def repro(
        claims: list[str] = typer.Argument(..., help="Claims: cendist, token-kl, ground-then-answer, or all."),  # noqa: B008
        out: str = typer.Option("runs/repro", "--out", help="Folder for the worlds, the arms' runs and results.json."),
        seeds: int = typer.Option(3, "--seeds", help="Seeds per arm."),
        steps: int = typer.Option(100, "--steps", help="GRPO steps per arm."),
        windows: int = typer.Option(60, "--windows", help="Held-out windows drawn (about half hold the event)."),
        questions: int = typer.Option(30, "--questions", help="Questions per held-out world (ground-then-answer)."),
        smoke: bool = typer.Option(False, "--smoke", help="1 seed, 2 steps: check the arms differ only in the "
                                   "named setting and both train (CI)."),
        write: bool = typer.Option(False, "--write", help="Put the table in BENCHMARKS.md."),
        as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    ) -> None:
        """A grounding paper's claim as an A/B of two training recipes, reproduced in miniature."""
        from evals.repro import repro as run_repro
        from evals.repro import table
        from grounder.cliutil import emit

        results = run_repro(claims, out, seeds, steps, windows, smoke, write, questions)
        emit({"claims": results}, as_json, table(results, "today", "HEAD"))

    @app.command("demo")
    def demo(
        out: str = typer.Option("groundqa-demo", "--out", help="Folder for the demo video and results."),
        minutes: float = typer.Option(60.0, "--minutes", help="Length of the synthetic demo video."),
        seed: int = typer.Option(4242, "--seed", help="Seed of the synthetic video (not a training seed)."),
        model: str = typer.Option(None, "--model", help="Model folder or name (default: embedded)."),
        device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Ask a multiple-choice question about a synthetic hour-long video, offline: answer,
        grounded segments vs the truth, cost, timeline.png (embedded default model)."""
        from evals.demo import run_demo

        run_demo(out=out, minutes=minutes, seed=seed, as_json=as_json, model=model, device=device)

    eval_app = typer.Typer(help="Run benchmarks, score predictions, report results.", no_args_is_help=True)
    app.add_typer(eval_app, name="eval")

    @eval_app.command("run")
    def run(
        bench: str = typer.Argument(..., help="Benchmark: synthetic, charades, tvgbench, nextgqa, ..."),
        ann: str = typer.Option(..., "--ann", help="Annotation file of the benchmark."),
        out: str = typer.Option(..., "--out", help="Run folder (run.json + predictions*.jsonl)."),
        videos: str = typer.Option(None, "--videos", help="Videos folder (default: beside --ann)."),
        model: str = typer.Option(None, "--model", help="Model folder or name (default: embedded)."),
        strategy: str = typer.Option("coarse-to-fine", "--strategy",
                                     help="coarse-to-fine | uniform | sliding"),
        budget: list[str] = typer.Option(None, "--budget",  # noqa: B008
                                         help="ScanBudget override KEY=VALUE (repeatable), "
                                              "e.g. --budget frames_per_call=8"),
        predictor: str = typer.Option("grounder", "--predictor",
                                      help="Per-item predictor: grounder, agent, qa-uniform, qa-text, random-span "
                                           "(see evals.predictors)."),
        limit: int = typer.Option(None, "--limit", help="Only the first N items."),
        kind: str = typer.Option(None, "--kind", help="Only rows of this kind (synthetic: grounding or qa)."),
        stride: int = typer.Option(1, "--stride", help="Every K-th item (before --limit): a subset "
                                                          "spread over all videos of the file."),
        skip_missing: bool = typer.Option(False, "--skip-missing",
                                          help="Run the items whose video exists, skip the rest."),
        device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
        retriever: str = typer.Option(None, "--retriever", help="Frame-text retriever (CLIP / SigLIP folder "
                                      "or name, or 'none'); default: the model folder's own retriever/."),
        allow_outside_paths: bool = typer.Option(False, "--allow-outside-paths",
                                                 help="Let the annotation file name videos outside its "
                                                      "folder (or --videos): ../ or absolute paths."),
        backend: str = typer.Option("transformers", "--backend",
                                    help="transformers (a local model) | openai (--model names a model served "
                                         "at $OPENAI_BASE_URL, e.g. vLLM)"),
        qa_model: str = typer.Option(None, "--qa-model",
                                     help="QA model of the agent / qa-uniform / qa-text predictors: a Qwen-VL "
                                          "folder or openai:NAME (default: the grounder's own)."),
        concurrency: int = typer.Option(1, "--concurrency",
                                        help="Items in flight at once (--backend openai): the server works, "
                                             "we wait; still resumable, each record written once."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Run a benchmark into a run folder (resumable; shards under accelerate launch)."""
        from evals.runner import RunConfig, parse_budget, run_benchmark
        from grounder.cliutil import emit

        cfg = RunConfig(bench=bench, ann=ann, out=out, videos=videos, model=model,
                        strategy=strategy, budget=parse_budget(budget or []), predictor=predictor,
                        limit=limit, kind=kind, stride=stride, skip_missing=skip_missing, device=device,
                        retriever=retriever, allow_outside_paths=allow_outside_paths, backend=backend,
                        concurrency=concurrency, qa_model=qa_model)
        from grounder.cliutil import command, resumable

        def hint() -> str:
            files = sorted(Path(out).glob("predictions*.jsonl"))
            done = sum(f.read_bytes().count(b"\n") for f in files)
            return (f"{done} finished item(s) are kept in {out}; this goes on from there: {command()}"
                    if done else f"no item had finished; this starts again: {command()}")

        with resumable(hint):
            summary = run_benchmark(cfg, show_progress=not as_json)
        human = (f"{summary['out']}: {summary['ran']} item(s) run, {summary['already_done']} already "
                 f"done, {summary['errors']} error(s) (process {summary['rank']} of "
                 f"{summary['world_size']}); next: groundqa eval report {summary['out']}")
        emit(summary, as_json, human)
        if summary["ran"] and summary["errors"] == summary["ran"]:  # nothing scored: a failed run
            print(f"groundqa: error: every item of this run failed ({summary['errors']} of {summary['ran']}; "
                  f"each item's error is in {summary['predictions']})", file=sys.stderr)
            raise typer.Exit(1)

    @eval_app.command("report")
    def report(
        run_dirs: list[str] = typer.Argument(  # noqa: B008
            ..., help="Run folder(s); several compare strategies."),
        out: str = typer.Option(None, "--out",
                                help="Folder for the comparison of several runs (default: the first)."),
        protocol: str = typer.Option("official", "--protocol",
                                     help="How items count for the grounding metrics: official (the benchmark's "
                                          "scorer where it is a grounding one, else groundqa), groundqa (every "
                                          "item), timezero, time-r1 (evals/README.md)."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per run folder on stdout."),
    ) -> None:
        """Summarise run folders: metrics (percent), report.md and plots."""
        from evals.report import format_human, write_reports
        from grounder.cliutil import emit

        reps = write_reports(run_dirs, out=out, protocol=protocol)
        for rep in reps:
            emit(rep, as_json, human=format_human(rep))
        if len(reps) > 1 and not as_json:
            print(f"comparison: {reps[0]['files']['comparison']}")

    @eval_app.command("card")
    def card(
        model_dir: str = typer.Argument(..., help="Model folder (config.json, *.safetensors, scan_config.json)."),
        more: list[str] = typer.Argument(  # noqa: B008
            None, metavar="[REPORT]...", help="More reports (so that `--reports R1 R2 R3` works)."),
        pipeline: str = typer.Option(..., "--pipeline",
                                     help="Run folder of `groundqa train pipeline` (pipeline.json, timings.json)."),
        reports: list[str] = typer.Option(  # noqa: B008
            None, "--reports",
            help="Run folders with report.json, report.json files or saved `eval report --json` output "
                 "(`--reports R1 R2 ...`, one table row each)."),
        command: str = typer.Option(None, "--command",
                                    help="The training command to print (default: rebuilt from pipeline.json)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Write MODEL_DIR/README.md: a model card (what it is and knows, training, scan, scores)."""
        from evals.model_card import write_card
        from grounder.cliutil import emit

        res = write_card(model_dir, pipeline, [*(reports or []), *(more or [])], command=command)
        emit(res, as_json, f"{res['card']}: model card with {res['reports']} score row(s)")

    @eval_app.command("score")
    def score_cmd(
        bench: str = typer.Option(..., "--bench", help="Benchmark name (qvhighlights, charades, nextgqa, ...)."),
        gt: str = typer.Option(..., "--gt", help="Ground truth: the official file or a dataset JSONL."),
        pred: str = typer.Option(..., "--pred", help="Predictions: JSONL, JSON, or another system's result "
                                                     "file (evals/README.md)."),
        protocol: str = typer.Option("official", "--protocol",
                                     help="official (the benchmark's released scorer), a named one (timezero, "
                                          "time-r1, nextgqa, rextime, lvbench, mlvu, videomme) or groundqa (every "
                                          "row counts); evals/README.md."),
        extract: str = typer.Option("strict", "--extract",
                                    help="How a free-text answer becomes a letter: strict (the reply is the "
                                         "answer), first-letter (lmms-eval's Video-MME rule before 2026) or "
                                         "lmms-eval (its ranked extractor of 2026); see evals.metrics.extract."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Score a prediction file with the benchmark's official metrics (or another protocol's)."""
        from evals.score import format_human, score
        from grounder.cliutil import emit

        result = score(bench, gt, pred, protocol, extract=extract)
        emit(result, as_json, human=format_human(result))
