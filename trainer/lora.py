"""LoRA adapters through peft (`model.lora: {r, alpha, dropout, target_modules}`).

Only the language model's projections get adapters (the vision tower stays frozen and whole): the
names in `target_modules` are matched inside `model.language_model` only. peft freezes every base
weight, so the trainers' optimizers see the adapters alone. A GRPO reference is then the base model
itself (the adapters switched off for the reference forward, as TRL does with peft), not a copy.

What a run writes: checkpoints hold the adapter (`adapter_model.safetensors` + `adapter_config.json`)
beside the processor, and resume puts it back on the base model `model.path` / `model.seed` names;
the final `out_dir/adapter/` is the adapter, and `out_dir/model/` the base with the adapter merged
in, a plain model folder that `groundqa ground/ask --model` loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grounder.errors import ConfigError, check_number

ADAPTER_FILE = "adapter_config.json"


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    # projections of the language model's decoder layers
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"])

    def __post_init__(self) -> None:
        check_number("model.lora.r", self.r, ge=1)
        check_number("model.lora.alpha", self.alpha, gt=0)
        check_number("model.lora.dropout", self.dropout, ge=0, le=0.99)
        if not self.target_modules or not all(re.fullmatch(r"[A-Za-z0-9_]+", m) for m in self.target_modules):
            raise ConfigError(f"model.lora.target_modules must be module names such as q_proj, got {self.target_modules}")


def _peft_config(settings: LoraSettings) -> Any:
    from peft import LoraConfig

    names = "|".join(map(re.escape, settings.target_modules))
    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=rf".*language_model\..*\.({names})")


def _need_peft() -> None:
    try:
        import peft  # noqa: F401
    except ImportError:
        raise ConfigError("model.lora needs peft: pip install 'groundqa[lora]'") from None


def apply_lora(model: Any, settings: LoraSettings, seed: int = 0) -> Any:
    """`model` with fresh adapters (peft's init: the output is the base model's until trained; the
    random A matrices drawn from `seed`, without touching the caller's RNG)."""
    _need_peft()
    import torch
    from peft import get_peft_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            wrapped = get_peft_model(model, _peft_config(settings))
        except ValueError:  # peft's NoMatchingPeftModuleError
            wrapped = None
    if wrapped is None or not any(p.requires_grad for p in wrapped.parameters()):
        raise ConfigError(f"model.lora.target_modules {settings.target_modules} match no layer of the language model")
    return wrapped


def load_adapter(model: Any, folder: str | Path) -> Any:
    """`model` with the adapter saved in `folder`, trainable (resume)."""
    _need_peft()
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(folder), is_trainable=True)


def is_lora(model: Any) -> bool:
    return hasattr(getattr(model, "module", model), "get_base_model")  # peft's PeftModel


def merged(model: Any) -> Any:
    """The base model with the adapters folded into its weights (in place: call it last)."""
    return model.merge_and_unload()
