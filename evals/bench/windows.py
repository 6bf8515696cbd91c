"""Window probe: does a grounding model look at the clip it is shown, one scan window at a time?

Run: ``python -m evals.bench.windows`` (``--help``). A few minutes on 2 CPU cores for the
embedded default model; ``--write`` puts the figures in BENCHMARKS.md.

The coarse-to-fine scan (grounder/scan.py) only works if the model does two things inside a
single window: its confidence is higher when the queried event is in the window than when it is
not (that ranks the coarse windows), and on a window that holds the event its answer overlaps it
(that refines the zoom). This bench measures both on held-out synthetic videos (a seed never
used in training), per scan view (window length and frame rate), without running the whole
scan: half the windows hold the event, half don't (drawn as the trainer draws them,
`trainer.data.choose_window`).

- presence AUC: ROC AUC of the reply's confidence, positive vs negative windows (0.5 = blind);
- absent on negatives / on positives: how often the model answers "not in this clip";
- mIoU and R@0.5 on positive windows (window-relative seconds), beside a random span's mIoU
  over the same windows (the floor a blind model reaches);
- visibility AUC: the same windows scored by the share of their frames in which the object the
  query names is on screen (from the world's timelines): what a model that only binds the query to
  what it sees could reach. Near 1.0 means the view itself is not ambiguous;
- decoy AUC: presence AUC against only the negative windows that show another shape of the named
  colour (a green circle for "the green star"): near 0.5 means the model matches the colour word
  and not the shape.

It is the cheap check to run before a full training run and a full `groundqa eval run`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

from evals.bench.report_md import write_section

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".bench_cache" / "windows_world"
HEADING = "## Grounding windows: does the model look? (evals/bench/windows.py)"
# (window seconds, frames per second): the default scan's coarse view and its three zoom levels
DEFAULT_VIEWS = ((64.0, 0.25), (32.0, 0.5), (16.0, 1.0), (8.0, 2.0))


def auc(pos: list[float], neg: list[float]) -> float | None:
    """ROC AUC of positive vs negative scores (`trainer.vision_pretrain.presence_auc`: rank form,
    ties count half); None when a side is empty."""
    import numpy as np

    from trainer.vision_pretrain import presence_auc

    if not pos or not neg:
        return None
    return presence_auc(np.asarray(pos + neg, dtype=float), np.asarray([1] * len(pos) + [0] * len(neg)))


def world(videos: int, minutes: str, seed: int) -> Path:
    from evals.synthetic import generate_world

    lo, _, hi = minutes.partition("-")
    out = CACHE / f"{videos}x{minutes}min_seed{seed}"
    ann = out / "annotations.jsonl"
    if not ann.is_file():
        generate_world(out, n_videos=videos, minutes=(float(lo), float(hi or lo)), seed=seed)
    return ann


def visible_fraction(row: Any, stamps: Any) -> float | None:
    """Share of the frames at `stamps` that show the object the row's query names; None when the
    row names none (after_* events) or its video has no world timeline."""
    from trainer.binding import named_target, visible

    named = named_target(row.video, row.extra)
    if named is None or len(stamps) == 0:
        return None
    tl, target = named
    return sum(visible(tl, target, float(t)) for t in stamps) / len(stamps)


def shows_decoy(row: Any, stamps: Any) -> bool | None:
    """Whether a frame at `stamps` shows an object of the named object's colour and another shape;
    None when the row names no object (see `visible_fraction`)."""
    from trainer.binding import named_target
    from trainer.vision_pretrain import colour_of, on_screen

    named = named_target(row.video, row.extra)
    if named is None:
        return None
    tl, target = named
    combo = tl.tracks[target].combo
    return any(c != combo and colour_of(c) == colour_of(combo) for c in on_screen(tl, stamps))


def probe_view(backend: Any, rows: list[Any], length: float, fps: float, n: int, seed: int,
               max_pixels: int, max_new_tokens: int) -> dict[str, Any]:
    """`n` windows of one view, alternating positive and negative; per-window records + summary."""
    from grounder.answer_format import parse_answer
    from grounder.backends import ModelRequest
    from grounder.video import shared_reader
    from trainer.data import WindowConfig, choose_window

    rng = random.Random(f"{seed}/{length}/{fps}")
    records = []
    for i in range(n):
        row = rows[rng.randrange(len(rows))]
        want_negative = i % 2 == 1
        start, end, span = choose_window(row, WindowConfig(length, True, 1.0 if want_negative else 0.0), rng)
        if want_negative and span is not None:
            continue  # no room for a negative window in this video: skip rather than mislabel
        reader = shared_reader(row.video)
        frames, stamps = reader.sample_range(start, end, fps=fps, max_frames=max(1, round(length * fps)),
                                             max_pixels=max_pixels)
        reply = backend(ModelRequest(frames, stamps, reader.fps, start, end, row.query, max_new_tokens))
        parsed = parse_answer(reply.text, end - start)
        rec = {"positive": span is not None, "confidence": reply.confidence, "says_absent": parsed.says_absent,
               "iou": None, "random_iou": None, "visible": visible_fraction(row, stamps),
               "decoy": shows_decoy(row, stamps)}
        if span is not None:
            from evals.metrics.grounding import iou

            rec["iou"] = iou(parsed.span, span) if parsed.span is not None else 0.0
            a, b = sorted((rng.uniform(0, end - start), rng.uniform(0, end - start)))
            rec["random_iou"] = iou((a, b), span)
        records.append(rec)
    pos = [r for r in records if r["positive"]]
    neg = [r for r in records if not r["positive"]]

    def mean(xs: list[float]) -> float | None:
        return statistics.fmean(xs) if xs else None

    conf = [r["confidence"] for r in records if r["confidence"] is not None]
    decoys = [r for r in neg if r["decoy"]]
    return {
        "window_s": length, "fps": fps, "windows": len(records), "positive": len(pos),
        "presence_auc": auc([r["confidence"] for r in pos if r["confidence"] is not None],
                            [r["confidence"] for r in neg if r["confidence"] is not None]),
        "confidence_range": [min(conf), max(conf)] if conf else None,
        "visibility_auc": auc([r["visible"] for r in pos if r["visible"] is not None],
                              [r["visible"] for r in neg if r["visible"] is not None]),
        "decoy_auc": auc([r["confidence"] for r in pos if r["confidence"] is not None],
                         [r["confidence"] for r in decoys if r["confidence"] is not None]),
        "decoy_negatives": len(decoys),
        "absent_on_negatives": mean([float(r["says_absent"]) for r in neg]),
        "absent_on_positives": mean([float(r["says_absent"]) for r in pos]),
        "miou": mean([100 * r["iou"] for r in pos]),
        "r_at_0_5": mean([100.0 * (r["iou"] >= 0.5) for r in pos]),
        "random_miou": mean([100 * r["random_iou"] for r in pos]),
        "ious": [r["iou"] for r in pos],  # per positive window, in draw order (paired comparisons)
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from grounder.backends import load_default, load_transformers
    from trainer.data import load_rows

    ann = world(args.videos, args.minutes, args.seed)
    rows = load_rows(ann, kinds=("grounding",))
    backend = load_transformers(args.model) if args.model else load_default()[0]
    views = [tuple(float(x) for x in v.split(":")) for v in args.views.split(",")]
    t0 = time.perf_counter()
    out = [probe_view(backend, rows, length, fps, args.per_view, args.seed, args.max_pixels, args.max_new_tokens)
           for length, fps in views]
    return {"model": args.model or "embedded default", "annotations": str(ann.relative_to(ROOT)),
            "seconds": time.perf_counter() - t0, "views": out}


def _f(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def section(res: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        HEADING, "",
        (f"`python -m evals.bench.windows{' --model ' + args.model if args.model else ''} --per-view "
         f"{args.per_view} --seed {args.seed}` on {datetime.date.today()}, {os.cpu_count()} CPU cores, no GPU, "
         f"CPython {platform.python_version()}, {res['seconds']:.0f} s. Model: {res['model']}. Held-out "
         f"synthetic world: {args.videos} videos of {args.minutes} min, seed {args.seed}; grounding rows; "
         f"frames at <= {args.max_pixels} pixels. Half the windows hold the event, half don't."),
        "",
        ("| window | fps | windows (pos) | presence AUC | confidence range | absent on neg | absent on pos "
         "| mIoU pos | R@0.5 pos | random mIoU | visibility AUC | decoy AUC (neg) |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in res["views"]:
        rng = v["confidence_range"]
        lines.append(
            f"| {v['window_s']:g} s | {v['fps']:g} | {v['windows']} ({v['positive']}) | {_f(v['presence_auc'], 2)} | "
            f"{'-' if rng is None else f'{rng[0]:.3f}-{rng[1]:.3f}'} | {_f(v['absent_on_negatives'], 2)} | "
            f"{_f(v['absent_on_positives'], 2)} | {_f(v['miou'])} | {_f(v['r_at_0_5'])} | {_f(v['random_miou'])} | "
            f"{_f(v['visibility_auc'], 2)} | {_f(v['decoy_auc'], 2)} ({v['decoy_negatives']}) |")
    lines += ["", ("Reading: presence AUC near 0.5 and a narrow confidence range mean the coarse pass "
                   "cannot rank windows; mIoU near the random span's means the zoom cannot refine; decoy AUC "
                   "near 0.5 means it reads the colour word and not the shape.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model folder (default: the embedded default model)")
    p.add_argument("--videos", type=int, default=3)
    p.add_argument("--minutes", default="15-20", help="video length range, minutes (e.g. 15-20)")
    p.add_argument("--seed", type=int, default=9500, help="world seed; training uses 1000+")
    p.add_argument("--per-view", type=int, default=100, help="windows per view (half positive)")
    p.add_argument("--views", default=",".join(f"{a:g}:{b:g}" for a, b in DEFAULT_VIEWS),
                   help="window_seconds:fps,... (default: the scan's coarse view and zoom levels)")
    p.add_argument("--max-pixels", type=int, default=12544)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = p.parse_args(argv)
    res = run(args)
    print(json.dumps(res, indent=1))
    if args.write:
        print(f"wrote {write_section(section(res, args))}")


if __name__ == "__main__":
    main()
