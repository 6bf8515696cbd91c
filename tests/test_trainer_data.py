"""trainer.data: JSONL rows -> window samples -> Qwen-VL inputs (real synthetic videos)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from grounder.errors import ConfigError, InputError
from grounder.prompts import SYSTEM_PROMPT, grounding_prompt
from trainer.data import (
    FrameConfig,
    GroundingDataset,
    GroundingRow,
    WindowConfig,
    choose_window,
    load_rows,
    reference_trace,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from evals.synthetic.generate import generate_world

    out = tmp_path_factory.mktemp("trainer_world")
    generate_world(out, n_videos=1, minutes=(1, 1), seed=1)
    return out / "annotations.jsonl"


def test_rows_resolve_relative_paths(world, tmp_path):
    rows = load_rows(world)
    assert rows and all(r.video.is_absolute() and r.video.is_file() for r in rows)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"video": "x.mp4", "duration": 3, "query": "q", "spans": [[2, 1]]}) + "\n")
    with pytest.raises(InputError, match="bad.jsonl:1"):
        load_rows(bad)
    with pytest.raises(ConfigError):
        FrameConfig(fps=0)


def test_windows_contain_span_and_negatives_have_none():
    row = GroundingRow(video=None, duration=100.0, query="q", spans=[(40.0, 45.0)])  # type: ignore[arg-type]
    rng = random.Random(0)
    for _ in range(50):
        s, e, span = choose_window(row, WindowConfig(length=20.0), rng)
        assert e - s == pytest.approx(20.0) and 0 <= s and e <= 100
        assert span == pytest.approx((40 - s, 45 - s), abs=1e-3)
        s, e, span = choose_window(row, WindowConfig(length=20.0, negative_prob=1.0), rng)
        assert span is None and (e <= 40 or s >= 45)
    s, e, span = choose_window(row, WindowConfig(length=2.0, random_crop=False), rng)  # inside a long span
    assert (s, e) == pytest.approx((41.5, 43.5)) and span == pytest.approx((0.0, 2.0))


def test_sample_inputs_match_the_grounder(world):
    from grounder.tiny import build_tiny

    ds = GroundingDataset(world, FrameConfig(fps=1, max_frames=6, max_pixels=64 * 64),
                          WindowConfig(length=20.0), seed=3)
    a, b = ds.sample(0), ds.sample(0)
    assert a.start == b.start and np.array_equal(a.frames, b.frames)  # reproducible
    # frame i is the one on screen at start + i x length / 6 (the scan's windows, grounder.windows)
    assert a.frames.shape[0] == 6 and a.start - 1 / a.fps < a.timestamps[0] <= a.start
    assert a.timestamps[-1] <= a.start + 5 * a.length / 6 < a.end
    assert a.span is not None and 0 <= a.span[0] < a.span[1] <= a.length
    assert a.prompt == grounding_prompt(a.query, a.length)
    vs = a.video_sample()
    assert vs.system == SYSTEM_PROMPT and vs.origin == a.start and vs.sample_fps == pytest.approx(6 / 20) and vs.clip
    _, processor = build_tiny("qwen2_5_vl")
    inputs = a.inputs(processor, completion=a.target)
    for key in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "mm_token_type_ids"):
        assert key in inputs
    # 6 frames over 20 s: 2 frames per temporal patch -> 20/3 s per grid step
    assert float(inputs["second_per_grid_ts"][0]) == pytest.approx(2 / (6 / 20), rel=1e-3)
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    assert text.count("<|vision_start|>") == 1 and text.endswith(a.target)
    assert "None" not in text
    assert reference_trace(None, 10).endswith("<answer>not in this clip</answer>")


def test_dataset_rows_cannot_name_videos_outside_its_folder(world, tmp_path):
    import json as _json

    raw = [_json.loads(x) for x in Path(world).read_text().splitlines() if x.strip()]
    video = Path(world).parent / raw[0]["video"]
    link = tmp_path / "clips" / "a.mp4"  # a link inside the folder is the folder's own
    link.parent.mkdir()
    link.symlink_to(video)
    for name, ok in (("clips/a.mp4", True), ("../x/a.mp4", False), (str(video), False), ("clips/../../a.mp4", False)):
        ds = tmp_path / "ds.jsonl"
        ds.write_text(_json.dumps({**raw[0], "video": name}) + "\n")
        if ok:
            assert load_rows(ds)[0].video == tmp_path.resolve() / "clips" / "a.mp4"
        else:
            with pytest.raises(InputError, match="lies outside .*data.allow_outside_paths=true"):
                load_rows(ds)
            assert load_rows(ds, allow_outside=True)[0].video.name in ("a.mp4", video.name)
