"""The grounder's Python API: load a model once, ground queries in videos.

    from grounder.grounder import Grounder, ScanBudget

    g = Grounder.from_pretrained("path/to/qwen2.5-vl-folder")      # or None: the embedded default
    result = g.ground("talk.mp4", "when does the speaker show the chart")
    result.segments        # [Segment(start, end, score)], absolute seconds, best first, merged
    result.cost            # Cost(model_calls, frames, visual_tokens, seconds, embedder_frames, embedder_seconds)
    result.retrieval       # the retriever's candidate windows (when the model folder has a retriever)
    result.trace           # [Step(...)]: every call's window, frames, raw text, spans, score
    result.to_dict()       # {"segments": [...], "cost": {...}, "warnings": [...], "trace": [...]}

Retrieve, then ground: when the model folder holds a `retriever/` (the embedded default does) or
`retriever=` names one (a CLIP / SigLIP folder or hub name), the coarse pass of coarse-to-fine is
frame retrieval (`grounder.retrieval`) and the VLM grounds inside the retrieved windows;
`retriever="none"` turns it off (the VLM's own coarse windows, as without a retriever).

Several queries on one video share decoded frames: a path goes through
`grounder.video.shared_reader` (one reader and frame cache per file for the process), and an
open reader can be passed instead. Strategies and budgets: `grounder.scan`.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grounder.backends import DEFAULT_MODEL_DIR, Backend, load_default, load_transformers
from grounder.devices import check_device
from grounder.domain import Domain, read_domain
from grounder.errors import InputError
from grounder.openai_backend import load_openai
from grounder.retrieval import Retrieved, Retriever
from grounder.scan import STRATEGIES, GroundingResult, ScanBudget, Segment, resolve_budget, run_scan
from grounder.video import VideoReader, shared_reader

__all__ = ["BACKENDS", "STRATEGIES", "Grounder", "GroundingResult", "ScanBudget", "Segment"]

# Backend loaders by name: (path_or_name, device, dtype, family) -> Backend. Other backends
# (an OpenAI-compatible server, vLLM) register here.
BACKENDS: dict[str, Callable[..., Backend]] = {"transformers": load_transformers}
# An OpenAI-compatible server (vLLM, transformers serve, ...); grounder.openai_backend.
BACKENDS["openai"] = load_openai


# Words that name nothing on screen: a query made only of these ("when is the?") gives every
# frame the same score, so it is refused before any video is read.
FUNCTION_WORDS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "they", "them", "there",
    "here", "what", "when", "where", "which", "who", "whom", "whose", "why", "how", "is", "are",
    "was", "were", "be", "been", "being", "am", "do", "does", "did", "done", "has", "have", "had",
    "will", "would", "can", "could", "shall", "should", "may", "might", "must", "of", "in", "on",
    "at", "to", "from", "by", "with", "for", "about", "into", "onto", "over", "under", "up",
    "down", "out", "off", "than", "then", "and", "or", "but", "not", "no", "so", "if", "as", "i",
    "you", "he", "she", "we", "me", "my", "your", "our", "his", "her", "their",
})


def check_query(query: Any) -> str:
    """The query on one line; an InputError when it is empty or names nothing to look for."""
    if not isinstance(query, str) or not query.strip():
        raise InputError("the query is empty: say what to find, e.g. 'the red circle enters'")
    text = " ".join(query.split())
    words = re.findall(r"[^\W_]+", text.lower())
    if not any(w not in FUNCTION_WORDS for w in words):
        raise InputError(f"the query {text!r} names nothing to look for: say what to find, e.g. 'the red circle enters'")
    return text


def check_strategy(strategy: str) -> str:
    name = str(strategy).strip().lower().replace("_", "-")
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    return name


def as_reader(video: str | os.PathLike[str] | VideoReader) -> VideoReader:
    """A path -> the process-wide shared reader for that file; a reader -> itself."""
    if isinstance(video, VideoReader):
        return video
    if isinstance(video, (str, os.PathLike)):
        return shared_reader(video)
    raise InputError(f"video must be a path or an open video reader, got {type(video).__name__}")


RETRIEVER_DIR = "retriever"  # a model folder's own retriever (grounder.dual_encoder / embedders)


def resolve_retriever(retriever: str | os.PathLike[str] | Retriever | None, model_dir: Path | None,
                      device: str = "cpu") -> Retriever | None:
    """The retriever a grounder uses: `retriever` when given ("none" = no retriever), else the
    model folder's own `retriever/` subfolder when it has one, else none."""
    if isinstance(retriever, Retriever):
        return retriever
    if retriever is not None:
        if str(retriever).strip().lower() in ("none", "off", ""):
            return None
        return Retriever.load(retriever, device=device)
    if model_dir is not None and (model_dir / RETRIEVER_DIR / "config.json").is_file():
        return Retriever.load(model_dir / RETRIEVER_DIR, device=device)
    return None


class Grounder:
    """A model backend plus the scan: `ground(video, query) -> GroundingResult`."""

    def __init__(self, backend: Backend, warnings: Sequence[str] = (),
                 retriever: Retriever | None = None, domain: Domain | None = None) -> None:
        self.backend = backend
        self.warnings = list(warnings)  # copied into every result (e.g. "model is untrained")
        # Retrieve, then ground: the coarse pass of coarse-to-fine (grounder.retrieval).
        self.retriever = retriever
        # The videos the model knows (grounder.domain); a result on any other says so.
        self.domain = domain

    def domain_warning(self, video: str | os.PathLike[str] | VideoReader) -> str | None:
        """One line when `video` is off the model's declared domain (the embedded default on a real
        video), else None."""
        return self.domain.mismatch(as_reader(video)) if self.domain is not None else None

    @classmethod
    def from_pretrained(cls, path_or_name: str | os.PathLike[str] | None = None,
                        backend: str = "transformers", device: str = "cpu", dtype: Any = None,
                        family: str | None = None, retriever: str | os.PathLike[str] | Retriever | None = None,
                        **options: Any) -> Grounder:
        """Load a Qwen2.5-VL / Qwen3-VL grounder (family from `config.model_type` unless given).

        `None` loads the embedded default: `grounder/default_model/` once a trained one ships;
        until then a tiny untrained Qwen2.5-VL, and every result carries a warning saying so.
        `retriever`: a retriever folder or hub name (CLIP / SigLIP / ours), "none" for no
        retrieval; by default the model folder's own `retriever/` when it has one.
        `options` go to the backend's loader, e.g. for `backend="openai"`: `base_url`,
        `api_key`, `timeout`, `max_retries`, `video` (see `grounder.openai_backend`).
        """
        if backend not in BACKENDS:
            raise InputError(f"unknown backend {backend!r} (available: {', '.join(BACKENDS)})")
        device = check_device(device)
        if path_or_name is None and backend == "transformers":
            model, warnings = load_default(device=device, dtype=dtype)
            model_dir = DEFAULT_MODEL_DIR if not warnings else None
            return cls(model, warnings, resolve_retriever(retriever, model_dir, device), read_domain(model_dir))
        local = Path(str(path_or_name)).expanduser() if path_or_name is not None else None
        model_dir = local if local is not None and local.is_dir() else None
        found = resolve_retriever(retriever, model_dir, device)  # a bad retriever fails before the model loads
        domain = read_domain(model_dir)
        return cls(BACKENDS[backend](path_or_name, device=device, dtype=dtype, family=family,
                                     **options), retriever=found, domain=domain)

    def with_backend(self, backend: Backend) -> Grounder:
        """The same grounder (retriever, domain, warnings, everything) with another backend, e.g.
        one that reports each window as it is read (the agent's live events)."""
        other = copy.copy(self)
        other.backend = backend
        other.warnings = list(self.warnings)
        return other

    def resolve_budget(self, budget: ScanBudget | None = None) -> ScanBudget:
        """The budget `ground` runs with: the model folder's `scan_config.json` values, with the
        fields `budget` sets to non-default values on top (`grounder.scan.resolve_budget`)."""
        return resolve_budget(budget, getattr(self.backend, "scan_defaults", None))

    def ground(self, video: str | os.PathLike[str] | VideoReader, query: str,
               strategy: str = "coarse-to-fine", budget: ScanBudget | None = None,
               proposals: Sequence[tuple[float, float]] | None = None,
               on_step: Callable[[int, int], None] | None = None,
               on_retrieval: Callable[[int], None] | None = None,
               on_retrieved: Callable[[Retrieved], None] | None = None) -> GroundingResult:
        """Find when `query` happens in `video`.

        `proposals`: candidate spans (absolute seconds) that seed zoom chains beside the coarse
        pass's best windows (coarse-to-fine only; given proposals turn retrieval off).
        `on_step(done, planned)` is called after each model call, `on_retrieval(n)` after each
        batch of n frames the retriever embeds (progress bars), `on_retrieved(retrieved)` once the
        retriever has proposed its windows, before the first model call (live reports).
        Model text never raises: a window with an unusable answer just gives no candidate.
        """
        query = check_query(query)
        strategy = check_strategy(strategy)
        if budget is not None and not isinstance(budget, ScanBudget):
            raise InputError(f"budget must be a ScanBudget, got {type(budget).__name__}")
        budget = self.resolve_budget(budget)
        reader = as_reader(video)
        retrieved = None
        if self.retriever is not None and strategy == "coarse-to-fine" and proposals is None:
            retrieved = self.retriever.retrieve(reader, query, budget, advance=on_retrieval)
            if on_retrieved is not None:
                on_retrieved(retrieved)
        result = run_scan(reader, query, self.backend, strategy, budget, proposals, on_step, retrieved)
        off = self.domain_warning(reader)
        result.warnings = ([off] if off else []) + self.warnings + result.warnings
        return result
