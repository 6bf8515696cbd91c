"""SFT step time with the attention losses: eager attention in every layer vs one probed layer.

Run: ``python -m evals.bench.sft_step`` (``--help``). The recipe's SFT (trainer/recipes/default.yaml:
model size, views, batch size, binding / attend / attend_span weights) on a small synthetic world
written to a temp folder, random weights. "eager" is how the attention losses were first trained:
the whole model on transformers' eager attention with `output_attentions=True` ([B, heads, T, T]
for every layer); "probe" keeps SDPA and computes only the rows the losses read from the probed
layer's queries and keys (trainer.attention_rows). Both start from the same weights and see the
same batches; each loss's difference is reported at the first step (same weights) and as the
max over steps. `--set KEY=VALUE` times another recipe (e.g. a larger LM) without writing the file.
Results go to BENCHMARKS.md (section "SFT step").
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from evals.bench.report_md import BENCHMARKS, write_section

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## SFT step (evals/bench/sft_step.py)"
RECIPE = ROOT / "trainer" / "recipes" / "default.yaml"


def trainers(model: Any, processor: Any, tc: Any) -> dict[str, Any]:
    """{"eager": VideoSFT reading eager weights of every layer (the old path), "probe": VideoSFT as it
    is}, each on its own copy of `model`, built with the recipe's train block; binding heads equal."""
    from trainer.sft import VideoSFT

    class EagerSFT(VideoSFT):
        def loss(self, batch: Any) -> torch.Tensor:
            out = self.model(**batch, output_hidden_states=True, output_attentions=True)
            self._hidden = out.hidden_states[self.binding_layer]
            self._attn = out.attentions[self.binding_layer]
            return out.loss

    out = {}
    for name, cls, m in (("eager", EagerSFT, copy.deepcopy(model)), ("probe", VideoSFT, model)):
        torch.manual_seed(1)  # the binding heads start equal too
        out[name] = cls(m, processor, tc.learning_rate, tc.freeze_vision, max_grad_norm=tc.max_grad_norm,
                        binding=tc.binding, binding_layer=tc.binding_layer, attend=tc.attend,
                        attend_span=tc.attend_span)
    out["eager"].model.set_attn_implementation("eager")
    return out


def bench(steps: int, videos: int, overrides: list[str] | None = None) -> dict[str, Any]:
    from trainer.data import GroundingDataset
    from trainer.pipeline import load_pipeline

    recipe = load_pipeline(RECIPE, overrides)
    sft = recipe.sft
    tc = sft.train
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "groundqa", "synth", "--out", tmp, "--videos", str(videos),
                        "--minutes", "3", "--seed", "77"], check=True, capture_output=True)
        data = GroundingDataset(f"{tmp}/annotations.jsonl", sft.data.frames, sft.data.window, seed=0,
                                views=sft.data.views, qa=sft.data.qa, trace=sft.data.trace,
                                kinds=tuple(sft.data.kinds))
        batches = [b for _, b in zip(range(steps + 1), (b for _, b in data.batches(tc.batch_size)))]
        return _run(batches, sft, tc, steps)


def _run(batches: list[Any], sft: Any, tc: Any, steps: int) -> dict[str, Any]:
    """The two trainers over the same batches (the spec files the labels read must still exist)."""
    from trainer.loop import load_model

    torch.manual_seed(0)
    model, processor = load_model(sft.model)
    both = trainers(model, processor, tc)
    times: dict[str, list[float]] = {k: [] for k in both}
    metrics: dict[str, list[dict[str, float]]] = {k: [] for k in both}
    for n, samples in enumerate(batches):
        for name in (("eager", "probe") if n % 2 else ("probe", "eager")):
            torch.manual_seed(n)
            t0 = time.perf_counter()
            m = both[name].step(samples)
            if n:  # the first step is a warm-up
                times[name].append(time.perf_counter() - t0)
            metrics[name].append(m)
    # per loss: |eager - probe| at the first step that has it (same weights), and the max over steps
    diffs = {}
    for k in ("loss", "binding", "attend", "attend_span"):
        d = [abs(a[k] - b[k]) for a, b in zip(metrics["eager"], metrics["probe"]) if k in a and k in b]
        if d:
            diffs[k] = (d[0], max(d))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"steps": steps, "median": med, "speedup": med["eager"] / med["probe"], "diffs": diffs,
            "batch": tc.batch_size}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="timed steps per method (after one warm-up)")
    ap.add_argument("--videos", type=int, default=4, help="synthetic videos (3 min each) to draw windows from")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override the recipe, e.g. sft.model.size.hidden=192 (implies --no-write)")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    r = bench(args.steps, args.videos, args.set)
    load = os.getloadavg()[0]
    head = (f"`python -m evals.bench.sft_step` on {datetime.date.today()}, machine: {os.cpu_count()} CPU cores, "
            f"no GPU, CPython {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} "
            f"torch thread(s), 1-min load average at the end {load:.1f}. The default recipe's SFT step "
            f"(batch {r['batch']}, the four scan views, binding + attend + attend_span losses, vision tower "
            f"frozen) on random weights of its model size, windows of {args.videos} synthetic 3-min videos; "
            f"median of {r['steps']} steps after a warm-up, the two methods alternating on the same batches "
            "from the same weights (the binding heads too); loss differences at the first step (same weights) "
            "and the max over steps (the two models drift apart a little as they train).\n")
    table = ["| method | step (s) | vs eager |", "|---|---:|---:|",
             f"| eager attention, every layer (`output_attentions`) | {r['median']['eager']:.3f} | 1.00x |",
             (f"| SDPA + probed layer's rows (`trainer.attention_rows`) | {r['median']['probe']:.3f} | "
              f"**{r['speedup']:.2f}x** faster |")]
    first = ", ".join(f"{k} {v[0]:.1e}" for k, v in r["diffs"].items())
    worst = ", ".join(f"{k} {v[1]:.1e}" for k, v in r["diffs"].items())
    notes = (f"\n- |eager - probe| at the first step: {first}; max over steps: {worst}.\n"
             "- timed: `VideoSFT.step` (batch build, forward, the losses, backward, AdamW); the pipeline's SFT also "
             "decodes each batch's frames, which neither method changes.\n")
    if load > 0.75 * (os.cpu_count() or 1):
        notes += (f"- the machine was shared (1-min load average {load:.1f}): seconds inflated, ratio noisy.\n")
    text = SECTION + "\n\n" + head + "\n" + "\n".join(table) + "\n" + notes
    print(text)
    if args.set:
        text += f"- recipe overrides: {' '.join(args.set)}\n"
    if not args.no_write and not args.set:  # the section records the recipe as committed
        write_section(text)
        print(f"updated {BENCHMARKS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
