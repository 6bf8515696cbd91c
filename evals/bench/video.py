"""Frame access benchmark: 64 frames spread over a 1-hour video.

Run: ``python -m evals.bench.video`` (``--help`` for options). The first run writes the test
video to ``.bench_cache/`` (gitignored, about 4 minutes on 2 cores); later runs reuse it.

Compares ``grounder.video`` (fresh reader, cold) with each library's best raw use: PyAV
seeking by hand, decord ``get_batch``, torchcodec ``get_frames_played_at`` (when its
library loads). Each measurement runs in its own subprocess (so peak RSS figures do not
mix), methods alternate round by round, and the median of the rounds is reported. Frames
are checked against PyAV exact seeking, itself checked once against a sequential decode.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from evals.bench.report_md import write_section

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".bench_cache"

WIDTH, HEIGHT, FPS, GOP = 640, 360, 30, 120

# 7-segment layout: (row0, row1, col0, col1) of each segment in a 40x24 digit cell.
_SEGMENTS = {
    "a": (0, 4, 2, 22),
    "b": (2, 20, 20, 24),
    "c": (20, 38, 20, 24),
    "d": (36, 40, 2, 22),
    "e": (20, 38, 0, 4),
    "f": (2, 20, 0, 4),
    "g": (18, 22, 2, 22),
}
_DIGIT_SEGMENTS = [
    "abcdef",
    "bc",
    "abged",
    "abgcd",
    "fgbc",
    "afgcd",
    "afgedc",
    "abc",
    "abcdefg",
    "abcdfg",
]


def _digit_cells() -> np.ndarray:
    """Bitmaps [10, 40, 24] of the digits, to stamp the frame number into each frame."""
    cells = np.zeros((10, 40, 24), dtype=bool)
    for digit, segments in enumerate(_DIGIT_SEGMENTS):
        for name in segments:
            r0, r1, c0, c1 = _SEGMENTS[name]
            cells[digit, r0:r1, c0:c1] = True
    return cells


def write_test_video(path: Path, seconds: float, seed: int = 0) -> Path:
    """Write a WIDTHxHEIGHT FPS H.264 file with a keyframe every GOP frames.

    Every frame differs (scrolling texture, a small block of fresh noise, the frame number in
    big digits, drifting chroma) yet the file stays compressible enough for x264 ultrafast to
    encode an hour in a few minutes. Written to a temp file and renamed, so an interrupted run
    leaves nothing half-written behind.
    """
    import av

    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 60, size=(HEIGHT, WIDTH + 512), dtype=np.uint8)
    ramp = (np.arange(WIDTH + 512) % 256).astype(np.uint8) // 2
    base = texture + ramp[None, :]
    shade = (np.arange(HEIGHT)[:, None] * 160 // HEIGHT).astype(np.uint8)
    digits = _digit_cells()
    n_frames = round(seconds * FPS)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {
            "preset": "ultrafast",
            "crf": "30",
            "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0",
        }
        buf = np.empty((HEIGHT * 3 // 2, WIDTH), dtype=np.uint8)  # yuv420p planes stacked
        luma = buf[:HEIGHT]
        for i in range(n_frames):
            offset = (3 * i) % 512
            np.add(base[:, offset : offset + WIDTH], shade, out=luma)
            luma[100:124, 200:224] = rng.integers(0, 256, (24, 24), dtype=np.uint8)
            for k, ch in enumerate(f"{i:06d}"):
                cell = luma[300:340, 40 + 30 * k : 64 + 30 * k]
                cell[...] = np.where(digits[int(ch)], 250, 10)
            buf[HEIGHT : HEIGHT + HEIGHT // 4] = (i // 30) % 200 + 20
            buf[HEIGHT + HEIGHT // 4 :] = (i * 7) % 200 + 20
            frame = av.VideoFrame.from_ndarray(buf, format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    os.replace(tmp, path)
    return path


def test_video(seconds: float = 3600.0) -> Path:
    """The cached benchmark video, written on first use."""
    path = CACHE / f"bench_{WIDTH}x{HEIGHT}_{FPS}fps_gop{GOP}_{int(seconds)}s.mp4"
    if not path.exists():
        print(f"writing {path} ({seconds:.0f} s of video, once) ...", flush=True)
        write_test_video(path, seconds)
    return path


# -- the methods measured (each runs inside a worker subprocess) ---------------------------


def _digest(rgb: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=12).hexdigest()


def raw_pyav(path: Path, times: list[float]) -> tuple[list[np.ndarray], list[float]]:
    """PyAV by hand: per time, seek to the keyframe before it, decode to the frame on screen."""
    import av

    frames, stamps = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # faster than frame threads when seeking
        tb = stream.time_base
        for t in sorted(times):
            container.seek(int(t / tb), stream=stream, backward=True)
            prev = None
            for frame in container.decode(stream):
                if frame.pts * tb > t:
                    break
                prev = frame
            frames.append(prev.to_ndarray(format="rgb24"))
            stamps.append(float(prev.pts * tb))
    return frames, stamps


def raw_decord(path: Path, times: list[float]) -> tuple[list[np.ndarray], list[float]]:
    """decord's fast path: frame indices from the nominal rate, one ``get_batch``."""
    import decord

    vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)  # fastest here
    fps = vr.get_avg_fps()
    idx = [min(int(t * fps + 1e-9), len(vr) - 1) for t in sorted(times)]
    batch = vr.get_batch(idx).asnumpy()
    return list(batch), [i / fps for i in idx]


def _raw_torchcodec(
    mode: str,
) -> Callable[[Path, list[float]], tuple[list[np.ndarray], list[float]]]:
    def run(path: Path, times: list[float]) -> tuple[list[np.ndarray], list[float]]:
        from torchcodec.decoders import VideoDecoder

        dec = VideoDecoder(str(path), seek_mode=mode, dimension_order="NHWC")
        batch = dec.get_frames_played_at(seconds=sorted(times))
        return list(batch.data.numpy()), batch.pts_seconds.numpy().astype(float).tolist()

    run.__doc__ = f"torchcodec ``get_frames_played_at``, seek_mode={mode!r}."
    return run


def _ours(**options: Any) -> Callable[[Path, list[float]], Any]:
    def run(path: Path, times: list[float]) -> Any:
        from grounder.video import open_video

        reader = open_video(path, **options)
        frames, stamps = reader.sample(times)
        return reader, list(frames), stamps.tolist()

    return run


RAW: dict[str, Callable[[Path, list[float]], tuple[list[np.ndarray], list[float]]]] = {
    "raw pyav (seek by hand)": raw_pyav,
    "raw decord get_batch": raw_decord,
    "raw torchcodec approximate": _raw_torchcodec("approximate"),
    "raw torchcodec exact": _raw_torchcodec("exact"),
}
OURS: dict[str, dict[str, Any]] = {
    "ours (default backend)": {},
    "ours pyav workers=1 (one decoder)": {"backend": "pyav", "workers": 1},
    "ours backend=decord": {"backend": "decord"},
    "ours backend=torchcodec": {"backend": "torchcodec"},
}


def _preload(method: str) -> None:
    """Import the libraries a method needs, so their import time is not measured."""
    import av  # noqa: F401

    import grounder.video  # noqa: F401

    if "decord" in method:
        import decord  # noqa: F401
    if "torchcodec" in method:
        import torchcodec.decoders  # noqa: F401


def worker(method: str, path: Path, times: list[float]) -> dict[str, Any]:
    """One measurement: cold call (open + fetch), and for ours a repeated call on the reader."""
    _preload(method)
    result: dict[str, Any] = {"method": method}
    t0 = time.perf_counter()
    if method in OURS:
        reader, frames, stamps = _ours(**OURS[method])(path, times)
        result["cold_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        again, stamps_again = reader.sample(times)
        result["warm_s"] = time.perf_counter() - t1
        result["warm_same"] = bool(
            np.array_equal(np.stack(frames), again) and stamps_again.tolist() == stamps
        )
        order = np.argsort(times, kind="stable")  # ours answers in request order
        frames, stamps = [frames[k] for k in order], [stamps[k] for k in order]
    else:
        frames, stamps = RAW[method](path, times)
        result["cold_s"] = time.perf_counter() - t0
    result["digests"] = [_digest(f) for f in frames]
    result["timestamps"] = [float(s) for s in stamps]
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from
    the parent through fork + exec, so every worker would report the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(method: str, path: Path, times: list[float]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "evals.bench.video", "--worker", method, "--video", str(path)]
    proc = subprocess.run(
        cmd, input=json.dumps(times), capture_output=True, text=True, cwd=ROOT, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"method": method, "error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the reference ----------------------------------------------------------------------------


def check_reference_on_segment(path: Path, seconds: float = 20.0, n: int = 24) -> bool:
    """PyAV exact seeking == a plain sequential decode, on the first ``seconds`` of video."""
    import av

    rng = np.random.default_rng(1)
    times = sorted(rng.uniform(0.0, seconds, n).tolist())
    seq: list[tuple[float, str]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t > seconds:
                break
            seq.append((t, _digest(frame.to_ndarray(format="rgb24"))))
    seq_times = np.array([s[0] for s in seq])
    want = np.searchsorted(seq_times, np.array(times) + 1e-9, side="right") - 1
    frames, stamps = raw_pyav(path, times)
    return [_digest(f) for f in frames] == [seq[k][1] for k in want] and np.array_equal(
        np.array(stamps), seq_times[want]
    )


def spread_times(duration: float, n: int, seed: int = 0) -> list[float]:
    """One time per n-th of the video, at a random point inside it (not on keyframes)."""
    rng = np.random.default_rng(seed)
    return ((np.arange(n) + rng.uniform(0.05, 0.95, n)) * duration / n).tolist()


# -- the report -----------------------------------------------------------------------------


def summarize(runs: dict[str, list[dict[str, Any]]], ref: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for method, results in runs.items():
        ok = [r for r in results if "error" not in r]
        if not ok:
            rows.append({"method": method, "error": results[0]["error"]})
            continue
        exact_frames = all(r["digests"] == ref["digests"] for r in ok)
        # ours must return the reference times bit for bit; raw libraries compute seconds
        # their own way (pts * 1/time_base in float), so they get 1 us of slack.
        atol = 0.0 if method.startswith("ours") else 1e-6
        exact_times = all(
            np.allclose(r["timestamps"], ref["timestamps"], rtol=0, atol=atol) for r in ok
        )
        row = {
            "method": method,
            "median_s": float(np.median([r["cold_s"] for r in ok])),
            "min_s": float(np.min([r["cold_s"] for r in ok])),
            "peak_rss_mb": float(np.max([r["peak_rss_mb"] for r in ok])),
            "exact": exact_frames and exact_times,
            "exact_frames": exact_frames,
            "exact_times": exact_times,
        }
        if "warm_s" in ok[0]:
            row["warm_s"] = float(np.median([r["warm_s"] for r in ok]))
            row["warm_same"] = all(r["warm_same"] for r in ok)
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> tuple[str, dict[str, float]]:
    raw = [r for r in rows if r["method"].startswith("raw") and "error" not in r and r["exact"]]
    fastest = min(raw, key=lambda r: r["median_s"])
    lines = [
        (
            f"| method | cold median (s) | min (s) | vs fastest exact raw ({fastest['method']}) "
            "| repeated call (s) | repeated / cold | peak RSS (MB) | frames exact | times exact |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | failed: {r['error']} | | | | | | | |")
            continue
        warm = f"{r['warm_s']:.4f}" if "warm_s" in r else ""
        warm_ratio = f"{r['warm_s'] / r['median_s']:.3f}" if "warm_s" in r else ""
        lines.append(
            f"| {r['method']} | {r['median_s']:.3f} | {r['min_s']:.3f} "
            f"| {r['median_s'] / fastest['median_s']:.2f}x | {warm} | {warm_ratio} "
            f"| {r['peak_rss_mb']:.0f} | {'yes' if r['exact_frames'] else 'NO'} "
            f"| {'yes' if r['exact_times'] else 'NO'} |"
        )
    ours = next(r for r in rows if r["method"] == "ours (default backend)")
    figures = {
        "ours_vs_fastest_raw": ours["median_s"] / fastest["median_s"],
        "repeated_vs_cold": ours["warm_s"] / ours["median_s"],
        "ours_peak_rss_mb": ours["peak_rss_mb"],
    }
    return "\n".join(lines), figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench.video", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3600.0, help="test video length")
    parser.add_argument("--frames", type=int, default=64, help="frames per call")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (median reported)")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        times = json.loads(sys.stdin.read())
        print(json.dumps(worker(args.worker, Path(args.video), times)))
        return 0

    from grounder.video import available_backends

    path = test_video(args.seconds)
    times = spread_times(args.seconds, args.frames)
    print(f"video: {path.name} ({path.stat().st_size / 1e6:.0f} MB), {args.frames} frames")
    ref_ok = check_reference_on_segment(path)
    print(f"reference (PyAV exact seeking) == sequential decode on 0-20 s: {ref_ok}")
    ref = worker("raw pyav (seek by hand)", path, times)

    have = set(available_backends())
    methods = [m for m in RAW if "torchcodec" not in m or "torchcodec" in have]
    methods += [m for m, o in OURS.items() if o.get("backend", "pyav") in have]
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for rnd in range(args.repeats):
        for method in methods if rnd % 2 == 0 else reversed(methods):
            runs[method].append(run_worker(method, path, times))
        print(f"round {rnd + 1}/{args.repeats} done", flush=True)

    table, figures = format_table(summarize(runs, ref))
    targets = (
        f"- ours / fastest exact raw: **{figures['ours_vs_fastest_raw']:.2f}x** (target <= 1.1x)\n"
        f"- repeated call / cold call: **{figures['repeated_vs_cold']:.3f}** (target <= 0.1)\n"
        f"- peak RSS of ours: **{figures['ours_peak_rss_mb']:.0f} MB** (target <= 600 MB)\n"
        f"- reference (PyAV exact seeking) identical to a sequential decode on 0-20 s: {ref_ok}"
    )
    print(table)
    print(targets)
    if not args.no_write:
        cmd = "python -m evals.bench.video" + (" " + " ".join(argv) if argv else "")
        section = (
            "## Frame access (evals/bench/video.py)\n\n"
            f"`{cmd}` on {datetime.date.today().isoformat()}, machine: {os.cpu_count()} CPU cores, "
            f"no GPU, {platform.python_implementation()} {platform.python_version()}. "
            f"Video: {args.seconds / 3600:g} h, {WIDTH}x{HEIGHT}, {FPS} fps H.264 (x264 "
            f"ultrafast, keyframe every {GOP} frames, scenecut off). One call = {args.frames} "
            "frames spread over the video (one at a random point of each 1/64th, so each "
            "needs a seek and ~60 frames of decoding); cold = fresh "
            "process, open + fetch; median of "
            f"{args.repeats} rounds, methods alternating, each run in its own subprocess "
            "(peak RSS = that process's VmHWM, imports included). Raw methods use one "
            "decoder with the thread setting measured fastest for them (1 thread: FFmpeg frame "
            "threads stall at every seek); ours by default splits a call spanning many GOPs "
            "over min(2, cores) single-threaded decoders (row `workers=1` shows one decoder). "
            "Frames exact = RGB identical to PyAV exact seeking (the reference, checked against "
            "a sequential decode); times exact = equal to the reference's pts * time_base "
            "(bit for bit for ours, within 1 us for raw libraries).\n\n"
            f"{table}\n\n{targets}\n\n"
            "Reading the rows: `ours backend=decord` gets NO for times because decord "
            "reports frame times as float32 (0.24 ms steps at 1 h), which is why that backend "
            "is marked `exact = False` (the raw decord row computes index / fps itself, "
            "which is right only for constant-rate files). torchcodec loads only with the "
            "system FFmpeg libraries installed (Debian 12: libavcodec59 and friends) and "
            "imports torch, hence its RSS. The test video is written once by the bench "
            "(about 4 minutes on 2 cores, 690 MB).\n"
        )
        print(f"wrote {write_section(section)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
