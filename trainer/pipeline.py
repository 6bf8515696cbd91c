"""`groundqa train pipeline RECIPE.yaml`: the embedded default model, start to finish, one command.

    synth         seeded synthetic training videos + annotations (`groundqa synth`, a subprocess:
                  trainer and evals exchange files, not imports)
    embedder      (when `embedder` is set) the clip-text dual encoder that retrieves candidate
                  windows (trainer.embedder); shipped as the model folder's `retriever/`
    calibrate     (with `embedder` and `calibrate_rows` > 0) how early / late its runs start and
                  end on the training world (trainer.calibrate); the model's scan_config.json
                  gets the shifts that cancel it
    vision        (when `vision` is set) the tiny model is built and its vision tower warmed up on
                  dense per-token labels from the videos' timelines (trainer.vision_pretrain)
    sft           cold start (from the vision stage's model, if any) on the scan's window shapes
                  (coarse + zoom levels, `data.views`) and QA samples (`data.qa`)
    difficulty    k samples per grounding row with the SFT model -> "difficulty" (mean IoU)
    grpo          from the SFT model on the rows whose difficulty is in `difficulty_range`
                  (IoU + CenDist + format rewards, token-aware KL: `grpo.beta_time`)
    after         difficulty again with the GRPO model on the same rows (before/after plot)
    model         out_dir/model: the GRPO model (+ `retriever/`, + scan_config.json) and MODEL_CARD
                  facts (timings.json)

Every stage is skipped when its output exists, so a killed run resumes where it stopped (the SFT
and GRPO stages also resume inside from their checkpoints). `data.train` and `model.path` of the
stages are filled in here; the rest of each stage is an ordinary recipe (`trainer/recipes/`).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grounder.errors import ConfigError
from trainer.config import DifficultyRecipe, GRPORecipe, SFTRecipe, from_dict, to_dict
from trainer.embedder import EmbedderConfig
from trainer.vision_pretrain import VisionConfig


@dataclass
class SynthConfig:
    """`groundqa synth --videos N --minutes A-B --seed S` (seeds of held-out sets must differ)."""

    videos: int = 60
    minutes: str = "3-6"
    seed: int = 1000
    sizes: str = ""  # object sizes in px, "32,36,40" (`--sizes`); "" = the world's default (18-26)


@dataclass
class PipelineRecipe:
    out_dir: str = "runs/default"
    synth: SynthConfig = field(default_factory=SynthConfig)
    embedder: EmbedderConfig | None = None  # None: no retriever (the VLM's own coarse pass)
    vision: VisionConfig | None = None  # None: the SFT starts from a random vision tower
    sft: SFTRecipe = field(default_factory=SFTRecipe)
    difficulty: DifficultyRecipe = field(default_factory=DifficultyRecipe)
    difficulty_range: list[float] = field(default_factory=lambda: [0.05, 0.95])
    grpo: GRPORecipe = field(default_factory=GRPORecipe)
    # written to model/scan_config.json: the ScanBudget the model was trained for (grounder.scan)
    scan: dict[str, Any] = field(default_factory=dict)
    # enter and leave rows each on which the retriever's run bias is measured (0: not measured)
    calibrate_rows: int = 60
    # written to model/domain.json: the videos the model knows (grounder.domain); {} = any
    domain: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.domain:
            from grounder.domain import Domain

            try:
                Domain(**self.domain)
            except TypeError as e:
                raise ConfigError(f"domain: {e}") from None
        if self.calibrate_rows < 0:
            raise ConfigError(f"calibrate_rows must be >= 0, got {self.calibrate_rows}")
        if self.scan:
            from grounder.scan import ScanBudget

            try:
                ScanBudget(**self.scan)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"scan: {e}") from None
        lo_hi = self.difficulty_range
        if len(lo_hi) != 2 or not 0.0 <= lo_hi[0] <= lo_hi[1] <= 1.0:
            raise ConfigError(f"difficulty_range must be [lo, hi] in [0, 1], got {lo_hi}")


def load_pipeline(path: str | Path, overrides: list[str] | None = None) -> PipelineRecipe:
    from trainer.config import read_config

    return from_dict(PipelineRecipe, read_config(path, overrides))


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(f"[pipeline] {msg}", file=sys.stderr, flush=True)


def run_pipeline(recipe: PipelineRecipe, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) every stage; returns the summary also written to out_dir/timings.json."""
    from trainer.difficulty import run_difficulty
    from trainer.loop import run

    out = Path(recipe.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps(
        {**to_dict(recipe), "command": "groundqa " + " ".join(sys.argv[1:])
         if Path(sys.argv[0]).name == "groundqa" else None}, indent=1))
    times_path = out / "timings.json"
    times: dict[str, Any] = json.loads(times_path.read_text()) if times_path.exists() else {}

    def stage(name: str, done: Path, fn: Any) -> None:
        if done.exists():
            _log(f"{name}: done before ({done})", progress)
            return
        _log(f"{name} ...", progress)
        t0 = time.time()
        result = fn()
        times[name] = {"seconds": round(time.time() - t0, 1),
                       **({k: v for k, v in result.items() if isinstance(v, (int, float, str))}
                          if isinstance(result, dict) else {})}
        times_path.write_text(json.dumps(times, indent=1))

    synth = out / "synth"
    ann = synth / "annotations.jsonl"

    def do_synth() -> dict[str, Any]:
        s = recipe.synth
        cmd = [sys.executable, "-m", "groundqa", "synth", "--out", str(synth), "--videos", str(s.videos),
               "--minutes", s.minutes, "--seed", str(s.seed), "--json"] + (["--sizes", s.sizes] if s.sizes else [])
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise ConfigError(f"synth failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}")
        return json.loads(res.stdout)

    stage("synth", ann, do_synth)

    if recipe.embedder is not None:
        from trainer.embedder import run_embedder

        emb = recipe.embedder
        emb.data = str(ann)
        emb.out_dir = str(out / "embedder")
        stage("embedder", out / "embedder" / "model", lambda: run_embedder(emb, progress))
        if recipe.calibrate_rows > 0:
            stage("calibrate", out / CALIBRATION, lambda: do_calibrate(recipe, out, ann))

    sft = recipe.sft
    if recipe.vision is not None:
        vision_model = out / "vision" / "model"

        def do_vision() -> dict[str, Any]:
            from grounder.tiny import save_pretrained
            from trainer.loop import load_model
            from trainer.vision_pretrain import run_vision

            model, processor = load_model(sft.model)
            summary = run_vision(recipe.vision, model, processor, ann, out / "vision", progress)
            tmp = out / "vision" / ".model.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            save_pretrained(model, processor, tmp)
            tmp.rename(vision_model)
            return summary

        stage("vision", vision_model, do_vision)
        sft.model.path = str(vision_model)
    sft.data.train = str(ann)
    sft.train.out_dir = str(out / "sft")
    stage("sft", out / "sft" / "model", lambda: _summary(run("sft", sft, progress)))

    diff = recipe.difficulty
    diff.data.train = str(ann)
    diff.model.path = str(out / "sft" / "model")
    diff.difficulty.out = str(out / "difficulty_sft.jsonl")
    stage("difficulty", Path(diff.difficulty.out), lambda: run_difficulty(diff, progress))

    grpo = recipe.grpo
    grpo.data.train = diff.difficulty.out
    grpo.data.difficulty_filter = list(recipe.difficulty_range)
    grpo.model.path = str(out / "sft" / "model")
    grpo.train.out_dir = str(out / "grpo")
    stage("grpo", out / "grpo" / "model", lambda: _summary(run("grpo", grpo, progress)))

    after = copy.deepcopy(diff)
    after.data.train = diff.difficulty.out  # its "difficulty" values are the "before"
    after.model.path = str(out / "grpo" / "model")
    after.difficulty.out = str(out / "difficulty_grpo.jsonl")
    stage("after", Path(after.difficulty.out), lambda: run_difficulty(after, progress))

    final = out / "model"

    def do_model() -> dict[str, Any]:
        tmp = out / ".model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(out / "grpo" / "model", tmp)
        if recipe.embedder is not None:
            shutil.copytree(out / "embedder" / "model", tmp / "retriever")
        scan = dict(recipe.scan)
        if (out / CALIBRATION).is_file():  # a stage of this run, for this retriever
            c = json.loads((out / CALIBRATION).read_text())
            scan.update(retrieval_onset_shift=c["onset"], retrieval_offset_shift=c["offset"])
        if scan:
            (tmp / "scan_config.json").write_text(json.dumps(scan, indent=1) + "\n")
        if recipe.domain:
            (tmp / "domain.json").write_text(json.dumps(recipe.domain) + "\n")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        return {"path": str(final)}

    stage("model", final, do_model)
    times["total_seconds"] = round(sum(v["seconds"] for v in times.values() if isinstance(v, dict)), 1)
    times_path.write_text(json.dumps(times, indent=1))
    return {"out_dir": str(out), "model": str(final), "timings": times}


CALIBRATION = "calibration.json"


def do_calibrate(recipe: PipelineRecipe, out: Path, ann: Path) -> dict[str, Any]:
    """The retriever's run bias on its own training world (trainer.calibrate), scanned with the
    recipe's budget, written to out/calibration.json."""
    from grounder.files import write_text_atomic
    from grounder.retrieval import Retriever
    from grounder.scan import ScanBudget
    from trainer.calibrate import measure_run_shift

    budget = ScanBudget(**{**recipe.scan, "retrieval_onset_shift": 0.0, "retrieval_offset_shift": 0.0})
    result = measure_run_shift(Retriever.load(out / "embedder" / "model"), ann, budget, recipe.calibrate_rows)
    write_text_atomic(out / CALIBRATION, json.dumps(result, indent=1) + "\n")
    return result


def _summary(s: dict[str, Any]) -> dict[str, Any]:
    last = s.get("last") or {}
    return {"steps": s.get("steps"), **{f"last_{k}": v for k, v in last.items() if isinstance(v, (int, float))}}
