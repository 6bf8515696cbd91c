"""Scene detection benchmark: long videos stitched from the real clips with known cut times.

Run: ``python -m evals.bench.scenes`` (``--help`` for options). The first run writes the test
videos to ``.bench_cache/scenes/`` (gitignored); later runs reuse them.

The four real clips of ../shared/data/videos are resampled to 640x360 at 25 fps (the frame on
screen at k/25 s) and cut into segments (a random stretch of a random clip, at least 2 s),
concatenated in a seeded random order with no clip next to itself (a looped clip's own loop
point would be a content jump too, but then "the same clip continues" and "a new shot" are
hard to tell apart, so we avoid the case rather than argue about it). carphone_pristine and
carphone_distorted are the same footage at two qualities, so they count as one clip here: a
jump from one to the other is a second or two within the same static talking-head shot, which
neither we nor PySceneDetect report (a first run that allowed them adjacent missed 12 of 13).

Ground truth cuts: the first frame of every segment but the first, plus bikes.mp4's own hard
cuts (bikes is a montage: its new shots start at 1.20, 3.04, 5.48, 7.48 and 9.68 s, found by
the largest frame-to-frame jumps and checked by eye) that fall inside a used stretch.
Segments are drawn so that no two cuts are closer than 1 s (the detector's min scene length).

A detected cut matches a true one within ``--tol`` (0.5 s), one to one; we also report how
many matched cuts are on the exact frame. PySceneDetect (ContentDetector, its default) runs
on the same files when ``--pyscenedetect-python`` names a Python that has it installed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from evals.bench.report_md import write_section

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".bench_cache" / "scenes"
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
CLIPS = ("bigbuckbunny", "bikes", "carphone_pristine", "carphone_distorted")
BIKES_CUTS = (1.20, 3.04, 5.48, 7.48, 9.68)
WIDTH, HEIGHT, FPS = 640, 360, 25
GROUP = {"bigbuckbunny": 0, "bikes": 1, "carphone_pristine": 2, "carphone_distorted": 2}
MIN_SEG_FRAMES = 2 * FPS
MIN_GAP_FRAMES = FPS  # no two true cuts closer than 1 s


def load_clips() -> dict[str, np.ndarray]:
    """Each clip as yuv420p frames [N, H*3/2, W] at 640x360, 25 fps."""
    import av

    from grounder.video import open_video

    out = {}
    for name in CLIPS:
        with open_video(VIDEOS / f"{name}.mp4") as r:
            n = int(np.floor(r.duration * FPS + 1e-6))
            frames, _ = r.sample(np.arange(n) / FPS)
        out[name] = np.stack([
            av.VideoFrame.from_ndarray(f, format="rgb24").reformat(WIDTH, HEIGHT, "yuv420p").to_ndarray()
            for f in frames])
    return out


def plan(lengths: dict[str, int], minutes: float, seed: int) -> tuple[list[tuple[str, int, int]], list[int]]:
    """Segments (clip, first frame, end frame) and the true cut frames of the whole video."""
    rng = random.Random(seed)
    total = int(minutes * 60 * FPS)
    segs: list[tuple[str, int, int]] = []
    cuts: list[int] = []
    pos, prev = 0, None
    internal = {name: [] for name in CLIPS}
    internal["bikes"] = [round(t * FPS) for t in BIKES_CUTS]
    while pos < total:
        name = rng.choice([c for c in CLIPS if GROUP[c] != GROUP.get(prev)])
        n = lengths[name]
        for _ in range(100):
            a = rng.randrange(0, n - MIN_SEG_FRAMES + 1)
            b = rng.randrange(a + MIN_SEG_FRAMES, n + 1)
            inner = [c for c in internal[name] if a < c < b]
            if all(c - a >= MIN_GAP_FRAMES and b - c >= MIN_GAP_FRAMES for c in inner):
                break
        if pos:
            cuts.append(pos)
        cuts += [pos + c - a for c in inner]
        segs.append((name, a, b))
        pos += b - a
        prev = name
    return segs, cuts


def build(minutes: float, seed: int) -> tuple[Path, list[float]]:
    """Write (or reuse) the stitched video; returns (path, true cut times in seconds)."""
    import av

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"stitched_v2_{minutes:g}min_seed{seed}.mp4"
    truth = path.with_suffix(".cuts.json")
    if path.is_file() and truth.is_file():
        return path, json.loads(truth.read_text())["cuts"]
    clips = load_clips()
    segs, cuts = plan({k: len(v) for k, v in clips.items()}, minutes, seed)
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23", "g": "250"}
        s.thread_count = 0
        k = 0
        for name, a, b in segs:
            for arr in clips[name][a:b]:
                frame = av.VideoFrame.from_ndarray(arr, format="yuv420p")
                frame.pts = k
                frame.time_base = Fraction(1, FPS)
                out.mux(s.encode(frame))
                k += 1
        out.mux(s.encode(None))
    os.replace(tmp, path)
    times = [c / FPS for c in cuts]
    truth.write_text(json.dumps({"cuts": times, "segments": segs}))
    return path, times


def score(pred: list[float], truth: list[float], tol: float) -> dict[str, float]:
    """Precision / recall / F1 with one-to-one matching within ``tol`` (closest pairs first)."""
    pairs = sorted((abs(p - t), i, j) for i, p in enumerate(pred) for j, t in enumerate(truth)
                   if abs(p - t) <= tol) if len(pred) * len(truth) < 4_000_000 else _near(pred, truth, tol)
    used_p, used_t, exact = set(), set(), 0
    for dist, i, j in pairs:
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        exact += dist < 0.5 / FPS
    tp = len(used_p)
    p = tp / len(pred) if pred else 1.0
    r = tp / len(truth) if truth else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "tp": tp, "pred": len(pred), "true": len(truth), "exact_frame": exact}


def _near(pred: list[float], truth: list[float], tol: float) -> list[tuple[float, int, int]]:
    t = np.asarray(truth)
    out = []
    for i, p in enumerate(pred):
        lo, hi = np.searchsorted(t, p - tol), np.searchsorted(t, p + tol, side="right")
        out += [(abs(p - t[j]), i, j) for j in range(lo, hi)]
    return sorted(out)


def run_ours(path: Path, fps: float) -> tuple[list[float], float, dict[str, Any]]:
    from trainer.scenes import detect_scenes

    t = time.perf_counter()
    r = detect_scenes(path, fps=fps)
    return r.cuts, time.perf_counter() - t, {"coarse": r.coarse_frames, "dense": r.dense_frames}


PSD_SCRIPT = """
import json, sys, time
from scenedetect import open_video, SceneManager, ContentDetector
t = time.perf_counter()
v = open_video(sys.argv[1])
sm = SceneManager()
sm.add_detector(ContentDetector())
sm.auto_downscale = True
sm.detect_scenes(v)
cuts = [s[0].get_seconds() for s in sm.get_scene_list()[1:]]
print(json.dumps({"cuts": cuts, "seconds": time.perf_counter() - t}))
"""


def run_psd(python: str, path: Path) -> tuple[list[float], float]:
    out = subprocess.run([python, "-c", PSD_SCRIPT, str(path)], capture_output=True, text=True, check=True)
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return d["cuts"], d["seconds"]


NOTES = (
    "Reading (2026-11-23 run: both find every cut, ours 207-246 s/hour, PySceneDetect 112-170): "
    "the 2 fps coarse pass does not save decoding here, because H.264 must decode every frame "
    "of a 10 s GOP to show any of them, so ours pays about one full decode for the coarse pass "
    "plus part of a second one for the dense refinement (about 3.6 source frames per coarse "
    "sample), while PySceneDetect decodes once through OpenCV. We keep our own implementation "
    "for now: no OpenCV dependency (a second FFmpeg build beside PyAV's), frame times from "
    "grounder.video (the same exact-frame rule as every other tool here, NTSC rates included), "
    "and the same reader for the thumbnails. The cost gap is the dense pass; fusing it into the "
    "coarse pass, or adopting PySceneDetect as a backend, is the next step if scene detection "
    "time matters."
)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fps", type=float, default=2.0, help="coarse sampling rate of our detector")
    ap.add_argument("--tol", type=float, default=0.5)
    ap.add_argument("--pyscenedetect-python", default=None,
                    help="a Python with scenedetect + opencv installed (runs on the same videos)")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args(argv)
    if not VIDEOS.is_dir():
        sys.exit(f"needs the real clips in {VIDEOS}")
    rows = []
    for minutes in args.minutes:
        path, truth = build(minutes, args.seed)
        cuts, secs, extra = run_ours(path, args.fps)
        m = score(cuts, truth, args.tol)
        rows.append((f"ours (fps {args.fps:g})", minutes, m, secs, extra))
        print(json.dumps({"method": "ours", "minutes": minutes, **m, "seconds": secs, **extra}), flush=True)
        if args.pyscenedetect_python:
            pcuts, psecs = run_psd(args.pyscenedetect_python, path)
            pm = score(pcuts, truth, args.tol)
            rows.append(("PySceneDetect ContentDetector", minutes, pm, psecs, {}))
            print(json.dumps({"method": "pyscenedetect", "minutes": minutes, **pm, "seconds": psecs}), flush=True)
    if args.no_write:
        return
    cmd = "python -m evals.bench.scenes " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "## Scene detection (evals/bench/scenes.py)",
        "",
        (f"`{cmd.strip()}` on {datetime.date.today().isoformat()}, machine: {os.cpu_count()} CPU cores, "
         f"no GPU, {platform.python_implementation()} {platform.python_version()}."),
        "",
        ("Videos: the four real clips resampled to 640x360 at 25 fps, random stretches (>= 2 s) "
         f"concatenated in a seeded random order (seed {args.seed}), no clip next to itself (the two "
         "carphone files count as one clip); true cuts = first frame of each stretch + bikes.mp4's "
         "own shot changes inside a stretch (see the module docstring). A cut matches within "
         f"{args.tol} s, one to one; \"exact\" = matched on the exact frame. s/hour = wall seconds "
         "per hour of video (one process, decode included; raw PyAV decode of every frame alone "
         "is about 115 s/hour here). PySceneDetect: scenedetect 0.7.2 + opencv-python-headless in a "
         "separate venv (`--pyscenedetect-python`), ContentDetector defaults, auto-downscale."),
        "",
        "| method | video | true cuts | detected | precision | recall | F1 | exact frame | s/hour |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, minutes, m, secs, _ in rows:
        lines.append(f"| {name} | {minutes:g} min | {m['true']} | {m['pred']} | {m['precision']:.3f} | "
                     f"{m['recall']:.3f} | {m['f1']:.3f} | {m['exact_frame']}/{m['tp']} | "
                     f"{secs / (minutes / 60):.0f} |")
    lines += ["", NOTES]
    write_section("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
