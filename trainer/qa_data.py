"""QA samples for SFT: the embedded model both grounds and answers.

At inference the agent grounds a question's evidence, then shows its QA model frames from the
found segments (`grounder.qa_inputs.sample_plan`) with `qa_prompt`, and reads the option letter
it writes. A QA training sample is built the same way from a dataset row with `"question"`,
`"options"` and `"answer"` (the synthetic world's QA rows): the segments are the row's evidence
spans with their edges moved at random (`jitter`, grounding is never exact), the frames come
from `sample_plan` with the agent's defaults (`agent.context.Context`: 2 fps, at most 32
frames, 4 overview frames, 1 s margin), and the target is the answer's letter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grounder.errors import ConfigError
from grounder.qa_inputs import (
    LETTERS,
    QA_FPS,
    QA_GLOBAL_FRAMES,
    QA_MAX_FRAMES,
    QA_MAX_PIXELS,
    QA_SYSTEM,
    SEGMENT_MARGIN,
    qa_lead,
    qa_prompt,
    sample_plan,
)
from grounder.qwen import VideoSample


@dataclass
class QAConfig:
    """`weight`: the fraction of SFT samples that are QA samples (0: grounding only). The frame
    plan's defaults are the agent's (`grounder.qa_inputs`), or the model would learn other inputs."""

    weight: float = 0.25
    fps: float = QA_FPS
    max_frames: int = QA_MAX_FRAMES
    global_frames: int = QA_GLOBAL_FRAMES
    margin: float = SEGMENT_MARGIN
    max_pixels: int = QA_MAX_PIXELS
    jitter: float = 0.3  # each evidence edge moves by up to this fraction of the span's length

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ConfigError(f"qa.weight must be in [0, 1], got {self.weight}")
        if self.jitter < 0:
            raise ConfigError(f"qa.jitter must be >= 0, got {self.jitter}")


@dataclass
class QASample:
    """One multiple-choice question over frames of the grounded moments (SFT target: the letter)."""

    video: Path
    question: str
    options: list[str]
    answer: int
    frames: np.ndarray
    timestamps: np.ndarray
    fps: float
    moments: str
    target: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        return qa_prompt(self.question, self.options, self.moments)

    def video_sample(self, completion: str | None = None) -> VideoSample:
        # as agent.answerer.Answerer builds it: no origin shift, rate from the frames' own times
        return VideoSample(frames=self.frames, timestamps=self.timestamps, fps=self.fps,
                           prompt=self.prompt, system=QA_SYSTEM, completion=completion,
                           lead=qa_lead(self.question))


def is_qa_row(extra: dict[str, Any]) -> bool:
    opts = extra.get("options")
    return isinstance(opts, list) and len(opts) >= 2 and extra.get("answer") is not None


def answer_index(extra: dict[str, Any]) -> int:
    """The 0-based answer of a row: an index, or a letter."""
    a = extra["answer"]
    if isinstance(a, str) and len(a) == 1 and a.upper() in LETTERS:
        return LETTERS.index(a.upper())
    return int(a)


def make_qa_sample(row: Any, cfg: QAConfig, rng: random.Random) -> QASample:
    """Frames around the row's (jittered) evidence spans, the question and its letter."""
    from grounder.video import shared_reader

    reader = shared_reader(row.video)
    duration = float(reader.duration)
    segments = []
    for s, e in row.spans:
        j = cfg.jitter * (e - s)
        a = max(0.0, s + rng.uniform(-j, j))
        b = min(duration, e + rng.uniform(-j, j))
        segments.append({"start": a, "end": b if b > a else min(duration, a + 1.0)})
    times, moments = sample_plan(duration, segments, fps=cfg.fps, max_frames=cfg.max_frames,
                                 global_frames=cfg.global_frames, margin=cfg.margin)
    frames, stamps = reader.sample(times, max_pixels=cfg.max_pixels)
    options = [str(o) for o in row.extra["options"]]
    answer = answer_index(row.extra)
    return QASample(row.video, str(row.extra.get("question") or row.query), options, answer,
                    frames, np.asarray(stamps), float(reader.fps), moments, LETTERS[answer], row.extra)
