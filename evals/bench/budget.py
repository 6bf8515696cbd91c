"""Visual tokens per hour of video at our default scan, for both model families, with their real
processors, on an hour of real-resolution video; set beside the budgets the peers state.

    python -m evals.bench.budget [--minutes 60] [--no-write]

The hour: `bigbuckbunny.mp4` (1280 x 720, ../shared/data/videos) looped at 2 frames per second into
one file (written once under /tmp). Each family grounds one query with a narrow random-weight model
of its real vocabulary and processor (`grounder.real_shapes.save_narrow_model`; the tokens a scan
sends do not depend on the weights, only on how many calls it makes, and an untrained model's
answers only change which windows get zoomed into). `visual_tokens` is the grounder's own
cost record: the video tokens of every model call. The embedded default adds no VLM tokens for its
retrieval pass (its own small encoder reads the frames) and is not in this table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from fractions import Fraction
from pathlib import Path

from evals.bench.trainer_shapes import SHARED

FAMILIES = {"Qwen2.5-VL": "Qwen2.5-VL-7B-Instruct", "Qwen3-VL": "Qwen3-VL-4B-Instruct"}
# the peers' visual tokens per hour, as the real-inputs issue gives them from their papers
PEERS = [("Qwen2.5-VL at its caps", "<= 49K"), ("TimeSearch-R", "24K"), ("TimeLens", "14.3K"), ("VideoMind", "~3.2K")]


def looped_hour(minutes: float) -> Path:
    """`bigbuckbunny.mp4` looped at 2 fps for `minutes` (cached in /tmp)."""
    import av

    from grounder.video import open_video

    path = Path(tempfile.gettempdir()) / f"groundqa-bench-bbb-{minutes:g}min-2fps.mp4"
    if path.is_file():
        return path
    reader = open_video(SHARED / "videos" / "bigbuckbunny.mp4")
    import numpy as np

    frames, _ = reader.sample(np.arange(0.0, 5.0, 0.5))
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=2)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "30", "g": "20"}
        for k in range(int(minutes * 60 * 2)):
            frame = av.VideoFrame.from_ndarray(frames[k % len(frames)], format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, 2)
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args(argv)

    from grounder.grounder import Grounder
    from grounder.real_shapes import save_narrow_model

    video = looped_hour(args.minutes)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family, name in FAMILIES.items():
            folder = save_narrow_model(SHARED / "models" / name, Path(tmp) / name)
            g = Grounder.from_pretrained(folder, retriever="none")
            t0 = time.perf_counter()
            cost = g.ground(str(video), "the rabbit comes out of its burrow").to_dict()["cost"]
            per_hour = cost["visual_tokens"] * 60.0 / args.minutes
            rows.append({"family": family, "calls": cost["model_calls"], "frames": cost["frames"],
                         "visual_tokens": cost["visual_tokens"], "per_hour": per_hour,
                         "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps(rows[-1]), flush=True)
    lines = [
        "## Visual tokens per hour (evals/bench/budget.py)",
        "",
        (f"`python -m evals.bench.budget --minutes {args.minutes:g}` on {date.today().isoformat()}, machine: "
         f"{os.cpu_count()} CPU cores, no GPU, CPython {platform.python_version()}. One grounding query over "
         f"{args.minutes:g} minutes of 1280 x 720 video (bigbuckbunny.mp4 looped at 2 fps) at the default scan "
         "(`grounder.budget.ScanBudget`: coarse pass 0.25 fps at 56 x 56, up to 96 calls, zooms of 32 frames "
         "at up to 448 x 448, no retriever), each family through its real processor (narrow random-weight "
         "model: the calls and their tokens, not the answers, are what is measured; a trained model's answers "
         "change which windows are zoomed into, and `max_calls` caps a query at 96 calls)."),
        "",
        "| family | model calls | frames | visual tokens | per hour of video |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['family']} (ours, default scan) | {r['calls']} | {r['frames']} | {r['visual_tokens']:,} | "
                     f"{r['per_hour'] / 1000:.1f}K |")
    for name, budget in PEERS:
        lines.append(f"| {name} (as the real-inputs issue states it) | | | | {budget} |")
    text = "\n".join(lines) + "\n"
    if not args.no_write:
        from evals.bench.report_md import write_section

        write_section(text)
    print(text)


if __name__ == "__main__":
    main()
