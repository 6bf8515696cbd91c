"""Every GPU figure the trainer issue asks for, in one run of at most ~10 minutes on one GPU.

    bash tools/gpu_check.sh                 # on a machine with a CUDA GPU; JSON to $OUT or docs/bench/
    python -m evals.bench.gpu_check --smoke # the same code on the CPU with a tiny model (a test runs it)

1. The 2-layer real shapes (Qwen2.5-VL-7B, Qwen3-VL-4B, Qwen3-VL-8B; evals.bench.trainer_shapes'
   models and clip): one SFT and one GRPO step (G = 8) each through the trainers, `train.dtype=bf16`
   (fp32 weights, bf16 autocast), decoder layers trained: seconds and peak memory
   (torch.cuda.max_memory_allocated), beside trainer.memory's model.
2. The full-depth Qwen2.5-VL-7B shape, random weights held in bf16 (AdamW's moments then bf16 too:
   fp32 weights and moments for 8.3 B parameters would not fit 80 GB), activation checkpointing,
   the vision tower frozen: one GRPO step at G = 8 on the 16-s clip. Peak memory, tokens per second
   and MFU = model FLOPs / (seconds x the GPU's dense bf16 peak): 2 x parameters per generated
   token, 6 x trained parameters per token of the training forwards and backward.

Everything runs in this process, one model at a time (memory freed between them).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from pathlib import Path
from typing import Any

# dense bf16 tensor-core peaks (FLOP/s) of the GPUs this may meet, from the vendors' data sheets
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}


def _peak_flops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def _step(model: Any, processor: Any, stage: str, device: Any, sample: Any, g: int, new_tokens: int) -> dict[str, Any]:
    import torch

    from trainer.grpo import GRPOConfig, VideoGRPO
    from trainer.runtime import autocast_for
    from trainer.sft import VideoSFT

    if stage == "sft":
        trainer: Any = VideoSFT(model, processor, learning_rate=1e-5)
    else:
        trainer = VideoGRPO(model, processor, GRPOConfig(num_generations=g, max_new_tokens=new_tokens, beta=0.0),
                            learning_rate=1e-6)
    if next(model.parameters()).dtype == torch.float32:
        trainer.autocast = autocast_for("bf16", device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    metrics = trainer.step([sample])
    if device.type == "cuda":
        torch.cuda.synchronize()
    out = {"stage": stage, "seconds": round(time.perf_counter() - t0, 2), "loss": float(metrics["loss"])}
    if device.type == "cuda":
        out["peak_gb"] = round(torch.cuda.max_memory_allocated() / 1024 ** 3, 2)
    if stage == "grpo":
        r = trainer.last_rollouts[0]
        out["prompt_tokens"] = int(r.prompt["input_ids"].shape[1])
        out["completion_tokens"] = int(r.completion_mask.sum())  # generated
        out["trained_tokens"] = out["prompt_tokens"] + int(r.completion_ids.numel())  # the training forwards' length
    return out


def _free() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny model, few tokens: checks the code path")
    ap.add_argument("--out", default=None, help="JSON file (default: $OUT/gpu_check.json or docs/bench/gpu_check.json)")
    ap.add_argument("--skip-full", action="store_true", help="only the 2-layer shapes")
    args = ap.parse_args(argv)

    import torch

    from evals.bench.trainer_shapes import MODELS, SHARED, train_decoder_layers_only, window_sample
    from grounder.real_shapes import build_real_shape, parameter_groups
    from trainer.runtime import enable_checkpointing

    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "shapes": [], "full": None}
    sample = window_sample(frames=4, side=64) if args.smoke else window_sample()
    g, new_tokens = (2, 4) if args.smoke else (8, 64)
    for key, name in ([("tiny", "tiny")] if args.smoke else list(MODELS.items())):
        if args.smoke:
            from grounder.tiny import build_tiny

            model, processor = build_tiny("qwen2_5_vl", seed=0)
        else:
            model, processor = build_real_shape(SHARED / "models" / name, text_layers=2, vision_layers=2)
        train_decoder_layers_only(model)
        model.to(device)
        for stage in ("sft", "grpo"):
            row = {"model": name, **_step(model, processor, stage, device, sample, g, new_tokens)}
            report["shapes"].append(row)
            print(json.dumps(row), flush=True)
        del model
        _free()
    if not args.skip_full:
        if args.smoke:  # the same steps on the tiny model, its weights in bf16
            from grounder.tiny import build_tiny

            model, processor = build_tiny("qwen2_5_vl", seed=0)
            model.to(torch.bfloat16)
        else:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            from grounder.real_shapes import real_config

            folder = SHARED / "models" / MODELS["7b"]
            with torch.device(device):
                model = AutoModelForImageTextToText.from_config(real_config(folder), dtype=torch.bfloat16)
            processor = AutoProcessor.from_pretrained(folder)
        counts = parameter_groups(model)
        enable_checkpointing(model)
        trained = counts["total"] - counts["vision"]
        row = _step(model, processor, "grpo", device, sample, g, new_tokens)
        tokens = row["trained_tokens"]  # training forwards: the prompt once, the completions on its cache
        flops = 2 * counts["total"] * row["completion_tokens"] + 6 * trained * tokens
        row.update({"model": MODELS["7b"] + " (full depth, bf16 weights)", "parameters": counts["total"],
                    "trained": trained, "tokens_per_s": round(tokens / row["seconds"], 1)})
        peak = _peak_flops(report["device"])
        if peak:
            row["mfu"] = round(flops / row["seconds"] / peak, 4)
        report["full"] = row
        print(json.dumps(row), flush=True)
    out = Path(args.out or (Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT")
                            else "docs/bench/gpu_check.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
