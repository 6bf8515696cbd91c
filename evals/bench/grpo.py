"""GRPO step time: the prompt's video encoded once per step (reuse) vs re-encoded per forward.

Run: ``python -m evals.bench.grpo`` (``--help``). One GRPO step = G sampled completions per
prompt (generation), the reference forward and the policy forward + backward + optimizer step,
with the vision tower frozen. "re-encode" runs the vision tower on G copies of the video in
generation, in the reference and in the policy forward, each of which also runs the language
model over G copies of the prompt; "reuse" runs the vision tower once per prompt and the language
model over the prompt once per model (`VideoGRPO.prefill`), and the G completions continue from
that prompt's KV cache (sampling, reference and policy forwards). Both trainers start from the
same weights and sample with the same seed (the reuse path's sampling draws exactly as
`generate`), so they see the same completions and their losses must agree (checked to 1e-5).
Each phase is timed too (vision, generation, reference, policy forward, backward + optimizer).

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


PHASES = ("vision", "generate", "reference", "policy_fwd", "rest")
_CLOCKS: dict[int, dict[str, float]] = {}


def _instrument(trainer, clock: dict[str, float]) -> None:
    """Time the trainer's phases into `clock` (wrapping its methods; the maths is untouched)."""
    from trainer import grpo

    def timed(key_of, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                key = key_of(*a, **k)
                clock[key] = clock.get(key, 0.0) + time.perf_counter() - t0
        return wrapper

    trainer.generate = timed(lambda *a, **k: "generate", trainer.generate)
    trainer.logps = timed(lambda model, *a, **k: "reference" if model is trainer.ref_model else "policy_fwd",
                          trainer.logps)
    # `step` calls the module's `encode_video`: wrap it once, timing into the clock of the trainer
    # whose model it encodes with
    _CLOCKS[id(trainer.model)] = clock
    if not hasattr(grpo, "_bench_encode_video"):
        encode = grpo._bench_encode_video = grpo.encode_video

        def encode_video(model, *a, **k):
            t0 = time.perf_counter()
            try:
                return encode(model, *a, **k)
            finally:
                c = _CLOCKS.get(id(model))
                if c is not None:
                    c["vision"] = c.get("vision", 0.0) + time.perf_counter() - t0

        grpo.encode_video = encode_video


def bench(name: str, size, frames: int, side: int, g: int, prompts: int, new_tokens: int,
          rounds: int) -> dict:
    from grounder.tiny import build_tiny
    from trainer.grpo import GRPOConfig, VideoGRPO

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
    phases: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    clocks: dict[bool, dict[str, float]] = {True: {}, False: {}}
    for reuse in (True, False):
        _instrument(trainers[reuse], clocks[reuse])
    max_diff = 0.0
    for r in range(rounds + 1):  # round 0 warms up
        losses = {}
        for reuse in ((True, False) if r % 2 == 0 else (False, True)):
            torch.manual_seed(1000 + r)
            clocks[reuse].clear()
            t0 = time.perf_counter()
            m = trainers[reuse].step(samples)
            dt = time.perf_counter() - t0
            losses[reuse] = m["loss"]
            if r:
                times[reuse].append(dt)
                ph = {k: clocks[reuse].get(k, 0.0) for k in PHASES[:-1]}
                ph["rest"] = dt - sum(ph.values())
                phases[reuse].append(ph)
        max_diff = max(max_diff, abs(losses[True] - losses[False]))
        print(f"  {name} round {r}: loss reuse={losses[True]:.7f} re-encode={losses[False]:.7f}",
              file=sys.stderr)
    reuse_s, enc_s = statistics.median(times[True]), statistics.median(times[False])
    n_vis = sum(p.numel() for p in model.model.visual.parameters())
    n_all = sum(p.numel() for p in model.parameters())
    return {"name": name, "vision_params": n_vis, "params": n_all, "visual_tokens": visual_tokens,
            "frames": frames, "side": side, "reuse_s": reuse_s, "encode_s": enc_s,
            "speedup": enc_s / reuse_s, "max_loss_diff": max_diff,
            "phases": {reuse: {k: statistics.median(p[k] for p in phases[reuse]) for k in PHASES}
                       for reuse in (True, False)}}


def main(argv: list[str] | None = None) -> int:
    from grounder.tiny import TinySize

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--g", type=int, default=8, help="completions per prompt (G)")
    ap.add_argument("--prompts", type=int, default=2, help="prompts per step")
    ap.add_argument("--new-tokens", type=int, default=16, help="max new tokens per completion")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (median)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: steadier timings when other jobs share the cores)")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    configs = [
        ("tiny (tests' size)", TinySize(), 16, 112),
        ("vision-heavy tiny", TinySize(vision_hidden=256, vision_intermediate=1024, vision_layers=4,
                                       vision_heads=4, max_frame_pixels=224 * 224), 16, 224),
    ]
    rows = [bench(n, s, f, side, args.g, args.prompts, args.new_tokens, args.rounds) for n, s, f, side in configs]
    head = (f"`python -m evals.bench.grpo` on {datetime.date.today()}, machine: {os.cpu_count()} CPU cores, "
            f"no GPU, CPython {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} torch "
            f"thread(s), 1-min load average at the end {os.getloadavg()[0]:.1f}. One step = "
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
    where = ["", ("Where the time goes (median seconds per step; vision = the once-per-prompt encode of the "
                  "reuse path, the re-encode path runs the tower inside generation and the forwards; rest = "
                  "backward, optimizer, rewards, processor):"), "",
             "| model | method | " + " | ".join(PHASES) + " |", "|---|---|" + "---:|" * len(PHASES)]
    for r in rows:
        for reuse, label in ((False, "re-encode"), (True, "reuse")):
            where.append(f"| {r['name']} | {label} | "
                         + " | ".join(f"{r['phases'][reuse][k]:.3f}" for k in PHASES) + " |")
    verdict = "; ".join(
        f"{r['name']}: {r['speedup']:.2f}x, loss diff {r['max_loss_diff']:.1e} "
        f"({'met' if r['speedup'] >= 2 and r['max_loss_diff'] <= 1e-5 else 'NOT met'})" for r in rows)
    notes = (f"\n- target: >= 2x at G={args.g}, same loss to 1e-5 — {verdict}.\n"
             "- reuse = one vision encode and one language-model prompt prefill per prompt and model, the G "
             "completions continuing from its KV cache; re-encode = G copies of prompt and video in every "
             "forward (transformers' `generate` itself encodes the video once before expanding to G rows, "
             "so the re-encode path's generation repeats only the language-model prompt prefill; its "
             "reference and policy forwards run the vision tower on G copies). What is left of a reuse "
             "step is mostly the token-by-token decode of G x new tokens, the same work in both methods.\n")
    load = os.getloadavg()[0]
    if load > 0.75 * (os.cpu_count() or 1):
        notes += (f"- the machine was shared (1-min load average {load:.1f} on {os.cpu_count()} cores at the end "
                  "of the run): seconds are inflated and the ratios noisy; rerun on an idle machine for "
                  "steadier figures.\n")
    text = SECTION + "\n\n" + head + "\n" + "\n".join(table) + "\n" + "\n".join(where) + "\n" + notes
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"updated {BENCHMARKS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
