"""trainer.runtime and the step settings a user trains with at scale: device and precision checks,
learning-rate schedules, gradient accumulation (the same update however a step is cut) and
gradient checkpointing (the same gradients, recomputed), bf16 end to end on the CPU."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from grounder.errors import ConfigError
from grounder.tiny import build_tiny
from trainer.config import load_recipe
from trainer.data import GroundingSample, direct_trace
from trainer.runtime import enable_checkpointing, make_scheduler, resolve_device, warmup_steps

RECIPES = Path(__file__).resolve().parents[1] / "trainer" / "recipes"


def _recipe(stage: str, world: Path, out: Path, steps: int, *extra: str):
    """A tiny run of `stage` on the 1-video world: 2 samples a step, 4 small frames each."""
    return load_recipe(RECIPES / f"{stage}.yaml", stage, [
        f"data.train={world}", f"train.out_dir={out}", f"train.steps={steps}", "train.batch_size=2",
        "data.frames.max_frames=4", "data.frames.max_pixels=4096", "data.limit=4", *extra])


def _sample(seed: int, span=(3.0, 6.0)) -> GroundingSample:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(4, 64, 64, 3), dtype=np.uint8)
    return GroundingSample(video=None, query=f"when does the red circle enter {seed}",  # type: ignore[arg-type]
                           start=10.0, end=20.0, span=span, frames=frames,
                           timestamps=np.array([11.25, 13.75, 16.25, 18.75]), fps=2.0, target=direct_trace(span))


def test_devices_are_checked_before_anything_runs():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="not a device"):
        resolve_device("gpu please")
    with pytest.raises(ConfigError, match="not supported"):
        resolve_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="sees no CUDA GPU"):
            resolve_device("cuda:0")


@pytest.mark.parametrize("kind", ["constant", "constant_with_warmup", "linear", "cosine"])
def test_schedules_follow_their_formula(kind):
    steps, ratio, lr = 10, 0.25, 1e-3
    warm = warmup_steps(steps, ratio)
    assert warm == 3  # ceil(2.5), as TRL rounds
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make_scheduler(opt, kind, steps, ratio)
    seen = []
    for _ in range(steps):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    for t, got in enumerate(seen):
        if kind == "constant":
            want = lr
        elif t < warm:
            want = lr * t / warm
        elif kind == "constant_with_warmup":
            want = lr
        else:
            progress = (t - warm) / (steps - warm)
            want = lr * (1 - progress if kind == "linear" else 0.5 * (1 + math.cos(math.pi * progress)))
        assert got == pytest.approx(want, abs=1e-12), (kind, t)


@pytest.mark.parametrize("override, message", [
    ("train.learning_rate=-1", "train.learning_rate"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.gradient_accumulation_steps=3", "multiple of train.gradient_accumulation_steps"),
    ("train.lr_scheduler_type=warm_restarts", "lr_scheduler_type"),
    ("train.dtype=fp8", "train.dtype"),
    ("train.warmup_ratio=2", "train.warmup_ratio"),
    ("grpo.num_generations=1", "grpo.num_generations"),
])
def test_bad_settings_are_one_line_before_any_folder(override, message, tmp_path, capsys):
    from groundqa.cli import main

    out = tmp_path / "run"
    assert main(["train", "grpo", str(RECIPES / "grpo.yaml"), f"train.out_dir={out}", "train.batch_size=2",
                 override]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_a_gpu_asked_on_a_machine_without_one_is_one_line(synth_world, tmp_path, capsys):
    from groundqa.cli import main

    world = synth_world(1, 1, 2)
    out = tmp_path / "run"
    assert main(["train", "sft", str(RECIPES / "sft.yaml"), f"data.train={world}", f"train.out_dir={out}",
                 "train.device=cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CUDA GPU" in err and not out.exists()


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def _grads(model) -> dict[str, torch.Tensor]:
    """The gradients the step left (clipped as the update used them); Adam's first step divides by
    their own size, so weights after it magnify float noise on near-zero entries: compare these."""
    return {k: v.grad.detach().clone() for k, v in model.named_parameters() if v.grad is not None}


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tol: float = 1e-5) -> float:
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= tol, worst
    return worst


def test_sft_accumulation_is_the_same_update_as_the_whole_batch():
    """Four micro-batches of one sample (different target lengths) against one batch of four: the
    loss and the updated weights agree to 1e-5 in fp32."""
    from trainer.sft import VideoSFT

    model, processor = build_tiny("qwen2_5_vl", seed=0)
    samples = [_sample(i, span) for i, span in enumerate([(3.0, 6.0), None, (1.25, 9.5), (0.0, 2.0)])]
    runs = []
    for parts in (1, 4):
        m = copy.deepcopy(model)
        t = VideoSFT(m, processor, learning_rate=1e-2)
        t.accumulation = parts
        metrics = t.step(samples)
        runs.append((metrics, _grads(m)))
    (whole, g1), (cut, g4) = runs
    assert len({s.target for s in samples}) == 4
    assert cut["loss"] == pytest.approx(whole["loss"], abs=1e-5) and cut["tokens"] == whole["tokens"]
    _close(g1, g4)
    assert max(float(g.abs().max()) for g in g1.values()) > 1e-3  # gradients that mean something


def _grpo(model, processor, **cfg):
    from trainer.grpo import GRPOConfig, VideoGRPO

    return VideoGRPO(model, processor, GRPOConfig(num_generations=3, max_new_tokens=8, **cfg), learning_rate=1e-2)


def test_grpo_accumulation_is_the_same_update_as_the_whole_batch(monkeypatch):
    import trainer.grpo

    monkeypatch.setattr(trainer.grpo, "window_reward",  # rewards that differ within a group
                        lambda text, *a, **k: (float(sum(map(ord, text)) % 7), {"iou": 0.0}))
    model, processor = build_tiny("qwen3_vl", seed=0)
    samples = [_sample(i) for i in range(4)]
    runs = []
    for parts in (1, 2, 4):
        torch.manual_seed(3)
        m = copy.deepcopy(model)
        t = _grpo(m, processor, beta=0.04, num_iterations=2)
        t.accumulation = parts
        metrics = t.step(samples)
        runs.append((metrics, _grads(m)))
    for metrics, w in runs[1:]:
        assert metrics["reward"] == runs[0][0]["reward"]
        assert metrics["loss"] == pytest.approx(runs[0][0]["loss"], abs=1e-5)
        _close(runs[0][1], w)


@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_gradient_checkpointing_gives_the_same_gradients(stage, monkeypatch):
    import trainer.grpo

    monkeypatch.setattr(trainer.grpo, "window_reward",
                        lambda text, *a, **k: (float(sum(map(ord, text)) % 7), {"iou": 0.0}))
    model, processor = build_tiny("qwen2_5_vl", seed=0)
    samples = [_sample(i) for i in range(2)]
    runs = []
    for ckpt in (False, True):
        torch.manual_seed(5)
        m = copy.deepcopy(model)
        if ckpt:
            enable_checkpointing(m)
        if stage == "sft":
            from trainer.sft import VideoSFT

            t = VideoSFT(m, processor, learning_rate=1e-2)
        else:
            t = _grpo(m, processor, beta=0.0)
        t.step(samples)
        runs.append(_grads(m))
    _close(*runs)


@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_bf16_trains_end_to_end_on_cpu(stage, synth_world, tmp_path, monkeypatch):
    """train.dtype=bf16: the forwards run in bfloat16 (a hook sees it), the weights stay fp32, the
    losses are finite and the run saves a loadable model."""
    import trainer.loop
    from trainer.loop import run

    extra = ["train.dtype=bf16", "train.gradient_accumulation_steps=2", "train.lr_scheduler_type=linear",
             "train.warmup_ratio=0.5"]
    if stage == "grpo":
        extra += ["grpo.num_generations=2", "grpo.max_new_tokens=6"]
    recipe = _recipe(stage, synth_world(1, 1, 2), tmp_path / stage, 2, *extra)
    seen: set[torch.dtype] = set()
    real_load = trainer.loop.load_model

    def load(*a, **k):
        model, processor = real_load(*a, **k)
        layer = model.model.language_model.layers[0].mlp.down_proj
        layer.register_forward_hook(lambda mod, inp, out: seen.add(out.dtype))
        return model, processor

    monkeypatch.setattr(trainer.loop, "load_model", load)
    summary = run(stage, recipe, False)
    assert seen == {torch.bfloat16}
    rows = [json.loads(x) for x in (tmp_path / stage / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss"]) for r in rows)
    lr = recipe.train.learning_rate
    assert [r["learning_rate"] for r in rows] == pytest.approx([0.0, lr])  # one warm-up step, then linear
    from safetensors.torch import load_file

    weights = load_file(Path(summary["model"]) / "model.safetensors")
    assert {v.dtype for v in weights.values()} == {torch.float32}


def test_resume_keeps_the_schedule(synth_world, tmp_path):
    from trainer.loop import run

    world = synth_world(1, 1, 2)
    schedule = ("train.lr_scheduler_type=cosine", "train.warmup_ratio=0.25")
    run("sft", _recipe("sft", world, tmp_path / "a", 4, *schedule), False)
    run("sft", _recipe("sft", world, tmp_path / "b", 2, *schedule), False)
    # a resume without the schedule is another recipe (refused); train.steps is free, and the
    # cosine then follows the new length from the saved point
    with pytest.raises(ConfigError, match="lr_scheduler_type"):
        run("sft", _recipe("sft", world, tmp_path / "b", 4), False)
    run("sft", _recipe("sft", world, tmp_path / "b", 4, *schedule), False)

    def lrs(d):
        return [json.loads(x)["learning_rate"] for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]

    assert len(lrs("a")) == 4 and lrs("b") == pytest.approx(lrs("a"))
    assert lrs("a")[0] == 0.0 and lrs("a")[1] > lrs("a")[2] > lrs("a")[3] > 0.0  # warm-up, then the cosine


def test_report_to_tensorboard_logs_the_same_numbers(synth_world, tmp_path):
    """train.report_to: [tensorboard] writes, through accelerate's tracker, the scalars of
    metrics.jsonl at the same steps (read back with TensorBoard's own reader)."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from trainer.loop import run

    world = synth_world(1, 1, 2)
    out = tmp_path / "tb-run"
    run("sft", _recipe("sft", world, out, 2, "train.report_to=[tensorboard]"), False)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    loss = events.Scalars("loss")
    assert [e.step for e in loss] == [0, 1]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in rows], rel=1e-6)


def test_a_tracker_that_is_not_installed_is_one_line(synth_world, tmp_path, capsys):
    import importlib.util

    from groundqa.cli import main

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    world = synth_world(1, 1, 2)
    out = tmp_path / "run"
    assert main(["train", "sft", str(RECIPES / "sft.yaml"), f"data.train={world}", f"train.out_dir={out}",
                 "train.report_to=[wandb]"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install wandb" in err and not out.exists()
