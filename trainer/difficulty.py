"""Difficulty control: how hard each row is for the current model, and what GRPO does with it.

A row's `"difficulty"` is the mean IoU of k answers the model samples for it (VTG-R1, Time-R1,
TimeZero): 1.0 = always right (too easy, no GRPO signal: every completion gets the same reward),
0.0 = never overlaps (hopeless for now). GRPO then

- keeps rows with difficulty in [lo, hi] (`data.difficulty_filter`, `filter_by_range`), and/or
- draws each epoch's rows with Gaussian weights around a target difficulty
  (`data.difficulty_weighting`, `gaussian_weights` + `weighted_order`; Time-R1).

`groundqa train difficulty CONFIG.yaml` samples with VideoGRPO's own generation (the video goes
in through `grounder.qwen`, vision features encoded once per prompt) and writes the dataset with
`"difficulty"` on each row (temp + rename), a histogram, and `difficulty.png` (before / after)
when the input already had difficulties. With `difficulty.traces` it also writes TAR-TVG's
distilled traces: completions whose timestamp anchors improve step by step
(`trainer.rewards.anchor_reward == 1.0`) with IoU >= `difficulty.trace_min_iou`, as SFT rows
(`"trace"` + the `"window"` they were sampled on).

The pure functions here import nothing heavy; the estimation imports torch lazily.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grounder.files import write_text_atomic
from trainer.difficulty_math import (  # noqa: F401 (the stage's pure maths, re-exported)
    filter_by_range,
    gaussian_weights,
    histogram,
    is_distilled_trace,
    row_difficulty,
    weighted_order,
)
from trainer.models import load_model

# -- estimation -------------------------------------------------------------------------------

def make_sampler(model: Any, processor: Any, k: int, max_new_tokens: int, temperature: float = 1.0,
                 freeze_vision: bool = True) -> Any:
    """A `VideoGRPO` used only for its sampling and rollout scoring (no reference model)."""
    from trainer.grpo import GRPOConfig, VideoGRPO

    cfg = GRPOConfig(num_generations=k, max_new_tokens=max_new_tokens, temperature=temperature,
                     beta=0.0, beta_time=0.0, freeze_vision=freeze_vision)
    return VideoGRPO(model, processor, cfg)


def estimate(grpo: Any, sample: Any) -> tuple[float, Any]:
    """(mean IoU of `grpo.config.num_generations` sampled answers, the rollout) for one sample."""
    from trainer.grpo import encode_video

    prompt = sample.inputs(grpo.processor)
    feats = encode_video(grpo.model, prompt) if grpo.reuse else None
    rollout = grpo.make_rollout(sample, grpo.generate(prompt, feats), prompt)
    return float(rollout.parts["iou"].mean()), rollout


def estimate_rows(grpo: Any, dataset: Any, indices: Sequence[int], epoch: int = 0,
                  progress: bool = False, label: str = "difficulty") -> tuple[dict[int, float], dict[int, Any]]:
    """Difficulty of `dataset.all_rows[i]` for each i (one window per row, drawn as the dataset
    draws sample i of `epoch`, never a negative window). Returns ({i: difficulty}, {i: rollout})."""
    import dataclasses

    from trainer.data import make_sample

    window = dataclasses.replace(dataset.window, negative_prob=0.0)
    views = getattr(dataset, "views", None) or []
    out: dict[int, float] = {}
    rollouts: dict[int, Any] = {}
    t0 = time.time()
    for n, i in enumerate(indices, 1):
        rng = random.Random(f"{dataset.seed}/{epoch}/{i}")
        if views:  # the window shapes training draws from (data.views), never a negative
            view = rng.choices(views, weights=[v.weight for v in views])[0]
            frames, win = view.frames, dataclasses.replace(view.window, negative_prob=0.0)
        else:
            frames, win = dataset.frames, window
        sample = make_sample(dataset.all_rows[i], frames, win, rng)
        out[i], rollouts[i] = estimate(grpo, sample)
        if progress:
            print(f"[{label}] {n}/{len(indices)} row {i}: mean IoU {out[i]:.3f} "
                  f"({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    return out, rollouts


def epoch_hook(grpo: Any, dataset: Any, cfg: Any, out_dir: Path, progress: bool = False) -> Any:
    """GRPO's per-epoch re-estimation (`difficulty.reestimate_each_epoch`): at the start of each
    epoch, the current policy re-estimates `cfg.subset` rows (None: all; a subset drawn from
    (seed, epoch)) and the dataset re-filters / re-weights. Each epoch's estimate is stored in
    `out_dir/difficulty/epoch_NNNN.json` and read back on resume instead of sampled again."""
    folder = Path(out_dir) / "difficulty"

    def hook(epoch: int) -> None:
        path = folder / f"epoch_{epoch:04d}.json"
        if path.is_file():
            values = {int(k): v for k, v in json.loads(path.read_text()).items()}
        else:
            idx = list(range(len(dataset.all_rows)))
            if cfg.subset and cfg.subset < len(idx):
                idx = sorted(random.Random(f"{dataset.seed}/subset/{epoch}").sample(idx, cfg.subset))
            import torch

            with torch.random.fork_rng():  # training's sampling RNG is untouched (resume = uninterrupted)
                torch.manual_seed(cfg.seed * 100003 + epoch)
                values, _ = estimate_rows(grpo, dataset, idx, epoch, progress, f"difficulty epoch {epoch}")
            folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps({str(k): v for k, v in values.items()}) + "\n")
        dataset.set_difficulties(values)

    return hook


# -- files ------------------------------------------------------------------------------------

def check_output_holds_videos(dst: Path, rows: Sequence[Any], key: str,
                              escape: str = ", or set data.allow_outside_paths=true") -> None:
    """A dataset written to `dst` names its rows' videos relative to its folder; the trainer reads
    only videos inside a dataset's folder (`trainer.data.load_rows`), so an output folder that does
    not hold them would write a dataset nobody can train on: a one-line error, before any work."""
    from grounder.errors import ConfigError
    from grounder.files import inside

    outside = next((r.video for r in rows if not inside(r.video, dst.resolve().parent)), None)
    if outside is not None:
        raise ConfigError(f"{key}: {dst} is not in a folder that holds the dataset's videos ({outside}); "
                          f"write it beside its source dataset{escape}")


def _raw_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _video_for(raw_video: str, src: Path, dst: Path) -> str:
    """The row's video path as seen from the output file's folder."""
    v = Path(raw_video)
    if not v.is_absolute():
        v = src.resolve().parent / v
    try:
        return os.path.relpath(v, dst.resolve().parent)
    except ValueError:  # another drive
        return str(v)


def plot_difficulty(before: Sequence[float], after: Sequence[float], out_png: Path) -> Path:
    """Histograms of the previous and the new difficulties, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    edges = [i / 10 for i in range(11)]
    ax.hist([list(before), list(after)], bins=edges, label=["before", "after"])
    ax.set_xlabel("difficulty (mean IoU of the model's samples)")
    ax.set_ylabel("rows")
    ax.legend()
    fig.tight_layout()
    from grounder.plot import save_png

    return save_png(fig, out_png, dpi=90)


def run_difficulty(recipe: Any, progress: bool = True) -> dict[str, Any]:
    """`groundqa train difficulty`: estimate, write the dataset (+ traces, + plot); a summary."""
    import torch

    from trainer.data import GroundingDataset

    dc, data = recipe.difficulty, recipe.data
    src = Path(data.train)
    dst = Path(dc.out) if dc.out else src.with_name(f"{src.stem}.difficulty.jsonl")
    if dc.threads:
        torch.set_num_threads(dc.threads)
    ds = GroundingDataset(src, data.frames, data.window, seed=data.seed, limit=data.limit, views=data.views,
                          allow_outside=data.allow_outside_paths)
    if not data.allow_outside_paths:
        check_output_holds_videos(dst, ds.all_rows, "difficulty.out")
        if dc.traces:
            check_output_holds_videos(Path(dc.traces), ds.all_rows, "difficulty.traces")
    model, processor = load_model(recipe.model)
    torch.manual_seed(dc.seed)
    grpo = make_sampler(model, processor, dc.k, dc.max_new_tokens, dc.temperature)
    t0 = time.time()
    values, rollouts = estimate_rows(grpo, ds, range(len(ds.all_rows)), 0, progress)

    raws = _raw_rows(src)
    before, after, traces = [], [], []
    g = 0  # index among grounding rows (the dataset's rows, in file order)
    for raw in raws:
        if raw.get("kind", "grounding") != "grounding":
            continue
        if g in values:
            if raw.get("difficulty") is not None:
                before.append(float(raw["difficulty"]))
            raw["difficulty"] = round(values[g], 4)
            after.append(values[g])
            r = rollouts[g]
            for text in r.texts:
                if is_distilled_trace(text, r.sample.span, r.sample.length, dc.trace_min_iou):
                    traces.append({**{k: v for k, v in raw.items() if k != "difficulty"},
                                   "trace": text, "window": [round(r.sample.start, 3), round(r.sample.end, 3)],
                                   # the one span this trace answers, in absolute seconds
                                   "spans": [[round(r.sample.start + r.sample.span[0], 3),
                                              round(r.sample.start + r.sample.span[1], 3)]]})
        g += 1
    for raw in raws:
        if "video" in raw:
            raw["video"] = _video_for(raw["video"], src, dst)
    write_text_atomic(dst, "".join(json.dumps(r) + "\n" for r in raws))
    traces_path = None
    if dc.traces:
        traces_path = Path(dc.traces)
        for t in traces:
            t["video"] = _video_for(t["video"], src, traces_path)
        write_text_atomic(traces_path, "".join(json.dumps(t) + "\n" for t in traces))
    png = None
    if before:
        png = plot_difficulty(before, after, dst.with_name("difficulty.png"))
    mean = sum(after) / len(after) if after else 0.0
    return {"rows": len(after), "k": dc.k, "mean": mean, "histogram": histogram(after),
            "histogram_before": histogram(before) if before else None,
            "easy": sum(1 for d in after if d >= 0.8), "hopeless": sum(1 for d in after if d == 0.0),
            "out": str(dst), "plot": str(png) if png else None,
            "traces": str(traces_path) if traces_path else None, "traces_kept": len(traces),
            "seconds": round(time.time() - t0, 1)}
