"""The per-item predictors of `groundqa eval run --predictor NAME` (`PREDICTORS`): the grounder
(`GroundingPredictor`, the default), ground-then-answer, its QA baselines, and a grounding
baseline.

    groundqa eval run synthetic --ann ANN --out DIR --predictor agent [--model M]

agent
    The real agent (`agent.api.Agent`): plan -> ground -> decide -> answer, with `--model` as
    both the grounder and the QA model (one copy in memory), the run's `--strategy` and
    `--budget` as the grounder's. The record carries `choice` (option letter), the pooled
    `segments` and `top1` (scored against the evidence spans), the QA reply as `text`, and the
    cost of grounding + QA together.
qa-uniform
    The classic no-grounding baseline: the same QA model (`agent.answerer.Answerer` on the same
    model folder) sees N frames spread evenly over the whole video, at (i + 0.5) * duration / N
    (`agent.answerer.sample_plan` without segments). N = `--budget frames_per_call=N` when given,
    else 16 (the ScanBudget default of 32 is *not* used: 16 is the usual uniform-QA baseline and
    what the agent itself falls back to when it finds no segment).
qa-text
    Text priors only: the same QA model with the question and the options and **no video at
    all** (a text-only chat turn; Qwen2.5-VL / Qwen3-VL processors take text without visuals),
    the same prompt as the other QA predictors minus the line naming where the frames come
    from. Accuracy near chance shows the questions need the video.
random-span
    Grounding baseline without a model: one span per item, seeded by the item (its `id`, else
    video + query), so reruns give the same spans. Its length is the median ground-truth span
    length over the whole annotation file (all rows, not only `--limit`-ed ones; 5 s when the
    file has no spans), capped at the video length; its start is uniform in
    [0, duration - length]. Cost is zero.

Shared QA settings: the QA model writes at most min(24, `--budget max_new_tokens`) tokens (24 is
the agent's default; a small budget caps it, which keeps untrained tiny models fast) and sees
frames of at most `--budget fine_max_pixels` pixels (default 448 * 448, the agent's default).

QA-only predictors (agent, qa-uniform, qa-text; `QA_PREDICTORS`) run only over the rows that
ask a question (`question` + `options`, or `kind: qa`): the runner drops the other rows before
`--limit`, so `--limit 50` means 50 questions. Their records have `choice` (None when the reply
names no option and there is no fallback). qa-uniform and qa-text do not ground: their records
have no `top1` key, and `eval report` leaves them out of the grounding metrics.
"""

from __future__ import annotations

import dataclasses
import hashlib
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from evals.run_config import RunConfig, make_budget
from grounder.errors import InputError
from grounder.scan import zero_cost

QA_UNIFORM_FRAMES = 16
QA_MAX_NEW_TOKENS = 24
RANDOM_SPAN_FALLBACK_S = 5.0
RANDOM_SPAN_SEED = 0
ZERO_COST = zero_cost()

# ----------------------------------------------------------------------------- clips

def clip_reader(base: Any, start: float, end: float) -> Any:
    """A view of `base` from `start` to `end` whose times start at 0 (TVGBench clip rows)."""
    from grounder.video.base import VideoReader

    class ClipReader(VideoReader):
        backend = f"clip({base.backend})"
        exact = base.exact

        def __init__(self) -> None:
            lo = min(max(float(start), 0.0), base.duration)
            hi = min(max(float(end), lo), base.duration)
            if hi - lo <= 0:
                raise InputError(f"clip [{start}, {end}] is empty in {base.path} "
                                 f"({base.duration:.1f} s)")
            self.offset = lo
            info = dataclasses.replace(base.info, duration=hi - lo,
                                       num_frames=max(1, round((hi - lo) * base.fps)))
            super().__init__(info, cache_bytes=1)

        def sample(self, times: Any, max_pixels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
            t = np.clip(np.asarray(times, dtype=np.float64).reshape(-1), 0.0, self.duration)
            frames, stamps = base.sample(t + self.offset, max_pixels=max_pixels)
            return frames, np.maximum(stamps - self.offset, 0.0)

        def close(self) -> None:  # the base reader is shared; not ours to close
            self._closed = True

    return ClipReader()


# ----------------------------------------------------------------------------- predictors

class Predictor(Protocol):
    """Per-item prediction. `predict(row)` returns a dict with (at least)
    `segments` ([{start, end, score}], best first), `top1` ([s, e] or None), `text` (raw model
    text of the best step), `cost` ({model_calls, frames, visual_tokens, seconds}), and
    optionally `choice` (an option letter; QA predictors only), `duration`, `warnings`,
    `reason`. A user-level failure raises GroundQAError (recorded, retried on resume)."""

    name: str

    def predict(self, row: dict[str, Any]) -> dict[str, Any]: ...


def best_step(trace: Sequence[Any]) -> Any | None:
    """The step behind the answer: the highest-scoring step that gave a span, else the
    highest-scoring step (ties: the earliest)."""
    if not trace:
        return None
    return max(trace, key=lambda s: (s.span is not None, s.score, -s.index))


class GroundingPredictor:
    """Grounds each row's query (QA rows: their evidence query) with a `Grounder`."""

    name = "grounder"

    def __init__(self, grounder: Any, strategy: str, budget: Any) -> None:
        self.grounder = grounder
        self.strategy = strategy
        self.budget = budget

    def reader_for(self, row: dict[str, Any]) -> Any:
        from grounder.video import shared_reader

        reader = shared_reader(row["video"])
        if row.get("clip"):
            s, e = row["clip"][:2]
            return clip_reader(reader, float(s), float(e))
        return reader

    def predict(self, row: dict[str, Any]) -> dict[str, Any]:
        query = row.get("query") or row.get("question") or ""
        reader = self.reader_for(row)
        result = self.grounder.ground(reader, query, strategy=self.strategy, budget=self.budget)
        top = result.segments[0] if result.segments else None
        step = best_step(result.trace)
        out = {
            "segments": [s.to_dict() for s in result.segments],
            "top1": [round(top.start, 3), round(top.end, 3)] if top else None,
            "text": step.text if step is not None else "",
            "cost": result.cost.to_dict(),
            "duration": float(reader.duration),
            "warnings": list(result.warnings),
        }
        if result.reason:
            out["reason"] = result.reason
        return out


_GROUNDERS: dict[tuple[str | None, str], Any] = {}


def load_grounder(model: str | None, device: str = "cpu", retriever: str | None = None,
                  backend: str = "transformers") -> Any:
    """One Grounder per (model, device, retriever, backend) per process (tests and notebooks run
    many times). The openai backend reads the server from $OPENAI_BASE_URL / $OPENAI_API_KEY."""
    from grounder.grounder import Grounder

    key = (model, device, retriever, backend)
    if key not in _GROUNDERS:
        _GROUNDERS[key] = Grounder.from_pretrained(model, backend=backend, device=device, retriever=retriever)
    return _GROUNDERS[key]


def grounder_predictor(cfg: RunConfig) -> Predictor:
    return GroundingPredictor(load_grounder(cfg.model, cfg.device, cfg.retriever, cfg.backend), cfg.strategy,
                              make_budget(cfg.budget))


# Predictors that answer questions: the runner gives them only the QA rows.
QA_PREDICTORS = {"agent", "qa-uniform", "qa-text"}


def is_question_row(row: dict[str, Any]) -> bool:
    return bool(row.get("question")) and (bool(row.get("options")) or row.get("kind") == "qa")


def _options(row: dict[str, Any]) -> list[str] | None:
    return list(row.get("options") or []) or None


def _no_clip(row: dict[str, Any], name: str) -> None:
    if row.get("clip"):
        raise InputError(f"the {name} predictor answers over whole videos; clip rows are for grounding")


def _duration(row: dict[str, Any]) -> float:
    """The row's duration, else the video's (opened once per process, shared)."""
    d = row.get("duration")
    if row.get("clip"):
        s, e = row["clip"][:2]
        return max(0.0, float(e) - float(s))
    if d is not None:
        return float(d)
    from grounder.video import shared_reader

    return float(shared_reader(row["video"]).duration)


def qa_settings(cfg: RunConfig) -> dict[str, Any]:
    """The QA model's Context fields shared by the QA predictors (module docstring)."""
    b = make_budget(cfg.budget)
    return {"qa_max_new_tokens": max(1, min(QA_MAX_NEW_TOKENS, int(b.max_new_tokens))),
            "qa_max_pixels": int(b.fine_max_pixels)}


def _answerer(cfg: RunConfig) -> tuple[Any, Any]:
    """(grounder, QA answerer): `cfg.qa_model` when given (a folder or "openai:NAME"), else the
    one sharing the grounder's model (the embedded default: timeline reading, then statement
    matching; agent.retrieval_answerer)."""
    from agent.retrieval_answerer import answerer_for, load_answerer

    g = load_grounder(cfg.model, cfg.device, cfg.retriever, cfg.backend)
    return g, (load_answerer(cfg.qa_model, cfg.device) if cfg.qa_model else answerer_for(g))


# ----------------------------------------------------------------------------- agent

class AgentPredictor:
    name = "agent"
    grounds = True

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def predict(self, row: dict[str, Any]) -> dict[str, Any]:
        _no_clip(row, self.name)
        a = self.agent.ask(row["video"], row.get("question") or row.get("query") or "", _options(row))
        top = a.segments[0] if a.segments else None
        qa = (a.trace or {}).get("qa") or {}
        cost = dict(a.cost)
        cost["seconds"] = round(float(cost.get("seconds", 0.0)), 3)
        out = {
            "choice": a.choice,
            "segments": [s.to_dict() for s in a.segments],
            "top1": [round(top.start, 3), round(top.end, 3)] if top else None,
            "text": qa.get("text", a.answer),
            "cost": cost,
            "duration": _duration(row),
            "warnings": list(a.warnings),
            "evidence": {"answer": a.answer, "confidence": a.confidence,
                         "frame_times": list(a.frame_times),
                         "queries": (a.trace or {}).get("queries") or []},
        }
        if qa.get("reason"):
            out["reason"] = qa["reason"]
        return out


def agent_predictor(cfg: RunConfig) -> AgentPredictor:
    from agent.api import Agent

    g, answerer = _answerer(cfg)
    return AgentPredictor(Agent(grounder=g, answerer=answerer, strategy=cfg.strategy,
                                budget=make_budget(cfg.budget), **qa_settings(cfg)))


# ----------------------------------------------------------------------------- qa-uniform

class UniformQAPredictor:
    """The QA model on N evenly spaced frames of the whole video (no grounding)."""

    name = "qa-uniform"
    grounds = False

    def __init__(self, answerer: Any, frames: int, settings: dict[str, Any]) -> None:
        from agent.context import Context

        if frames < 2:
            raise InputError(f"qa-uniform needs >= 2 frames, got {frames}")
        self.answerer = answerer
        self.frames = frames
        # no segments: sample_plan spreads max(global, min(max_frames, 16)) = `frames` frames
        self.ctx = Context(qa_max_frames=frames, qa_global_frames=frames, **settings)

    def predict(self, row: dict[str, Any]) -> dict[str, Any]:
        from grounder.video import shared_reader

        _no_clip(row, self.name)
        reader = shared_reader(row["video"])
        qa = self.answerer(reader, row.get("question") or "", _options(row), [], [], self.ctx)
        return _qa_record(qa, _options(row), float(reader.duration))


def _qa_record(qa: Any, options: Sequence[str] | None, duration: float) -> dict[str, Any]:
    from agent.answerer import LETTERS

    cost = dict(qa.cost)
    cost["seconds"] = round(float(cost.get("seconds", 0.0)), 3)
    return {
        "choice": LETTERS[qa.choice] if qa.choice is not None else None,
        "segments": [],
        "text": qa.text,
        "cost": cost,
        "duration": duration,
        "reason": qa.reason,
        "evidence": {"answer": qa.answer, "confidence": round(float(qa.confidence), 4),
                     "frame_times": [round(t, 3) for t in qa.frame_times]},
    }


def qa_uniform_predictor(cfg: RunConfig) -> UniformQAPredictor:
    _, answerer = _answerer(cfg)
    frames = int(cfg.budget.get("frames_per_call", QA_UNIFORM_FRAMES))
    return UniformQAPredictor(answerer, frames, qa_settings(cfg))


# ----------------------------------------------------------------------------- qa-text

def answer_text_only(answerer: Any, question: str, options: Sequence[str] | None,
                     max_new_tokens: int) -> Any:
    """`Answerer.__call__` without any visual input: one text-only chat turn, the same prompt
    minus the frames line, the same choice parsing and fallback (`settle_choice`)."""
    from agent.answerer import QA_SYSTEM, qa_prompt

    if not hasattr(answerer, "processor"):  # a statement matcher has no text-only mode: its VLM does
        answerer = answerer.fallback
    t0 = time.perf_counter()
    prompt = "\n".join(line for line in qa_prompt(question, options, "").split("\n")
                       if not line.startswith("The frames come from"))
    messages = [{"role": "system", "content": [{"type": "text", "text": QA_SYSTEM}]},
                {"role": "user", "content": [{"type": "text", "text": prompt}]}]
    text_in = answerer.processor.apply_chat_template(messages, add_generation_prompt=True,
                                                     tokenize=False)
    inputs = answerer.processor(text=[text_in], return_tensors="pt")
    return answerer.reply(inputs, options, max_new_tokens, prompt, [], t0)


class TextOnlyQAPredictor:
    name = "qa-text"
    grounds = False

    def __init__(self, answerer: Any, max_new_tokens: int) -> None:
        self.answerer = answerer
        self.max_new_tokens = max_new_tokens

    def predict(self, row: dict[str, Any]) -> dict[str, Any]:
        qa = answer_text_only(self.answerer, row.get("question") or "", _options(row),
                              self.max_new_tokens)
        return _qa_record(qa, _options(row), _duration(row))


def qa_text_predictor(cfg: RunConfig) -> TextOnlyQAPredictor:
    if cfg.qa_model and cfg.qa_model.startswith("openai:"):
        raise InputError("qa-text asks a local QA model without frames; give --qa-model a model folder")
    _, answerer = _answerer(cfg)
    return TextOnlyQAPredictor(answerer, qa_settings(cfg)["qa_max_new_tokens"])


# ----------------------------------------------------------------------------- random-span

def median_span_length(rows: Sequence[dict[str, Any]], fallback: float = RANDOM_SPAN_FALLBACK_S) -> float:
    lengths = [float(s[1]) - float(s[0]) for r in rows for s in (r.get("spans") or [])
               if len(s) >= 2 and float(s[1]) > float(s[0])]
    return float(statistics.median(lengths)) if lengths else fallback


def item_seed(row: dict[str, Any], seed: int = RANDOM_SPAN_SEED) -> int:
    key = row.get("id")
    if key is None:
        key = f"{row.get('video')}|{row.get('clip')}|{row.get('query') or row.get('question')}"
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def random_span(duration: float, length: float, seed: int) -> tuple[float, float]:
    length = min(max(0.0, float(length)), max(0.0, float(duration)))
    start = float(np.random.default_rng(seed).uniform(0.0, max(0.0, duration - length)))
    return round(start, 3), round(min(duration, start + length), 3)


class RandomSpanPredictor:
    name = "random-span"
    grounds = True

    def __init__(self, length: float, seed: int = RANDOM_SPAN_SEED) -> None:
        self.length = float(length)
        self.seed = seed

    def predict(self, row: dict[str, Any]) -> dict[str, Any]:
        duration = _duration(row)
        if duration <= 0:
            raise InputError(f"{row.get('video')}: zero-length video")
        s, e = random_span(duration, self.length, item_seed(row, self.seed))
        return {"segments": [{"start": s, "end": e, "score": 0.0}], "top1": [s, e], "text": "",
                "cost": dict(ZERO_COST), "duration": duration,
                "reason": f"random span of {self.length:.3f} s (median ground-truth length)"}


def random_span_predictor(cfg: RunConfig) -> RandomSpanPredictor:
    from evals.loaders import load_benchmark

    return RandomSpanPredictor(median_span_length(load_benchmark(cfg.bench, cfg.ann, cfg.videos, cfg.allow_outside_paths)))


# name -> factory(RunConfig) -> Predictor: the runner's `--predictor` choices.
PREDICTORS: dict[str, Callable[[RunConfig], Predictor]] = {
    "grounder": grounder_predictor,
    "agent": agent_predictor,
    "qa-uniform": qa_uniform_predictor,
    "qa-text": qa_text_predictor,
    "random-span": random_span_predictor,
}
