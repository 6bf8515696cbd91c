"""The graph as a LangGraph server runs it: no Python API in front, the client's JSON as input
and context. Typed schemas, input checked at the entry with errors that name the field (and that
a server shows: ValueErrors), no options carried into the next question, a thread bound to its
video, a JSON budget obeyed."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agent.graph import build_graph
from evals.synthetic import generate_world
from grounder.errors import GroundQAError

SMALL = {"strategy": "uniform", "max_rounds": 1, "qa_max_new_tokens": 4, "qa_max_frames": 4, "qa_global_frames": 2}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("graph_world")
    rows = generate_world(out, n_videos=2, minutes=(1, 1), seed=31)
    videos = sorted({str(out / r["video"]) for r in rows})
    qa = next(r for r in rows if r.get("options"))
    return {"videos": videos, "qa": qa}


def _run(graph, inp, context, thread="t"):
    return graph.invoke(inp, {"configurable": {"thread_id": thread}}, context=context)


def test_schemas_name_every_field_and_require_video_and_question():
    g = build_graph()
    inp = g.get_input_jsonschema()
    assert set(inp["properties"]) == {"video", "question", "options"} and set(inp["required"]) == {"video", "question"}
    assert {"result", "history", "options"} <= set(g.get_output_jsonschema()["properties"])
    ctx = g.get_context_jsonschema()
    assert {"strategy", "budget", "max_rounds"} <= set(ctx["properties"])


@pytest.mark.parametrize("bad, field", [
    ({"question": "what?"}, "input.video"),
    ({"video": "{v}", "question": 42}, "input.question"),
    ({"video": "{v}", "question": "what?", "options": "top"}, "input.options"),
    ({"video": "{v}", "question": "what?", "options": ["top"]}, "input.options"),
    ({"video": "/no/such/video.mp4", "question": "what?"}, "not found"),
])
def test_bad_input_is_a_value_error_naming_the_field(world, bad, field):
    inp = {k: (v.format(v=world["videos"][0]) if isinstance(v, str) else v) for k, v in bad.items()}
    with pytest.raises(GroundQAError) as err:
        _run(build_graph(checkpointer=InMemorySaver()), inp, SMALL)
    assert isinstance(err.value, ValueError) and field in str(err.value) and len(str(err.value).splitlines()) == 1


def test_bad_context_json_is_named(world):
    inp = {"video": world["videos"][0], "question": "what happens?"}
    for ctx, says in (({"max_rounds": 0}, "context.max_rounds"), ({"budget": {"nope": 1}}, "context.budget"),
                      ({"strategy": "diagonal"}, "strategy")):
        with pytest.raises(GroundQAError, match=says):
            _run(build_graph(), inp, {**SMALL, **ctx})
    # LangGraph itself builds the Context from the JSON: an unknown field is its TypeError, which
    # names the field (and which a server shows)
    with pytest.raises(TypeError, match="speed"):
        _run(build_graph(), inp, {**SMALL, "speed": 3})


def test_options_do_not_leak_and_a_thread_keeps_its_video(world):
    g = build_graph(checkpointer=InMemorySaver())
    qa = world["qa"]
    first = _run(g, {"video": world["videos"][0], "question": qa["question"], "options": qa["options"]}, SMALL)
    assert first["result"]["choice"] in "ABCD"
    second = _run(g, {"video": world["videos"][0], "question": "what happens next?"}, SMALL)
    assert second["result"]["choice"] is None and second["options"] is None  # an open question
    with pytest.raises(GroundQAError, match="input.video: this thread is about"):
        _run(g, {"video": world["videos"][1], "question": "what happens?"}, SMALL)


def test_a_json_budget_is_obeyed(world):
    inp = {"video": world["videos"][0], "question": "when does a shape enter?"}
    ctx = {"strategy": "coarse-to-fine", "max_rounds": 1, "qa_max_new_tokens": 4}
    small = _run(build_graph(), inp, {**ctx, "budget": {"max_calls": 2, "retrieval_windows": 1}})
    calls = sum(r["cost"]["model_calls"] for r in small["rounds"])
    default = _run(build_graph(), inp, ctx)
    assert calls <= 2 < sum(r["cost"]["model_calls"] for r in default["rounds"])
