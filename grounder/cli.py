"""`groundqa ground`: find when a query happens in a video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from grounder.errors import InputError


def register(app: typer.Typer) -> None:
    @app.command("ground")
    def ground(
        video: str = typer.Argument(..., help="Video file."),
        query: str = typer.Argument(..., help="What to find, e.g. 'the red circle enters'."),
        model: str = typer.Option(None, "--model", help="Model folder or name (default: embedded)."),
        backend: str = typer.Option("transformers", "--backend", help="transformers | openai (an "
                                    "OpenAI-compatible server such as vLLM at $OPENAI_BASE_URL)."),
        strategy: str = typer.Option("coarse-to-fine", "--strategy", help="coarse-to-fine | uniform | sliding"),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
        trace: bool = typer.Option(False, "--trace", help="Include every model call in the JSON."),
        plot: str = typer.Option(None, "--plot", help="Write a timeline PNG here."),
        device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
        max_calls: int = typer.Option(None, "--max-calls", help="Model calls per query (coarse-to-fine)."),
        max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Generation budget per call."),
        retriever: str = typer.Option(None, "--retriever", "--retrieval", help="Frame-text retriever: a CLIP / "
                                      "SigLIP folder or hub name (or 'none'). Default: the model folder's own "
                                      "retriever/ (the embedded default has one). Its frame index is cached per video."),
    ) -> None:
        """Find the time segments of VIDEO that match QUERY."""
        from grounder.cliutil import emit, progress, stderr
        from grounder.grounder import Grounder, as_reader, check_query, check_strategy
        from grounder.scan import ScanBudget, planned_calls

        # Cheap checks first: a bad query, strategy, video or plot path fails before the model loads.
        query = check_query(query)
        strategy = check_strategy(strategy)
        reader = as_reader(video)
        if plot is not None and not Path(plot).resolve().parent.is_dir():
            raise InputError(f"cannot write the plot: folder of {plot!r} does not exist")
        grounder = Grounder.from_pretrained(model, backend=backend, device=device, retriever=retriever)
        overrides = {"max_calls": max_calls, "max_new_tokens": max_new_tokens}
        budget = grounder.resolve_budget(ScanBudget(**{k: v for k, v in overrides.items() if v is not None}))
        retrieving = grounder.retriever is not None and strategy == "coarse-to-fine"
        total = planned_calls(reader.duration, strategy, budget, retrieval=retrieving)
        if retrieving:
            from grounder.retrieval import sample_times

            n_frames = len(sample_times(reader.duration, budget.retrieval_fps))
            # one bar: frames embedded (once per video; cached), then the VLM's calls
            with progress("retrieve, then ground", total=n_frames + total) as advance:
                result = grounder.ground(reader, query, strategy=strategy, budget=budget,
                                         on_step=lambda done, planned: advance(1), on_retrieval=advance)
        else:
            with progress(f"grounding ({strategy})", total=total) as advance:
                result = grounder.ground(reader, query, strategy=strategy, budget=budget,
                                         on_step=lambda done, planned: advance(1))
        for warning in result.warnings:
            stderr.print(f"groundqa: warning: {warning}", markup=False, highlight=False, soft_wrap=True)
        if plot is not None:
            from grounder.plot import plot_timeline

            plot_timeline(result, reader, plot)
        emit(result.to_dict(trace=trace), as_json, _human(result, reader.path.name))

    @app.command("info")
    def info(
        video: str = typer.Argument(..., help="Video file."),
        backend: str = typer.Option(None, "--backend", help="pyav (default) | decord | torchcodec"),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Show a video's duration, frame rate, size and streams (reads the header only)."""
        from grounder.cliutil import emit
        from grounder.video import open_video

        with open_video(video, backend=backend) as reader:
            out = {
                "path": str(reader.path), "duration": reader.duration, "fps": reader.fps,
                "num_frames": reader.num_frames, "width": reader.width, "height": reader.height,
                "has_audio": reader.has_audio, "backend": reader.backend,
            }
        human = (f"{out['path']}: {out['duration']:.2f} s, {out['fps']:.3f} fps, {out['num_frames']} frames, "
                 f"{out['width']}x{out['height']}, audio: {'yes' if out['has_audio'] else 'no'}")
        emit(out, as_json, human)


def _human(result: Any, name: str) -> str:
    """A short table of segments and the cost line."""
    head = f"{result.strategy} on {name} ({result.duration:.1f} s): {result.query!r}"
    lines = [head]
    if result.segments:
        lines.append(f"  {'#':>2}  {'start (s)':>10}  {'end (s)':>10}  {'score':>6}")
        for i, seg in enumerate(result.segments, 1):
            lines.append(f"  {i:>2}  {seg.start:>10.1f}  {seg.end:>10.1f}  {seg.score:>6.3f}")
    else:
        lines.append(f"  no segments: {result.reason}")
    c = result.cost
    lines.append(f"cost: {c.model_calls} model calls, {c.frames} frames, "
                 f"{c.visual_tokens} visual tokens, {c.seconds:.1f} s"
                 + (f" (retrieval: {c.embedder_frames} frames embedded, {c.embedder_seconds:.1f} s)"
                    if result.retrieval is not None else ""))
    return "\n".join(lines)
