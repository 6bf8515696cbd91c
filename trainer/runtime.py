"""How a training step runs on the hardware: device, precision, learning-rate schedule.

Pure checks first (`resolve_device`, `check_precision`: one-line ConfigErrors before any model is
loaded), then the small objects the loop hands to a trainer (`autocast_for`, `make_scheduler`) and
the activation-checkpointing switch (`enable_checkpointing`).

- `train.device`: "auto" (the first GPU when torch sees one, else the CPU), "cpu", "cuda" or "cuda:N".
- `train.dtype`: "fp32", or "bf16" mixed precision: the weights and the optimizer stay fp32 and the
  forwards run under `torch.autocast(bfloat16)` (what TRL's `bf16=True` does through accelerate).
  fp16 is not offered: it needs loss scaling, and every GPU our users train on has bf16.
- `train.lr_scheduler_type` / `warmup_ratio`: transformers' schedulers (`get_scheduler`), stepped
  once per training step; the default "constant" keeps the committed runs' behaviour.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from grounder.errors import ConfigError

SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")


def resolve_device(name: str) -> torch.device:
    """The device `train.device` names, checked against what torch sees here."""
    key = str(name).strip().lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(key)
    except RuntimeError:
        raise ConfigError(f"train.device: {name!r} is not a device (auto, cpu, cuda, cuda:N)") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ConfigError(f"train.device: {name!r} is not supported (auto, cpu, cuda, cuda:N)")
    if not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} asked, but torch sees no CUDA GPU here (use cpu or auto)")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"train.device: {name!r}, but only {torch.cuda.device_count()} GPU(s) are visible")
    return dev


def check_precision(dtype: str, device: torch.device) -> None:
    """bf16 where the device has it (every CPU torch runs on; GPUs from Ampere on)."""
    if dtype == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"train.dtype: bf16 asked, but {torch.cuda.get_device_name(device)} has no bf16 "
                          "(use fp32)")


def autocast_for(dtype: str, device: torch.device) -> Callable[[], Any]:
    """A factory of the context the forwards run in: autocast to bf16, or nothing for fp32."""
    if dtype == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def warmup_steps(steps: int, warmup_ratio: float) -> int:
    """TRL's rounding: ceil(ratio x steps)."""
    return int(-(-warmup_ratio * steps // 1))


def make_scheduler(optimizer: torch.optim.Optimizer, kind: str, steps: int, warmup_ratio: float) -> Any:
    """transformers' scheduler `kind` over `steps` training steps, warming up over the first
    ceil(warmup_ratio x steps)."""
    from transformers import get_scheduler

    if kind not in SCHEDULERS:
        raise ConfigError(f"train.lr_scheduler_type: {kind!r} is not one of {list(SCHEDULERS)}")
    return get_scheduler(kind, optimizer, num_warmup_steps=warmup_steps(steps, warmup_ratio),
                         num_training_steps=steps)


def split_batch(items: list[Any], parts: int) -> list[list[Any]]:
    """`items` cut into `parts` contiguous micro-batches of equal size (the caller checked divisibility)."""
    per = len(items) // parts
    return [items[i * per:(i + 1) * per] for i in range(parts)]


def enable_checkpointing(model: Any) -> None:
    """Recompute the decoder layers' activations in backward (transformers' own switch; its name
    changed in 5.23; 5.25 still has both). Non-reentrant: the frozen vision tower's outputs need no grad for it to work."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def is_checkpointing(model: Any) -> bool:
    """Whether `model` (or the model inside a DDP / FSDP wrapper) recomputes activations when training."""
    inner = getattr(model, "module", model)
    if hasattr(inner, "is_activation_checkpointing"):
        return bool(inner.is_activation_checkpointing)
    return bool(getattr(inner, "is_gradient_checkpointing", False))
