"""The run context: what one `ask` may spend and which models it uses (not checkpointed).

LangGraph passes it to every node as `runtime.context` (`graph.stream(..., context=ctx)`).
Numbers here are per question; the models are loaded once by `agent.api.Agent` and handed
in, or loaded lazily from the defaults (`agent.resources`) when the graph runs on its own
(LangGraph server / Studio, through `langgraph.json`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grounder.errors import InputError, check_number
from grounder.qa_inputs import (
    QA_FPS,
    QA_GLOBAL_FRAMES,
    QA_MAX_FRAMES,
    QA_MAX_PIXELS,
    SEGMENT_MARGIN,
)
from grounder.scan import ScanBudget


@dataclass
class Context:
    """Per-run settings of the ground-then-answer graph. Defaults work."""

    strategy: str = "coarse-to-fine"
    """Grounding strategy: coarse-to-fine (ours), uniform (the no-grounding baseline: one call
    over the whole video, and the QA model sees frames spread over the whole video), sliding."""
    budget: ScanBudget = field(default_factory=ScanBudget)
    """The grounder's budget for the first round; later rounds widen it (`widen_budget`)."""
    confidence_threshold: float = 0.5
    """`decide` answers once the best segment's score reaches this; else it re-grounds."""
    max_rounds: int = 2
    """Grounding rounds per question at most (1 = never re-ground). Counted in state."""
    qa_segments: int = 2
    """Best segments whose frames the QA model sees."""
    read_segments: int = 6
    """Best segments a QA model that checks them one by one may look at (the embedded default's
    timeline reader, `agent.timeline`: "which side", "what comes in right after"); at least
    `qa_segments`."""
    qa_fps: float = QA_FPS
    """Frame rate inside the selected segments (denser than the coarse scan)."""
    qa_max_frames: int = QA_MAX_FRAMES
    """Frames from the segments at most (the rate drops to fit)."""
    qa_global_frames: int = QA_GLOBAL_FRAMES
    """Frames spread over the whole video (global context) added to the segments' frames."""
    qa_max_pixels: int = QA_MAX_PIXELS
    """Pixels per QA frame."""
    qa_max_new_tokens: int = 24
    """Generation budget of the QA model."""
    segment_margin: float = SEGMENT_MARGIN
    """Seconds added on each side of a segment before sampling QA frames."""
    grounder: Any = None
    """`grounder.grounder.Grounder` (or anything with its `ground` method); None: the default."""
    answerer: Any = None
    """`agent.answerer.Answerer` (or a callable with its signature); None: the default."""
    planner: Any = None
    """`agent.planner.Planner`; None: the deterministic rewrite (`agent.planner.rewrite`)."""


def check_question(question: Any, options: Any = None) -> tuple[str, list[str] | None]:
    """(question, options) cleaned, or a one-line `InputError`: text, and 2 to 26 option strings."""
    if not isinstance(question, str) or not question.strip():
        if options:
            raise InputError("options were given without a question")
        raise InputError("the question is empty: ask something about the video")
    opts = None
    if options is not None:
        if isinstance(options, str) or not isinstance(options, Sequence):
            raise InputError("options must be a list of strings")
        opts = [" ".join(str(o).split()) if isinstance(o, str) else o for o in options]
        if any(not isinstance(o, str) or not o for o in opts):
            raise InputError("every option must be a non-empty string")
        if len(opts) == 1 or len(opts) > 26:
            raise InputError(f"give 2 to 26 options, got {len(opts)}")
        opts = opts or None
    return " ".join(question.split()), opts


_MODELS = ("grounder", "answerer", "planner")


def check_context(raw: Any) -> Context:
    """The run context as our types, checked (one-line `InputError` naming the field).

    Takes a `Context` or plain JSON (a LangGraph server passes the client's `context` as a
    dict): unknown fields are refused, and `budget` may be a dict of `ScanBudget` fields.
    The models (`grounder`, `answerer`, `planner`) are Python objects, not JSON."""
    from grounder.grounder import check_strategy

    if raw is None:
        ctx = Context()
    elif isinstance(raw, Context):
        ctx = dataclasses.replace(raw)
    elif isinstance(raw, dict):
        names = {f.name for f in dataclasses.fields(Context)} - set(_MODELS)
        unknown = sorted(set(raw) - names)
        if unknown:
            raise InputError(f"context: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
        ctx = Context(**raw)
    else:
        raise InputError(f"context: expected an object, got {type(raw).__name__}")
    if isinstance(ctx.budget, dict):
        known = {f.name for f in dataclasses.fields(ScanBudget)}
        bad = sorted(set(ctx.budget) - known)
        if bad:
            raise InputError(f"context.budget: unknown field(s) {', '.join(bad)}")
        ctx.budget = ScanBudget(**ctx.budget)
    if not isinstance(ctx.budget, ScanBudget):
        raise InputError("context.budget: expected a grounder.scan.ScanBudget or an object of its fields")
    ctx.strategy = check_strategy(ctx.strategy)
    check_number("context.confidence_threshold", ctx.confidence_threshold, ge=0, le=1)
    check_number("context.qa_fps", ctx.qa_fps, gt=0)
    for name, least in (("max_rounds", 1), ("qa_segments", 0), ("read_segments", 0),
                        ("qa_max_frames", 2), ("qa_global_frames", 0),
                        ("qa_max_pixels", 1), ("qa_max_new_tokens", 1), ("segment_margin", 0)):
        check_number(f"context.{name}", getattr(ctx, name), ge=least)
    return ctx

