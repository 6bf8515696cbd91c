"""The agent under the real LangGraph server (`langgraph dev`, in-memory, on loopback, offline),
driven by `langgraph_sdk` as a LangGraph user would: schemas, runs, each bad input named,
no options carried over, a JSON budget obeyed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("langgraph_api", reason="the LangGraph server (pip install 'groundqa[dev]') is not installed")

from langgraph_sdk import get_sync_client
from test_openai_backend import free_port

from evals.synthetic import generate_world

ROOT = Path(__file__).resolve().parents[1]
FAST = {"strategy": "uniform", "max_rounds": 1, "qa_max_new_tokens": 4}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = dict(os.environ, LANGGRAPH_CLI_NO_ANALYTICS="1", LANGSMITH_TRACING="false", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    cli = shutil.which("langgraph", path=str(Path(sys.executable).parent)) or shutil.which("langgraph")
    log = tmp_path_factory.mktemp("langgraph") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([cli, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    client = get_sync_client(url=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 120
    while True:
        try:
            client.assistants.search(graph_id="agent")
            break
        except Exception:  # noqa: BLE001 - not up yet
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "langgraph dev did not start within 120 s"
            time.sleep(0.5)
    yield client
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("server_world")
    rows = generate_world(out, n_videos=2, minutes=(1, 1), seed=41)
    return {"videos": sorted({str(out / r["video"]) for r in rows}), "qa": next(r for r in rows if r.get("options"))}


def _assistant(client) -> str:
    return client.assistants.search(graph_id="agent")[0]["assistant_id"]


def test_schemas_are_typed(server):
    s = server.assistants.get_schemas(_assistant(server))
    assert set(s["input_schema"]["properties"]) == {"video", "question", "options"}
    assert set(s["input_schema"]["required"]) == {"video", "question"}
    assert s["output_schema"] and "result" in s["output_schema"]["properties"]
    assert s["context_schema"] and "budget" in s["context_schema"]["properties"]


def test_every_bad_input_is_named_not_an_internal_error(server, world):
    a = _assistant(server)
    v = world["videos"][0]
    cases = [({"question": "what?"}, "input.video"), ({"video": v, "question": 42}, "input.question"),
             ({"video": v, "question": "what?", "options": "top"}, "input.options"),
             ({"video": v, "question": "what?", "options": ["top"]}, "input.options"),
             ({"video": v + ".missing.mp4", "question": "what?"}, "not found")]
    for inp, says in cases:
        thread = server.threads.create()["thread_id"]
        with pytest.raises(Exception) as err:
            server.runs.wait(thread, a, input=inp, context=FAST)
        assert says in str(err.value) and "internal error" not in str(err.value).lower(), (inp, str(err.value))


def test_a_thread_answers_in_turn_without_leaking_options_and_obeys_a_json_budget(server, world):
    a = _assistant(server)
    thread = server.threads.create()["thread_id"]
    qa = world["qa"]
    first = server.runs.wait(thread, a, input={"video": world["videos"][0], "question": qa["question"],
                                               "options": qa["options"]}, context=FAST)
    assert first["result"]["choice"] in "ABCD"
    second = server.runs.wait(thread, a, input={"video": world["videos"][0], "question": "what happens next?"},
                              context=FAST)
    assert second["result"]["choice"] is None and len(second["history"]) == 2
    with pytest.raises(Exception, match="this thread is about"):
        server.runs.wait(thread, a, input={"video": world["videos"][1], "question": "what happens?"}, context=FAST)
    query = {"video": world["videos"][0], "question": "when does a shape enter?"}
    ctx = {"max_rounds": 1, "qa_max_new_tokens": 4}
    small = server.runs.wait(server.threads.create()["thread_id"], a, input=query,
                             context={**ctx, "budget": {"max_calls": 2, "retrieval_windows": 1}})
    full = server.runs.wait(server.threads.create()["thread_id"], a, input=query, context=ctx)
    calls = [sum(r["cost"]["model_calls"] for r in run["rounds"]) for run in (small, full)]
    assert calls[0] <= 2 < calls[1], calls
