"""The model a training stage starts from: a saved folder, or the tiny model of a family."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grounder.errors import ConfigError


def load_model(cfg: Any, path: str | None = None) -> tuple[Any, Any]:
    """(model, processor) from a folder, or the tiny model of the config's family and seed."""
    from grounder.tiny import build_tiny

    path = path or cfg.path
    if path is None:
        size = getattr(cfg, "size", None)
        return build_tiny(cfg.family, seed=cfg.seed, **({"size": size} if size is not None else {}))
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if not Path(path).is_dir():
        raise ConfigError(f"model.path: no such folder {path}")
    model = AutoModelForImageTextToText.from_pretrained(path)
    processor = AutoProcessor.from_pretrained(path)
    model.eval()
    return model, processor
