"""The training loop behind `groundqa train sft|grpo`: model, data, steps, logs, checkpoints, plots.

    out_dir/
      metrics.jsonl          one JSON object per step (loss, rewards by component, KL, ...)
      checkpoint/            model + processor + trainer_state.pt (optimizer, step, RNG); resumable
      model/                 the final model (safetensors + processor, `grounder.tiny.save_pretrained`)
      adapter/               with `model.lora`: the adapter alone (model/ is the base with it merged in)
      curves.png             reward / IoU / KL (GRPO) or loss (SFT) per step
      tb/                    TensorBoard events, with `train.report_to: [tensorboard]`
      config.yaml            the resolved recipe

Resume: with `train.resume` and `out_dir/checkpoint`, the model, optimizer and RNG states are
loaded, the learning-rate schedule is replayed to the saved step and the data continue there (the
dataset's order is a function of the step).

One process runs on `train.device` in `train.dtype` (trainer.runtime), each step's batch cut into
`train.gradient_accumulation_steps` micro-batches (the trainers' `step`), with the learning rate of
`train.lr_scheduler_type` (logged per step as `learning_rate`).

Several processes (`accelerate launch`, WORLD_SIZE > 1): an `accelerate.Accelerator` prepares the
model and optimizer (DDP on CPU/gloo or GPUs; FSDP / DeepSpeed from the accelerate config), and
each step's `train.batch_size` samples (the same order as one process) are cut into
`num_processes` contiguous, disjoint parts: process r takes part r. Backward and gradient
clipping go through the accelerator (gradients are averaged across processes; the SFT loss is
re-weighted by each part's share of the step's target tokens, so the update equals one process's
on the whole batch). Logged metrics are averaged across processes (`tokens` summed); only the main
process writes metrics.jsonl, checkpoints, the model and the curves, the others wait for it.
Sharded training (accelerate's FSDP or DeepSpeed, `_Dist.sharded`): every process gathers the full
weights (`accelerator.get_state_dict`, collective) and the main one writes them; the optimizer,
model shards and RNG states go through `accelerator.save_state` / `load_state` into
checkpoint/accelerate_state/ (collective too). NOT tested on GPUs; see trainer/README.md.
One process (no WORLD_SIZE, or 1) runs without an Accelerator, exactly as before.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml

from grounder.errors import ConfigError
from grounder.files import write_text_atomic
from trainer import fsdp2
from trainer.config import GRPORecipe, SFTRecipe, flat_keys, to_dict
from trainer.curves import plot_curves
from trainer.data import GroundingDataset
from trainer.grpo import freeze_vision
from trainer.lora import apply_lora, load_adapter, merged
from trainer.models import load_model
from trainer.runtime import (
    autocast_for,
    check_precision,
    enable_checkpointing,
    make_scheduler,
    resolve_device,
)

STATE = "trainer_state.pt"
ACC_STATE = "accelerate_state"  # in a sharded run's checkpoint: accelerator.save_state's folder


def _save(model: Any, processor: Any, out: Path, state: dict[str, Any] | None = None) -> None:
    """Write into a temp folder, then rename: a checkpoint is whole or absent."""
    from grounder.tiny import save_pretrained

    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_pretrained(model, processor, tmp)
    if state is not None:
        torch.save(state, tmp / STATE)
    _replace(tmp, out)


def _replace(tmp: Path, out: Path) -> None:
    old = out.with_name(f".{out.name}.old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def is_sharded(acc: Any) -> bool:
    """FSDP or DeepSpeed: the prepared model's parameters (and optimizer state) are split across processes."""
    from accelerate.utils import DistributedType

    return acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def _save_sharded(acc: Any, wrapped: Any, model: Any, processor: Any, out: Path,
                  state: dict[str, Any] | None = None) -> None:
    """`_save` for FSDP / ZeRO-3. EVERY process must call it: the gathers and save_state are collective.

    `wrapped` is the prepared model (what accelerate gathers from), `model` the original one (its
    config and `save_pretrained`). With `state` (a checkpoint), `accelerator.save_state` also writes
    the model and optimizer shards and every process's RNG into out/ACC_STATE, for `_load_sharded`."""
    sd = acc.get_state_dict(wrapped)  # collective; the full weights on the main process
    tmp = out.with_name(f".{out.name}.tmp")
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp, state_dict=sd)
        processor.save_pretrained(tmp)
        for path in tmp.iterdir():  # as grounder.tiny.save_pretrained: readable by all
            if path.is_file():
                path.chmod(0o644)
        if state is not None:
            torch.save(state, tmp / STATE)
    acc.wait_for_everyone()
    if state is not None:
        acc.save_state(str(tmp / ACC_STATE))  # collective
        acc.wait_for_everyone()
    if acc.is_main_process:
        _replace(tmp, out)
    acc.wait_for_everyone()


def _load_sharded(acc: Any, ckpt: Path, state: dict[str, Any]) -> None:
    """Resume FSDP / ZeRO-3 after `prepare`: model and optimizer shards from ckpt/ACC_STATE (collective),
    then this process's torch RNG as saved in trainer_state.pt."""
    acc.load_state(str(ckpt / ACC_STATE))
    ranks = state.get("torch_rng_ranks")
    if ranks is not None and len(ranks) == acc.num_processes:
        torch.set_rng_state(ranks[acc.process_index])


class _Logger:
    """metrics.jsonl (always), and the trackers of `train.report_to` through accelerate's own."""

    def __init__(self, out: Path, start: int, report_to: list[str] | None = None,
                 config: dict[str, Any] | None = None) -> None:
        self.path = out / "metrics.jsonl"
        if self.path.exists():  # keep the steps before the resume point only
            rows = [json.loads(x) for x in self.path.read_text().splitlines() if x.strip()]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] < start))
        self.trackers = [_tracker(name, out) for name in report_to or []]
        for t in self.trackers:
            t.start()
            if config is not None:
                t.store_init_configuration(_flat(config))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        for t in self.trackers:
            t.log(metrics, step=step)

    def close(self) -> None:
        for t in self.trackers:
            t.finish()


def _tracker(name: str, out: Path) -> Any:
    from accelerate.tracking import TensorBoardTracker, WandBTracker

    if name == "tensorboard":
        return TensorBoardTracker(run_name=".", logging_dir=str(out / "tb"))
    return WandBTracker(run_name=out.name)


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    """A nested recipe as `a.b.c: value` with plain values (trackers take flat hyper-parameters)."""
    return {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in flat_keys(d).items()}


def check_trackers(names: list[str]) -> None:
    """Each tracker of `train.report_to` can be imported here (a one-line error before anything runs)."""
    import importlib.util

    for name in names:  # each tracker's package has the tracker's name
        if importlib.util.find_spec(name) is None:
            raise ConfigError(f"train.report_to: {name} needs `pip install {name}`")


class _Dist:
    """What `run` needs from accelerate when several processes train together."""

    def __init__(self) -> None:
        from accelerate import Accelerator

        # Without GPUs, accelerate only forms a process group when told to use the CPU.
        self.acc = Accelerator(cpu=not torch.cuda.is_available())
        self.rank = self.acc.process_index
        self.world = self.acc.num_processes
        self.main = self.acc.is_main_process
        self.sharded = is_sharded(self.acc)
        self.fsdp = False  # train.fsdp: our own FSDP2 (trainer.fsdp2), set by `run`
        from accelerate.utils import DistributedType

        self.deepspeed = self.acc.distributed_type == DistributedType.DEEPSPEED
        if self.world != int(os.environ["WORLD_SIZE"]):
            raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but accelerate formed {self.world} "
                              "process(es); launch with `accelerate launch` or torchrun")

    def part(self, batch_size: int, accumulation: int = 1) -> tuple[int, int]:
        """[lo, hi) of each step's samples that this process takes."""
        if batch_size % (self.world * accumulation):
            raise ConfigError(f"train.batch_size={batch_size} must be a multiple of the {self.world} processes "
                              f"x train.gradient_accumulation_steps={accumulation}")
        per = batch_size // self.world
        self.per_process = per
        return self.rank * per, (self.rank + 1) * per

    def prepare(self, trainer: Any) -> None:
        """Wrap the trainer's model and optimizer; route its backward and clipping through accelerate.
        Under `train.fsdp` the model is already sharded (trainer.fsdp2): plain backward and clipping,
        and GRPO samples until every process is done."""
        acc = self.acc
        if self.fsdp:
            if hasattr(trainer, "any_process"):
                trainer.any_process = lambda unfinished: fsdp2.any_across(unfinished, acc.device)
            if getattr(trainer, "ref_model", None) is not None:
                trainer.ref_model.to(acc.device)
            return
        plugin = getattr(acc.state, "deepspeed_plugin", None)
        if plugin is not None:
            # No dataloader goes through `prepare`, so DeepSpeed cannot resolve an "auto" micro
            # batch; accelerate's own error message names this key as the fix.
            plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = getattr(self, "per_process", 1)
        trainer.model, trainer.optimizer = acc.prepare(trainer.model, trainer.optimizer)
        trainer.backward = acc.backward
        # All parameters, so that accelerate recognises the model (FSDP clips through the wrapper);
        # frozen ones have no gradient and do not count.
        trainer.clip_grad_norm = lambda _params, max_norm: acc.clip_grad_norm_(trainer.model.parameters(), max_norm)
        if getattr(trainer, "ref_model", None) is not None:
            trainer.ref_model.to(acc.device)

    def token_weighted_sft(self, trainer: Any) -> None:
        """The SFT step weighs each micro-batch by its share of the target tokens of the whole step,
        over every process (VideoSFT.step): give it the sum across processes and their number."""
        trainer.sum_over_processes = lambda t: self.acc.reduce(t.to(self.acc.device), reduction="sum")
        trainer.processes = self.world

    def mean_metrics(self, m: dict[str, float]) -> dict[str, float]:
        """Metrics averaged over processes (`tokens`: summed). Same keys on every process."""
        keys = sorted(m)
        t = torch.tensor([float(m[k]) for k in keys], dtype=torch.float64, device=self.acc.device)
        t = self.acc.reduce(t, reduction="sum")
        return {k: float(v) if k == "tokens" else float(v) / self.world for k, v in zip(keys, t.tolist())}

    def rng_states(self) -> list[torch.Tensor]:
        from accelerate.utils import gather_object

        return gather_object([torch.get_rng_state()])

    def wait(self) -> None:
        self.acc.wait_for_everyone()


def _picks(data: GroundingDataset, batch_size: int, start: int) -> Any:
    """data.batches' (step, [(row, epoch), ...]) without decoding: each process decodes its part only."""
    view = copy.copy(data)
    view.sample = lambda i, epoch=0: (i, epoch)  # type: ignore[method-assign]
    return view.batches(batch_size, start_step=start)


# What a resumed run may change: how long it goes on and how it is run, not what it trains
# (micro-batches and recomputed activations give the same update; the device is where it runs).
RESUME_FREE = ("train.steps", "train.save_every", "train.threads", "train.resume", "train.out_dir",
               "train.device", "train.gradient_accumulation_steps", "train.gradient_checkpointing",
               "train.report_to")


def with_defaults(defaults: dict[str, Any], saved: dict[str, Any]) -> dict[str, Any]:
    """`saved` with the keys it lacks taken from `defaults` (a run saved before a setting existed
    ran with its default), recursively (pure)."""
    out = dict(defaults)
    for k, v in saved.items():
        out[k] = with_defaults(defaults[k], v) if isinstance(v, dict) and isinstance(defaults.get(k), dict) else v
    return out


def sample_seed(seed: int, step: int, batch_size: int, index: int) -> int:
    """The seed of the `index`-th sample of training step `step` (pure): distinct for every sample of
    a run, and the same whichever process or micro-batch takes it."""
    return (seed * 1_000_003 + step * batch_size + index) % (2 ** 63 - 1)


def config_changes(saved: dict[str, Any], new: dict[str, Any], free: tuple[str, ...] = RESUME_FREE,
                   prefix: str = "") -> list[str]:
    """`key: old -> new` for every setting that differs between two recipe dicts, except `free` ones (pure)."""
    out = []
    for key in sorted(set(saved) | set(new), key=str):
        name = f"{prefix}.{key}" if prefix else str(key)
        a, b = saved.get(key), new.get(key)
        if name in free or a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, free, name)
        else:
            out.append(f"{name}: {a!r} -> {b!r}")
    return out


def preflight(recipe: SFTRecipe | GRPORecipe, ckpt: Path) -> bool:
    """The checks that need the file system, before anything is made: the data file and model folder
    exist, and a checkpoint to resume was trained with this recipe (a resumed optimizer keeps its old
    learning rate and the checkpoint its model, whatever the new config says). Returns: resuming."""
    if not Path(recipe.data.train).is_file():
        raise ConfigError(f"data.train: no such file {recipe.data.train} (make one with `groundqa synth --out DIR`)")
    if recipe.model.path is not None and not Path(recipe.model.path).is_dir():
        raise ConfigError(f"model.path: no such folder {recipe.model.path}")
    check_trackers(recipe.train.report_to)
    if recipe.train.fsdp:
        if int(os.environ.get("WORLD_SIZE", "1")) < 2:
            raise ConfigError("train.fsdp shards the model across processes: launch several "
                              "(accelerate launch --num_processes N, or torchrun)")
        if recipe.model.lora is not None:
            raise ConfigError("train.fsdp with model.lora is not supported yet")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if recipe.train.device != "auto":
            raise ConfigError(f"train.device={recipe.train.device!r}: under `accelerate launch` each process's "
                              "device is the launcher's choice; leave train.device at auto")
    else:
        check_precision(recipe.train.dtype, resolve_device(recipe.train.device))
    if not (recipe.train.resume and (ckpt / STATE).is_file()):
        return False
    saved_file = ckpt.parent / "config.yaml"
    try:
        saved = yaml.safe_load(saved_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        saved = None
    if not isinstance(saved, dict):
        raise ConfigError(f"{ckpt} has no readable {saved_file.name} beside it to check the recipe against: "
                          "give a new train.out_dir, or train.resume=false to start over")
    changes = config_changes(with_defaults(to_dict(type(recipe)()), saved), to_dict(recipe))
    if changes:
        more = f" (+{len(changes) - 3} more)" if len(changes) > 3 else ""
        raise ConfigError(f"{ckpt.parent} holds a run of another recipe ({'; '.join(changes[:3])}{more}); "
                          "a resume may change only train.steps / save_every / threads: give a new "
                          "train.out_dir, or train.resume=false to start over")
    return True


def run(stage: str, recipe: SFTRecipe | GRPORecipe, progress: bool = True) -> dict[str, Any]:
    """Train; returns a summary (steps, first/last metrics, paths)."""
    from trainer.grpo import VideoGRPO
    from trainer.sft import VideoSFT

    tc = recipe.train
    multi = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if multi and recipe.model.lora is not None:
        raise ConfigError("model.lora is not supported with several processes yet (one process, or no lora)")
    if multi and stage == "grpo" and recipe.difficulty.reestimate_each_epoch:
        raise ConfigError("difficulty.reestimate_each_epoch is not supported with several processes yet")
    out = Path(tc.out_dir)
    ckpt = out / "checkpoint"
    resuming = preflight(recipe, ckpt)  # every user mistake ends here, before any folder or model
    dist = _Dist() if multi else None
    main = dist is None or dist.main
    out.mkdir(parents=True, exist_ok=True)
    if main:
        write_text_atomic(out / "config.yaml", yaml.safe_dump(to_dict(recipe), sort_keys=False))
    if tc.threads:
        torch.set_num_threads(tc.threads)
    data = GroundingDataset(recipe.data.train, recipe.data.frames, recipe.data.window,
                            seed=recipe.data.seed, limit=recipe.data.limit,
                            difficulty_filter=recipe.data.difficulty_filter,
                            difficulty_weighting=recipe.data.difficulty_weighting,
                            views=recipe.data.views,
                            qa=recipe.data.qa if stage == "sft" else None, trace=recipe.data.trace,
                            kinds=tuple(recipe.data.kinds), allow_outside=recipe.data.allow_outside_paths)
    part = dist.part(tc.batch_size, tc.gradient_accumulation_steps) if dist is not None else (0, tc.batch_size)
    if dist is not None and tc.fsdp:
        if dist.sharded:
            raise ConfigError("train.fsdp and an accelerate FSDP / DeepSpeed config both shard: use one")
        dist.fsdp = True
    if dist is not None and dist.deepspeed:
        # accelerate's backward under DeepSpeed steps the engine (clip, optimizer, zero grad) at every
        # call; our steps back-propagate once per micro-batch (SFT) and once per prompt (GRPO), so
        # a DeepSpeed step must have exactly one backward until its boundary is driven from here
        backwards = tc.gradient_accumulation_steps if stage == "sft" else part[1] - part[0]
        if backwards > 1:
            raise ConfigError(f"under DeepSpeed a step may back-propagate once per process ({backwards} here): "
                              + ("train.gradient_accumulation_steps=1" if stage == "sft" else
                                 f"train.batch_size={dist.world} (one prompt per process)"))
    device = dist.acc.device if dist is not None else resolve_device(tc.device)
    if dist is not None:
        check_precision(tc.dtype, device)
    lora = recipe.model.lora
    # with LoRA a checkpoint holds the adapter: the base model comes from the recipe again
    model, processor = load_model(recipe.model, str(ckpt) if resuming and lora is None else None)
    model.to(device)
    if tc.gradient_checkpointing:
        enable_checkpointing(model)
    if lora is not None:
        model = load_adapter(model, ckpt) if resuming else apply_lora(model, lora, seed=recipe.model.seed)
    torch.manual_seed(tc.seed + (dist.rank if dist is not None else 0))
    ref = None
    if stage == "grpo" and (recipe.grpo.beta or recipe.grpo.beta_time) and lora is None:
        # the *initial* model, also on resume (LoRA: the base); whole on every process under FSDP2
        ref = load_model(recipe.model)[0].to(device) if resuming else copy.deepcopy(model)
    if dist is not None and dist.fsdp:
        if tc.freeze_vision:  # before sharding: FSDP2 keeps what requires grad as it finds it
            freeze_vision(model)
        fsdp2.shard(model, device.type, dist.world)
    if stage == "grpo":
        cfg = copy.deepcopy(recipe.grpo)
        cfg.freeze_vision = tc.freeze_vision
        trainer: Any = VideoGRPO(model, processor, cfg, ref_model=ref, learning_rate=tc.learning_rate,
                                 max_grad_norm=tc.max_grad_norm)
    elif stage == "sft":
        trainer = VideoSFT(model, processor, tc.learning_rate, tc.freeze_vision, max_grad_norm=tc.max_grad_norm,
                           binding=tc.binding, binding_layer=tc.binding_layer, attend=tc.attend,
                           attend_span=tc.attend_span)
    else:
        raise ConfigError(f"unknown stage {stage!r}")
    trainer.autocast = autocast_for(tc.dtype, device)
    trainer.accumulation = tc.gradient_accumulation_steps
    scheduler = make_scheduler(trainer.optimizer, tc.lr_scheduler_type, tc.steps, tc.warmup_ratio)
    if stage == "grpo" and recipe.difficulty.reestimate_each_epoch:
        from trainer.difficulty import epoch_hook, make_sampler

        dc = recipe.difficulty
        sampler = make_sampler(model, processor, dc.k, dc.max_new_tokens, dc.temperature, tc.freeze_vision)
        data.epoch_hook = epoch_hook(sampler, data, dc, out, progress)
    start = 0
    if resuming:
        state = torch.load(ckpt / STATE, weights_only=True)
        if dist is not None and dist.fsdp:
            if "fsdp_optimizer" not in state:
                raise ConfigError(f"{ckpt} was not written by a train.fsdp run")
            fsdp2.load_optimizer_state(trainer.model, trainer.optimizer, state["fsdp_optimizer"])
        elif dist is not None and dist.sharded:  # the optimizer state is loaded after prepare (_load_sharded)
            if not (ckpt / ACC_STATE).is_dir():
                raise ConfigError(f"{ckpt} was not written by a sharded (FSDP / DeepSpeed) run: no {ACC_STATE}/")
        elif "optimizer" not in state:
            raise ConfigError(f"{ckpt} was written by a sharded (FSDP / DeepSpeed / train.fsdp) run: resume it "
                              "with that config")
        else:
            trainer.optimizer.load_state_dict(state["optimizer"])  # before prepare: it moves the state
        ranks = state.get("torch_rng_ranks")
        if dist is not None and ranks is not None and len(ranks) == dist.world:
            torch.set_rng_state(ranks[dist.rank])
        elif dist is None or dist.rank == 0:
            torch.set_rng_state(state["torch_rng"])
        if dist is None and device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        start = int(state["step"])
        # every schedule offered is a function of the step: replay it to the saved step (over the
        # new train.steps, when a resume lengthens the run), which also sets the optimizer's rate
        with warnings.catch_warnings():  # torch warns of a scheduler step with no optimizer step before it
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(start):
                scheduler.step()
    if dist is not None:
        dist.prepare(trainer)
        if resuming and dist.sharded:
            _load_sharded(dist.acc, ckpt, state)
        if stage == "sft":
            dist.token_weighted_sft(trainer)
        if progress:
            print(f"[{stage}] process {dist.rank}/{dist.world}: samples [{part[0]}, {part[1]}) of each step's "
                  f"{tc.batch_size} ({dist.acc.distributed_type.value}, {dist.acc.device})", file=sys.stderr, flush=True)
    logger = _Logger(out, start, tc.report_to, to_dict(recipe)) if main else None
    shadow = None  # train.fsdp: an unsharded copy the gathered weights are written from
    first: dict[str, float] | None = None
    last: dict[str, float] = {}
    t0 = time.time()
    batches = data.batches(tc.batch_size, start_step=start) if dist is None else _picks(data, tc.batch_size, start)
    for step in range(start, tc.steps):
        if dist is None:
            _, samples = next(batches)
        else:
            _, picks = next(batches)
            samples = [data.sample(i, epoch) for i, epoch in picks[part[0]:part[1]]]
        lr = trainer.optimizer.param_groups[0]["lr"]
        if stage == "grpo":  # each sample's completions from its own seed: the same however the step is cut
            m = trainer.step(samples, seeds=[sample_seed(tc.seed, step, tc.batch_size, j)
                                             for j in range(part[0], part[1])])
        else:
            m = trainer.step(samples)
        scheduler.step()
        if dist is not None:
            m = dist.mean_metrics(m)
        m["learning_rate"] = lr
        m["seconds"] = time.time() - t0
        if logger is not None:
            logger.log(step, m)
        first = first or m
        last = m
        if progress and main:
            shown = " ".join(f"{k}={v:.3f}" for k, v in m.items()
                             if k in ("loss", "binding", "attend", "attend_span", "reward", "reward/iou", "kl"))
            print(f"[{stage}] step {step + 1}/{tc.steps} {shown}", file=sys.stderr, flush=True)
        done = step + 1
        if (tc.save_every and done % tc.save_every == 0) or done == tc.steps:
            if dist is not None and dist.sharded:  # every process: gathers; the optimizer via save_state
                state = {"step": done, "torch_rng": torch.get_rng_state(), "torch_rng_ranks": dist.rng_states()}
                _save_sharded(dist.acc, trainer.model, model, processor, ckpt, state)
                continue
            if dist is not None and dist.fsdp:  # every process gathers; the main one writes
                weights = fsdp2.full_state_dict(trainer.model)
                state = {"fsdp_optimizer": fsdp2.full_optimizer_state(trainer.model, trainer.optimizer),
                         "step": done, "torch_rng": torch.get_rng_state(), "torch_rng_ranks": dist.rng_states()}
                if main:
                    shadow = shadow if shadow is not None else load_model(recipe.model)[0]
                    shadow.load_state_dict(weights)
                    _save(shadow, processor, ckpt, state)
                dist.wait()
                continue
            state = {"optimizer": trainer.optimizer.state_dict(), "step": done, "torch_rng": torch.get_rng_state()}
            if device.type == "cuda":  # sampling draws on the GPU's generator
                state["cuda_rng"] = torch.cuda.get_rng_state(device)
            if dist is not None:
                state["torch_rng_ranks"] = dist.rng_states()
            if main:
                _save(model, processor, ckpt, state)
            if dist is not None:
                dist.wait()
    png = None
    if dist is not None and dist.fsdp:  # the final weights, gathered whole, into an unsharded copy
        weights = fsdp2.full_state_dict(trainer.model)
        if main:
            shadow = shadow if shadow is not None else load_model(recipe.model)[0]
            shadow.load_state_dict(weights)
            model = shadow
    if dist is not None and dist.sharded:
        _save_sharded(dist.acc, trainer.model, model, processor, out / "model")
    if main:
        assert logger is not None
        logger.close()
        if lora is not None:  # the adapter alone, then the base with it merged in (trainer.lora)
            _save(model, processor, out / "adapter")
            _save(merged(model), processor, out / "model")
        elif dist is None or not dist.sharded:
            _save(model, processor, out / "model")
        png = plot_curves(logger.path, out / "curves.png")
    if dist is not None:
        dist.wait()
    return {"stage": stage, "steps": tc.steps, "resumed_from": start, "first": first, "last": last,
            "model": str(out / "model"), "metrics": str(out / "metrics.jsonl"), "curves": str(png) if png else None}
