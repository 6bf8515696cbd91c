"""Benchmark loaders: public annotation formats -> the dataset rows of docs/architecture.md.

`load_benchmark(name, ann_path, videos_dir=None)` picks the loader by benchmark name;
`missing_videos(rows)` lists the videos that are not on disk, for the runner to report
before any work starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

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

@dataclass(frozen=True)
class Benchmark:
    """Everything the evals know of one benchmark; adding one is its loader plus an entry here."""

    loader: Loader
    official: str = "groundqa"  # the protocol `--protocol official` picks (evals.metrics.grounding.PROTOCOLS)
    aliases: tuple[str, ...] = ()  # other spellings of its name
    # the published score when it is not the pooled accuracy: (its name, the rule it follows)
    headline: tuple[str, str] | None = None
    breakdowns: tuple[str, ...] = ("qtype",)  # row fields its own scorer also reports accuracy per value of


BENCHMARKS: dict[str, Benchmark] = {
    # Charades-STA and ActivityNet Captions ship no scorer of their own: TimeZero's is the one papers use
    "charades": Benchmark(load_charades, "timezero", ("charades-sta", "charades_sta", "charadessta")),
    "activitynet": Benchmark(load_activitynet, "timezero", ("anet", "activitynet-captions", "activitynet_captions")),
    "qvhighlights": Benchmark(load_qvhighlights, aliases=("qvh",)),  # scored by moment_detr's code (evals.score)
    "tvgbench": Benchmark(load_tvgbench, "time-r1"),
    "rextime": Benchmark(load_rextime, "rextime"),
    "nextgqa": Benchmark(load_nextgqa, "nextgqa", ("next-gqa",)),
    "videomme": Benchmark(load_videomme, "videomme", ("video-mme",), breakdowns=("qtype", "duration_group")),
    "longvideobench": Benchmark(load_longvideobench, "longvideobench", ("lvb",),
                                breakdowns=("qtype", "duration_group")),
    "mlvu": Benchmark(load_mlvu, "mlvu", headline=("M-Avg", (
        "the mean of the per-task accuracies (JUNJIE99/MLVU@fd060c1 "
        "evaluation/multiple_choice_evaluation/choice_bench.py)"))),
    "lvbench": Benchmark(load_lvbench, "lvbench"),
    "egoschema": Benchmark(load_egoschema),  # the authors' server: accuracy over the questions
    "synthetic": Benchmark(load_synthetic, aliases=("synth",)),
}
ALIASES: dict[str, str] = {a: key for key, b in BENCHMARKS.items() for a in b.aliases}


def _canonical(name: str) -> str:
    key = str(name).strip().lower()
    return ALIASES.get(key, key)


def benchmark_key(name: str) -> str:
    """The registry key for a benchmark name (case and aliases forgiven)."""
    key = _canonical(name)
    if key not in BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
    return key


def official_protocol(name: str | None) -> str:
    """The protocol `--protocol official` means for benchmark `name` (groundqa for none / unknown)."""
    key = _canonical(name or "")
    return BENCHMARKS[key].official if key in BENCHMARKS else "groundqa"


def load_benchmark(name: str, ann_path: str | os.PathLike,
                   videos_dir: str | os.PathLike | None = None, allow_outside: bool = False) -> list[Row]:
    """Rows of benchmark `name` from its annotation file; videos resolved against
    `videos_dir` (else beside the annotations). Bad files raise InputError (one line), and so
    does a video that resolves outside that folder (`../`, an absolute path elsewhere) unless
    `allow_outside`: an annotation file must not point the run at arbitrary files."""
    if videos_dir is not None and not os.path.isdir(videos_dir):
        raise InputError(f"videos folder not found: {videos_dir}")
    rows = BENCHMARKS[benchmark_key(name)].loader(ann_path, videos_dir)
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
