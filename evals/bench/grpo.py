"""GRPO step time: the prompt's video encoded once per step (reuse) vs re-encoded per forward.

Run: ``python -m evals.bench.grpo`` (``--help``). One GRPO step = G sampled completions per
prompt (generation), the reference forward and the policy forward + backward + optimizer step,
with the vision tower frozen. "re-encode" runs the vision tower on G copies of the video in
generation, in the reference and in the policy forward; "reuse" runs it once per prompt and
hands its output to all of them (`trainer.grpo.reuse_video_features`). Both trainers start from
the same weights and sample with the same seed, so their losses must agree (checked to 1e-5).

Two model sizes: the tests' tiny model (vision tower 2 x 64 wide, ~112x112 frames), and a
"vision-heavy" tiny model (4 x 256 wide vision tower, 224x224 frames) whose vision/text cost
ratio is closer to a real Qwen-VL's, where the vision tower is ~0.6B parameters over
thousands of visual tokens. Results go to BENCHMARKS.md (section "GRPO step").
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from evals.bench.report_md import BENCHMARKS, write_section

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## GRPO step (evals/bench/grpo.py)"


def _samples(n: int, frames: int, side: int):
    from trainer.data import GroundingSample

    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        out.append(GroundingSample(
            video=None, query="when does the red circle enter from the left",  # type: ignore[arg-type]
            start=0.0, end=float(frames), span=(2.0, 5.0),
            frames=rng.integers(0, 256, size=(frames, side, side, 3), dtype=np.uint8),
            timestamps=np.arange(frames) + 0.5, fps=2.0))
    return out


def bench(name: str, size, frames: int, side: int, g: int, prompts: int, new_tokens: int,
          rounds: int) -> dict:
    from grounder.tiny import build_tiny
    from trainer.grpo import GRPOConfig, VideoGRPO

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model, processor = build_tiny("qwen2_5_vl", seed=0, size=size)
    samples = _samples(prompts, frames, side)
    # The policy drifts from the reference (as after some updates), so the KL term is not zero
    # and the loss comparison means something even when all rewards of a random model are 0.
    policy = copy.deepcopy(model)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for p in policy.model.language_model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    trainers = {}
    for reuse in (True, False):
        cfg = GRPOConfig(num_generations=g, max_new_tokens=new_tokens, beta=0.04, reuse_vision=reuse)
        trainers[reuse] = VideoGRPO(copy.deepcopy(policy), processor, cfg, ref_model=copy.deepcopy(model),
                                    learning_rate=1e-5)
    visual_tokens = int((samples[0].inputs(processor)["input_ids"] == model.config.video_token_id).sum())
    times: dict[bool, list[float]] = {True: [], False: []}
    max_diff = 0.0
    for r in range(rounds + 1):  # round 0 warms up
        losses = {}
        for reuse in ((True, False) if r % 2 == 0 else (False, True)):
            torch.manual_seed(1000 + r)
            t0 = time.perf_counter()
            m = trainers[reuse].step(samples)
            dt = time.perf_counter() - t0
            losses[reuse] = m["loss"]
            if r:
                times[reuse].append(dt)
        max_diff = max(max_diff, abs(losses[True] - losses[False]))
        print(f"  {name} round {r}: loss reuse={losses[True]:.7f} re-encode={losses[False]:.7f}",
              file=sys.stderr)
    reuse_s, enc_s = statistics.median(times[True]), statistics.median(times[False])
    n_vis = sum(p.numel() for p in model.model.visual.parameters())
    n_all = sum(p.numel() for p in model.parameters())
    return {"name": name, "vision_params": n_vis, "params": n_all, "visual_tokens": visual_tokens,
            "frames": frames, "side": side, "reuse_s": reuse_s, "encode_s": enc_s,
            "speedup": enc_s / reuse_s, "max_loss_diff": max_diff}


def main(argv: list[str] | None = None) -> int:
    from grounder.tiny import TinySize

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--g", type=int, default=8, help="completions per prompt (G)")
    ap.add_argument("--prompts", type=int, default=2, help="prompts per step")
    ap.add_argument("--new-tokens", type=int, default=16, help="max new tokens per completion")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (median)")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args(argv)
    configs = [
        ("tiny (tests' size)", TinySize(), 16, 112),
        ("vision-heavy tiny", TinySize(vision_hidden=256, vision_intermediate=1024, vision_layers=4,
                                       vision_heads=4, max_frame_pixels=224 * 224), 16, 224),
    ]
    rows = [bench(n, s, f, side, args.g, args.prompts, args.new_tokens, args.rounds) for n, s, f, side in configs]
    head = (f"`python -m evals.bench.grpo` on {datetime.date.today()}, machine: {os.cpu_count()} CPU cores, "
            f"no GPU, CPython {platform.python_version()}, torch {torch.__version__}. One step = "
            f"{args.prompts} prompts x G={args.g} sampled completions (<= {args.new_tokens} new tokens), "
            "reference forward, policy forward + backward + AdamW step; vision tower frozen; Qwen2.5-VL "
            f"architecture; median of {args.rounds} rounds after a warm-up, the two methods alternating. "
            "Same weights and sampling seed for both; loss difference = max over rounds.\n")
    table = ["| model | vision params | all params | visual tokens / prompt | re-encode step (s) | reuse step (s) | speed-up | max loss diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        table.append(f"| {r['name']} | {r['vision_params'] / 1e6:.2f} M | {r['params'] / 1e6:.2f} M | "
                     f"{r['visual_tokens']} ({r['frames']} frames {r['side']}x{r['side']}) | {r['encode_s']:.2f} | "
                     f"{r['reuse_s']:.2f} | **{r['speedup']:.2f}x** | {r['max_loss_diff']:.1e} |")
    notes = ("\n- target: >= 2x at G=8, same loss to 1e-5.\n"
             "- Where the time goes: with the tests' tiny model the vision tower is a small part of a step "
             "(generation of G x new tokens dominates), so reuse saves less; the vision-heavy row is the "
             "configuration the target is about (a real Qwen-VL's vision tower dominates the prompt cost).\n")
    text = SECTION + "\n\n" + head + "\n" + "\n".join(table) + "\n" + notes
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"updated {BENCHMARKS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
