"""The training loop behind `groundqa train sft|grpo`: model, data, steps, logs, checkpoints, plots.

    out_dir/
      metrics.jsonl          one JSON object per step (loss, rewards by component, KL, ...)
      checkpoint/            model + processor + trainer_state.pt (optimizer, step, RNG); resumable
      model/                 the final model (safetensors + processor, `grounder.tiny.save_pretrained`)
      curves.png             reward / IoU / KL (GRPO) or loss (SFT) per step
      tb/                    TensorBoard events, when tensorboard is installed
      config.yaml            the resolved recipe

Resume: with `train.resume` and `out_dir/checkpoint`, the model, optimizer and RNG states are
loaded and the data continue at the saved step (the dataset's order is a function of the step).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from grounder.errors import ConfigError
from trainer.config import GRPORecipe, SFTRecipe, to_dict
from trainer.data import GroundingDataset

STATE = "trainer_state.pt"


def load_model(cfg: Any, path: str | None = None) -> tuple[Any, Any]:
    """(model, processor) from a folder, or the tiny model of the config's family and seed."""
    from grounder.tiny import build_tiny

    path = path or cfg.path
    if path is None:
        size = getattr(cfg, "size", None)
        return build_tiny(cfg.family, seed=cfg.seed, **({"size": size} if size is not None else {}))
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if not Path(path).is_dir():
        raise ConfigError(f"model.path: no such folder {path}")
    model = AutoModelForImageTextToText.from_pretrained(path)
    processor = AutoProcessor.from_pretrained(path)
    model.eval()
    return model, processor


def _save(model: Any, processor: Any, out: Path, state: dict[str, Any] | None = None) -> None:
    """Write into a temp folder, then rename: a checkpoint is whole or absent."""
    from grounder.tiny import save_pretrained

    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_pretrained(model, processor, tmp)
    if state is not None:
        torch.save(state, tmp / STATE)
    old = out.with_name(f".{out.name}.old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


class _Logger:
    def __init__(self, out: Path, start: int) -> None:
        self.path = out / "metrics.jsonl"
        if self.path.exists():  # keep the steps before the resume point only
            rows = [json.loads(x) for x in self.path.read_text().splitlines() if x.strip()]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] < start))
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tb"))
        except ImportError:  # tensorboard not installed: JSONL + PNG only
            self.tb = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def plot_curves(metrics_path: Path, out_png: Path) -> Path | None:
    """Reward, IoU and KL (or loss) per step, with a moving average."""
    rows = [json.loads(x) for x in metrics_path.read_text().splitlines() if x.strip()]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("reward", "reward/iou", "reward/cendist", "reward/format", "kl", "loss") if k in rows[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False)
    steps = [r["step"] for r in rows]
    for ax, k in zip(axes[0], keys):
        ys = [r[k] for r in rows]
        ax.plot(steps, ys, lw=0.8, alpha=0.5)
        w = max(1, len(ys) // 10)
        if w > 1:
            ma = [sum(ys[max(0, i - w + 1): i + 1]) / len(ys[max(0, i - w + 1): i + 1]) for i in range(len(ys))]
            ax.plot(steps, ma, lw=1.6)
        ax.set_title(k)
        ax.set_xlabel("step")
    fig.tight_layout()
    from grounder.plot import save_png

    return save_png(fig, out_png, dpi=90)


def run(stage: str, recipe: SFTRecipe | GRPORecipe, progress: bool = True) -> dict[str, Any]:
    """Train; returns a summary (steps, first/last metrics, paths)."""
    from trainer.grpo import VideoGRPO
    from trainer.sft import VideoSFT

    tc = recipe.train
    out = Path(tc.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(recipe), sort_keys=False))
    if tc.threads:
        torch.set_num_threads(tc.threads)
    data = GroundingDataset(recipe.data.train, recipe.data.frames, recipe.data.window,
                            seed=recipe.data.seed, limit=recipe.data.limit,
                            difficulty_filter=recipe.data.difficulty_filter,
                            difficulty_weighting=recipe.data.difficulty_weighting,
                            views=recipe.data.views)
    ckpt = out / "checkpoint"
    resuming = tc.resume and (ckpt / STATE).is_file()
    model, processor = load_model(recipe.model, str(ckpt) if resuming else None)
    torch.manual_seed(tc.seed)
    if stage == "grpo":
        cfg = copy.deepcopy(recipe.grpo)
        cfg.freeze_vision = tc.freeze_vision
        ref = None
        if cfg.beta or cfg.beta_time:  # the reference is the *initial* model, also on resume
            ref = load_model(recipe.model)[0] if resuming else copy.deepcopy(model)
        trainer: Any = VideoGRPO(model, processor, cfg, ref_model=ref, learning_rate=tc.learning_rate,
                                 max_grad_norm=tc.max_grad_norm)
    elif stage == "sft":
        trainer = VideoSFT(model, processor, tc.learning_rate, tc.freeze_vision, max_grad_norm=tc.max_grad_norm)
    else:
        raise ConfigError(f"unknown stage {stage!r}")
    if stage == "grpo" and recipe.difficulty.reestimate_each_epoch:
        from trainer.difficulty import epoch_hook, make_sampler

        dc = recipe.difficulty
        sampler = make_sampler(model, processor, dc.k, dc.max_new_tokens, dc.temperature, tc.freeze_vision)
        data.epoch_hook = epoch_hook(sampler, data, dc, out, progress)
    start = 0
    if resuming:
        state = torch.load(ckpt / STATE, weights_only=False)
        trainer.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        start = int(state["step"])
    logger = _Logger(out, start)
    first: dict[str, float] | None = None
    last: dict[str, float] = {}
    t0 = time.time()
    batches = data.batches(tc.batch_size, start_step=start)
    for step in range(start, tc.steps):
        _, samples = next(batches)
        m = trainer.step(samples)
        m["seconds"] = time.time() - t0
        logger.log(step, m)
        first = first or m
        last = m
        if progress:
            shown = " ".join(f"{k}={v:.3f}" for k, v in m.items() if k in ("loss", "reward", "reward/iou", "kl"))
            print(f"[{stage}] step {step + 1}/{tc.steps} {shown}", file=sys.stderr, flush=True)
        done = step + 1
        if (tc.save_every and done % tc.save_every == 0) or done == tc.steps:
            _save(model, processor, ckpt, {"optimizer": trainer.optimizer.state_dict(), "step": done,
                                           "torch_rng": torch.get_rng_state()})
    logger.close()
    _save(model, processor, out / "model")
    png = plot_curves(logger.path, out / "curves.png")
    return {"stage": stage, "steps": tc.steps, "resumed_from": start, "first": first, "last": last,
            "model": str(out / "model"), "metrics": str(logger.path), "curves": str(png) if png else None}
