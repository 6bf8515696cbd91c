"""`groundqa train sft|grpo` under `accelerate launch --cpu --num_processes 2` (DDP over gloo, and
FSDP2 with `train.fsdp=true`).

Two processes must give the weights of one process on the same global batch (each process takes
a disjoint half of every step's samples; gradients averaged, SFT loss re-weighted by tokens; GRPO's
completions drawn from per-sample seeds) and the same logged figures, with DDP and with FSDP2.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from trainer.config import load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "trainer" / "recipes"

pytest.importorskip("accelerate")
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from evals.synthetic.generate import generate_world

    out = tmp_path_factory.mktemp("dist_world")
    generate_world(out, n_videos=1, minutes=(1, 1), seed=2)
    return out / "annotations.jsonl"


def _overrides(world: Path, out: Path, steps: int, batch: int) -> list[str]:
    return [f"data.train={world}", f"train.out_dir={out}", f"train.steps={steps}", f"train.batch_size={batch}",
            "data.frames.max_frames=4", "data.frames.max_pixels=4096", "data.limit=4", "train.threads=1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(stage: str, args: list[str]) -> subprocess.CompletedProcess:
    # `--cpu` with several processes goes to accelerate's MPI launcher; `--multi_gpu` starts them
    # with torch.distributed.run, and ACCELERATE_USE_CPU keeps them on the CPU (gloo).
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()),
           "-m", "groundqa", "train", stage, str(RECIPES / f"{stage}.yaml"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GROUNDQA_DEBUG": "1", "ACCELERATE_USE_CPU": "1"}
    env.pop("WORLD_SIZE", None)
    p = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-6000:]
    return p


def _rows(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if k != "seconds"}
            for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_sft_two_processes_equal_one_process_on_the_same_global_batch(world, tmp_path):
    from grounder.tiny import save_pretrained
    from trainer.loop import load_model, run

    one, two = tmp_path / "one", tmp_path / "two"
    extra = ["train.learning_rate=0.001"]
    recipe = load_recipe(RECIPES / "sft.yaml", "sft", _overrides(world, one, 2, 2) + extra)
    run("sft", recipe, False)
    p = _launch("sft", _overrides(world, two, 2, 2) + extra)
    # both processes ran, each on its own half of every step's 2 samples
    assert "process 0/2: samples [0, 1) of each step's 2" in p.stderr
    assert "process 1/2: samples [1, 2) of each step's 2" in p.stderr
    a = load_file(one / "model" / "model.safetensors")
    b = load_file(two / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    # Adam's first steps are ~lr * sign(grad): a gradient of ~0 can flip sign on float noise, so a
    # few elements may differ by ~1e-5; a wrong split of the batch moves them by ~lr = 1e-3.
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=5e-5, rtol=0, msg=k)
    save_pretrained(*load_model(recipe.model), tmp_path / "init")
    init = load_file(tmp_path / "init" / "model.safetensors")
    assert max(float((a[k] - init[k]).abs().max()) for k in a) > 1e-3  # the weights did move
    ra, rb = _rows(one), _rows(two)
    assert [r["step"] for r in rb] == [0, 1]
    for x, y in zip(ra, rb):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-4)
        assert y["tokens"] == x["tokens"]  # summed over the processes: the whole batch's
    assert (two / "checkpoint" / "trainer_state.pt").is_file() and (two / "curves.png").is_file()
    state = torch.load(two / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 2 and len(state["torch_rng_ranks"]) == 2


def test_sft_fsdp2_two_processes_equal_one_process(world, tmp_path):
    """train.fsdp: the model sharded with torch's FSDP2 across 2 CPU processes (gloo); the weights
    after two SFT steps are one process's on the same global batch, gathered whole into model/."""
    from trainer.loop import run

    one, two = tmp_path / "one", tmp_path / "two"
    extra = ["train.learning_rate=0.001"]
    run("sft", load_recipe(RECIPES / "sft.yaml", "sft", _overrides(world, one, 2, 2) + extra), False)
    _launch("sft", _overrides(world, two, 2, 2) + extra + ["train.fsdp=true"])
    a = load_file(one / "model" / "model.safetensors")
    b = load_file(two / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:  # as the DDP test: Adam's sign-like first steps, ~1e-5 on near-zero gradients
        torch.testing.assert_close(b[k], a[k], atol=5e-5, rtol=0, msg=k)
    for x, y in zip(_rows(one), _rows(two)):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-4) and y["tokens"] == x["tokens"]


@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_grpo_two_processes_equal_one_process(mode, world, tmp_path):
    """One GRPO step from the shipped default model (its answers earn different rewards, so the
    advantages and the gradients are not zero): each sample's completions come from its own seed,
    so two processes (DDP, or FSDP2 where they also sample in step: every forward is a collective)
    draw what one process draws, and the updated weights are one process's."""
    from trainer.loop import run

    one, two = tmp_path / "one", tmp_path / mode
    extra = ["model.path=grounder/default_model", "grpo.num_generations=4", "grpo.max_new_tokens=40",
             "grpo.beta=0.0", "train.learning_rate=0.001"]
    def args(out: Path) -> list[str]:  # the recipe's own frames: what the default model was trained on
        return [a for a in _overrides(world, out, 1, 2) if not a.startswith("data.frames.")] + extra

    run("grpo", load_recipe(RECIPES / "grpo.yaml", "grpo", args(one)), False)
    _launch("grpo", args(two) + (["train.fsdp=true"] if mode == "fsdp2" else []))
    ra, rb = _rows(one), _rows(two)
    assert ra[0]["reward_std"] > 0  # the groups' rewards differ: a real update
    for key in ("reward", "reward/iou", "completion_length"):
        assert rb[0][key] == pytest.approx(ra[0][key], rel=1e-6), key
    a = load_file(one / "model" / "model.safetensors")
    b = load_file(two / "model" / "model.safetensors")
    init = load_file(ROOT / "grounder" / "default_model" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=5e-5, rtol=0, msg=k)
    assert max(float((a[k] - init[k]).abs().max()) for k in a) > 1e-4  # the weights did move


@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_resume_under_the_launcher(mode, world, tmp_path):
    """Two processes, stopped after 2 of 3 SFT steps and launched again: they go on from the
    checkpoint (the optimizer's state back, FSDP2's as each process's shards) to one process's
    weights after 3 steps."""
    from trainer.loop import run

    one, two = tmp_path / "one", tmp_path / mode
    extra = ["train.learning_rate=0.001"]
    sharding = ["train.fsdp=true"] if mode == "fsdp2" else []
    run("sft", load_recipe(RECIPES / "sft.yaml", "sft", _overrides(world, one, 3, 2) + extra), False)
    _launch("sft", _overrides(world, two, 2, 2) + extra + sharding)
    p = _launch("sft", _overrides(world, two, 3, 2) + extra + sharding)
    assert [r["step"] for r in _rows(two)] == [0, 1, 2]
    a = load_file(one / "model" / "model.safetensors")
    b = load_file(two / "model" / "model.safetensors")
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=5e-5, rtol=0, msg=k)
    assert "step 3/3" in p.stderr and "step 1/3" not in p.stderr  # it went on, it did not start over
