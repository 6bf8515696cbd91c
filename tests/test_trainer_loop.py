"""Recipes (YAML -> typed configs), SFT labels, the training loop (checkpoint, resume, CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from grounder.errors import ConfigError
from trainer.config import GRPORecipe, load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "trainer" / "recipes"


@pytest.fixture(scope="module")
def world(synth_world):
    return synth_world(1, 1, 2)


def _tiny_overrides(world: Path, out: Path, steps: int) -> list[str]:
    return [f"data.train={world}", f"train.out_dir={out}", f"train.steps={steps}", "train.batch_size=2",
            "data.frames.max_frames=4", "data.frames.max_pixels=4096", "data.limit=4"]


def test_recipes_load_and_reject_unknown_keys(tmp_path):
    for stage in ("sft", "grpo"):
        load_recipe(RECIPES / f"{stage}.yaml", stage)
    r = load_recipe(RECIPES / "grpo.yaml", "grpo", ["grpo.beta_time=0.5", "train.steps=7", "model.path=null"])
    assert isinstance(r, GRPORecipe) and r.grpo.beta_time == 0.5 and r.train.steps == 7 and r.model.path is None
    assert r.data.frames.max_frames == 8 and r.grpo.rewards.cendist == 0.5
    with pytest.raises(ConfigError, match="grpo.betta"):
        load_recipe(RECIPES / "grpo.yaml", "grpo", ["grpo.betta=1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  steps: many\n")
    with pytest.raises(ConfigError, match="train.steps"):
        load_recipe(bad, "sft")
    with pytest.raises(ConfigError, match="kl_scope"):
        load_recipe(None, "grpo", ["grpo.kl_scope=everywhere"])
    with pytest.raises(ConfigError):
        load_recipe(None, "sft", ["data.frames.fps=0"])


def test_sft_labels_are_the_assistant_turn_only(world):
    from grounder.tiny import build_tiny
    from trainer.data import FrameConfig, GroundingDataset, WindowConfig
    from trainer.sft import IGNORE, sft_batch

    _, processor = build_tiny("qwen3_vl")
    ds = GroundingDataset(world, FrameConfig(max_frames=4, max_pixels=4096), WindowConfig(length=20, negative_prob=0.5))
    samples = [ds[0], ds[1], ds[2]]
    batch = sft_batch(processor, samples)
    for i, s in enumerate(samples):
        lab = batch["labels"][i]
        assert processor.tokenizer.decode(lab[lab != IGNORE]) == s.target + "<|im_end|>"
    video = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert ((batch["input_ids"] == video) & (batch["labels"] != IGNORE)).sum() == 0


def test_sft_resume_matches_an_uninterrupted_run(world, tmp_path):
    from trainer.loop import run

    run("sft", load_recipe(RECIPES / "sft.yaml", "sft", _tiny_overrides(world, tmp_path / "a", 3)), False)
    run("sft", load_recipe(RECIPES / "sft.yaml", "sft", _tiny_overrides(world, tmp_path / "b", 2)), False)
    resumed = run("sft", load_recipe(RECIPES / "sft.yaml", "sft", _tiny_overrides(world, tmp_path / "b", 3)), False)
    assert resumed["resumed_from"] == 2
    a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert (tmp_path / "b" / "curves.png").stat().st_size > 0
    from transformers import AutoModelForImageTextToText, AutoProcessor

    AutoModelForImageTextToText.from_pretrained(tmp_path / "b" / "model")
    AutoProcessor.from_pretrained(tmp_path / "b" / "model")


def test_cli_train_grpo(world, tmp_path, capsys):
    from groundqa.cli import main

    out = tmp_path / "grpo"
    args = ["train", "grpo", str(RECIPES / "grpo.yaml"), *_tiny_overrides(world, out, 2),
            "grpo.num_generations=2", "grpo.max_new_tokens=6", "grpo.beta_time=0.0", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2
    for key in ("reward", "reward/iou", "reward/cendist", "reward/format", "kl", "loss"):
        assert key in summary["last"]
    assert (out / "model" / "model.safetensors").is_file() and (out / "curves.png").is_file()
    assert main(["train", "grpo", str(RECIPES / "grpo.yaml"), "grpo.nope=1"]) == 2
    assert "unknown config key 'grpo.nope'" in capsys.readouterr().err


def test_grpo_resume_matches_an_uninterrupted_run(world, tmp_path, monkeypatch):
    import trainer.grpo
    from trainer.loop import run

    # A random tiny model earns no grounding reward; a reward that varies with the text gives the
    # groups non-zero advantages, so the weights really move and the comparison means something.
    monkeypatch.setattr(trainer.grpo, "window_reward",
                        lambda text, *a, **k: (float(sum(map(ord, text)) % 7), {"iou": 0.0}))

    extra = ["grpo.num_generations=2", "grpo.max_new_tokens=6", "train.learning_rate=0.01"]
    run("grpo", load_recipe(RECIPES / "grpo.yaml", "grpo", _tiny_overrides(world, tmp_path / "a", 2) + extra), False)
    run("grpo", load_recipe(RECIPES / "grpo.yaml", "grpo", _tiny_overrides(world, tmp_path / "b", 1) + extra), False)
    resumed = run("grpo", load_recipe(RECIPES / "grpo.yaml", "grpo", _tiny_overrides(world, tmp_path / "b", 2) + extra),
                  False)
    assert resumed["resumed_from"] == 1
    a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    def rows(d):
        return [{k: v for k, v in json.loads(x).items() if k != "seconds"}
                for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]

    assert rows("a") == rows("b")
    assert rows("a")[1]["kl"] > 0, "GRPO did not move the policy away from the reference"


@pytest.mark.parametrize("bad, says", [
    ("train.learning_rate=-1", "train.learning_rate must be > 0, got -1"),
    ("train.steps=0", "train.steps must be >= 1, got 0"),
    ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("grpo.num_generations=1", "grpo.num_generations must be >= 2, got 1"),
    ("data.train=no/such.jsonl", "data.train: no such file no/such.jsonl"),
])
def test_a_bad_recipe_fails_in_one_line_before_anything_is_made(world, tmp_path, bad, says):
    import subprocess
    import sys

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "groundqa", "train", "grpo", str(RECIPES / "grpo.yaml"),
           *_tiny_overrides(world, out, 2), bad]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    assert p.returncode == 2, p.stderr
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and says in lines[0], p.stderr
    assert not out.exists()  # no half-made folder with an untrained model in it


def test_resume_refuses_a_changed_recipe_and_keeps_the_old_one(world, tmp_path, capsys):
    from groundqa.cli import main

    out = tmp_path / "sft"
    base = ["train", "sft", str(RECIPES / "sft.yaml"), *_tiny_overrides(world, out, 1)]
    assert main(base) == 0
    saved = (out / "config.yaml").read_text()
    capsys.readouterr()
    assert main([*base, "train.learning_rate=0.5", "model.family=qwen3_vl"]) == 2
    err = capsys.readouterr().err
    assert "train.learning_rate: 0.001 -> 0.5" in err and "model.family: 'qwen2_5_vl' -> 'qwen3_vl'" in err
    assert "train.resume=false" in err
    assert (out / "config.yaml").read_text() == saved
    # more steps of the same recipe resume; starting over is the user's explicit choice
    assert main([*base, "train.steps=2"]) == 0
    assert main([*base, "train.learning_rate=0.5", "train.resume=false"]) == 0
    assert "learning_rate: 0.5" in (out / "config.yaml").read_text()


def test_config_changes_names_each_setting_that_moved():
    from trainer.loop import config_changes

    old = {"train": {"steps": 2, "learning_rate": 1e-4}, "model": {"family": "qwen2_5_vl", "size": None}}
    new = {"train": {"steps": 9, "learning_rate": 2e-4}, "model": {"family": "qwen2_5_vl", "size": {"layers": 2}}}
    assert config_changes(old, new) == ["model.size: None -> {'layers': 2}", "train.learning_rate: 0.0001 -> 0.0002"]
    assert config_changes(old, old) == []
