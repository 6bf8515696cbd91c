"""`groundqa synth`: argument checks, progress bar, summary."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from grounder.cliutil import emit, progress
from grounder.errors import InputError

MAX_MINUTES = 600.0


def parse_minutes(text: str) -> tuple[float, float]:
    """"A-B" (or "A") in minutes -> (A, B); 0 < A <= B <= 600."""
    parts = str(text).strip().split("-")
    try:
        if len(parts) == 1:
            a = b = float(parts[0])
        elif len(parts) == 2:
            a, b = float(parts[0]), float(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise InputError(f"--minutes must look like A-B (e.g. 15-30), got {text!r}") from None
    if not (a > 0 and b > 0):
        raise InputError(f"--minutes must be positive, got {text!r}")
    if b < a:
        raise InputError(f"--minutes A-B needs A <= B, got {text!r}")
    if b > MAX_MINUTES:
        raise InputError(f"--minutes at most {MAX_MINUTES:g} per video, got {text!r}")
    return a, b


def parse_sizes(text: str | None) -> tuple[int, ...] | None:
    """"32,34,40" -> object sizes in pixels (None/"" = the world's default); each 4..56, so an
    object fits inside the 112-px frame with room to move."""
    if text is None or not str(text).strip():
        return None
    try:
        sizes = tuple(int(x) for x in str(text).split(","))
    except ValueError:
        raise InputError(f"--sizes must be pixel sizes separated by commas (e.g. 32,36,40), got {text!r}") from None
    if not all(4 <= x <= 56 for x in sizes):
        raise InputError(f"--sizes must each be 4..56 px, got {text!r}")
    return sizes


def check_writable(out: str) -> Path:
    """Create the folder and prove we can write into it (before minutes of encoding)."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as e:
        raise InputError(f"cannot write to --out {out!r}: {e.strerror or e}") from None
    return path


def synth_command(out: str, videos: int, minutes: str, seed: int, as_json: bool, sizes: str | None = None) -> None:
    from evals.synthetic.generate import generate_world, world_specs
    from evals.synthetic.world import WorldConfig

    if videos < 1:
        raise InputError(f"--videos must be at least 1, got {videos}")
    lo, hi = parse_minutes(minutes)
    sz = parse_sizes(sizes)
    config = WorldConfig(sizes=sz) if sz else WorldConfig()
    path = check_writable(out)
    specs = world_specs(videos, (lo, hi), seed, config)  # cheap; gives the progress bar its total
    total_frames = sum(s.n_frames for s in specs)
    video_seconds = sum(s.duration for s in specs)
    t0 = time.perf_counter()
    with progress("synth", total=total_frames, enabled=True) as advance:
        rows = generate_world(path, videos, (lo, hi), seed, config=config, advance=advance)
    seconds = time.perf_counter() - t0
    n_qa = sum(1 for r in rows if r["kind"] == "qa")
    summary = {
        "out": os.path.abspath(path), "annotations": os.path.abspath(path / "annotations.jsonl"),
        "videos": videos, "sizes": list(config.sizes), "rows": len(rows), "grounding_rows": len(rows) - n_qa, "qa_rows": n_qa,
        "video_seconds": round(video_seconds, 1), "seconds": round(seconds, 2),
        "seconds_per_video_hour": round(seconds / max(video_seconds, 1e-9) * 3600, 2),
    }
    human = (f"wrote {videos} videos ({video_seconds / 60:.1f} min) and {len(rows)} rows "
             f"({n_qa} QA) to {path / 'annotations.jsonl'} in {seconds:.1f} s "
             f"({summary['seconds_per_video_hour']} s per hour of video)")
    emit(summary, as_json, human)
