"""`groundqa train sft|grpo|difficulty` and `groundqa data scenes|annotate|traces`."""

from __future__ import annotations

import math
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    train_app = typer.Typer(help="Train the grounder (SFT, GRPO, difficulty).", no_args_is_help=True)
    app.add_typer(train_app, name="train")

    def _train_command(stage: str):
        # a closure per stage (not a `_stage=stage` default argument, which typer shows as an option)
        def _train(config: str = typer.Argument(..., help="Recipe YAML (see trainer/recipes/)."),
                   overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. train.steps=50."),
                   as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
            from grounder.cliutil import command, emit, resumable
            from trainer.config import load_recipe
            from trainer.loop import run

            recipe = load_recipe(config, stage, list(overrides or []))
            ckpt = Path(recipe.train.out_dir) / "checkpoint"

            def hint() -> str:
                if ckpt.is_dir():
                    return f"the last checkpoint ({ckpt}) is kept; this resumes from it: {command()}"
                return (f"no checkpoint was saved yet (train.save_every={recipe.train.save_every}); "
                        f"this starts over: {command()}")

            with resumable(hint):
                summary = run(stage, recipe, progress=True)
            last = summary["last"] or {}
            human = (f"{stage}: {summary['steps']} steps (resumed at {summary['resumed_from']}); "
                     + " ".join(f"{k}={v:.3f}" for k, v in last.items() if k in ("loss", "reward", "reward/iou", "kl"))
                     + f"\nmodel: {summary['model']}\ncurves: {summary['curves']}")
            emit(summary, as_json, human)

        return _train

    for stage in ("sft", "grpo"):
        train_app.command(stage, help=f"Run the {stage} stage from a recipe YAML (+ key=value overrides).")(
            _train_command(stage))

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

    def _pipeline(config: str = typer.Argument(..., help="Pipeline recipe YAML (trainer/recipes/default.yaml)."),
                  overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. sft.train.steps=100."),
                  as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
        from grounder.cliutil import command, emit, resumable
        from trainer.pipeline import load_pipeline, run_pipeline

        recipe = load_pipeline(config, list(overrides or []))
        with resumable(lambda: f"finished stages are kept in {recipe.out_dir} (timings.json); "
                               f"this resumes at the next one: {command()}"):
            s = run_pipeline(recipe, progress=True)
        t = s["timings"]
        human = (f"pipeline: {t.get('total_seconds', 0):.0f} s in all ("
                 + ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in t.items() if isinstance(v, dict))
                 + f")\nmodel: {s['model']}")
        emit(s, as_json, human)

    train_app.command("pipeline", help="Synthetic data -> SFT -> difficulty -> GRPO -> model, one seeded "
                                       "command (the embedded default's recipe; resumable).")(_pipeline)

    def _embedder(config: str = typer.Argument(..., help="Recipe YAML (trainer/recipes/embedder.yaml)."),
                  overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. steps=300 "
                                                        "data=runs/x/synth/annotations.jsonl."),
                  as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
        from grounder.cliutil import emit
        from trainer.config import from_dict, read_config
        from trainer.embedder import EmbedderConfig, run_embedder

        cfg = from_dict(EmbedderConfig, read_config(config, list(overrides or [])))
        s = run_embedder(cfg, progress=True)
        figs = " ".join(f"{k.removeprefix('heldout_')}={v:.3f}" for k, v in s.items()
                        if k.startswith("heldout_") and isinstance(v, float))
        human = (f"embedder: {s['steps']} steps, loss {s['last_loss']:.4f}, {s['seconds_train']:.0f} s\n"
                 f"held out: {figs or '(no held-out videos)'}\nmodel: {s['model']}\ncurves: {s['curves']}")
        emit(s, as_json, human)

    train_app.command("embedder", help="The frame-text dual encoder that retrieves candidate windows "
                                       "(contrastive, look-alike negatives) from a synthetic world.")(_embedder)

    data_app = typer.Typer(help="Build training data (scenes, annotations, traces).", no_args_is_help=True)
    app.add_typer(data_app, name="data")

    def _scenes(videos: list[str] = typer.Argument(..., help="Video file(s)."),
                out: str = typer.Option(..., "--out", help="Folder for <stem>.scenes.json + thumbnails."),
                fps: float = typer.Option(2.0, "--fps", help="Coarse sampling rate (frames/s)."),
                threshold: float = typer.Option(1.0, "--threshold",
                                                help="k in median + k*MAD: how far a coarse change must "
                                                     "stand out to be checked densely (higher = fewer)."),
                min_scene: float = typer.Option(1.0, "--min-scene", help="Shortest scene (s)."),
                as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
        from grounder.cliutil import emit, progress
        from grounder.errors import InputError
        from grounder.video import open_video
        from trainer.scenes import write_scenes

        if not fps > 0:
            raise InputError(f"--fps must be > 0, got {fps}")
        # outputs are named after the file's stem: two inputs with one stem would overwrite each other
        by_stem: dict[str, list[str]] = {}
        for video in videos:
            by_stem.setdefault(Path(video).stem, []).append(video)
        clash = next((v for v in by_stem.values() if len(v) > 1), None)
        if clash:
            raise InputError(f"{len(clash)} videos share the name {Path(clash[0]).stem!r} ({', '.join(clash)}): "
                             f"their scenes would overwrite each other in {out}; run them with separate --out folders")
        totals = []
        for video in videos:  # every file opened first: a bad one fails in one line before any work
            with open_video(video) as r:
                totals.append(max(1, math.ceil(r.duration * fps)))
        results = []
        for video, total in zip(videos, totals):
            with progress(f"scenes {video}", total) as advance:
                path, res = write_scenes(video, out, fps=fps, threshold=threshold, min_scene=min_scene,
                                         on_progress=advance)
            results.append({"video": video, "scenes_json": str(path), "num_scenes": len(res.scenes),
                            "cuts": res.cuts, "duration": res.duration})
        human = "\n".join(f"{r['video']}: {r['num_scenes']} scenes -> {r['scenes_json']}" for r in results)
        emit({"videos": results}, as_json, human)

    data_app.command("scenes", help="Scene boundaries (exact cut frames) + a thumbnail per scene, "
                                    "written to OUT/<stem>.scenes.json.")(_scenes)

    def _annotate(scenes: list[str] = typer.Argument(..., help="Scenes JSON files (groundqa data scenes)."),
                  model: str = typer.Option(None, "--model", help="Qwen-VL folder, or openai:MODEL "
                                                                   "($OPENAI_BASE_URL)."),
                  out: str = typer.Option(..., "--out", help="Dataset JSONL to write (+ OUT.all.jsonl log)."),
                  threshold: float = typer.Option(0.85, "--threshold", help="Drop descriptions whose cosine "
                                                  "similarity to another scene's is above this."),
                  embedder: str = typer.Option(None, "--embedder", help="sentence-transformers folder "
                                               "(default: the packaged all-MiniLM-L6-v2)."),
                  frames: int = typer.Option(4, "--frames", help="Frames per scene."),
                  batch_size: int = typer.Option(4, "--batch-size", help="Scenes per generate call."),
                  max_new_tokens: int = typer.Option(40, "--max-new-tokens"),
                  device: str = typer.Option("cpu", "--device"),
                  as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
        from grounder.cliutil import emit
        from trainer.annotate import AnnotateConfig, run_annotate

        cfg = AnnotateConfig(threshold=threshold, frames=frames, batch_size=batch_size,
                             max_new_tokens=max_new_tokens, device=device)
        s = run_annotate(scenes, model, out, cfg, embedder=embedder, progress=True)
        human = (f"annotate: {s['scenes']} scenes ({s['described']} described, {s['resumed']} resumed), "
                 f"{s['kept']} kept, {s['dropped_ambiguous']} ambiguous (> {s['threshold']}), "
                 f"{s['dropped_empty']} empty\nout: {s['out']}\nlog: {s['log']}")
        emit(s, as_json, human)

    data_app.command("annotate", help="Describe each scene with a VLM as a grounding query; drop "
                                      "ambiguous ones (uniqueness filter); write a dataset JSONL.")(_annotate)

    def _traces(dataset: str = typer.Argument(..., help="Dataset JSONL (grounding rows)."),
                teacher: str = typer.Option(..., "--teacher", help="Grounder checkpoint folder."),
                out: str = typer.Option(..., "--out", help="SFT traces JSONL to write."),
                k: int = typer.Option(4, "--k", help="Completions sampled per row."),
                min_iou: float = typer.Option(0.5, "--min-iou", help="Keep traces with answer IoU >= this."),
                max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
                temperature: float = typer.Option(1.0, "--temperature"),
                window: float = typer.Option(30.0, "--window", help="Window length in seconds (<= 0: whole video)."),
                fps: float = typer.Option(1.0, "--fps", help="Frames per second of window."),
                max_frames: int = typer.Option(16, "--max-frames"),
                seed: int = typer.Option(0, "--seed"),
                limit: int = typer.Option(None, "--limit", help="Only the first N rows."),
                as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
        from grounder.cliutil import emit
        from trainer.data import FrameConfig, WindowConfig
        from trainer.traces import run_traces

        s = run_traces(dataset, teacher, out, k=k, min_iou=min_iou, max_new_tokens=max_new_tokens,
                       temperature=temperature, frames=FrameConfig(fps=fps, max_frames=max_frames),
                       window=WindowConfig(length=window), seed=seed, limit=limit, progress=True)
        human = (f"traces: {s['kept']}/{s['sampled']} sampled traces kept ({s['keep_rate']:.1%}), "
                 f"{s['rows_with_trace']}/{s['rows']} rows with >= 1 kept trace\nout: {s['out']}")
        emit(s, as_json, human)

    data_app.command("traces", help="Sample k reasoning traces per row from a teacher grounder; keep "
                                    "those whose anchors improve and whose IoU passes (TAR-TVG).")(_traces)
