"""Random-weight models with a real checkpoint's shapes: the public config of a Qwen-VL folder (no
weights needed) with only the depth cut, and the folder's real processor.

    model, processor = build_real_shape("../shared/data/models/Qwen3-VL-4B-Instruct", text_layers=2)

Every width (hidden, intermediate, heads, vocabulary, vision blocks, merger) is the checkpoint's;
`text_layers` / `vision_layers` cut the depth (None keeps it). The indexes that name vision
blocks (Qwen2.5-VL's full-attention blocks, Qwen3-VL's deepstack taps) are kept inside the cut
depth: Qwen2.5-VL's last block stays a full-attention one, Qwen3-VL taps its first blocks.
`meta=True` builds on the meta device: parameter counts at any depth without memory.
"""

from __future__ import annotations

import os
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
