"""Scan cost benchmark: visual tokens, model calls, seconds and accuracy per strategy and length.

Run: ``python -m evals.bench.scan`` (``--help`` for options). Synthetic videos of 15, 30, 60 and
120 minutes are generated once under ``.bench_cache/scan/`` (gitignored, ~15 s); every
strategy grounds the same few queries per video with the model at hand (``--model``; default
the embedded default). Prints a table with the ratios the grounder promises and writes it to
BENCHMARKS.md (section "Scan cost").

Strategies: retrieve-then-ground (the model folder's retriever proposes the windows, the VLM
looks inside them; every query pays for embedding the whole video, as a first question on a
video does: its frame index is built in a fresh cache each time), coarse-to-fine (the VLM's own
coarse pass, `retriever="none"`), sliding (exhaustive), uniform (one call).

Sliding (the exhaustive baseline) is run for real at the lengths in ``--run-sliding``
(default 15 min); at the other lengths its windows do not depend on the model's answers, so
its calls, frames and visual tokens are computed exactly from its windows (the processor is
run on blank frames of the real size to count tokens) and its seconds are estimated from the
measured seconds per call; those cells are marked ``*`` and have no accuracy. The run checks
that the computed figures equal the measured ones where both exist.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.bench.report_md import BENCHMARKS, write_section

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".bench_cache" / "scan"
SECTION = "## Scan cost (evals/bench/scan.py)"
STRATEGY_ORDER = ("retrieve-then-ground", "coarse-to-fine", "sliding", "uniform")


@dataclass
class Cell:
    """One strategy at one length: totals over the queries."""

    strategy: str
    minutes: int
    queries: int = 0
    calls: int = 0
    frames: int = 0
    tokens: int = 0
    seconds: float = 0.0
    embedder_seconds: float = 0.0
    embedder_frames: int = 0
    ious: list[float] = field(default_factory=list)
    computed: bool = False  # cost from the windows, not run

    def per_query(self, value: float) -> float:
        return value / max(self.queries, 1)

    @property
    def r1_05(self) -> float | None:
        return 100.0 * sum(i >= 0.5 for i in self.ious) / len(self.ious) if self.ious else None

    @property
    def miou(self) -> float | None:
        return 100.0 * sum(self.ious) / len(self.ious) if self.ious else None


def world(minutes: int, seed: int) -> tuple[Path, list[dict[str, Any]]]:
    """The video of this length and its grounding rows (generated on first use)."""
    from evals.synthetic import generate_world

    out = CACHE / f"{minutes}min-seed{seed}"
    ann = out / "annotations.jsonl"
    if not ann.is_file():
        generate_world(out, n_videos=1, minutes=(minutes, minutes), seed=seed)
    rows = [json.loads(line) for line in ann.read_text(encoding="utf-8").splitlines() if line]
    return out, [r for r in rows if r.get("kind") == "grounding"]


def pick(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """n rows spread over the list (different query types and times)."""
    if len(rows) <= n:
        return rows
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n)]


def run_cell(grounder: Any, video: Path, rows: list[dict[str, Any]], strategy: str, minutes: int,
             budget: Any) -> Cell:
    import tempfile

    from grounder.spans import best_iou

    cell = Cell(strategy, minutes)
    for row in rows:
        with tempfile.TemporaryDirectory() as cache:  # no cached frame index: the first question's cost
            if getattr(grounder, "retriever", None) is not None:
                grounder.retriever.cache_dir = cache
            scan = "coarse-to-fine" if strategy == "retrieve-then-ground" else strategy
            result = grounder.ground(video, row["query"], strategy=scan, budget=budget)
        cell.queries += 1
        cell.calls += result.cost.model_calls
        cell.frames += result.cost.frames
        cell.tokens += result.cost.visual_tokens
        cell.seconds += result.cost.seconds
        cell.embedder_seconds += result.cost.embedder_seconds
        cell.embedder_frames += result.cost.embedder_frames
        top = (result.segments[0].start, result.segments[0].end) if result.segments else None
        cell.ious.append(best_iou(top, row["spans"]))
    return cell


def computed_sliding(grounder: Any, video: Path, minutes: int, queries: int, budget: Any,
                     seconds_per_call: float | None) -> Cell:
    """Sliding's cost from its windows (no model calls): exact calls/frames/tokens."""
    from grounder.scan import plan_windows
    from grounder.video import output_size, shared_reader

    reader = shared_reader(video)
    budget = grounder.resolve_budget(budget)  # the model's scan_config, as a real call gets it
    cell = Cell("sliding", minutes, queries=queries, computed=True)
    for window, max_pixels in plan_windows(reader.duration, "sliding", budget):
        w, h = output_size(reader.width, reader.height, max_pixels)
        cell.calls += 1
        cell.frames += window.num_frames
        cell.tokens += grounder.backend.visual_tokens_for(window.num_frames, h, w)
    cell.calls *= queries
    cell.frames *= queries
    cell.tokens *= queries
    cell.seconds = cell.calls * seconds_per_call if seconds_per_call else float("nan")
    return cell


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(cells: dict[tuple[str, int], Cell], lengths: list[int]) -> list[str]:
    lines = [
        ("| strategy | video (min) | visual tokens / query | model calls / query | frames / query "
        "| seconds / query | of which retrieval (s) | clips embedded / query | R1@0.5 | mIoU |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for strategy in STRATEGY_ORDER:
        for m in lengths:
            c = cells.get((strategy, m))
            if c is None:
                continue
            star = "*" if c.computed else ""
            lines.append(
                f"| {strategy} | {m} | {c.per_query(c.tokens):,.0f}{star} | "
                f"{c.per_query(c.calls):.0f}{star} | {c.per_query(c.frames):,.0f}{star} | "
                f"{c.per_query(c.seconds):.1f}{star} | {c.per_query(c.embedder_seconds):.2f} | "
                f"{c.per_query(c.embedder_frames):,.0f} | {fmt(c.r1_05)} | {fmt(c.miou)} |"
            )
    return lines


def ratios(cells: dict[tuple[str, int], Cell], lo: int, hi: int) -> dict[str, float]:
    def tok(s: str, m: int) -> float:
        c = cells[(s, m)]
        return c.per_query(c.tokens)

    def sec(s: str, m: int) -> float:
        c = cells[(s, m)]
        return c.per_query(c.seconds)

    out = {}
    if ("retrieve-then-ground", hi) in cells and ("retrieve-then-ground", lo) in cells:
        out[f"retrieve-then-ground VLM tokens {hi}/{lo} min"] = (
            tok("retrieve-then-ground", hi) / tok("retrieve-then-ground", lo))
        out[f"retrieve-then-ground / sliding seconds at {hi} min"] = sec("retrieve-then-ground", hi) / sec("sliding", hi)
        out[f"retrieve-then-ground / sliding tokens at {hi} min"] = (
            tok("retrieve-then-ground", hi) / tok("sliding", hi))
    if ("coarse-to-fine", hi) not in cells:
        return out
    return out | {
        f"c2f tokens {hi}/{lo} min": tok("coarse-to-fine", hi) / tok("coarse-to-fine", lo),
        f"sliding tokens {hi}/{lo} min": tok("sliding", hi) / tok("sliding", lo),
        f"c2f / sliding tokens at {hi} min": tok("coarse-to-fine", hi) / tok("sliding", hi),
        f"c2f / sliding calls at {hi} min": (
            cells[("coarse-to-fine", hi)].calls / cells[("sliding", hi)].calls),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model folder (default: the embedded default)")
    ap.add_argument("--lengths", default="15,30,60,120", help="video lengths in minutes")
    ap.add_argument("--queries", type=int, default=2, help="grounding queries per video")
    ap.add_argument("--run-sliding", default="15",
                    help="lengths (min) at which sliding really runs; elsewhere it is computed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=None, help="override the budget's")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from grounder.grounder import Grounder
    from grounder.scan import ScanBudget

    lengths = sorted(int(x) for x in args.lengths.split(","))
    run_sliding = {int(x) for x in args.run_sliding.split(",") if x.strip()}
    budget = ScanBudget() if args.max_new_tokens is None else ScanBudget(
        max_new_tokens=args.max_new_tokens)
    t_start = time.perf_counter()
    grounder = Grounder.from_pretrained(args.model)
    plain = Grounder(grounder.backend, grounder.warnings)  # the same VLM without a retriever
    model_name = args.model or "embedded default"
    if grounder.warnings:
        model_name += " (tiny, UNTRAINED: accuracy is meaningless until a trained model ships)"
    strategies = [s for s in STRATEGY_ORDER if s != "retrieve-then-ground" or grounder.retriever is not None]

    cells: dict[tuple[str, int], Cell] = {}
    videos: dict[int, tuple[Path, list[dict[str, Any]]]] = {}
    for m in lengths:
        out, rows = world(m, args.seed)
        videos[m] = (out / rows[0]["video"], pick(rows, args.queries))
        print(f"{m} min: {out / rows[0]['video']} ({len(videos[m][1])} queries)", file=sys.stderr)

    checks: list[str] = []
    for m in lengths:
        video, rows = videos[m]
        for strategy in strategies:
            if strategy == "sliding" and m not in run_sliding:
                continue
            t0 = time.perf_counter()
            g = grounder if strategy == "retrieve-then-ground" else plain
            cells[(strategy, m)] = run_cell(g, video, rows, strategy, m, budget)
            print(f"  {m} min {strategy}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    ran = [cells[("sliding", m)] for m in lengths if ("sliding", m) in cells]
    per_call = sum(c.seconds for c in ran) / max(sum(c.calls for c in ran), 1) if ran else None
    for m in lengths:
        video, rows = videos[m]
        est = computed_sliding(grounder, video, m, len(rows), budget, per_call)
        if ("sliding", m) in cells:
            real = cells[("sliding", m)]
            same = (real.calls, real.frames, real.tokens) == (est.calls, est.frames, est.tokens)
            checks.append(f"computed sliding cost at {m} min equals the measured one: {same}")
        else:
            cells[("sliding", m)] = est

    lines = table(cells, lengths)
    r = ratios(cells, lengths[0], lengths[-1])
    total = time.perf_counter() - t_start
    import torch

    date = datetime.date.today().isoformat()
    machine = (f"{os.cpu_count()} CPU cores, no GPU, CPython {platform.python_version()}, "
               f"torch {torch.__version__}, 1-min load average at the end "
               f"{os.getloadavg()[0]:.1f} (seconds are wall time: other jobs on the machine "
               "inflate them; tokens and calls do not depend on it)")
    b = grounder.resolve_budget(budget)
    text = "\n".join([
        SECTION,
        "",
        (f"`python -m evals.bench.scan{' ' + ' '.join(argv) if argv else ''}` on {date}, "
        f"machine: {machine}; whole run {total / 60:.1f} min. Model: {model_name}. "
        f"One synthetic video per length (112x112, 2 fps, seed {args.seed}), "
        f"{args.queries} grounding queries each; the model's scan budget (retrieval: {b.retrieval_fps} clips/s, "
        f"{b.retrieval_windows} windows, looks of {b.frames_per_call} frames at {b.target_fps} fps; coarse {b.coarse_fps} fps "
        f"at {b.coarse_max_pixels} px in {b.coarse_frames_per_window}-frame windows, top-{b.top_k} "
        f"zoom chains of {b.frames_per_call} frames to {b.target_fps} fps; sliding = "
        f"{b.target_fps} fps, {b.frames_per_call} frames per call; uniform = "
        f"{b.frames_per_call} frames; max_new_tokens {b.max_new_tokens}). Visual tokens = video "
        "pad tokens fed to the model."),
        "",
        *lines,
        "",
        (f"`*` computed from sliding's windows, not run (sliding ran at "
        f"{', '.join(str(m) for m in sorted(run_sliding)) or 'no length'} min); seconds there = "
        "calls x measured seconds per call."),
        "",
        *(f"- {name}: **{value:.3f}**" + (" (target <= 2.5)" if name.startswith("c2f tokens")
                                          else " (target <= 1.5)" if name.startswith("retrieve-then-ground VLM")
                                          else " (target <= 0.2)" if "seconds at" in name or name.startswith("c2f / sliding tokens")
                                          else "")
          for name, value in r.items()),
        *(f"- {c}" for c in checks),
        "",
    ])
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"updated {BENCHMARKS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
