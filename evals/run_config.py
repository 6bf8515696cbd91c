"""What one `groundqa eval run` is: its settings (`RunConfig`) and the scan budget they give.

Kept apart from the runner and the predictors, which both read it (no import circle).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from grounder.errors import InputError


@dataclasses.dataclass
class RunConfig:
    bench: str
    ann: str
    out: str
    videos: str | None = None
    model: str | None = None  # None: the embedded default
    strategy: str = "coarse-to-fine"
    budget: dict[str, Any] = dataclasses.field(default_factory=dict)  # ScanBudget overrides
    predictor: str = "grounder"
    limit: int | None = None
    kind: str | None = None  # only rows of this "kind" (the synthetic world: grounding | qa)
    stride: int = 1  # every stride-th item (after the question filter, before limit): a spread subset
    skip_missing: bool = False
    device: str = "cpu"
    retriever: str | None = None  # None: the model folder's own retriever/ (if any); "none": off
    allow_outside_paths: bool = False  # videos named outside the annotation's (or --videos) folder
    backend: str = "transformers"  # or "openai": the model is a name served at $OPENAI_BASE_URL
    qa_model: str | None = None  # the QA model (a folder or "openai:NAME"); None: the grounder's own
    concurrency: int = 1  # items in flight at once (openai backend: the server works, we wait)

    def __post_init__(self) -> None:
        if int(self.concurrency) < 1:
            raise InputError(f"--concurrency must be >= 1, got {self.concurrency}")
        if int(self.concurrency) > 1 and self.backend != "openai":
            raise InputError("--concurrency above 1 needs --backend openai (a local model runs one item at a time)")

    def identity(self) -> dict[str, Any]:
        """What run.json records and a rerun must match."""
        return {
            "bench": self.bench,
            "ann": str(Path(self.ann).resolve()),
            "videos": str(Path(self.videos).resolve()) if self.videos else None,
            "model": str(Path(self.model).resolve()) if self.model and Path(self.model).exists()
            else (self.model or "default"),
            "strategy": self.strategy,
            # what the scan ran with (model's scan_config.json + overrides), and the overrides alone
            "budget": dataclasses.asdict(resolved_budget(self.model, self.budget)),
            "budget_overrides": dict(self.budget),
            "predictor": self.predictor,
            **({"retriever": self.retriever} if self.retriever is not None else {}),
            **({"backend": self.backend} if self.backend != "transformers" else {}),
            **({"qa_model": self.qa_model} if self.qa_model is not None else {}),
        }


def make_budget(overrides: dict[str, Any] | None) -> Any:
    """ScanBudget with `overrides` (field -> value); unknown fields are a one-line error."""
    from grounder.scan import ScanBudget

    fields = {f.name: f for f in dataclasses.fields(ScanBudget)}
    kwargs = {}
    for k, v in (overrides or {}).items():
        if k not in fields:
            raise InputError(f"unknown budget field {k!r} (known: {', '.join(fields)})")
        kwargs[k] = v
    return ScanBudget(**kwargs)


def resolved_budget(model: str | None, overrides: dict[str, Any] | None) -> Any:
    """The ScanBudget a grounder run actually scans with: the model folder's `scan_config.json`
    (the embedded default's when `model` is None), then the caller's overrides
    (`grounder.scan.resolve_budget`, the rule `Grounder.ground` applies)."""
    from grounder.backends import DEFAULT_MODEL_DIR
    from grounder.scan import read_scan_config, resolve_budget

    folder = Path(model).expanduser() if model else DEFAULT_MODEL_DIR
    defaults = read_scan_config(folder) if folder.is_dir() else {}
    return resolve_budget(make_budget(overrides), defaults)


def parse_budget(items: Iterable[str]) -> dict[str, Any]:
    """`["frames_per_call=4", "max_new_tokens=16"]` -> typed overrides for ScanBudget."""
    from grounder.scan import ScanBudget

    fields = {f.name: f for f in dataclasses.fields(ScanBudget)}
    defaults = ScanBudget()
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise InputError(f"--budget wants KEY=VALUE, got {item!r}")
        if key not in fields:
            raise InputError(f"unknown budget field {key!r} (known: {', '.join(fields)})")
        default = getattr(defaults, key)
        value = value.strip()
        try:
            if value.lower() in ("none", "null", "auto") and default is None:
                out[key] = None
            elif isinstance(default, int) and not isinstance(default, bool):
                out[key] = int(value)
            else:
                out[key] = float(value)
        except ValueError:
            raise InputError(f"--budget {key}: not a number: {value!r}") from None
    make_budget(out)  # validate now, before any work
    return out
