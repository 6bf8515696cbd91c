"""Typed recipe configs: YAML -> dataclasses, unknown keys rejected, `key=value` overrides.

    recipe = load_recipe("trainer/recipes/grpo.yaml", "grpo", ["grpo.beta_time=0.0", "train.steps=50"])

Every mistake a user can make in a recipe (unknown key, wrong type, unreadable YAML) is a
one-line `grounder.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from grounder.errors import ConfigError, check_number, one_line
from grounder.tiny import TinySize
from trainer.data import DifficultyWeighting, FrameConfig, View, WindowConfig
from trainer.grpo import GRPOConfig
from trainer.lora import LoraSettings
from trainer.qa_data import QAConfig


@dataclass
class ModelConfig:
    """`path`: a saved model folder (safetensors + processor); None builds the tiny model of
    `family` from `seed` (offline, random weights)."""

    family: Literal["qwen2_5_vl", "qwen3_vl"] = "qwen2_5_vl"
    path: str | None = None
    seed: int = 0
    size: TinySize | None = None  # sizes of the tiny model built when path is null (grounder.tiny)
    lora: LoraSettings | None = None  # train LoRA adapters instead of the weights (trainer.lora; needs peft)


@dataclass
class DataConfig:
    """`train`: dataset JSONL (rows as in docs/architecture.md; make one with `groundqa synth --out DIR ...`).

    `difficulty_filter: [lo, hi]` keeps rows whose `"difficulty"` (mean IoU of the model's
    samples, `groundqa train difficulty`) is in [lo, hi] (rows without one are kept);
    `difficulty_weighting: {target, sigma}` draws each epoch's rows with Gaussian weights around
    `target` (Time-R1), deterministically in `seed` and the epoch."""

    train: str = "data/synth/annotations.jsonl"
    limit: int | None = None  # first N rows only
    seed: int = 0
    frames: FrameConfig = field(default_factory=FrameConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    difficulty_filter: list[float] | None = None
    difficulty_weighting: DifficultyWeighting | None = None
    trace: Literal["anchor", "direct"] = "anchor"  # SFT targets: data.reference_trace | data.direct_trace
    qa: QAConfig | None = None  # SFT only: mix in QA samples (trainer.qa_data) so the model also answers
    views: list[View] | None = None  # several window shapes (the scan's coarse + zoom levels); None: window + frames
    # Row kinds whose `query` + `spans` are grounding targets. QA rows carry their evidence moment
    # ("when does the next shape enter after X leaves?"): ["grounding", "qa"] trains on those too.
    kinds: list[str] = field(default_factory=lambda: ["grounding"])
    allow_outside_paths: bool = False  # rows may name videos outside the dataset file's folder

    def __post_init__(self) -> None:
        f = self.difficulty_filter
        if f is not None and (len(f) != 2 or not 0.0 <= f[0] <= f[1] <= 1.0):
            raise ConfigError(f"data.difficulty_filter must be [lo, hi] with 0 <= lo <= hi <= 1, got {f}")
        if not self.kinds:
            raise ConfigError("data.kinds must name at least one row kind (grounding, qa)")
        check_number("data.limit", self.limit, ge=1, optional=True)


@dataclass
class DifficultyConfig:
    """`groundqa train difficulty`: k sampled answers per row -> `"difficulty"` = their mean IoU.

    `out`: the output dataset JSONL (None: `<train>.difficulty.jsonl` next to the input).
    `traces`: also write the completions whose anchors improve step by step (anchor reward 1.0)
    and whose IoU >= `trace_min_iou` as SFT rows (TAR-TVG's distilled traces; None: don't).
    `reestimate_each_epoch` (GRPO only): re-estimate at the start of each epoch with the current
    policy over `subset` rows (None: all), stored in out_dir/difficulty/ so resume replays it."""

    k: int = 4
    max_new_tokens: int = 64
    temperature: float = 1.0
    out: str | None = None
    traces: str | None = None
    trace_min_iou: float = 0.5
    reestimate_each_epoch: bool = False
    subset: int | None = None
    seed: int = 0  # torch seed (sampling)
    threads: int = 0

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"difficulty.k must be >= 1, got {self.k}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"difficulty.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        check_number("difficulty.temperature", self.temperature, gt=0)
        check_number("difficulty.trace_min_iou", self.trace_min_iou, ge=0, le=1)
        check_number("difficulty.subset", self.subset, ge=1, optional=True)
        check_number("difficulty.threads", self.threads, ge=0)


@dataclass
class TrainConfig:
    """How the steps run. Names follow TRL's `SFTConfig` / `GRPOConfig` where the meaning is the same
    (`learning_rate`, `max_grad_norm`, `gradient_accumulation_steps`, `gradient_checkpointing`,
    `lr_scheduler_type`, `warmup_ratio`, `seed`); `device` / `dtype`: trainer.runtime."""

    out_dir: str = "runs/train"
    steps: int = 20
    batch_size: int = 2  # prompts (windows) per optimizer step, over all processes and micro-batches
    learning_rate: float = 1e-4
    max_grad_norm: float = 1.0
    device: str = "auto"  # auto | cpu | cuda | cuda:N (one process; `accelerate launch` places each process)
    dtype: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast forwards, fp32 weights and optimizer
    # each step's batch is cut into this many micro-batches, back-propagated one after another
    # (the SFT loss weighted by each one's share of the target tokens): the same update, less memory
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False  # recompute the language model's activations in backward
    # several processes: shard the model with torch's FSDP2 (trainer.fsdp2) instead of replicating it (DDP)
    fsdp: bool = False
    lr_scheduler_type: Literal["constant", "constant_with_warmup", "linear", "cosine"] = "constant"
    warmup_ratio: float = 0.0  # of train.steps, rounded up
    # trackers beside metrics.jsonl (always written), through accelerate's: tensorboard (out_dir/tb/),
    # wandb (its own project settings and login)
    report_to: list[Literal["tensorboard", "wandb"]] = field(default_factory=list)
    freeze_vision: bool = True
    save_every: int = 0  # checkpoint every N steps (0: only at the end)
    resume: bool = True  # continue from out_dir/checkpoint when it exists
    seed: int = 0  # torch seed (sampling)
    threads: int = 0  # torch threads (0: torch's default)
    binding: float = 0.0  # SFT only: weight of the per-frame "named object here?" loss (trainer.binding)
    # LM layer whose output the binding head reads (0 = embeddings); None: the middle layer, so
    # that the layers after it can attend to what it found (the last layer's output is read by no one)
    binding_layer: int | None = None
    # SFT only: weight of the loss that makes the answer's decision position attend (in the layer
    # after binding_layer) to the frame groups showing the named object (trainer.binding.attention_loss)
    attend: float = 0.0
    # SFT only: weight of the same loss for the positions that write the span's start and end: each
    # attends to the frame group whose time it writes (trainer.binding.span_attention_loss)
    attend_span: float = 0.0

    def __post_init__(self) -> None:
        # checked here, before any folder is made or model loaded (a bad value used to fail
        # inside the first step, leaving a half-made out_dir behind)
        check_number("train.steps", self.steps, ge=1)
        check_number("train.batch_size", self.batch_size, ge=1)
        check_number("train.learning_rate", self.learning_rate, gt=0)
        check_number("train.max_grad_norm", self.max_grad_norm, gt=0)
        check_number("train.gradient_accumulation_steps", self.gradient_accumulation_steps, ge=1)
        check_number("train.warmup_ratio", self.warmup_ratio, ge=0, le=1)
        if self.batch_size % self.gradient_accumulation_steps:
            raise ConfigError(f"train.batch_size={self.batch_size} must be a multiple of "
                              f"train.gradient_accumulation_steps={self.gradient_accumulation_steps}")
        check_number("train.save_every", self.save_every, ge=0)
        check_number("train.threads", self.threads, ge=0)
        for name in ("binding", "attend", "attend_span"):
            check_number(f"train.{name}", getattr(self, name), ge=0)
        check_number("train.binding_layer", self.binding_layer, ge=0, optional=True)
        if not str(self.out_dir).strip():
            raise ConfigError("train.out_dir must name a folder")


@dataclass
class SFTRecipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/sft"))


@dataclass
class GRPORecipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/grpo", learning_rate=1e-5))
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)

    def __post_init__(self) -> None:
        # a group of one has no advantage (r - mean = 0): nothing would be learnt
        check_number("grpo.num_generations", self.grpo.num_generations, ge=2)


@dataclass
class DifficultyRecipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)


RECIPES = {"sft": SFTRecipe, "grpo": GRPORecipe, "difficulty": DifficultyRecipe}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected text, got {value!r}")
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """`cls(**data)` recursively, with types checked and unknown keys rejected."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in names:
            raise ConfigError(f"unknown config key {key!r} (known here: {', '.join(names)})")
        kwargs[k] = _coerce(v, hints[k], key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prefix or cls.__name__}: {e}") from None


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def flat_keys(d: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as {"a.b.c": value} (recipes compared or logged key by key)."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat_keys(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def apply_override(data: dict[str, Any], override: str) -> None:
    """`a.b.c=value` (value parsed as YAML: numbers, true/false, null, text) into nested dicts."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} is not key=value")
    key, raw = override.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {p!r} is not a section")
    node[parts[-1]] = value


def read_config(path: str | Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """A YAML mapping (None: empty) with `key=value` overrides applied; one-line errors."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({one_line(e)})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level")
    for o in overrides or []:
        apply_override(data, o)
    return data


def load_recipe(path: str | Path | None, stage: str, overrides: list[str] | None = None) -> Any:
    """The stage's recipe dataclass from a YAML file (None: defaults) plus overrides."""
    if stage not in RECIPES:
        raise ConfigError(f"unknown stage {stage!r} (choose from {', '.join(RECIPES)})")
    data = read_config(path, overrides)
    return from_dict(RECIPES[stage], data)
