"""`groundqa demo`: the whole path on a synthetic long video, offline, in about a minute.

Makes one synthetic video with exact ground truth, grounds one of its queries coarse-to-fine
with the embedded default model, scores the answer against the truth, and writes a timeline.
Lives in evals because it uses the synthetic world (evals -> grounder, never the reverse).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from grounder.cliutil import emit, progress
from grounder.errors import InputError


def run_demo(out: str, minutes: float, seed: int, as_json: bool) -> dict[str, Any]:
    from evals.synthetic import generate_world
    from grounder.grounder import Grounder
    from grounder.plot import plot_timeline
    from grounder.spans import best_iou
    from grounder.video import shared_reader

    if not 0.5 <= minutes <= 180:
        raise InputError(f"--minutes must be between 0.5 and 180, got {minutes}")
    t0 = time.perf_counter()
    out_dir = Path(out)
    rows = generate_world(out_dir, n_videos=1, minutes=(minutes, minutes), seed=seed)
    row = next(r for r in rows if r["kind"] == "grounding")
    video = out_dir / row["video"]

    grounder = Grounder.from_pretrained(None)
    with progress("grounding", total=None, enabled=not as_json) as advance:
        result = grounder.ground(video, row["query"], on_step=lambda done, planned: advance())
    timeline = plot_timeline(result, shared_reader(video), out_dir / "timeline.png")
    top = result.segments[0] if result.segments else None
    report = {
        "video": str(video),
        "query": row["query"],
        "truth": row["spans"],
        "segments": [s.to_dict() for s in result.segments],
        "iou": round(best_iou((top.start, top.end), row["spans"]), 4) if top else 0.0,
        "cost": result.cost.to_dict(),
        "warnings": result.warnings,
        "timeline": str(timeline),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    found = ", ".join(f"{s.start:.1f}-{s.end:.1f} s ({s.score:.2f})" for s in result.segments[:3]) or "nothing"
    truth = ", ".join(f"{s:.1f}-{e:.1f} s" for s, e in row["spans"])
    human = (
        f"video    {video} ({result.duration / 60:.1f} min, synthetic, seed {seed})\n"
        f"query    {row['query']}\n"
        f"found    {found}\n"
        f"truth    {truth}   (IoU of the top segment: {report['iou']:.2f})\n"
        f"cost     {result.cost.model_calls} model calls, {result.cost.frames} frames, "
        f"{result.cost.visual_tokens} visual tokens, {result.cost.seconds:.1f} s\n"
        f"timeline {timeline}"
    )
    emit(report, as_json, human)
    return report
