"""`groundqa demo`: one question about a long synthetic video, answered offline.

Makes one synthetic video with exact ground truth (seed 4242 by default: not a seed of the
embedded model's training world, 1000.., nor of the held-out eval world, 9000..), takes one of
its multiple-choice questions and asks it through the real agent (`agent.api.Agent`, embedded
default model), then prints the answer with its grounded segments next to the true answer and
the evidence span, the cost, and writes `timeline.png` (segments found vs the truth).
Lives in evals because it uses the synthetic world (evals -> agent, grounder; never the reverse).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from grounder.cliutil import emit, progress
from grounder.errors import InputError

DEFAULT_SEED = 4242
DEFAULT_MINUTES = 60.0


def pick_question(rows: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    """The multiple-choice row whose evidence lies nearest the middle of the video (a moment
    that a few uniform frames are unlikely to hit); deterministic."""
    qa = [r for r in rows if r.get("kind") == "qa" and r.get("options") and r.get("spans")]
    if not qa:
        raise InputError("the synthetic video has no multiple-choice question; try another --seed "
                         "or a longer --minutes")
    mid = duration / 2
    return min(qa, key=lambda r: (abs((r["spans"][0][0] + r["spans"][0][1]) / 2 - mid), r["id"]))


def plot_demo_timeline(segments: list[Any], truth: list[list[float]], duration: float,
                       reader: Any, path: Path, title: str, thumbnails: int = 4) -> Path:
    """Two lanes on one time axis: the segments found (score-coloured, ranked) and the true
    evidence span(s); below, frames from the top segment (else from the evidence)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from grounder.plot import save_png

    duration = max(float(duration), 1e-6)
    start, end = ((segments[0].start, segments[0].end) if segments else tuple(truth[0]))
    times = [start + (i + 0.5) * (end - start) / thumbnails for i in range(thumbnails)]
    frames = reader.sample(times, max_pixels=160 * 160)[0]
    fig = plt.figure(figsize=(10, 4.0))
    ax = fig.add_subplot(2, 1, 1)
    for lane in (0, 1):
        ax.barh(lane, duration, height=0.5, color="#eeeeee", edgecolor="#999999")
    cmap = plt.get_cmap("viridis")
    for rank, seg in enumerate(segments):
        width = max(seg.end - seg.start, duration * 0.003)  # short segments stay visible
        ax.barh(1, width, left=seg.start, height=0.5, color=cmap(seg.score), edgecolor="black")
        ax.annotate(f"#{rank + 1} {seg.score:.2f}", (seg.start + width / 2, 1.3), ha="center",
                    va="bottom", fontsize=7)
    for s, e in truth:
        width = max(e - s, duration * 0.003)
        ax.barh(0, width, left=s, height=0.5, color="#d62728", edgecolor="black")
        ax.annotate(f"{s:.0f}-{e:.0f} s", (s + width / 2, 0.3), ha="center", va="bottom", fontsize=7)
    ax.set_yticks([0, 1], ["truth", "found"])
    ax.set_xlim(0, duration)
    ax.set_ylim(-0.5, 1.8)
    ax.set_xlabel("seconds")
    ax.set_title(title[:110], fontsize=9)
    for k, (frame, t) in enumerate(zip(frames, times)):
        sub = fig.add_subplot(2, len(frames), len(frames) + k + 1)
        sub.imshow(frame)
        sub.set_axis_off()
        sub.set_title(f"{t:.1f} s", fontsize=8)
    fig.tight_layout()
    if len(frames):
        fig.text(0.01, 0.02, "frames: " + ("the top segment found" if segments
                                           else "the true evidence (no segment found)"), fontsize=8)
    return save_png(fig, path, dpi=100)


def diagnose(correct: bool, segments: list[dict[str, float]], spans: list[list[float]],
             answer: str) -> str:
    """Why the agent's answer went wrong, in one line ("" when it is right): which segment it chose
    against the true evidence span."""
    from grounder.spans import best_iou

    if correct:
        return ""
    if answer.startswith("not sure"):
        return "the model said it is not sure (see the warnings)"
    ev = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in spans)
    if not segments:
        return f"no segment was found, so the QA model saw frames spread over the video (evidence {ev})"
    ious = [best_iou((g["start"], g["end"]), spans) for g in segments]
    top = segments[0]
    if ious[0] >= 0.3:
        return (f"the top segment ({top['start']:.1f}-{top['end']:.1f} s) found the evidence ({ev}, "
                f"IoU {ious[0]:.2f}), but the QA model read the wrong answer from it")
    hit = next((i for i, x in enumerate(ious) if x > 0), None)
    later = (f"; segment #{hit + 1} ({segments[hit]['start']:.1f}-{segments[hit]['end']:.1f} s) overlaps it "
             "but ranked lower") if hit is not None else "; no segment overlaps it"
    return f"the top segment ({top['start']:.1f}-{top['end']:.1f} s) is not the evidence ({ev}){later}"


def run_demo(out: str, minutes: float = DEFAULT_MINUTES, seed: int = DEFAULT_SEED,
             as_json: bool = False, model: str | None = None, device: str = "cpu",
             agent: Any = None) -> dict[str, Any]:
    """Make the video, ask its question, print and return the report (see the module docstring).
    `agent`: a ready `agent.api.Agent` instead of `Agent(model, device=device)` (tests)."""
    from agent.api import Agent
    from agent.cli import Display
    from evals.synthetic import generate_world
    from evals.synthetic.generate import world_specs
    from grounder.spans import best_iou
    from grounder.video import shared_reader

    if not 0.5 <= minutes <= 180:
        raise InputError(f"--minutes must be between 0.5 and 180, got {minutes}")
    if seed < 0:
        raise InputError(f"--seed must be >= 0, got {seed}")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {str(out_dir)!r} exists and is not a folder")
    t0 = time.perf_counter()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create --out {str(out_dir)!r}: {e.strerror or e}") from None
    if not os.access(out_dir, os.W_OK):
        raise InputError(f"cannot write into --out {str(out_dir)!r}")

    # one video; the frames it will encode drive the progress bar
    spec = world_specs(1, (minutes, minutes), seed, None)[0]
    with progress("making the synthetic video", total=spec.n_frames, enabled=not as_json) as advance:
        rows = generate_world(out_dir, n_videos=1, minutes=(minutes, minutes), seed=seed,
                              advance=advance)
    synth_seconds = time.perf_counter() - t0
    duration = float(spec.duration)
    row = pick_question(rows, duration)
    video = out_dir / row["video"]

    t1 = time.perf_counter()
    if agent is None:
        agent = Agent(model, device=device)
    load_seconds = time.perf_counter() - t1
    answer = None
    with Display(enabled=not as_json) as display:
        for ev in agent.stream(video, row["question"], row["options"]):
            display(ev)
            if ev["type"] == "result":
                answer = ev["answer"]
    assert answer is not None
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    truth_letter = letters[int(row["answer"])]
    truth_text = row["options"][int(row["answer"])]
    top = answer.segments[0] if answer.segments else None
    iou = round(best_iou((top.start, top.end), row["spans"]), 4) if top else 0.0
    title = f"{row['question']}  ->  ({answer.choice or '?'}) {answer.answer}   truth ({truth_letter}) {truth_text}"
    timeline = plot_demo_timeline(answer.segments[:5], row["spans"], duration, shared_reader(video),
                                  out_dir / "timeline.png", title)
    queries = (answer.trace or {}).get("queries") or []
    report = {
        "video": str(video),
        "duration": duration,
        "seed": seed,
        "id": row["id"],
        "question": row["question"],
        "options": row["options"],
        "choice": answer.choice,
        "answer": answer.answer,
        "correct": answer.choice == truth_letter,
        "truth": {"choice": truth_letter, "answer": truth_text, "spans": row["spans"]},
        "segments": [s.to_dict() for s in answer.segments],
        "iou": iou,
        "confidence": answer.confidence,
        "why_wrong": diagnose(answer.choice == truth_letter, [s.to_dict() for s in answer.segments],
                              row["spans"], answer.answer),
        "queries": queries,
        "cost": dict(answer.cost),
        "warnings": answer.warnings,
        "timeline": str(timeline),
        "seconds": {"synth": round(synth_seconds, 2), "load": round(load_seconds, 2),
                    "total": round(time.perf_counter() - t0, 2)},
    }
    if not as_json:
        for w in answer.warnings:
            print(f"warning: {w}", file=sys.stderr)
    emit(report, as_json, human_report(report))
    return report


def human_report(rep: dict[str, Any]) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    opts = "  ".join(f"({letters[i]}) {o}" for i, o in enumerate(rep["options"]))
    segs = [f"  #{i} {s['start']:7.1f} - {s['end']:7.1f} s   score {s['score']:.3f}"
            for i, s in enumerate(rep["segments"][:5], 1)] or ["  (no segment found)"]
    t = rep["truth"]
    spans = ", ".join(f"{s:.1f} - {e:.1f} s" for s, e in t["spans"])
    c = rep["cost"]
    verdict = "correct" if rep["correct"] else "wrong"
    ans = f"({rep['choice']}) {rep['answer']}" if rep["choice"] else f"{rep['answer']} (no option read)"
    return "\n".join([
        f"video      {rep['video']} ({rep['duration'] / 60:.1f} min, synthetic, seed {rep['seed']})",
        f"question   {rep['question']}",
        f"options    {opts}",
        f"answer     {ans}   confidence {rep['confidence']:.3f}",
        "segments   (where the agent looked; absolute video time)",
        *segs,
        (f"truth      ({t['choice']}) {t['answer']}, evidence {spans}   -> {verdict}, "
        f"IoU of the top segment {rep['iou']:.2f}"),
        *([f"why        {rep['why_wrong']}"] if rep.get("why_wrong") else []),
        (f"cost       {c['model_calls']} model calls, {c['frames']} frames, "
        f"{c['visual_tokens']} visual tokens, {float(c['seconds']):.1f} s of model time "
        f"({rep['seconds']['total']:.1f} s in all, {rep['seconds']['synth']:.1f} s making the video)"),
        f"timeline   {rep['timeline']}",
    ])
