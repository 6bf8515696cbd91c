"""The run context: what one `ask` may spend and which models it uses (not checkpointed).

LangGraph passes it to every node as `runtime.context` (`graph.stream(..., context=ctx)`).
Numbers here are per question; the models are loaded once by `agent.api.Agent` and handed
in, or loaded lazily from the defaults (`agent.resources`) when the graph runs on its own
(LangGraph server / Studio, through `langgraph.json`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
