"""The Python API: `ask(video, question, options)` and `Agent` (models loaded once).

    from agent import Agent, ask

    a = ask("talk.mp4", "what colour is the shape that enters after the orange triangle leaves?",
            options=["red", "green", "blue", "yellow"])
    a.choice, a.answer, a.segments, a.confidence, a.cost, a.warnings

    agent = Agent()                      # embedded default grounder + QA model, loaded once
    for event in agent.stream(video, question, options):   # plan, round, window, ... answer
        print(event["type"])
    agent.ask(video, other_question)     # same frame cache (grounder.video.shared_reader)
    agent.ask(video, "and then?", session="talk1")       # SQLite session (agent.sessions)

`confidence` = grounding confidence (best selected segment's score; 1 for the uniform
baseline) x the QA model's probability of its answer (see `agent.answerer`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.context import Context, check_context, check_question
from agent.sessions import LOCK_TIMEOUT, check_session, db_path, open_saver, session_lock
from grounder.errors import InputError
from grounder.scan import Segment


@dataclass
class Answer:
    answer: str
    choice: str | None  # option letter for multiple choice, else None
    segments: list[Segment]
    confidence: float
    cost: dict[str, Any]  # model_calls, frames, visual_tokens, seconds (grounding + QA)
    frame_times: list[float] = field(default_factory=list)  # the frames the QA model saw
    trace: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    session: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier turns of the session

    def to_dict(self, trace: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "answer": self.answer, "choice": self.choice,
            "segments": [s.to_dict() for s in self.segments], "confidence": self.confidence,
            "cost": dict(self.cost), "warnings": list(self.warnings),
        }
        if self.session is not None:
            out["session"] = {"name": self.session, "history": [
                {"question": h["question"], "answer": h["answer"], "choice": h.get("choice")}
                for h in self.history]}
        if trace:
            out["frame_times"] = list(self.frame_times)
            out["trace"] = self.trace
        return out

    @classmethod
    def from_result(cls, result: dict[str, Any], session: str | None = None,
                    history: Sequence[dict[str, Any]] = ()) -> Answer:
        return cls(
            answer=result["answer"], choice=result["choice"],
            segments=[Segment(s["start"], s["end"], s["score"]) for s in result["segments"]],
            confidence=result["confidence"], cost=result["cost"], frame_times=result["frame_times"],
            trace=result["trace"], warnings=result["warnings"], session=session, history=list(history),
        )


class Agent:
    """Loaded models + graph; many questions, per-video frame caches shared across them.

    model: grounder model folder/name (None: embedded default). qa_model: QA model folder
    (None: the embedded default, the same object as the grounder's when that is the default
    too) or "openai:MODEL" (an OpenAI-compatible server, `agent.openai_answerer`; checked
    before the grounder loads). planner_model: transformers causal LM folder or "openai:MODEL"
    (None: rewrite).
    backend: the grounder's backend, "transformers" (local) or "openai" (`model` named on an
    OpenAI-compatible server at $OPENAI_BASE_URL), as `Grounder.from_pretrained` takes it.
    grounder / answerer / planner: ready objects instead (tests, custom backends).
    Other keyword arguments are `Context` fields (strategy, budget, max_rounds, ...).
    """

    def __init__(self, model: str | None = None, qa_model: str | None = None,
                 planner_model: str | None = None, *, grounder: Any = None, answerer: Any = None,
                 planner: Any = None, device: str = "cpu", retriever: Any = None, backend: str = "transformers",
                 **context: Any) -> None:
        from agent.graph import build_graph
        from agent.planner import Planner
        from grounder.grounder import Grounder

        unknown = set(context) - {f.name for f in dataclasses.fields(Context)}
        if unknown:
            raise InputError(f"unknown agent setting(s): {', '.join(sorted(unknown))}")
        self.context = check_context(Context(**context))
        from agent.retrieval_answerer import answerer_for, load_answerer

        if answerer is None and qa_model is not None:  # before the grounder: a server that is down fails first
            answerer = load_answerer(qa_model, device)
        if grounder is None:
            grounder = Grounder.from_pretrained(model, backend=backend, device=device, retriever=retriever)
        if answerer is None:  # the embedded default answers (timeline reading, then statement matching)
            default = model is None and backend == "transformers"
            answerer = answerer_for(grounder if default else Grounder.from_pretrained(None, device=device))
        if planner is None and planner_model is not None:
            planner = Planner.from_spec(planner_model, device=device)
        self.grounder, self.answerer, self.planner = grounder, answerer, planner
        self._graph = build_graph()
        self._session_graphs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def run_context(self, **overrides: Any) -> Context:
        ctx = check_context(dataclasses.replace(self.context, **overrides))
        ctx.grounder, ctx.answerer, ctx.planner = self.grounder, self.answerer, self.planner
        return ctx

    def graph_for(self, session: str | None) -> Any:
        if session is None:
            return self._graph
        from agent.graph import build_graph

        key = str(db_path())
        with self._lock:
            if key not in self._session_graphs:
                self._session_graphs[key] = build_graph(checkpointer=open_saver(Path(key)))
            return self._session_graphs[key]

    def history(self, session: str) -> list[dict[str, Any]]:
        """Earlier turns of a session ([] when it does not exist yet)."""
        graph = self.graph_for(check_session(session))
        snap = graph.get_state({"configurable": {"thread_id": session}})
        return list((snap.values or {}).get("history") or [])

    def stream(self, video: str | os.PathLike[str], question: str, options: Sequence[str] | None = None,
               session: str | None = None, **overrides: Any) -> Iterator[dict[str, Any]]:
        """Run one question, yielding events in order (dicts with "type": plan, round, coarse, window,
        candidates, decide, qa, answer, node (a node finished)); the last is
        {"type": "result", "answer": Answer}."""
        from grounder.grounder import as_reader

        question, opts = check_question(question, options)
        if session is not None:
            check_session(session)
        reader = as_reader(video)  # one-line VideoError for a missing/corrupt file, before any work
        ctx = self.run_context(**overrides)
        if session is None:
            yield from self._turn(reader, question, opts, None, ctx)
            return
        from filelock import Timeout

        try:
            with session_lock(session):
                yield from self._turn(reader, question, opts, session, ctx)
        except Timeout:
            raise InputError(f"session {session!r} is busy: another turn has held it for "
                             f"{LOCK_TIMEOUT:.0f} s") from None

    def _turn(self, reader: Any, question: str, opts: list[str] | None, session: str | None,
              ctx: Context) -> Iterator[dict[str, Any]]:
        """One question on one (locked) session: read its history, run the graph, write the turn."""
        path = str(reader.path.resolve())
        graph = self.graph_for(session)
        config: dict[str, Any] = {"recursion_limit": 4 * ctx.max_rounds + 16}
        history: list[dict[str, Any]] = []
        if session is not None:
            config["configurable"] = {"thread_id": session}
            values = graph.get_state(config).values or {}
            if values.get("video") and values["video"] != path:
                raise InputError(f"session {session!r} is about {values['video']}; "
                                 "use another session name for another video")
            history = list(values.get("history") or [])
        result: dict[str, Any] | None = None
        t0 = time.perf_counter()
        for mode, chunk in graph.stream({"video": path, "question": question, "options": opts},
                                        config, context=ctx, stream_mode=["custom", "updates"]):
            if mode == "custom":
                yield chunk
            else:
                for node, update in chunk.items():
                    if node == "answer" and update:
                        result = update.get("result")
                    yield {"type": "node", "node": node}
        if result is None:  # cannot happen with this graph; a clear error if it ever does
            raise RuntimeError("the agent graph ended without an answer")
        result["trace"]["wall_seconds"] = round(time.perf_counter() - t0, 3)
        yield {"type": "result", "answer": Answer.from_result(result, session, history)}

    def ask(self, video: str | os.PathLike[str], question: str, options: Sequence[str] | None = None,
            session: str | None = None, **overrides: Any) -> Answer:
        answer = None
        for event in self.stream(video, question, options, session, **overrides):
            if event["type"] == "result":
                answer = event["answer"]
        assert answer is not None
        return answer


_AGENTS: dict[tuple[Any, ...], Agent] = {}


def ask(video: str | os.PathLike[str], question: str, options: Sequence[str] | None = None,
        model: str | None = None, qa_model: str | None = None, planner_model: str | None = None,
        session: str | None = None, **context: Any) -> Answer:
    """One question; models are loaded once per (model, qa_model, planner_model) and reused."""
    check_question(question, options)
    key = (model, qa_model, planner_model)
    if key not in _AGENTS:
        _AGENTS[key] = Agent(model, qa_model, planner_model)
    return _AGENTS[key].ask(video, question, options, session, **context)
