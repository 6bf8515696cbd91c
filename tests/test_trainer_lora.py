"""model.lora: LoRA adapters through peft, on the language model only; checkpoints hold the adapter,
resume puts it back on the base, the final model is the base with the adapter merged in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from grounder.errors import ConfigError
from trainer.config import load_recipe

pytest.importorskip("peft")
RECIPES = Path(__file__).resolve().parents[1] / "trainer" / "recipes"


@pytest.fixture(scope="module")
def world(synth_world):
    return synth_world(1, 1, 2)


def _recipe(stage, world, out, steps, *extra):
    return load_recipe(RECIPES / f"{stage}.yaml", stage, [
        f"data.train={world}", f"train.out_dir={out}", f"train.steps={steps}", "train.batch_size=2",
        "data.frames.max_frames=4", "data.frames.max_pixels=4096", "data.limit=4", "model.lora.r=4",
        "train.learning_rate=0.01", *extra])


def test_sft_with_lora_trains_the_adapter_and_saves_it_merged(world, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from grounder.tiny import build_tiny
    from trainer.loop import run

    run("sft", _recipe("sft", world, tmp_path / "a", 3), False)
    adapter = tmp_path / "a" / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    trained = load_file(adapter / "adapter_model.safetensors")
    assert trained and all("lora_" in k and "language_model" in k for k in trained)  # no vision adapters
    assert any(float(v.abs().max()) > 0 for k, v in trained.items() if "lora_B" in k)  # B moved off its zeros
    # the checkpoint is the adapter, far smaller than the model
    ckpt = tmp_path / "a" / "checkpoint"
    assert (ckpt / "adapter_model.safetensors").stat().st_size * 5 < (tmp_path / "a" / "model" / "model.safetensors").stat().st_size
    # model/ is the base with the adapter merged in: the same weights as merging it here
    base, _ = build_tiny("qwen2_5_vl", seed=0)
    again = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload().state_dict()
    saved = AutoModelForImageTextToText.from_pretrained(tmp_path / "a" / "model").state_dict()
    assert set(again) == set(saved)
    assert max(float((again[k] - saved[k]).abs().max()) for k in saved) < 1e-6
    fresh, _ = build_tiny("qwen2_5_vl", seed=0)
    moved = [k for k, v in fresh.state_dict().items() if not torch.equal(v, saved[k])]
    assert moved and all("language_model" in k and "proj" in k for k in moved)  # only adapted weights change


def test_lora_resume_matches_an_uninterrupted_run(world, tmp_path):
    from trainer.loop import run

    run("sft", _recipe("sft", world, tmp_path / "a", 3), False)
    run("sft", _recipe("sft", world, tmp_path / "b", 2), False)
    resumed = run("sft", _recipe("sft", world, tmp_path / "b", 3), False)
    assert resumed["resumed_from"] == 2
    a = load_file(tmp_path / "a" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "adapter" / "adapter_model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]


def test_grpo_reference_is_the_base_with_the_adapter_off():
    from grounder.tiny import build_tiny
    from trainer.data import GroundingSample
    from trainer.grpo import GRPOConfig, VideoGRPO
    from trainer.lora import LoraSettings, apply_lora

    model, processor = build_tiny("qwen3_vl", seed=0)
    t = VideoGRPO(apply_lora(model, LoraSettings(r=4)), processor,
                  GRPOConfig(num_generations=2, max_new_tokens=6, beta=0.1))
    assert t.ref_model is None and t.ref_from_base  # no copy of the model
    rng = np.random.default_rng(0)
    sample = GroundingSample(video=None, query="when does the red circle enter", start=0.0, end=8.0,  # type: ignore[arg-type]
                             span=(1.0, 3.0), frames=rng.integers(0, 256, size=(4, 64, 64, 3), dtype=np.uint8),
                             timestamps=np.array([1.0, 3.0, 5.0, 7.0]), fps=2.0)
    r = t.make_rollout(sample, ["<think>x</think><answer>1.0 to 3.0</answer>", "<think>y</think><answer>2 to 6</answer>"])
    _, d = t.loss(r)
    assert float(d["kl"].detach().abs().max()) < 1e-6  # fresh adapters: the policy is the base
    with torch.no_grad():
        for name, p in t.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.05 * torch.randn_like(p))
    _, d = t.loss(r)
    assert float(d["kl"].max()) > 1e-4 and not torch.equal(d["logps"], d["ref_logps"])


def test_lora_settings_are_checked(world, tmp_path, capsys):
    from groundqa.cli import main

    with pytest.raises(ConfigError, match="model.lora.r"):
        _recipe("sft", world, tmp_path / "x", 1, "model.lora.r=0")
    out = tmp_path / "y"
    assert main(["train", "sft", str(RECIPES / "sft.yaml"), f"data.train={world}", f"train.out_dir={out}",
                 "model.lora.target_modules=[qkv_of_nothing]", "train.steps=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "match no layer" in err
