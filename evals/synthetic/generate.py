"""Generate a synthetic world on disk: videos/*.mp4, specs/*.json, annotations.jsonl."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evals.synthetic.questions import make_rows
from evals.synthetic.render import encode_video
from evals.synthetic.world import VideoSpec, WorldConfig, make_video_spec
from grounder.files import write_text_atomic


def world_specs(n_videos: int, minutes: tuple[float, float], seed: int,
                config: WorldConfig | None = None) -> list[VideoSpec]:
    """Timelines only (no pixels): cheap, for oracles and hardness checks."""
    return [make_video_spec(seed, i, minutes, config) for i in range(n_videos)]


def world_rows(specs: list[VideoSpec]) -> list[dict[str, Any]]:
    """Annotation rows of timelines, with the paths `generate_world` gives their videos."""
    rows: list[dict[str, Any]] = []
    for spec in specs:
        rows += make_rows(spec, f"videos/{spec.video_id}.mp4")
    return rows


def load_spec(path: str | os.PathLike[str]) -> VideoSpec:
    return VideoSpec.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def generate_world(out_dir: str | os.PathLike[str], n_videos: int,
                   minutes: tuple[float, float] = (15.0, 30.0), seed: int = 0,
                   config: WorldConfig | None = None,
                   advance: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Write `n_videos` MP4s (videos/vNNNN.mp4), their timelines (specs/vNNNN.json) and
    annotations.jsonl (written last, so its presence means the world is complete).
    `advance(n)` is called with the number of frames encoded so far, for a progress bar."""
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "specs").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for spec in world_specs(n_videos, minutes, seed, config):
        encode_video(spec, out / "videos" / f"{spec.video_id}.mp4", advance=advance)
        write_text_atomic(out / "specs" / f"{spec.video_id}.json", json.dumps(spec.to_dict()) + "\n")
        rows += make_rows(spec, f"videos/{spec.video_id}.mp4")
    write_text_atomic(out / "annotations.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return rows
