"""The agent's QA step through an OpenAI-compatible server (`qa_model="openai:MODEL"`).

The server is `tests/openai_server.py` (our stand-in for vLLM, started as a subprocess by the
`server` fixture of test_openai_backend); `script:<text>` model names make it reply <text>.
The grounder is the tiny local default with the uniform strategy (the no-grounding baseline),
so each question is one QA request over frames spread across the video.
"""

from __future__ import annotations

import pytest
from test_openai_backend import free_port, log_len, requests_since, server  # noqa: F401 - fixture

from agent.api import Agent, ask
from agent.openai_answerer import OpenAIAnswerer, letter_probs
from evals.synthetic import generate_world
from grounder.openai_backend import time_label
from grounder.scan import ScanBudget
from groundqa.cli import main

OPTIONS = ["red", "blue", "green", "yellow"]
QUESTION = "what colour is the star that enters from the bottom?"
FAST = {"strategy": "uniform", "budget": ScanBudget(max_calls=2, max_new_tokens=8),
        "qa_max_new_tokens": 8, "qa_max_frames": 8, "qa_global_frames": 2}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    out = tmp_path_factory.mktemp("agent_openai_world")
    rows = generate_world(out, 1, minutes=(1, 1), seed=0)
    return out / rows[0]["video"]


@pytest.fixture(scope="module")
def shared(server):  # noqa: F811
    """One agent whose tiny local grounder the other tests reuse (loaded once)."""
    return Agent(answerer=OpenAIAnswerer.from_spec("openai:script:A", base_url=server["base_url"], check=False))


def qa_requests(log, start, model):
    return [r for r in requests_since(log, start) if r["model"] == model and r["n_images"] > 0]


def test_ask_sends_timestamped_frames_and_parses_the_letter(server, video, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OPENAI_BASE_URL", server["base_url"])
    start = log_len(server["log"])
    a = ask(video, QUESTION, OPTIONS, qa_model="openai:script:(B) blue", **FAST)
    assert a.choice == "B" and a.answer == "blue"
    (req,) = qa_requests(server["log"], start, "script:(B) blue")
    # the frames the answer reports are the frames the server received, each after its absolute time
    assert a.frame_times and req["n_images"] == len(a.frame_times)
    assert req["texts"][0] == "You are a helpful assistant that answers questions about a video."
    assert req["texts"][1:-1] == [time_label(t) for t in a.frame_times]
    assert max(a.frame_times) > 30  # absolute seconds in a 60 s video, not window-relative
    assert "(A) red" in req["texts"][-1] and "(B) blue" in req["texts"][-1]
    assert req["max_tokens"] == 8 and req["logprobs"] and req["top_logprobs"] == 20
    qa = a.trace["qa"]
    assert qa["reason"] == "letter" and qa["confidence"] == 1.0  # P(B) at the token after "("
    assert qa["cost"]["model_calls"] == 1 and qa["cost"]["frames"] == len(a.frame_times)
    assert qa["cost"]["visual_tokens"] > 0 and qa["cost"]["seconds"] > 0
    assert a.cost["model_calls"] == 1  # uniform: no grounder call, one QA call


def test_unparseable_reply_falls_back_to_first_token_letter(server, video, shared):  # noqa: F811
    shared.answerer = OpenAIAnswerer.from_spec("openai:script:Bqx", base_url=server["base_url"], check=False)
    start = log_len(server["log"])
    # grounded this time: the tiny local grounder on a small budget, then the QA request
    a = shared.ask(video, QUESTION, OPTIONS, **{**FAST, "strategy": "coarse-to-fine", "max_rounds": 1})
    assert a.choice == "B" and a.answer == "blue"
    (req,) = qa_requests(server["log"], start, "script:Bqx")
    assert req["texts"][1:-1] == [time_label(t) for t in a.frame_times]
    assert a.cost["model_calls"] == 1 + a.trace["rounds"][0]["cost"]["model_calls"]
    assert a.trace["qa"]["reason"].startswith("fallback: most likely option letter at the first token")


def test_garbage_reply_gives_no_choice_with_reason(server, video, shared):  # noqa: F811
    shared.answerer = OpenAIAnswerer.from_spec("openai:script:zzz qqq", base_url=server["base_url"], check=False)
    a = shared.ask(video, QUESTION, OPTIONS, **FAST)
    assert a.choice is None and a.answer == "zzz qqq" and a.confidence == 0.0
    assert "no option letter among the first token's logprobs" in a.trace["qa"]["reason"]
    assert any("could not read a choice" in w for w in a.warnings)
    # without logprobs (e.g. `transformers serve`) the reason says so
    shared.answerer = OpenAIAnswerer.from_spec("openai:script:zzz qqq", base_url=server["base_url"], check=False,
                                               logprobs=False, visual_tokens="off")
    a = shared.ask(video, QUESTION, OPTIONS, **FAST)
    assert a.choice is None and "the server returned no logprobs" in a.trace["qa"]["reason"]
    assert a.trace["qa"]["cost"]["visual_tokens"] == 0


def test_letter_probs_reads_top_alternatives():
    content = [{"token": " ", "logprob": 0.0},
               {"token": "C", "logprob": -1.0, "top_logprobs": [
                   {"token": "C", "logprob": -1.0}, {"token": " A", "logprob": -0.5},
                   {"token": "the", "logprob": -0.1}, {"token": "E", "logprob": -0.2}]}]
    p = letter_probs(content, 4)
    assert p is not None and p.argmax() == 0 and abs(p.sum() - 1) < 1e-9 and p[1] == 0
    assert letter_probs(None, 4) is None and letter_probs([{"token": "x", "logprob": 0.0}], 4) is None


def test_cli_server_down_is_one_line_model_error(video, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    rc = main(["ask", str(video), QUESTION, "--option", "red", "--option", "blue",
               "--qa-model", "openai:tiny", "--strategy", "uniform"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "cannot reach the OpenAI-compatible server" in err[0] and "Traceback" not in err[0]


def test_ask_grounds_through_the_server_with_backend_openai(server, video, monkeypatch, capsys):  # noqa: F811
    """`groundqa ask --backend openai --model NAME`: the grounder's calls go to the server (as
    `groundqa ground --backend openai`), the QA stays the local default."""
    import json

    monkeypatch.setenv("OPENAI_BASE_URL", server["base_url"])
    start = log_len(server["log"])
    rc = main(["ask", str(video), QUESTION, *sum((["--option", o] for o in OPTIONS), []), "--backend", "openai",
               "--model", "tiny", "--max-calls", "2", "--max-new-tokens", "16", "--max-rounds", "1",
               "--qa-max-new-tokens", "4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["choice"] in "ABCD"
    grounding = [r for r in requests_since(server["log"], start) if r["model"] == "tiny" and r["n_images"] > 0]
    assert 1 <= len(grounding) <= 2  # --max-calls 2, one round
