"""Random-weight models with a real checkpoint's shapes: the public config of a Qwen-VL folder (no
weights needed) with only the depth cut, and the folder's real processor.

    model, processor = build_real_shape("../shared/data/models/Qwen3-VL-4B-Instruct", text_layers=2)

Every width (hidden, intermediate, heads, vocabulary, vision blocks, merger) is the checkpoint's;
`text_layers` / `vision_layers` cut the depth (None keeps it). The indexes that name vision
blocks (Qwen2.5-VL's full-attention blocks, Qwen3-VL's deepstack taps) are kept inside the cut
depth: Qwen2.5-VL's last block stays a full-attention one, Qwen3-VL taps its first blocks.
`meta=True` builds on the meta device: parameter counts at any depth without memory.

`save_narrow_model` writes a model folder laid out as the published ones (config.json, sharded
safetensors + index, generation config, the real tokenizer, chat template and processor files)
whose model has the real vocabulary, token ids, rope layout and vision patching but narrow layers
(one 128-wide attention head, the M-RoPE sections intact): what the tests point `--model` at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from grounder.errors import ConfigError


def real_config(folder: str | os.PathLike, text_layers: int | None = None, vision_layers: int | None = None) -> Any:
    """The folder's config with the depths cut (module docstring)."""
    from transformers import AutoConfig

    if not (Path(folder) / "config.json").is_file():
        raise ConfigError(f"{folder}: no config.json (a Qwen-VL model folder is needed)")
    config = AutoConfig.from_pretrained(folder)  # local files only: a folder path never reaches the hub
    text = config.get_text_config()
    if text_layers is not None:
        text.num_hidden_layers = text_layers
        if hasattr(config, "num_hidden_layers") and config is not text:
            config.num_hidden_layers = text_layers
        if getattr(text, "layer_types", None):
            text.layer_types = text.layer_types[:text_layers]
        if hasattr(text, "max_window_layers"):
            text.max_window_layers = min(text.max_window_layers, text_layers)
    vision = config.vision_config
    if vision_layers is not None:
        vision.depth = vision_layers
        if getattr(vision, "fullatt_block_indexes", None):
            vision.fullatt_block_indexes = [vision_layers - 1]
        if getattr(vision, "deepstack_visual_indexes", None):
            vision.deepstack_visual_indexes = list(range(min(len(vision.deepstack_visual_indexes), vision_layers)))
    return config


def build_real_shape(folder: str | os.PathLike, text_layers: int | None = 2, vision_layers: int | None = 2,
                     seed: int = 0, meta: bool = False) -> tuple[Any, Any]:
    """(model, processor): random weights (seeded) in the folder's shapes, depth cut; fp32, eval mode.
    With `meta`, the model has no storage and the processor is None."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    config = real_config(folder, text_layers, vision_layers)
    if meta:
        with torch.device("meta"):
            return AutoModelForImageTextToText.from_config(config), None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.eval()
    return model, AutoProcessor.from_pretrained(folder)


def parameter_groups(model: Any) -> dict[str, int]:
    """Parameter counts: `embed` (input embeddings), `lm_head` (0 when tied), `text_layers` (all
    decoder layers and the final norm), `vision` (tower and merger), `total`."""
    lm = model.model.language_model
    vision = model.model.visual
    embed = sum(p.numel() for p in lm.embed_tokens.parameters())
    head = model.lm_head.weight
    tied = head is lm.embed_tokens.weight
    out = {"embed": embed, "lm_head": 0 if tied else head.numel(),
           "text_layers": sum(p.numel() for p in lm.parameters()) - embed,
           "vision": sum(p.numel() for p in vision.parameters())}
    out["total"] = sum(out.values())
    return out


def narrow_config(folder: str | os.PathLike, text_layers: int = 2, vision_layers: int = 2) -> Any:
    """The folder's config, depth cut, every layer narrowed to one head of the real head size (so the
    M-RoPE sections still fit), the vocabulary, special ids, patch and merge sizes kept."""
    config = real_config(folder, text_layers, vision_layers)
    text = config.get_text_config()
    head = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    text.hidden_size, text.intermediate_size = head, 2 * head
    text.num_attention_heads = text.num_key_value_heads = 1
    if hasattr(text, "head_dim"):
        text.head_dim = head
    if config is not text and hasattr(config, "hidden_size"):  # Qwen2.5-VL keeps a top-level copy
        config.hidden_size = head
    vision = config.vision_config
    vision_head = vision.hidden_size // vision.num_heads
    vision.hidden_size, vision.intermediate_size, vision.num_heads = vision_head, 2 * vision_head, 1
    vision.out_hidden_size = head
    return config


def save_narrow_model(folder: str | os.PathLike, out: str | os.PathLike, seed: int = 0,
                      max_shard_size: str = "20MB") -> Path:
    """A model folder laid out as the published one (module docstring), random weights (seeded)."""
    from transformers import AutoModelForImageTextToText, GenerationConfig

    config = narrow_config(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    if (Path(folder) / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    out = Path(out)
    model.save_pretrained(out, max_shard_size=max_shard_size)
    # the tokenizer, chat template and processor files as published, byte for byte
    for f in Path(folder).iterdir():
        if f.is_file() and f.name not in ("config.json", "generation_config.json") and not f.name.startswith("model"):
            shutil.copyfile(f, out / f.name)
    return out
