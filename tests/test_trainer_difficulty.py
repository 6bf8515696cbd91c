"""Difficulty control (filter, Gaussian weights, weighted order), the difficulty command end to
end, TAR-TVG's trace filter, and the accelerate configs (parsed only: no GPUs here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from trainer.difficulty import (
    filter_by_range,
    gaussian_weights,
    histogram,
    is_distilled_trace,
    weighted_order,
)

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "trainer" / "recipes"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from evals.synthetic.generate import generate_world

    out = tmp_path_factory.mktemp("difficulty_world")
    generate_world(out, 1, minutes=(1, 1), seed=0)
    return out / "annotations.jsonl"


def test_filter_by_range_by_hand():
    rows = [{"q": "a", "difficulty": 0.0}, {"q": "b", "difficulty": 0.3}, {"q": "c", "difficulty": 0.95},
            {"q": "d"}, {"q": "e", "difficulty": 0.1}]
    assert [r["q"] for r in filter_by_range(rows, 0.1, 0.9)] == ["b", "d", "e"]  # bounds inclusive, unknown kept
    assert [r["q"] for r in filter_by_range(rows, 0.0, 1.0)] == ["a", "b", "c", "d", "e"]
    with pytest.raises(ValueError):
        filter_by_range(rows, 0.8, 0.2)


def test_gaussian_weights_by_hand():
    # target 0.5, sigma 0.25: d=0.5 -> 1, d=0.0 and d=1.0 -> exp(-0.25 / 0.125) = exp(-2)
    w = gaussian_weights([0.5, 0.0, 1.0], 0.5, 0.25)
    z = 1 + 2 * math.exp(-2)
    assert w == pytest.approx([1 / z, math.exp(-2) / z, math.exp(-2) / z])
    assert gaussian_weights([None, 0.5], 0.5, 0.1) == pytest.approx([0.5, 0.5])  # unknown = target
    assert sum(gaussian_weights([0.1, 0.2, 0.9], 0.3, 0.05)) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        gaussian_weights([0.1], 0.5, 0.0)


def test_weighted_order_is_deterministic_and_follows_weights():
    w = [0.0, 1.0, 0.0]
    assert weighted_order(w, 5, seed=0, epoch=0) == [1] * 5
    a = weighted_order([0.7, 0.2, 0.1], 200, seed=3, epoch=1)
    assert a == weighted_order([0.7, 0.2, 0.1], 200, seed=3, epoch=1)
    assert a != weighted_order([0.7, 0.2, 0.1], 200, seed=3, epoch=2)
    assert a.count(0) > a.count(1) > a.count(2)
    assert histogram([0.0, 0.05, 0.5, 1.0, 0.99], bins=10) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]


def test_trace_filter_by_hand():
    good = ("<think>around <timestamp>0.0 to 10.0</timestamp> then <timestamp>2.0 to 7.0</timestamp>"
            "</think><answer>3.0 to 6.0</answer>")
    # IoUs with [3, 6]: 0.3 -> 0.6 -> 1.0, rising at each step; answer IoU 1.0
    assert is_distilled_trace(good, (3.0, 6.0), 20.0, 0.5)
    worse = ("<think><timestamp>2.0 to 7.0</timestamp> then <timestamp>0.0 to 10.0</timestamp>"
             "</think><answer>3.0 to 6.0</answer>")
    assert not is_distilled_trace(worse, (3.0, 6.0), 20.0, 0.5)  # anchor reward 0.5
    assert not is_distilled_trace(good, (12.0, 15.0), 20.0, 0.5)  # anchors do not improve / IoU 0
    assert not is_distilled_trace(good, None, 20.0, 0.0)
    assert not is_distilled_trace("<think>x</think><answer>3.0 to 6.0</answer>", (3.0, 6.0), 20.0, 0.0)


def _with_difficulty(world: Path, tmp: Path, values: list[float]) -> Path:
    rows = [json.loads(x) for x in world.read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r.get("kind", "grounding") == "grounding"][: len(values)]
    for r, d in zip(rows, values):
        r["difficulty"] = d
    out = world.parent / f"rated_{tmp.name}.jsonl"  # beside its videos: a dataset names them inside its folder
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def test_filter_and_weights_change_what_the_dataset_yields(world, tmp_path):
    from trainer.data import DifficultyWeighting, FrameConfig, GroundingDataset

    path = _with_difficulty(world, tmp_path, [0.0, 0.4, 1.0])
    frames = FrameConfig(max_frames=2, max_pixels=1024)
    plain = GroundingDataset(path, frames)
    assert len(plain) == 3 and sorted(plain.order(0)) == [0, 1, 2]
    kept = GroundingDataset(path, frames, difficulty_filter=[0.1, 0.9])
    assert len(kept) == 1 and [r.extra["difficulty"] for r in kept.rows] == [0.4]
    _, batch = next(kept.batches(2))
    assert [s.extra["difficulty"] for s in batch] == [0.4, 0.4]
    weighted = GroundingDataset(path, frames, difficulty_weighting=DifficultyWeighting(target=1.0, sigma=0.05))
    order = weighted.order(0)
    assert len(order) == 3 and set(order) == {2}  # only the row at the target has weight left
    assert order == weighted.order(0)
    _, batch = next(weighted.batches(2, start_step=1))  # resumed mid-run: same rule
    assert [s.extra["difficulty"] for s in batch] == [1.0, 1.0]
    with pytest.raises(Exception, match="no rows"):
        GroundingDataset(path, frames, difficulty_filter=[0.6, 0.9])
    seen = []
    weighted.epoch_hook = seen.append  # re-estimation hook: called when an epoch starts
    weighted.set_difficulties({0: 1.0, 2: 0.0})
    gen = weighted.batches(3)
    next(gen), next(gen)
    assert seen == [0, 1] and set(weighted.order(0)) == {0}


def test_grpo_recipe_difficulty_options(tmp_path):
    from grounder.errors import ConfigError
    from trainer.config import load_recipe

    r = load_recipe(RECIPES / "grpo.yaml", "grpo",
                    ["data.difficulty_filter=[0.1, 0.9]", "data.difficulty_weighting={target: 0.4, sigma: 0.2}",
                     "difficulty.reestimate_each_epoch=true", "difficulty.subset=8"])
    assert r.data.difficulty_filter == [0.1, 0.9] and r.data.difficulty_weighting.target == 0.4
    assert r.difficulty.reestimate_each_epoch and r.difficulty.subset == 8
    assert load_recipe(RECIPES / "grpo.yaml", "grpo").data.difficulty_filter is None
    with pytest.raises(ConfigError, match="difficulty_filter"):
        load_recipe(None, "grpo", ["data.difficulty_filter=[0.9, 0.1]"])
    with pytest.raises(ConfigError, match="difficulty_filter"):
        load_recipe(None, "grpo", ["data.difficulty_filter=[low, 0.1]"])
    tar = load_recipe(RECIPES / "tar.yaml", "difficulty")
    assert tar.difficulty.traces and tar.difficulty.trace_min_iou > 0


def test_difficulty_command_end_to_end(world, tmp_path):
    from typer.testing import CliRunner

    from groundqa.cli import app

    src = _with_difficulty(world, tmp_path, [0.2, 0.9])
    elsewhere = ["train", "difficulty", str(RECIPES / "tar.yaml"), f"data.train={src}",
                 f"difficulty.out={tmp_path / 'rated.jsonl'}"]
    res = CliRunner().invoke(app, elsewhere)  # a dataset there could not name the videos inside its folder
    assert "is not in a folder that holds the dataset's videos" in str(res.exception)
    out = world.parent / f"rated_out_{tmp_path.name}.jsonl"
    traces = world.parent / f"traces_{tmp_path.name}.jsonl"
    args = ["train", "difficulty", str(RECIPES / "tar.yaml"), f"data.train={src}", f"difficulty.out={out}",
            "difficulty.k=2", "difficulty.max_new_tokens=4", "data.frames.max_frames=2",
            "data.frames.max_pixels=1024", "data.window.length=10", "model.family=qwen2_5_vl",
            "model.path=null", "--traces", str(traces), "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 2 and summary["k"] == 2 and sum(summary["histogram"]) == 2
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 2 and all(0.0 <= r["difficulty"] <= 1.0 for r in rows)
    assert (out.parent / rows[0]["video"]).resolve().is_file()  # video paths still resolve
    assert summary["plot"] and Path(summary["plot"]).name == "difficulty.png" and Path(summary["plot"]).is_file()
    assert traces.is_file()  # an untrained model keeps no trace; the file exists
    assert not list(out.parent.glob(".*.tmp"))
    from trainer.data import load_rows

    assert len(load_rows(out)) == 2  # the output is a dataset the trainer reads


def test_trace_rows_train_on_their_own_window(world, tmp_path):
    from trainer.data import FrameConfig, GroundingDataset

    row = json.loads(world.read_text().splitlines()[0])
    s, _e = row["spans"][0]
    row["window"] = [max(0.0, s - 2.0), max(0.0, s - 2.0) + 10.0]
    row["trace"] = "<think>t</think><answer>2.0 to 3.0</answer>"
    path = world.parent / f"traces_{tmp_path.name}.jsonl"
    path.write_text(json.dumps(row) + "\n")
    sample = GroundingDataset(path, FrameConfig(max_frames=2, max_pixels=1024))[0]
    assert sample.start == pytest.approx(row["window"][0]) and sample.target == row["trace"]
    assert sample.span is not None and sample.span[0] == pytest.approx(s - row["window"][0], abs=1e-3)


@pytest.mark.parametrize("name,kind", [("fsdp.yaml", "FSDP"), ("deepspeed_zero3.yaml", "DEEPSPEED")])
def test_accelerate_configs_parse(name, kind):
    cfg = yaml.safe_load((RECIPES / "accelerate" / name).read_text())
    for key in ("compute_environment", "distributed_type", "mixed_precision", "num_machines",
                "num_processes", "machine_rank", "use_cpu"):
        assert key in cfg, key
    assert cfg["distributed_type"] == kind
    if kind == "FSDP":
        assert cfg["fsdp_config"]["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    else:
        assert cfg["deepspeed_config"]["zero_stage"] == 3
    try:
        from accelerate.commands.config.config_args import load_config_from_file
    except ImportError:
        return
    assert load_config_from_file(str(RECIPES / "accelerate" / name)).distributed_type.value == kind


def test_epoch_hook_reads_back_a_stored_estimate(world, tmp_path):
    """On resume the per-epoch re-estimate is read from out_dir/difficulty, not sampled again."""
    from trainer.config import DifficultyConfig
    from trainer.data import FrameConfig, GroundingDataset
    from trainer.difficulty import epoch_hook

    path = _with_difficulty(world, tmp_path, [0.0, 0.4, 1.0])
    ds = GroundingDataset(path, FrameConfig(max_frames=2, max_pixels=1024), difficulty_filter=[0.1, 0.9])
    (tmp_path / "run" / "difficulty").mkdir(parents=True)
    (tmp_path / "run" / "difficulty" / "epoch_0003.json").write_text('{"0": 0.5, "1": 0.95}\n')
    hook = epoch_hook(None, ds, DifficultyConfig(reestimate_each_epoch=True), tmp_path / "run")
    hook(3)  # no sampler needed: the stored estimate is used
    assert [r.extra["difficulty"] for r in ds.all_rows] == [0.5, 0.95, 1.0]
    assert [r.extra["difficulty"] for r in ds.rows] == [0.5]
