"""Benchmark loaders: public annotation formats -> the dataset rows of docs/architecture.md.

`load_benchmark(name, ann_path, videos_dir=None)` picks the loader by benchmark name;
`missing_videos(rows)` lists the videos that are not on disk, for the runner to report
before any work starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from evals.loaders.common import Row, clip_spans, missing_videos, resolve_video
from evals.loaders.grounding import (
    load_activitynet,
    load_captions_json,
    load_charades,
    load_charades_txt,
    load_qvhighlights,
    load_synthetic,
    load_tvgbench,
)
from evals.loaders.qa import (
    load_egoschema,
    load_longvideobench,
    load_lvbench,
    load_mlvu,
    load_nextgqa,
    load_rextime,
    load_videomme,
)
from grounder.errors import InputError
from grounder.files import inside, outside_error

Loader = Callable[[str | os.PathLike, str | os.PathLike | None], list[Row]]

LOADERS: dict[str, Loader] = {
    "charades": load_charades,
    "activitynet": load_activitynet,
    "qvhighlights": load_qvhighlights,
    "tvgbench": load_tvgbench,
    "rextime": load_rextime,
    "nextgqa": load_nextgqa,
    "videomme": load_videomme,
    "longvideobench": load_longvideobench,
    "mlvu": load_mlvu,
    "lvbench": load_lvbench,
    "egoschema": load_egoschema,
    "synthetic": load_synthetic,
}

# Spellings people use for the same benchmarks.
ALIASES: dict[str, str] = {
    "charades-sta": "charades", "charades_sta": "charades", "charadessta": "charades",
    "anet": "activitynet", "activitynet-captions": "activitynet",
    "activitynet_captions": "activitynet", "qvh": "qvhighlights", "next-gqa": "nextgqa",
    "video-mme": "videomme", "lvb": "longvideobench", "synth": "synthetic",
}


def benchmark_key(name: str) -> str:
    """The registry key for a benchmark name (case and aliases forgiven)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in LOADERS:
        raise InputError(f"unknown benchmark {name!r}; known: {', '.join(sorted(LOADERS))}")
    return key


def load_benchmark(name: str, ann_path: str | os.PathLike,
                   videos_dir: str | os.PathLike | None = None, allow_outside: bool = False) -> list[Row]:
    """Rows of benchmark `name` from its annotation file; videos resolved against
    `videos_dir` (else beside the annotations). Bad files raise InputError (one line), and so
    does a video that resolves outside that folder (`../`, an absolute path elsewhere) unless
    `allow_outside`: an annotation file must not point the run at arbitrary files."""
    if videos_dir is not None and not os.path.isdir(videos_dir):
        raise InputError(f"videos folder not found: {videos_dir}")
    rows = LOADERS[benchmark_key(name)](ann_path, videos_dir)
    if not allow_outside:
        # the loaders join names to videos_dir as given, or to the annotation file's real folder
        folder = videos_dir if videos_dir is not None else os.path.dirname(os.path.realpath(ann_path))
        for row in rows:
            video = row.get("video")
            if video and not inside(os.path.abspath(video), folder):
                raise InputError(outside_error(str(video), folder, str(ann_path), "--allow-outside-paths"))
    return rows


__all__ = [
    "ALIASES",
    "LOADERS",
    "Row",
    "benchmark_key",
    "clip_spans",
    "load_activitynet",
    "load_benchmark",
    "load_captions_json",
    "load_charades",
    "load_charades_txt",
    "load_egoschema",
    "load_longvideobench",
    "load_lvbench",
    "load_mlvu",
    "load_nextgqa",
    "load_qvhighlights",
    "load_rextime",
    "load_synthetic",
    "load_tvgbench",
    "load_videomme",
    "missing_videos",
    "resolve_video",
]
