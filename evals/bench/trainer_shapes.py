"""Training steps at real shapes: Qwen2.5-VL-7B, Qwen3-VL-4B and Qwen3-VL-8B with every width of the
real checkpoint (public configs in ../shared/data/models, random weights) and the depth cut to 2
text and 2 vision layers; one SFT step and one GRPO step (G = 8) on a 16-s window of a real clip at
2 fps; step time and peak memory, set beside trainer.memory's model; then the model extrapolated
to full depth, on one and on eight 80-GB GPUs, with and without sharding and checkpointing.

    python -m evals.bench.trainer_shapes [--models 7b,4b,8b] [--stages sft,grpo] [--no-write] [--from-json]

Each (model, stage) runs in a fresh process (its peak resident memory is its own). What trains:
the decoder layers (embeddings, LM head and vision tower frozen: a full fine-tune of the 2-layer
7B / 8B shapes needs ~25 GB with AdamW, more than this machine has; the model gives that case).
GRPO with beta = 0 (no reference copy), max 32 new tokens. Writes its section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

MODELS = {"7b": "Qwen2.5-VL-7B-Instruct", "4b": "Qwen3-VL-4B-Instruct", "8b": "Qwen3-VL-8B-Instruct"}
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
CLIP = SHARED / "videos" / "bigbuckbunny.mp4"
WINDOW = (10.0, 26.0)  # seconds of the clip
SIDE = 224  # frame side in pixels: 8 x 8 tokens per 2 frames (Qwen2.5-VL), 7 x 7 (Qwen3-VL)


def _peak_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024 ** 2
    return float("nan")


def window_sample(frames: int | None = None, side: int = SIDE) -> Any:
    """The benches' training sample: WINDOW of CLIP at 2 fps (the first `frames` only, when given),
    frames resized to `side` x `side`, a grounding query and its direct trace as the SFT target."""
    import numpy as np
    from PIL import Image

    from grounder.video import open_video
    from trainer.data import GroundingSample, direct_trace

    times = np.arange(WINDOW[0], WINDOW[1], 0.5)[:frames]
    pixels, times = open_video(CLIP).sample(times)
    pixels = np.stack([np.asarray(Image.fromarray(f).resize((side, side), Image.BICUBIC)) for f in pixels])
    span = (4.0, 9.5)
    return GroundingSample(video=CLIP, query="the rabbit comes out of its burrow", start=WINDOW[0], end=WINDOW[1],
                           span=span, frames=pixels, timestamps=times, fps=2.0, target=direct_trace(span))


def train_decoder_layers_only(model: Any) -> int:
    """Freeze all but the language model's decoder layers (what these benches train); their count."""
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.model.language_model.layers.parameters():
        p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def one(model_key: str, stage: str) -> dict[str, Any]:
    """One step of `stage` on `model_key`'s 2-layer real shape; figures as a dict."""
    import torch

    from grounder.real_shapes import build_real_shape, parameter_groups
    from trainer.grpo import GRPOConfig, VideoGRPO
    from trainer.memory import step_memory, text_shape
    from trainer.sft import IGNORE, VideoSFT, sft_batch

    torch.manual_seed(0)
    folder = SHARED / "models" / MODELS[model_key]
    model, processor = build_real_shape(folder, text_layers=2, vision_layers=2)
    counts = parameter_groups(model)
    trainable = train_decoder_layers_only(model)
    sample = window_sample()
    if stage == "sft":  # the batch's sizes, counted before the timed step (which builds it itself)
        batch = sft_batch(processor, [sample])
        tokens, kept = int(batch["input_ids"].shape[1]), int((batch["labels"] != IGNORE).sum())
        del batch
    before = _peak_gb()
    t0 = time.perf_counter()
    if stage == "sft":
        trainer: Any = VideoSFT(model, processor, learning_rate=1e-5, freeze_vision_tower=True)
        metrics = trainer.step([sample])
    else:
        trainer = VideoGRPO(model, processor, GRPOConfig(num_generations=8, max_new_tokens=32, beta=0.0))
        metrics = trainer.step([sample])
        r = trainer.last_rollouts[0]
        # the prompt goes through the language model once, its G completions on its cache
        tokens = int(r.prompt["input_ids"].shape[1] + r.completion_ids.numel())
        kept = int(r.completion_ids.numel())
    seconds = time.perf_counter() - t0
    shape = text_shape(model.config.get_text_config())
    modelled = step_memory(counts["total"], trainable, shape, tokens, kept, act_bytes=4)
    return {"model": MODELS[model_key], "stage": stage, "params": counts, "trainable": trainable,
            "sequence_tokens": tokens, "scored_tokens": kept, "step_s": round(seconds, 1),
            "peak_gb": round(_peak_gb(), 2), "peak_before_step_gb": round(before, 2),
            "modelled_gb": {k: round(v, 2) for k, v in modelled.items()},
            "loss": float(metrics["loss"]), "threads": torch.get_num_threads()}


def full_depth_table() -> list[str]:
    """The memory model at full depth: GB per GPU for one GRPO micro-batch (one prompt, G = 8
    completions of 256 tokens sharing a 2,048-token prompt's cache), a full fine-tune of the language model."""
    from grounder.real_shapes import build_real_shape, parameter_groups
    from trainer.memory import step_memory, text_shape

    settings = [{}, {"checkpointing": True}, {"gpus": 8, "checkpointing": True}, {"gpus": 8, "shard": True},
                {"gpus": 8, "shard": True, "checkpointing": True}]
    lines = [("| model (full depth) | parameters | trained (LM) | 1 GPU | 1 GPU + checkpointing | 8 GPUs DDP + ckpt | "
              "8 GPUs sharded | 8 GPUs sharded + ckpt |"), "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in MODELS.values():
        model, _ = build_real_shape(SHARED / "models" / name, None, None, meta=True)
        c = parameter_groups(model)
        trained = c["total"] - c["vision"]
        shape = text_shape(model.config.get_text_config())
        cells = [f"{step_memory(c['total'], trained, shape, 2048 + 8 * 256, 8 * 256, **kw)['total_gb']:.0f}"
                 for kw in settings]
        lines.append(f"| {name} | {c['total'] / 1e9:.2f} B | {trained / 1e9:.2f} B | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="7b,4b,8b")
    ap.add_argument("--stages", default="sft,grpo")
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "STAGE"), help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    ap.add_argument("--out", default="docs/bench/trainer_shapes.json")
    ap.add_argument("--from-json", action="store_true", help="rewrite the section from --out's figures, no run")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    results: list[dict[str, Any]] = json.loads(Path(args.out).read_text()) if args.from_json else []
    for m in [] if args.from_json else args.models.split(","):
        for s in args.stages.split(","):
            done = subprocess.run([sys.executable, "-m", "evals.bench.trainer_shapes", "--one", m, s],
                                  capture_output=True, text=True, check=False)
            if done.returncode:
                raise SystemExit(f"{m} {s} failed: {done.stderr.strip().splitlines()[-1:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    if not args.from_json:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    gaps = [r["peak_gb"] - r["modelled_gb"]["total_gb"] for r in results]
    lines = [
        "## Training steps at real shapes (evals/bench/trainer_shapes.py)",
        "",
        (f"`python -m evals.bench.trainer_shapes` on {date.today().isoformat()}, machine: {os.cpu_count()} CPU cores, "
         f"no GPU, CPython {platform.python_version()}, fp32. Each model is its public config (every width real) cut "
         "to 2 text and 2 vision layers, random weights, the real processor; one step on a 16-s window of "
         f"`bigbuckbunny.mp4` at 2 fps ({SIDE} x {SIDE} frames); the decoder layers train (embeddings, LM head, vision "
         "frozen: AdamW over the whole 2-layer 7B / 8B shapes needs ~25 GB, more than this machine). GRPO: G = 8, "
         "up to 32 new tokens, beta 0. Peak = the process's peak resident memory (Python, torch and the "
         "processor included); modelled = trainer.memory for that step (fp32 activations). Figures in "
         f"`{args.out}`."),
        "",
        "| model (2 layers) | stage | parameters | trained | sequence tokens | step s | peak GB | modelled GB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['model']} | {r['stage']} | {r['params']['total'] / 1e9:.2f} B | {r['trainable'] / 1e9:.2f} B | "
                     f"{r['sequence_tokens']} | {r['step_s']} | {r['peak_gb']} | {r['modelled_gb']['total_gb']} |")
    if gaps:
        lines += ["", (f"The model stays {min(gaps):.1f} to {max(gaps):.1f} GB under the measured peaks, the part it leaves out "
                       "(the Python runtime, torch's own allocations, the processor and the decoded frames).")]
    lines += ["", ("The memory model at full depth (trainer/memory.py; GB per GPU, one GRPO micro-batch: one prompt of "
                   "2,048 tokens, G = 8 completions of 256 on its cache; the language model fully trained, vision frozen; fp32 "
                   "weights and AdamW, bf16 activations; no reference model). Sharded = FSDP full shard or ZeRO-3. "
                   "Not measured: no GPU was available to this session; `bash tools/gpu_check.sh` "
                   "(evals/bench/gpu_check.py) measures the 2-layer shapes and the full-depth 7B GRPO step (peak "
                   "memory, tokens/s, MFU) in one run of at most 10 minutes when one is."), ""]
    lines += full_depth_table()
    if not args.no_write:
        from evals.bench.report_md import write_section

        write_section("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
