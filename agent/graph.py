"""The ground-then-answer graph (LangGraph StateGraph over `agent.state.State`).

    START -> plan -> ground -> decide --(confident, or rounds used up)--> answer -> END
                        ^          |
                        +-(ground)-+

- plan: question -> grounding queries (`agent.planner`: a text LLM when configured, else the
  deterministic rewrite).
- ground: one grounding round with the grounder (strategy + budget from the run context);
  round r uses query r (cycling) and a budget widened by `widen_budget(budget, r)`.
  `strategy="uniform"` is the no-grounding baseline: no grounder call, the QA model sees
  frames spread over the whole video.
- decide: the best segment score so far >= `confidence_threshold` -> answer; else, while
  `len(state["rounds"]) < max_rounds`, ground again. The bound is the round counter in state,
  never LangGraph's recursion limit (which `Agent` sets above 2 * max_rounds + its own margin).
- answer: the QA model (`agent.answerer`) on frames from the best segments of all rounds.

Nodes report progress through LangGraph's custom stream (`runtime.stream_writer`), as plain
dicts with a "type": plan, round, coarse (the retriever's candidate windows, before the
model's first look), window (one per grounder model call, with its scan level), candidates,
decide, qa, answer. `graph` below (no checkpointer, default models loaded lazily) is what
`langgraph.json` points LangGraph's server / Studio at.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agent.answerer import LETTERS, Answerer, QAResult, open_answer
from agent.context import Context, check_context, check_question
from agent.planner import follow_up, rewrite
from agent.state import InputState, State
from grounder.scan import ScanBudget, add_costs, zero_cost
from grounder.spans import merge
from grounder.video import shared_reader

_DEFAULTS: dict[str, Any] = {}
_DEFAULTS_LOCK = threading.Lock()


def default_grounder() -> Any:
    """The embedded default grounder, loaded once per process (LangGraph server use)."""
    with _DEFAULTS_LOCK:
        if "grounder" not in _DEFAULTS:
            from grounder.grounder import Grounder

            _DEFAULTS["grounder"] = Grounder.from_pretrained(None)
        return _DEFAULTS["grounder"]


def default_answerer() -> Answerer:
    """The embedded default as QA model: the default grounder's model, shared (one copy)."""
    g = default_grounder()
    with _DEFAULTS_LOCK:
        if "answerer" not in _DEFAULTS:
            from agent.retrieval_answerer import answerer_for

            _DEFAULTS["answerer"] = answerer_for(g)
        return _DEFAULTS["answerer"]


def widen_budget(budget: ScanBudget, round_index: int) -> ScanBudget:
    """Round r (0-based) keeps r more coarse windows for zooming and may spend the matching
    extra calls: a wider look each time the previous round was not confident."""
    if round_index <= 0:
        return budget
    extra = round_index * max(1, budget.top_k)
    return dataclasses.replace(budget, top_k=budget.top_k + round_index,
                               max_calls=budget.max_calls + extra * 4)


def _ctx(runtime: Runtime[Context] | None) -> Context:
    """The run's context as our types: the Python API hands in a checked `Context`; a LangGraph
    server hands in the client's JSON (a dict), converted and checked here."""
    return check_context(getattr(runtime, "context", None))


def check_input(state: State) -> dict[str, Any]:
    """The question's input, checked at the graph's entry (a server calls the graph without the
    Python API's checks): the video opens, the question is text, options are a list of >= 2;
    a thread stays on its video. One-line `InputError`s naming the field."""
    from grounder.errors import InputError
    from grounder.grounder import as_reader

    video = state.get("video")
    if not isinstance(video, str) or not video.strip():
        raise InputError("input.video: the path of a video file is required")
    path = str(as_reader(video).path.resolve())  # one-line VideoError: missing, empty, corrupt
    try:
        question, _ = check_question(state.get("question"))
    except InputError as exc:
        raise InputError(f"input.question: {exc}") from None
    try:
        _, options = check_question(question, state.get("options"))
    except InputError as exc:
        raise InputError(f"input.options: {exc}") from None
    history = state.get("history") or []
    if history and history[-1].get("video") not in (None, path):
        raise InputError(f"input.video: this thread is about {history[-1]['video']}; start another thread "
                         "for another video")
    return {"video": path, "question": question, "options": options}


def _writer(runtime: Runtime[Context] | None) -> Any:
    w = getattr(runtime, "stream_writer", None)
    return w if callable(w) else (lambda _event: None)


class _Watch:
    """A grounder backend wrapper that reports each model call as a "window" event."""

    def __init__(self, backend: Any, write: Any, round_index: int) -> None:
        self._backend, self._write, self._round = backend, write, round_index
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def __call__(self, request: Any) -> Any:
        reply = self._backend(request)
        self.calls += 1
        self._write({"type": "window", "round": self._round, "call": self.calls,
                     "start": round(float(request.window_start), 3),
                     "end": round(float(request.window_end), 3), "frames": len(request.frames),
                     "level": int(getattr(request, "level", 0)),
                     "confidence": None if reply.confidence is None else round(float(reply.confidence), 4)})
        return reply


def coarse_event(round_index: int, retrieved: Any) -> dict[str, Any]:
    """The coarse pass's report: the candidate windows the retriever kept for the model to look
    inside (best first), with what the retrieval cost."""
    return {"type": "coarse", "round": round_index, "seconds": round(float(retrieved.seconds), 3),
            "frames_embedded": int(retrieved.frames_embedded), "from_cache": bool(retrieved.from_cache),
            "windows": [{"start": round(float(c.start), 3), "end": round(float(c.end), 3),
                         "score": round(float(c.score), 4)} for c in retrieved.candidates]}


def pooled_segments(rounds: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Segments of all rounds, overlaps merged (best score kept), best first."""
    spans = [(s["start"], s["end"], s["score"]) for r in rounds for s in r.get("segments", [])]
    return [{"start": round(a, 3), "end": round(b, 3), "score": round(c, 4)} for a, b, c in merge(spans)]


# -- nodes -------------------------------------------------------------------------------
def plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    checked = check_input(state)
    question = checked["question"]
    history = state.get("history") or []
    if ctx.planner is not None:
        queries, note = ctx.planner(question, history)
    else:
        queries, note = rewrite(question), "rewrite"
    queries, used = follow_up(queries, question, history)
    if used:
        note += " + the earlier turn's query (the question refers back)"
    _writer(runtime)({"type": "plan", "queries": queries, "planner": note})
    # A new question starts here: reset what a previous question of the session left in state.
    return {**checked, "queries": queries, "planner": note, "rounds": [], "confidence": 0.0, "decision": "",
            "decision_reason": "", "result": {}, "warnings": []}


def ground(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    write = _writer(runtime)
    rounds = list(state.get("rounds") or [])
    r = len(rounds)
    queries = state.get("queries") or [state["question"]]
    query = queries[r % len(queries)]
    warnings = list(state.get("warnings") or [])
    if ctx.strategy == "uniform":
        write({"type": "round", "round": r, "query": None, "strategy": "uniform",
               "note": "no grounding (uniform baseline)"})
        rounds.append({"round": r, "query": None, "strategy": "uniform", "segments": [],
                       "cost": zero_cost(),
                       "reason": "uniform baseline: no grounding", "trace": []})
        return {"rounds": rounds, "confidence": 0.0}
    grounder = ctx.grounder if ctx.grounder is not None else default_grounder()
    # the model's own scan defaults first (scan_config.json), then this round's widening
    resolve = getattr(grounder, "resolve_budget", None)  # any object with .ground() may stand in
    budget = widen_budget(resolve(ctx.budget) if resolve is not None else ctx.budget, r)
    write({"type": "round", "round": r, "query": query, "strategy": ctx.strategy,
           "top_k": budget.top_k, "max_calls": budget.max_calls})
    from grounder.grounder import Grounder

    reader = shared_reader(state["video"])
    if isinstance(grounder, Grounder):  # live events: the retriever's windows, then each model call
        grounder = grounder.with_backend(_Watch(grounder.backend, write, r))
        result = grounder.ground(reader, query, strategy=ctx.strategy, budget=budget,
                                 on_retrieved=lambda got: write(coarse_event(r, got)))
    else:
        result = grounder.ground(reader, query, strategy=ctx.strategy, budget=budget)
    segments = [s.to_dict() for s in result.segments]
    write({"type": "candidates", "round": r, "query": query, "segments": segments,
           "reason": result.reason})
    for w in result.warnings:
        if w not in warnings:
            warnings.append(w)
    rounds.append({"round": r, "query": query, "strategy": ctx.strategy,
                   "budget": {"top_k": budget.top_k, "max_calls": budget.max_calls},
                   "segments": segments, "cost": result.cost.to_dict(), "reason": result.reason,
                   "trace": [s.to_dict() for s in result.trace]})
    if getattr(result, "retrieval", None) is not None:
        rounds[-1]["coarse"] = coarse_event(r, result.retrieval)["windows"]
    pooled = pooled_segments(rounds)
    return {"rounds": rounds, "confidence": pooled[0]["score"] if pooled else 0.0,
            "warnings": warnings}


def decide(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    n = len(state.get("rounds") or [])
    conf = float(state.get("confidence") or 0.0)
    warnings = list(state.get("warnings") or [])
    if ctx.strategy == "uniform":
        decision, why = "answer", "uniform baseline: no grounding to check"
    elif conf >= ctx.confidence_threshold:
        decision, why = "answer", f"confidence {conf:.3f} >= {ctx.confidence_threshold}"
    elif n >= max(1, ctx.max_rounds):
        decision, why = "answer", f"confidence {conf:.3f} < {ctx.confidence_threshold} after {n} round(s) (max_rounds)"
        warnings.append(f"low grounding confidence ({conf:.3f}) after {n} round(s): the answer may "
                        "come from the wrong moment")
    else:
        decision, why = "ground", f"confidence {conf:.3f} < {ctx.confidence_threshold}: re-grounding"
    _writer(runtime)({"type": "decide", "round": n - 1, "confidence": round(conf, 4),
                      "decision": decision, "reason": why})
    return {"decision": decision, "decision_reason": why, "warnings": warnings}


def route(state: State) -> str:
    return "ground" if state.get("decision") == "ground" else "answer"


def answer(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    write = _writer(runtime)
    rounds = list(state.get("rounds") or [])
    pooled = [] if ctx.strategy == "uniform" else pooled_segments(rounds)
    selected = pooled[: max(0, ctx.qa_segments)]
    reader = shared_reader(state["video"])
    options = state.get("options") or None
    history = list(state.get("history") or [])
    answerer = ctx.answerer if ctx.answerer is not None else default_answerer()
    write({"type": "qa", "segments": selected})
    # an answerer that reads segments one by one (`reads_segments`) may check more of them; its
    # frames for the QA model still come from the first `qa_segments`
    handed = pooled[: max(ctx.qa_segments, ctx.read_segments)] if getattr(answerer, "reads_segments", False) \
        else selected
    qa: QAResult = answerer(reader, state["question"], options, handed, history, ctx)
    warnings = list(state.get("warnings") or [])
    # A QA model that declares the videos it knows (the embedded default: the synthetic world only)
    # does not answer confidently about any other video: it says it is not sure, with its guess.
    domain = getattr(answerer, "domain", None)
    off_domain = domain.mismatch(reader) if domain is not None else None
    if off_domain and off_domain not in warnings:
        warnings.insert(0, off_domain)
    if not selected and ctx.strategy != "uniform":
        warnings.append("no segment found: answered from frames spread over the whole video")
    if options and qa.choice is None:
        warnings.append(f"could not read a choice from the QA model's reply: {qa.reason}")
    cost = add_costs([r["cost"] for r in rounds] + [qa.cost])
    g_conf = 1.0 if ctx.strategy == "uniform" else (selected[0]["score"] if selected else 0.0)
    confidence = round(float(g_conf) * float(qa.confidence), 4)
    choice = LETTERS[qa.choice] if qa.choice is not None else None
    answer_text = qa.answer
    if not options:
        answer_text, unusable = open_answer(qa.answer, selected)
        if unusable:
            warnings.append(unusable)
            confidence = 0.0
    if off_domain:
        guess = f"({choice}) {qa.answer}" if choice else qa.answer
        answer_text = f"not sure: this video is outside what the model knows (its guess: {guess})"
        choice, confidence = None, 0.0
    result = {
        "answer": answer_text, "choice": choice, "segments": pooled, "confidence": confidence,
        "cost": cost, "frame_times": [round(t, 3) for t in qa.frame_times], "warnings": warnings,
        "trace": {
            "queries": state.get("queries") or [], "planner": state.get("planner", ""),
            "rounds": rounds, "decision": state.get("decision_reason", ""),
            "qa": {"prompt": qa.prompt, "text": qa.text, "reason": qa.reason,
                   "confidence": round(float(qa.confidence), 4), "grounding_confidence": g_conf,
                   "option_scores": qa.option_scores,
                   "cost": qa.cost},
        },
    }
    write({"type": "answer", "answer": answer_text, "choice": choice, "confidence": confidence,
           "segments": selected})
    turn = {"question": state["question"], "options": options, "answer": answer_text,
            "choice": choice, "segments": pooled[:3], "video": state["video"],
            "queries": list(state.get("queries") or [])}
    # options belong to this question: cleared, so that a next question on the thread sent without
    # options is not answered from these
    return {"result": result, "warnings": warnings, "history": [turn], "options": None}


def build_graph(checkpointer: Any = None) -> Any:
    """The compiled graph; `checkpointer` (e.g. SqliteSaver) keeps sessions (thread_id = name)."""
    g = StateGraph(State, context_schema=Context, input_schema=InputState)
    g.add_node("plan", plan)
    g.add_node("ground", ground)
    g.add_node("decide", decide)
    g.add_node("answer", answer)
    g.add_edge(START, "plan")
    g.add_edge("plan", "ground")
    g.add_edge("ground", "decide")
    g.add_conditional_edges("decide", route, {"ground": "ground", "answer": "answer"})
    g.add_edge("answer", END)
    return g.compile(checkpointer=checkpointer, name="groundqa-agent")


graph = build_graph()
