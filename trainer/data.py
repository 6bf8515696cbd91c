"""Training data: dataset JSONL rows -> window samples -> Qwen-VL model inputs.

A dataset row (docs/architecture.md) is `{"video": path, "duration": s, "query": str, "spans": [[s, e], ...]}`.
`video` is resolved against the JSONL file's folder when relative.

The grounder scans a long video window by window, so a training sample is one *window* of the
video, as the scan shows it: frames sampled with `reader.sample_range(start, end, fps, max_frames,
max_pixels)`, the prompt `grounding_prompt(query, window_length)` with `SYSTEM_PROMPT`, and the
target span in window-relative seconds. `WindowConfig` says how windows are chosen: a random crop
of `length` seconds that contains the target span (or is inside it, when the span is longer),
and with probability `negative_prob` a window that overlaps no span (target: "not in this clip").

Messages are built by `grounder.qwen` (never through HF `datasets`, whose Arrow storage fills
missing content-block keys with None and breaks the chat templates); the frames are described
as the clip of n frames at n / length frames per second that starts at the window start
(`grounder.qwen.clip_metadata`), exactly as the grounder does at inference.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from grounder.answer_format import format_answer
from grounder.errors import ConfigError, InputError
from grounder.files import inside, outside_error
from grounder.prompts import ABSENT_ANSWER, SYSTEM_PROMPT, grounding_prompt, query_lead
from grounder.qwen import VideoSample, build_video_batch
from trainer.difficulty_math import filter_by_range, gaussian_weights, weighted_order


@dataclass
class FrameConfig:
    """How frames are taken from a window: `fps` per second of window, at most `max_frames`,
    each shrunk to at most `max_pixels` pixels (None: decoded size)."""

    fps: float = 1.0
    max_frames: int = 16
    max_pixels: int | None = 128 * 128

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ConfigError(f"frames.fps must be > 0, got {self.fps}")
        if self.max_frames < 1:
            raise ConfigError(f"frames.max_frames must be >= 1, got {self.max_frames}")


@dataclass
class WindowConfig:
    """Which window of the video a sample shows.

    `length` seconds (<= 0 or >= the video: the whole video); `random_crop` places the window at a
    random position that still contains the target span (else the span is centred);
    `negative_prob` is the chance of a window with no span in it (answer "not in this clip").
    `place="boundary"`: the window is a closer look of the retrieve-then-ground scan instead,
    centred (+- `jitter` s) where a named object or a look-alike appears or disappears
    (`trainer.looks`; synthetic worlds only).
    """

    length: float = 30.0
    random_crop: bool = True
    negative_prob: float = 0.0
    place: Literal["random", "boundary"] = "random"
    jitter: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.negative_prob <= 1.0:
            raise ConfigError(f"window.negative_prob must be in [0, 1], got {self.negative_prob}")
        if self.place not in ("random", "boundary"):
            raise ConfigError(f"window.place must be random or boundary, got {self.place!r}")
        if self.jitter < 0:
            raise ConfigError(f"window.jitter must be >= 0, got {self.jitter}")


@dataclass
class DifficultyWeighting:
    """Gaussian sampling weights around a target difficulty (mean IoU), Time-R1's recipe."""

    target: float = 0.5
    sigma: float = 0.2

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ConfigError(f"difficulty_weighting.sigma must be > 0, got {self.sigma}")


@dataclass
class View:
    """One kind of window the scan shows (e.g. a 128 s coarse window of 32 frames at 56x56, or a
    16 s zoom window at 2 fps): a dataset with `views` draws each sample's view by `weight`."""

    window: WindowConfig = field(default_factory=WindowConfig)
    frames: FrameConfig = field(default_factory=FrameConfig)
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise ConfigError(f"view weight must be > 0, got {self.weight}")


@dataclass
class GroundingRow:
    """One dataset row, with the video path resolved."""

    video: Path
    duration: float
    query: str
    spans: list[tuple[float, float]]
    extra: dict[str, Any] = field(default_factory=dict)


def load_rows(path: str | Path, kinds: tuple[str, ...] | None = ("grounding",),
              allow_outside: bool = False) -> list[GroundingRow]:
    """Rows of a dataset JSONL. Relative `video` paths are resolved against the file's folder;
    one that leaves it (`../`, an absolute path elsewhere) is an `InputError` unless `allow_outside`.

    `kinds`: keep rows whose optional `"kind"` is one of these (rows without `kind` are kept);
    None keeps all. Bad rows raise a one-line `InputError` naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"dataset not found: {path}")
    rows: list[GroundingRow] = []
    base = path.resolve().parent
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if kinds is not None and raw.get("kind", kinds[0]) not in kinds:
                continue
            video = Path(raw["video"])
            spans = [(float(s), float(e)) for s, e in raw["spans"]]
            query = str(raw["query"]).strip()
            duration = float(raw["duration"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{n}: bad dataset row ({type(exc).__name__}: {exc})") from None
        if not query:
            raise InputError(f"{path}:{n}: empty query")
        if not spans or any(not (e > s) for s, e in spans):
            raise InputError(f"{path}:{n}: spans must be non-empty [start, end] with end > start")
        if not allow_outside and not inside(video, base):
            raise InputError(outside_error(str(video), base, f"{path}:{n}", "data.allow_outside_paths=true"))
        extra = {k: v for k, v in raw.items() if k not in ("video", "duration", "query", "spans")}
        rows.append(GroundingRow(video if video.is_absolute() else base / video, duration, query, spans, extra))
    if not rows:
        raise InputError(f"{path}: no usable rows")
    return rows


def choose_window(
    row: GroundingRow, cfg: WindowConfig, rng: random.Random
) -> tuple[float, float, tuple[float, float] | None]:
    """(start, end, target span relative to start or None for a negative window)."""
    if cfg.place == "boundary" and 0 < cfg.length < row.duration:
        from trainer.looks import choose_look

        return choose_look(row.video, row.duration, row.spans, row.extra.get("event") or {}, cfg.length,
                           cfg.negative_prob, cfg.jitter, rng)
    dur = row.duration
    length = cfg.length if 0 < cfg.length < dur else dur
    if cfg.negative_prob and rng.random() < cfg.negative_prob and length < dur:
        for _ in range(32):
            start = rng.uniform(0.0, dur - length)
            if all(e <= start or s >= start + length for s, e in row.spans):
                return start, start + length, None
    s, e = row.spans[rng.randrange(len(row.spans))]
    s, e = max(0.0, s), min(dur, e)
    if length >= dur:
        start = 0.0
    elif e - s >= length:  # the span is longer than the window: a window inside it
        start = rng.uniform(s, e - length) if cfg.random_crop else (s + e - length) / 2
    else:
        lo, hi = max(0.0, e - length), min(s, dur - length)
        start = rng.uniform(lo, hi) if cfg.random_crop else min(max((s + e - length) / 2, lo), hi)
    end = start + length
    rel = (max(s, start) - start, min(e, end) - start)
    return start, end, (round(rel[0], 3), round(rel[1], 3))


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def reference_trace(span: tuple[float, float] | None, length: float, rng: random.Random | None = None) -> str:
    """A templated cold-start completion: a coarse anchor containing the span, then the answer.

    `<think>I look at the frames around <timestamp>A to B</timestamp> first. So the event is
    between S and E seconds.</think><answer>S to E</answer>` (the anchor is wider than the
    answer, so the anchor reward sees the estimate sharpen). Negative windows answer absent.
    """
    if span is None:
        return f"<think>Nothing matches the query in this clip.</think><answer>{ABSENT_ANSWER}</answer>"
    rng = rng or random.Random(0)
    s, e = span
    a = max(0.0, s - rng.uniform(0.5, 2.0) * max(e - s, 1.0))
    b = min(length, e + rng.uniform(0.5, 2.0) * max(e - s, 1.0))
    return (
        f"<think>I look at the frames around <timestamp>{_fmt(a)} to {_fmt(b)}</timestamp> first. "
        f"So the event is between {_fmt(s)} and {_fmt(e)} seconds.</think>{format_answer(s, e)}"
    )


@dataclass
class GroundingSample:
    """One window of one video with its query and window-relative target."""

    video: Path
    query: str
    start: float
    end: float
    span: tuple[float, float] | None  # window-relative seconds; None: not in this window
    frames: np.ndarray  # uint8 [N, H, W, 3]
    timestamps: np.ndarray  # absolute seconds, the frames' own times
    fps: float  # source frame rate
    target: str = ""  # completion to imitate (SFT)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> float:
        return self.end - self.start

    @property
    def prompt(self) -> str:
        return grounding_prompt(self.query, self.length)

    def video_sample(self, completion: str | None = None) -> VideoSample:
        """grounder.qwen's description of this prompt (system prompt + video + grounding prompt)."""
        n = len(self.frames)
        return VideoSample(
            frames=self.frames, timestamps=self.timestamps, fps=self.fps, prompt=self.prompt,
            system=SYSTEM_PROMPT, origin=self.start,
            sample_fps=n / self.length if self.length > 0 else None, completion=completion,
            lead=query_lead(self.query), clip=self.length > 0,
        )

    def inputs(self, processor: Any, completion: str | None = None) -> Any:
        """Processor outputs (BatchFeature, batch of one) for the prompt (+ completion)."""
        return build_video_batch(processor, [self.video_sample(completion)])


def direct_trace(span: tuple[float, float] | None) -> str:
    """The shortest completion in the trained format: the answer repeated as the one anchor.

    Every token of it follows from the video (no random anchor widths), so all of the SFT loss
    teaches where the event is; the think part stays for the format reward and for GRPO to grow.
    """
    if span is None:
        return f"<think>Not here.</think><answer>{ABSENT_ANSWER}</answer>"
    s, e = span
    return f"<think>It is at <timestamp>{_fmt(s)} to {_fmt(e)}</timestamp>.</think>{format_answer(s, e)}"


def make_sample(
    row: GroundingRow, frames: FrameConfig, window: WindowConfig, rng: random.Random,
    trace: str = "anchor",
) -> GroundingSample:
    """Choose a window, decode its frames with the shared reader, attach the target."""
    from grounder.video import shared_reader

    fixed = row.extra.get("window")  # a distilled trace's own window (trainer.difficulty)
    if isinstance(fixed, (list, tuple)) and len(fixed) == 2:
        start, end = float(fixed[0]), float(fixed[1])
        rel = [(max(s, start) - start, min(e, end) - start) for s, e in row.spans if e > start and s < end]
        span = (round(rel[0][0], 3), round(rel[0][1], 3)) if rel else None
    else:
        start, end, span = choose_window(row, window, rng)
    reader = shared_reader(row.video)
    end = min(end, reader.duration) if reader.duration > start else end
    if span is not None:
        span = (min(span[0], end - start), min(span[1], end - start))
        if span[1] <= span[0]:
            span = None
    pixels, stamps = reader.sample_range(start, end, fps=frames.fps, max_frames=frames.max_frames,
                                         max_pixels=frames.max_pixels)
    given = row.extra.get("trace")
    if isinstance(given, str) and given:
        target = given
    elif trace == "direct":
        target = direct_trace(span)
    else:
        target = reference_trace(span, end - start, rng)
    return GroundingSample(row.video, row.query, start, end, span, pixels, stamps, reader.fps,
                           target, row.extra)


class GroundingDataset:
    """Window samples over dataset rows; sample `i` of `epoch` is the same on every run.

    Each access draws its window from `random.Random((seed, epoch, i))`, so data order and crops
    are reproducible (and resumable) without storing state.
    """

    def __init__(self, path: str | Path, frames: FrameConfig | None = None,
                 window: WindowConfig | None = None, seed: int = 0,
                 limit: int | None = None, difficulty_filter: Any = None,
                 difficulty_weighting: DifficultyWeighting | None = None,
                 views: list[View] | None = None, qa: Any = None, trace: str = "anchor",
                 kinds: tuple[str, ...] = ("grounding",), allow_outside: bool = False) -> None:
        from trainer.qa_data import is_qa_row

        self.all_rows = load_rows(path, kinds=kinds, allow_outside=allow_outside)[: limit if limit else None]
        self.difficulty_filter = tuple(difficulty_filter) if difficulty_filter is not None else None
        self.difficulty_weighting = difficulty_weighting
        self.rows = self.all_rows
        if self.difficulty_filter is not None:
            self.rows = filter_by_range(self.all_rows, *self.difficulty_filter)
            if not self.rows:
                raise InputError(f"{path}: no rows with difficulty in {list(self.difficulty_filter)}")
        self.epoch_size = len(self.rows)  # fixed for the run, so step -> epoch never changes
        self.epoch_hook: Any = None  # called with the epoch number when `batches` enters an epoch
        self.frames = frames or FrameConfig()
        self.window = window or WindowConfig()
        self.views = list(views or [])
        self.trace = trace  # SFT target style: "anchor" (reference_trace) | "direct" (direct_trace)
        self.seed = seed
        # QA samples (SFT only): a `trainer.qa_data.QAConfig` with weight > 0 mixes them in
        self.qa = qa if qa is not None and qa.weight > 0 else None
        self.qa_rows = []
        if self.qa is not None:
            try:
                self.qa_rows = [r for r in load_rows(path, kinds=("qa",), allow_outside=allow_outside) if is_qa_row(r.extra)]
            except InputError:
                self.qa_rows = []
            if not self.qa_rows:
                raise InputError(f"{path}: data.qa is set but the file has no QA rows")

    def set_difficulties(self, values: dict[int, float]) -> None:
        """New `"difficulty"` for rows of `all_rows` (by index); the filter is applied again
        (an empty result keeps the previous rows)."""

        for i, d in values.items():
            self.all_rows[int(i)].extra["difficulty"] = float(d)
        if self.difficulty_filter is not None:
            self.rows = filter_by_range(self.all_rows, *self.difficulty_filter) or self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def sample(self, i: int, epoch: int = 0) -> GroundingSample:
        rng = random.Random(f"{self.seed}/{epoch}/{i}")
        if self.qa is not None and rng.random() < self.qa.weight:
            from trainer.qa_data import make_qa_sample

            return make_qa_sample(self.qa_rows[rng.randrange(len(self.qa_rows))], self.qa, rng)
        if self.views:
            view = rng.choices(self.views, weights=[v.weight for v in self.views])[0]
            return make_sample(self.rows[i], view.frames, view.window, rng, self.trace)
        return make_sample(self.rows[i], self.frames, self.window, rng, self.trace)

    def __getitem__(self, i: int) -> GroundingSample:
        return self.sample(i)

    def order(self, epoch: int) -> list[int]:
        """The shuffled row order of an epoch (deterministic in seed and epoch); with
        `difficulty_weighting`, `epoch_size` rows drawn with Gaussian weights (trainer.difficulty)."""
        if self.difficulty_weighting is not None:

            w = self.difficulty_weighting
            weights = gaussian_weights([r.extra.get("difficulty") for r in self.rows], w.target, w.sigma)
            return weighted_order(weights, self.epoch_size, self.seed, epoch)
        idx = list(range(len(self.rows)))
        random.Random(f"{self.seed}/order/{epoch}").shuffle(idx)
        return idx

    def batches(self, batch_size: int, start_step: int = 0):
        """Endless (step, [samples]) from `start_step`: epochs of shuffled rows, `batch_size` a step."""
        step = start_step
        size = getattr(self, "epoch_size", len(self.rows))
        per_epoch = max(1, size // batch_size) if size >= batch_size else 1
        seen = None
        while True:
            epoch, k = divmod(step, per_epoch)
            if epoch != seen and self.epoch_hook is not None:
                self.epoch_hook(epoch)
            seen = epoch
            order = self.order(epoch)
            picks = [order[(k * batch_size + j) % len(order)] for j in range(batch_size)]
            yield step, [self.sample(i, epoch) for i in picks]
            step += 1

