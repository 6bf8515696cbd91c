"""Scan strategies: which windows of the video the model looks at, and what comes out.

    uniform          one call, `frames_per_call` frames over the whole video.
    sliding          back-to-back windows at `target_fps` over the whole video, fine pixels:
                     the exhaustive baseline (it ignores `max_calls`: cutting it short would
                     make it something else).
    coarse-to-fine   ours, below.

Coarse-to-fine
--------------
1. Coarse pass: the video is tiled with windows of `coarse_window_s` (auto: 32 frames at
   0.25 fps = 128 s), frames shrunk to `coarse_max_pixels` (56x56: 4 visual tokens per pair of
   frames in Qwen-VL, whose patches are 28 px after merging). A video shorter than one window
   is one window over the whole video (the documented fallback; `windows.tile`).
2. Keep the `top_k` windows with the highest confidence (below).
3. Zoom: each kept window starts a chain. Level l looks at a window of length
   `zoom_lengths(coarse window)` [l] (halved each level: 64, 32, 16 s), centred on the chain's
   current span grown by `zoom_margin` (`windows.zoom`, never longer than the level above), with
   `frames_per_call` frames at `fine_max_pixels`. Each level doubles the frame rate
   (0.5, 1, 2 fps) until `target_fps`. A level that gives a span refines the chain's span (a
   span touching its window's edge keeps the wider parent's end on that side: the event goes on
   past the window); one that does not keeps the span and takes the closer look's confidence as
   the chain's score. A kept window without any span (it said "not in this clip", or its text
   had no usable answer) still gets its chain, zooming around its last `<timestamp>` anchor, else
   its centre: the zoom stage then always costs `top_k x levels` calls whatever the model writes,
   which is what makes the cost bound below hold by construction; with a trained model this is
   a second, closer look at the runner-up windows (recall insurance). Chains advance level by
   level (proposals first, then windows best first), so a `max_calls` cut leaves every chain
   as deep as the budget allows.
4. Segments: each chain's final span scored by its deepest look's confidence, merged
   (overlaps keep the best score), best first. `proposals` (e.g. retrieval hits) seed extra
   chains beside the top-k windows.

Confidence: P(time) / (P(time) + P(absent)) at the first answer token
-----------------------------------------------------------------------
The prompt tells the model to answer `not in this clip` when the event is not in the window,
and the trainer trains it to (long videos make most windows negatives). So the model's own
distribution over its first answer token is a direct estimate of "is the event in this
window": mass on digits (a time) vs mass on "not". We read it from the logits of the same
greedy `generate` call that wrote the answer (`output_logits=True`): no extra calls, no
sampling, deterministic. The alternatives cost more or mean less:
- sample agreement (K sampled answers, IoU between them) multiplies the decode cost by K, and
  agreement measures consistency, not presence: a model can agree with itself on a wrong window;
- the likelihood of the answer's time tokens mixes "is it here" with "where exactly": a long or
  blurry event spreads probability over many boundary digits and scores low although present,
  and the scale depends on window length, so windows do not compare.
The two-way normalisation drops mass on tokens that are neither (formatting slips), so the
score is comparable across windows. Windows whose text has no answer are given an `<answer>`
by `backends.ForceAnswer`, so every window has a confidence.

Cost arithmetic (defaults; tokens are what matters)
---------------------------------------------------
Qwen-VL merges 2 frames x 28x28 px into one visual token. Let t_c / t_f be the tokens per
pair of frames at the coarse / fine pixel budget (56x56 -> t_c = 4; the synthetic world's
112x112 frames -> t_f = 16; a real 448x448 budget gives 256), d the duration in seconds.

    sliding        = d * target_fps / 2 * t_f                        = 16 d        (linear)
    coarse pass    = d * coarse_fps / 2 * t_c                        = 0.5 d
    zoom stage     = top_k * levels * frames_per_call / 2 * t_f      = 3*3*16*16 = 2304 (constant)

At 15 min: 450 + 2304 = 2754; at 120 min: 3600 + 2304 = 5904 -> ratio 2.14 (<= 2.5) while
sliding grows 8x (14400 -> 115200), and c2f / sliding at 120 min = 5.1 % (<= 20 %). In
general the ratio stays <= 2.5 while the zoom stage is >= 3.7x the coarse pass at 15 min
(5.5 C15 <= 1.5 Z), and the 20 % bound holds while 8 C15 + Z <= 0.2 sliding(120 min); both
hold with room for real models (t_f / t_c ~ 64). The coarse pass samples a frame every 4 s,
so an object fully on screen for 3-12 s (the synthetic world's targets) appears in >= 75 %
to 100 % of cases in at least one coarse frame; events of a minute get 15 frames.
Model calls: 120 min = 57 coarse + 9 zoom = 66 (sliding: 450); `max_calls` (96) widens the
coarse windows (with a warning) only past ~3 h.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from grounder.answer_format import ParsedAnswer, parse_answer
from grounder.backends import Backend, ModelReply, ModelRequest
from grounder.budget import SCAN_CONFIG, ScanBudget, read_scan_config, resolve_budget  # noqa: F401 (re-exported)
from grounder.errors import InputError
from grounder.odds import logit
from grounder.spans import clip, merge
from grounder.windows import Window, sliding_windows, tile, uniform_windows, zoom, zoom_lengths

STRATEGIES = ("coarse-to-fine", "uniform", "sliding")


@dataclass
class Segment:
    start: float  # absolute seconds
    end: float
    score: float  # the confidence of the deepest look that supports it, 0..1

    def to_dict(self) -> dict[str, float]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "score": round(self.score, 4)}


COST_KEYS = ("model_calls", "frames", "visual_tokens", "seconds", "embedder_frames", "embedder_seconds")


def zero_cost() -> dict[str, Any]:
    """A cost dict with every key of `Cost.to_dict` at zero (what a step that looks at nothing costs)."""
    return {k: 0.0 if k.endswith("seconds") else 0 for k in COST_KEYS}


def add_costs(costs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The sum of cost dicts (missing keys count 0), seconds rounded to ms."""
    total = zero_cost()
    for c in costs:
        for k in total:
            total[k] += c.get(k, 0) or 0
    return {k: round(v, 3) if k.endswith("seconds") else v for k, v in total.items()}


@dataclass
class Cost:
    model_calls: int = 0  # VLM calls
    frames: int = 0  # frames the VLM saw
    visual_tokens: int = 0  # video pad tokens fed to the VLM, all calls
    seconds: float = 0.0  # wall time of the whole ground() call (decoding and retrieval included)
    embedder_frames: int = 0  # frames the retriever embedded for this call (0 when its index was cached)
    embedder_seconds: float = 0.0  # the retrieval's part of `seconds`

    def to_dict(self) -> dict[str, Any]:
        return {"model_calls": self.model_calls, "frames": self.frames,
                "visual_tokens": self.visual_tokens, "seconds": round(self.seconds, 3),
                "embedder_frames": self.embedder_frames, "embedder_seconds": round(self.embedder_seconds, 3)}


@dataclass
class Step:
    """One model call: the window, what the model saw and wrote, and what the scan made of it."""

    index: int
    level: int  # 0 = coarse / sliding / uniform, 1.. = zoom levels
    window_start: float
    window_end: float
    max_pixels: int
    frame_times: list[float]  # the frames' own times (absolute seconds)
    text: str  # raw model output
    span_relative: tuple[float, float] | None  # as parsed, seconds from window_start
    span: tuple[float, float] | None  # absolute seconds (to_absolute)
    score: float
    reason: str  # the parser's note, or why there is no span
    visual_tokens: int
    seconds: float
    parent: int | None = None  # index of the step this one zooms into
    anchors: list[tuple[float, float]] = field(default_factory=list)  # absolute <timestamp>s
    score_from: str = "model"  # "model": the backend's confidence; "fallback": step_score's 0.5 / 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["frame_times"] = [round(t, 3) for t in self.frame_times]
        return d


@dataclass
class GroundingResult:
    query: str
    strategy: str
    duration: float
    segments: list[Segment] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    trace: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reason: str = ""  # why `segments` is empty (else "")
    retrieval: Any = None  # grounder.retrieval.Retrieved when a retriever proposed the windows

    def to_dict(self, trace: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "segments": [s.to_dict() for s in self.segments],
            "cost": self.cost.to_dict(),
            "warnings": list(self.warnings),
        }
        if self.reason:
            out["reason"] = self.reason
        if self.retrieval is not None:
            out["retrieval"] = self.retrieval.to_dict()
        if trace:
            out["trace"] = [s.to_dict() for s in self.trace]
        return out


def to_absolute(span: Sequence[float], window: Window) -> tuple[float, float]:
    """Window-relative seconds (what the model writes) -> absolute video seconds.

    The one place this conversion happens: the model saw times from 0 at `window.start`
    (`grounder.qwen` passes `origin=window.start`), so absolute = window.start + relative,
    clipped to the window (the model cannot know about anything outside it).
    """
    return clip((window.start + float(span[0]), window.start + float(span[1])),
                window.start, window.end)


def step_score(reply: ModelReply, parsed: ParsedAnswer) -> float:
    """The backend's confidence; without one, 0.5 for a span and 0 for anything else."""
    if reply.confidence is not None:
        return float(min(max(reply.confidence, 0.0), 1.0))
    return 0.5 if parsed.span is not None else 0.0


def refine(parent: tuple[float, float] | None, child: tuple[float, float],
           window: Window) -> tuple[float, float]:
    """A zoom's span, keeping the parent's end on a side where the child hits the window edge.

    A span that touches the edge of the window it came from may go on past it (a long event
    seen through a short window); the wider look above knew where it ends.
    """
    if parent is None:
        return child
    tol = window.length / max(window.num_frames, 1)  # one frame interval
    s, e = child
    if s <= window.start + tol and parent[0] < s:
        s = parent[0]
    if e >= window.end - tol and parent[1] > e:
        e = parent[1]
    return (s, e)


@dataclass
class _Chain:
    """A zoom chain: the span it follows and the last look's confidence."""

    target: tuple[float, float]  # what the next level centres on
    span: tuple[float, float] | None
    score: float
    lengths: list[float]  # window length of each zoom level
    window_length: float  # the last window's length (a zoom never looks at more)
    last_step: int | None
    prior: float | None = None  # the retrieval score of the candidate window the chain started in
    first: tuple[float, float] | None = None  # the first look's window, when given (retrieval)
    first_of: Any = None  # the retrieval candidate the chain looks inside
    found: bool = False  # some look of the chain gave a span


class Scanner:
    """Runs one strategy for one query over one open video reader."""

    def __init__(self, reader: Any, query: str, backend: Backend, budget: ScanBudget,
                 on_step: Callable[[int, int], None] | None = None) -> None:
        self.reader = reader
        self.query = query
        self.backend = backend
        self.budget = budget
        self.duration = float(reader.duration)
        self.trace: list[Step] = []
        self.warnings: list[str] = []
        self.unmeasured: list[str] = []  # why a call's confidence could not be measured
        self.on_step = on_step
        self.planned = 0

    # -- one look ---------------------------------------------------------------------
    def look(self, window: Window, max_pixels: int, parent: int | None = None) -> Step:
        """Sample the window's frames, ask the model, parse, convert to absolute time."""
        t0 = time.perf_counter()
        frames, stamps = self.reader.sample(window.times(), max_pixels=max_pixels)
        request = ModelRequest(frames, stamps, float(self.reader.fps), window.start, window.end,
                               self.query, self.budget.max_new_tokens, window.level)
        reply = self.backend(request)
        parsed = parse_answer(reply.text, window=window.length)
        span = to_absolute(parsed.span, window) if parsed.span is not None else None
        if span is not None and span[1] <= span[0]:
            span = None
        step = Step(
            index=len(self.trace), level=window.level, window_start=window.start,
            window_end=window.end, max_pixels=max_pixels,
            frame_times=[float(t) for t in np.asarray(stamps).tolist()], text=reply.text,
            span_relative=parsed.span, span=span, score=step_score(reply, parsed),
            reason=parsed.reason, visual_tokens=int(reply.visual_tokens),
            seconds=time.perf_counter() - t0, parent=parent,
            anchors=[to_absolute(a, window) for a in parsed.anchors],
            score_from="model" if reply.confidence is not None else "fallback",
        )
        if reply.unmeasured:
            self.unmeasured.append(reply.unmeasured)
        self.trace.append(step)
        if self.on_step is not None:
            self.on_step(len(self.trace), max(self.planned, len(self.trace)))
        return step

    # -- strategies ---------------------------------------------------------------------
    def uniform(self) -> list[Segment]:
        (window,) = uniform_windows(self.duration, self.budget.frames_per_call)
        self.planned = 1
        step = self.look(window, self.budget.fine_max_pixels)
        return _segments([(step.span, step.score)])

    def sliding(self) -> list[Segment]:
        b = self.budget
        windows = sliding_windows(self.duration, fps=b.target_fps, frames_per_call=b.frames_per_call)
        self.planned = len(windows)
        steps = [self.look(w, b.fine_max_pixels) for w in windows]
        return _segments([(s.span, s.score) for s in steps])

    def coarse_to_fine(self, proposals: Sequence[tuple[float, float]] | None = None) -> list[Segment]:
        b = self.budget
        length = b.coarse_window(self.duration)
        if b.coarse_window_s is None and length > b.coarse_frames_per_window / b.coarse_fps + 1e-9:
            self.warnings.append(
                f"coarse windows widened to {length:.0f} s ({b.coarse_frames_per_window / length:.3f}"
                f" fps) to fit max_calls={b.max_calls}"
            )
        windows = tile(self.duration, length, b.coarse_frames_per_window, level=0, min_frames=2)
        seeds = [clip(p, 0.0, self.duration) for p in (proposals or [])]
        seeds = [p for p in seeds if p[1] > p[0]]
        self.planned = planned_calls(self.duration, "coarse-to-fine", b, len(seeds))

        coarse: list[Step] = []
        for w in windows:
            if len(self.trace) >= b.max_calls:
                self.warnings.append(
                    f"max_calls={b.max_calls} reached during the coarse pass: "
                    f"{len(windows) - len(coarse)} of {len(windows)} windows not looked at"
                )
                break
            coarse.append(self.look(w, b.coarse_max_pixels))

        chains: list[_Chain] = []
        for p in seeds:  # retrieval proposals: chains that start from a given span
            chains.append(_Chain(p, p, 0.0, zoom_lengths(length, b.fine_length), length, None))
        best = sorted(coarse, key=lambda s: (-s.score, s.window_start))[: b.top_k]
        for step in best:
            w_len = step.window_end - step.window_start
            target = step.span or (step.anchors[-1] if step.anchors else _centre(step))
            chains.append(_Chain(target, step.span, step.score,
                                 zoom_lengths(w_len, b.fine_length), w_len, step.index))

        self._advance(chains)
        return _segments([(c.span, c.score) for c in chains])

    def retrieve_then_ground(self, retrieved: Any) -> list[Segment]:
        """The coarse pass replaced by retrieval: the VLM looks only inside the candidate windows.

        With sharpened candidates (`retrieval_dense_fps` > 0) the retriever knows, to a frame or
        so, where the named thing appears and disappears in each window (its run): the VLM takes
        one look of `fine_length` seconds at `target_fps` centred on each end of the run (one
        look at its middle when the run is shorter than half a look), each scored by the
        retriever within that look (`Candidate.score_in`: a query that names a side peaks where
        the thing crosses that side). Events happen where the
        named thing shows up or goes away, and a short, dense look is where the VLM localises
        best (BENCHMARKS.md). Without sharpening, the first look is the whole window and the
        zoom levels below it halve down to `fine_length`, as in coarse-to-fine.

        Each look starts from the run as its span: a look's span that touches its window's edge
        keeps the run's end on that side (`refine`: an event longer than the look), and a look
        that finds nothing leaves the run, at the low score its confidence earns. Scores are
        `combine(VLM confidence, retrieval score, retrieval_weight)`.
        """
        b = self.budget
        fine = b.fine_length
        chains: list[_Chain] = []
        for c in list(retrieved.candidates)[: b.retrieval_windows]:
            start, end = clip((c.start, c.end), 0.0, self.duration)
            if end <= start:
                continue
            run = clip(tuple(c.run), 0.0, self.duration)
            if run[1] <= run[0]:
                run = (start, end)
            if b.retrieval_dense_fps > 0:
                a, e = run
                centres = [(a + e) / 2] if e - a <= fine / 2 else [a, e]
                for x in centres:
                    look = zoom((x, x), self.duration, 0.0, min_length=fine, max_length=fine)
                    chains.append(_Chain(run, run, 0.0, [look[1] - look[0]], look[1] - look[0], None,
                                         prior=c.score_in(*look), first=look, first_of=c))
            else:
                length = end - start
                below = zoom_lengths(length, fine) if length > fine * (1 + 1e-9) else []
                chains.append(_Chain(run, run, 0.0, [length] + below, length, None,
                                     prior=c.score_in(start, end), first=(start, end), first_of=c))
        self.planned = min(b.max_calls, sum(len(c.lengths) for c in chains))
        self._advance(chains)
        # A look that found nothing leaves its run only when no look of its window found a span: a
        # run overlapping a found span would merge with it and blur it.
        found = {id(c.first_of) for c in chains if c.found}
        items = [(c.span, combine(c.score, c.prior, b.retrieval_weight)) for c in chains
                 if c.found or id(c.first_of) not in found]
        return _segments(items)

    def _advance(self, chains: list[_Chain]) -> None:
        """Run the chains level by level (every chain's level 1, then level 2, ...) within max_calls."""
        b = self.budget
        skipped = 0
        for level in range(1, max((len(c.lengths) for c in chains), default=0) + 1):
            for chain in chains:
                if level > len(chain.lengths):
                    continue
                if len(self.trace) >= b.max_calls:
                    skipped += 1
                    continue
                self._zoom(chain, level)
        if skipped:
            self.warnings.append(f"max_calls={b.max_calls} reached: {skipped} zoom steps skipped")

    def _zoom(self, chain: _Chain, level: int) -> None:
        b = self.budget
        want = chain.lengths[level - 1]
        if level == 1 and chain.first is not None:
            s, e = chain.first
        else:
            s, e = zoom(chain.target, self.duration, b.zoom_margin, min_length=want,
                        max_length=chain.window_length)
        if level > 1 and e - s >= chain.window_length - 1e-6:
            chain.lengths = chain.lengths[: level - 1]  # no closer look possible (a long event)
            return
        n = min(b.frames_per_call, max(2, math.ceil((e - s) * b.target_fps - 1e-9)))
        window = Window(s, e, n, level)
        step = self.look(window, b.fine_max_pixels, parent=chain.last_step)
        chain.window_length, chain.last_step, chain.score = e - s, step.index, step.score
        if step.span is not None:
            chain.found = True
            chain.span = refine(chain.span, step.span, window)
            chain.target = chain.span

    # -- result -------------------------------------------------------------------------
    def why_empty(self) -> str:
        if not self.trace:
            return "no model call was made"
        reasons = Counter(s.reason for s in self.trace if s.span is None)
        top = "; ".join(f"{n} x {r}" for r, n in reasons.most_common(3))
        return f"no window gave a usable span ({len(self.trace)} calls): {top}"


def combine(confidence: float, prior: float | None, weight: float) -> float:
    """A chain's segment score from the VLM's confidence and the retrieval score (both 0..1):
    sigmoid((1 - weight) x logit(confidence) + weight x logit(prior)). In log-odds, because a
    trained VLM's confidences crowd near 1 and their differences there still mean something;
    without a retrieval score, the confidence."""
    if prior is None or weight <= 0:
        return float(confidence)

    z = (1.0 - weight) * logit(confidence) + weight * logit(prior)
    return float(1.0 / (1.0 + math.exp(-z)))


def _centre(step: Step) -> tuple[float, float]:
    """A blind chain's target: the middle of its window (zoom grows it to the level's length)."""
    c = (step.window_start + step.window_end) / 2
    return (c, c)


def _segments(items: Sequence[tuple[tuple[float, float] | None, float]]) -> list[Segment]:
    spans = [(s[0], s[1], score) for s, score in items if s is not None]
    return [Segment(a, b, c) for a, b, c in merge(spans)]


def run_scan(reader: Any, query: str, backend: Backend, strategy: str, budget: ScanBudget,
             proposals: Sequence[tuple[float, float]] | None = None,
             on_step: Callable[[int, int], None] | None = None,
             retrieved: Any = None) -> GroundingResult:
    """One query, one strategy, one reader -> GroundingResult (cost filled in, seconds too).

    `retrieved` (a `grounder.retrieval.Retrieved`, coarse-to-fine only) replaces the coarse pass
    by its candidate windows (`Scanner.retrieve_then_ground`); its seconds count in `seconds`."""
    t0 = time.perf_counter()
    scanner = Scanner(reader, query, backend, budget, on_step)
    if strategy == "uniform":
        segments = scanner.uniform()
    elif strategy == "sliding":
        segments = scanner.sliding()
    elif strategy == "coarse-to-fine" and retrieved is not None:
        segments = scanner.retrieve_then_ground(retrieved)
        if proposals:
            scanner.warnings.append("proposals are ignored when a retriever proposes the windows")
    elif strategy == "coarse-to-fine":
        segments = scanner.coarse_to_fine(proposals)
    else:
        raise InputError(f"unknown strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    if proposals and strategy != "coarse-to-fine":
        scanner.warnings.append(f"proposals are used by coarse-to-fine only, not {strategy}")
    trace = scanner.trace
    r_frames = int(getattr(retrieved, "frames_embedded", 0) or 0) if strategy == "coarse-to-fine" else 0
    r_seconds = float(getattr(retrieved, "seconds", 0.0) or 0.0) if strategy == "coarse-to-fine" else 0.0
    cost = Cost(
        model_calls=len(trace),
        frames=sum(len(s.frame_times) for s in trace),
        visual_tokens=sum(s.visual_tokens for s in trace),
        seconds=time.perf_counter() - t0 + r_seconds,
        embedder_frames=r_frames,
        embedder_seconds=r_seconds,
    )
    if scanner.unmeasured:
        why = sorted(set(scanner.unmeasured))
        scanner.warnings.append(
            f"confidence not measured for {len(scanner.unmeasured)} of {len(trace)} model call(s) "
            f"({'; '.join(why)}): their segments are scored by the fallback, 0.5 for a parsed span and 0 "
            "otherwise (each step's score_from says which)")
    return GroundingResult(
        query=query, strategy=strategy, duration=scanner.duration, segments=segments, cost=cost,
        trace=trace, warnings=scanner.warnings, reason="" if segments else scanner.why_empty(),
        retrieval=retrieved if strategy == "coarse-to-fine" else None,
    )


def plan_windows(duration: float, strategy: str, budget: ScanBudget) -> list[tuple[Window, int]]:
    """(window, max_pixels) of the strategies whose windows do not depend on the answers
    (uniform, sliding); for coarse-to-fine, the coarse pass only. For cost estimates."""
    b = budget
    if strategy == "uniform":
        return [(w, b.fine_max_pixels) for w in uniform_windows(duration, b.frames_per_call)]
    if strategy == "sliding":
        ws = sliding_windows(duration, fps=b.target_fps, frames_per_call=b.frames_per_call)
        return [(w, b.fine_max_pixels) for w in ws]
    if strategy == "coarse-to-fine":
        ws = tile(duration, b.coarse_window(duration), b.coarse_frames_per_window, 0, min_frames=2)
        return [(w, b.coarse_max_pixels) for w in ws]
    raise InputError(f"unknown strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")


def planned_calls(duration: float, strategy: str, budget: ScanBudget, proposals: int = 0,
                  retrieval: bool = False) -> int:
    """Model calls a scan will make (coarse-to-fine: at most; progress bars and estimates)."""
    b = budget
    if strategy == "coarse-to-fine" and retrieval:
        length = min(b.retrieval_max_window, duration)
        per_chain = 1 + (b.zoom_calls(length) if length > b.fine_length * (1 + 1e-9) else 0)
        return min(b.max_calls, b.retrieval_windows * per_chain)
    if strategy == "coarse-to-fine":
        length = b.coarse_window(duration)
        windows = tile(duration, length, b.coarse_frames_per_window, 0, min_frames=2)
        chains = min(b.top_k, len(windows)) + proposals
        calls = len(windows) + chains * b.zoom_calls(min(length, duration))
        return min(calls, b.max_calls)
    return len(plan_windows(duration, strategy, b))
