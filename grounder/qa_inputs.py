"""The one QA prompt and frame plan: what the agent's answerer shows, what the trainer trains on.

Like `grounder.prompts` for grounding: the QA model must be trained on exactly the words and
frames it is asked with, so `agent.answerer` (asking) and `trainer` (training the embedded
model to answer) both build their QA inputs from here.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

LETTERS = string.ascii_uppercase

# The QA frame plan's defaults (agent.context.Context and trainer.qa_data.QAConfig both
# start from these, so the embedded model is trained on the frames the agent shows it).
QA_FPS = 2.0  # frame rate inside the selected segments
QA_MAX_FRAMES = 32  # frames from the segments at most
QA_GLOBAL_FRAMES = 4  # frames spread over the whole video
QA_MAX_PIXELS = 448 * 448  # pixels per QA frame
SEGMENT_MARGIN = 1.0  # seconds added on each side of a segment
QA_SYSTEM = "You are a helpful assistant that answers questions about a video."


def qa_lead(question: str) -> str:
    """Text before the frames (as `prompts.query_lead` for grounding): the question, so the
    visual tokens can be read with it in mind."""
    return f"Question: {' '.join(str(question).split())}"


def qa_prompt(question: str, options: Sequence[str] | None, moments: str,
              history: Sequence[dict[str, Any]] = ()) -> str:
    parts = []
    if history:
        lines = [f"Q: {h['question']} A: {h['answer']}" for h in list(history)[-3:]]
        parts.append("Earlier questions about this video:\n" + "\n".join(lines))
    parts.append(f"The frames come from {moments}.")
    parts.append(f"Question: {' '.join(question.split())}")
    if options:
        parts.append("Options:\n" + "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options)))
        parts.append("Answer with the option's letter.")
    else:
        parts.append("Answer briefly.")
    return "\n".join(parts)


def sample_plan(duration: float, segments: Sequence[dict[str, float]], *, fps: float,
                max_frames: int, global_frames: int, margin: float) -> tuple[list[float], str]:
    """Times the QA model sees (sorted, even count) and a phrase naming where they come from."""
    times: list[float] = []
    spans = []
    for s in segments:
        a, b = max(0.0, s["start"] - margin), min(duration, s["end"] + margin)
        if b > a:
            spans.append((a, b))
    if spans:
        total = sum(b - a for a, b in spans)
        rate = min(fps, max_frames / total) if total > 0 else fps
        for a, b in spans:
            n = max(2, math.ceil((b - a) * rate - 1e-9))
            times += [a + (i + 0.5) * (b - a) / n for i in range(n)]
        moments = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in spans)
        desc = f"the moments {moments} of a {duration:.1f} s video"
        g = global_frames
    else:
        g = max(global_frames, min(max_frames, 16))
        desc = f"the whole {duration:.1f} s video, evenly spaced"
    if g > 0:
        glob = [(i + 0.5) * duration / g for i in range(g)]
        times += glob
        if spans:
            desc += " plus overview frames at " + ", ".join(f"{t:.0f}" for t in glob) + " s"
    times = sorted({round(t, 3) for t in times})
    if len(times) % 2:  # Qwen-VL merges frames in pairs
        times.append(min(duration, times[-1] + 1e-3)) if len(times) == 1 else times.pop(0)
    return times, desc
