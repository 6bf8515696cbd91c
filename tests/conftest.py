"""Shared test fixtures. Tests run offline: no hub downloads, tiny models from configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real clips and benchmark annotations); tests skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside this checkout (real clips and annotations)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def synth_world(tmp_path_factory):
    """`synth_world(videos, minutes, seed)` -> annotations.jsonl of a synthetic world of that shape,
    generated once per session (tests that only read a world share it)."""
    made: dict[tuple[int, float, int], Path] = {}

    def make(videos: int, minutes: float, seed: int) -> Path:
        key = (videos, minutes, seed)
        if key not in made:
            from evals.synthetic.generate import generate_world

            out = tmp_path_factory.mktemp(f"world_{videos}x{minutes:g}min_seed{seed}")
            generate_world(out, n_videos=videos, minutes=(minutes, minutes), seed=seed)
            made[key] = out / "annotations.jsonl"
        return made[key]

    return make


@pytest.fixture(scope="session")
def lone_sightings(synth_world):
    """Ground truth for what a frame shows, straight from the world's specs: for each grounding
    row that names an object ("me") in a world big enough to hold every kind of look-alike, each
    object "o" at a time "t" when it is alone on screen (inside its path, nobody else within 1 s of
    theirs); "t_me" is a time when the named object is on screen. Rows are `trainer.data` rows."""
    import json

    from trainer.binding import named_target
    from trainer.data import load_rows
    from trainer.vision_pretrain import spec_path

    def mid(o):  # after entering, before leaving: on screen
        return (o["times"][1] + o["times"][-2]) / 2

    def around(o, t):
        return o["times"][0] - 1 <= t <= o["times"][-1] + 1

    out = []
    for row in load_rows(synth_world(3, 8, 79), kinds=("grounding",)):
        if named_target(row.video, row.extra) is None:
            continue
        objects = json.loads(spec_path(row.video).read_text())["objects"]
        me = objects[row.extra["event"]["target"]]
        for o in objects:
            t = mid(o)
            if o is not me and not around(me, t) and not any(around(x, t) for x in objects if x is not o):
                out.append({"row": row, "me": me, "o": o, "t": t, "t_me": mid(me)})
    return out


class ScriptedVLM:
    """A grounder backend that answers like a trained model would for one event: a window holding
    `event` (absolute seconds) gets its window-relative span at confidence `hit`, any other window
    "not in this clip" at `miss`. Records the requests."""

    name = "scripted"

    def __init__(self, event: tuple[float, float], hit: float = 0.9, miss: float = 0.05) -> None:
        self.event, self.hit, self.miss = event, hit, miss
        self.requests: list = []

    def __call__(self, request):
        from grounder.backends import ModelReply

        self.requests.append(request)
        s, e = self.event
        if request.window_start <= s and e <= request.window_end:
            rel = (s - request.window_start, e - request.window_start)
            return ModelReply(f"<think>I see it.</think><answer>{rel[0]:.1f} to {rel[1]:.1f}</answer>", self.hit,
                              visual_tokens=2 * len(request.frames))
        return ModelReply("<think>No.</think><answer>not in this clip</answer>", self.miss,
                          visual_tokens=len(request.frames))
