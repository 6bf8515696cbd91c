"""The `openai` backend against a real HTTP server on 127.0.0.1.

The server is `tests/openai_server.py`: OUR STAND-IN for vLLM (FastAPI + uvicorn running the
tiny Qwen2.5-VL with transformers on the images it receives, returning logprobs), started as a
subprocess per module. `transformers serve` accepts the same requests but drops `logprobs`.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from evals.bench.concurrency import stand_in
from evals.synthetic import generate_world
from grounder.backends import ModelRequest
from grounder.errors import ModelError
from grounder.grounder import BACKENDS, Grounder
from grounder.openai_backend import OpenAIBackend, logprob_confidence, time_label
from grounder.scan import ScanBudget
from grounder.tiny import save_tiny
from groundqa.cli import main

SERVER = Path(__file__).with_name("openai_server.py")
FAST = ScanBudget(max_new_tokens=16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The stand-in server on a free loopback port; its request log; torn down at the end."""
    tmp = tmp_path_factory.mktemp("openai_server")
    model_dir = save_tiny(tmp / "tiny", "qwen2_5_vl")
    log = tmp / "requests.jsonl"
    with stand_in(model_dir, names=("script:(B) blue",), log=log, threads=2) as base_url:
        yield {"base_url": base_url, "log": log}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    out = tmp_path_factory.mktemp("openai_world")
    rows = generate_world(out, 1, minutes=(1, 1), seed=0)
    return {"path": out / rows[0]["video"], "query": rows[0]["query"]}


def requests_since(log: Path, start: int) -> list[dict]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(x) for x in lines[start:]]


def log_len(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def check_result(result, calls: int) -> None:
    d = result.to_dict()
    assert set(d) >= {"segments", "cost", "trace"}
    assert d["cost"]["model_calls"] == len(result.trace) == calls
    assert d["cost"]["frames"] == sum(len(s.frame_times) for s in result.trace)
    for seg in d["segments"]:
        assert 0 <= seg["start"] < seg["end"] <= result.duration and 0 <= seg["score"] <= 1
    if not d["segments"]:
        assert result.reason
    json.dumps(d)


def test_registered_and_model_from_server(server):
    assert "openai" in BACKENDS
    g = Grounder.from_pretrained(None, backend="openai", base_url=server["base_url"])
    assert g.backend.model == "tiny"  # the server's first (only) model


def test_uniform_sends_frames_with_timestamps(server, video):
    g = Grounder.from_pretrained("tiny", backend="openai", base_url=server["base_url"])
    start = log_len(server["log"])
    result = g.ground(video["path"], video["query"], strategy="uniform", budget=FAST)
    check_result(result, 1)
    (step,) = result.trace
    seen = [r for r in requests_since(server["log"], start) if r["n_images"] > 0]
    assert len(seen) == 1
    req = seen[0]
    n = len(step.frame_times)
    assert req["n_images"] == n == ScanBudget().frames_per_call
    assert req["logprobs"] is True and req["top_logprobs"] == 20 and req["max_tokens"] == 16
    # system prompt, the query lead, then "<t seconds>" before each image (window-relative), then the prompt
    assert req["texts"][1] == f"Query: {video['query'].rstrip('?.')}."
    labels = req["texts"][2:-1]
    assert labels == [time_label(t - step.window_start) for t in step.frame_times]
    assert "Find the moment that matches the query" in req["texts"][-1]
    assert step.visual_tokens > 0 and result.cost.visual_tokens == step.visual_tokens


def test_coarse_to_fine_small_budget(server, video):
    g = Grounder.from_pretrained("tiny", backend="openai", base_url=server["base_url"])
    budget = ScanBudget(max_new_tokens=16, max_calls=3, frames_per_call=8,
                        coarse_frames_per_window=8)
    start = log_len(server["log"])
    result = g.ground(video["path"], video["query"], strategy="coarse-to-fine", budget=budget)
    calls = len(result.trace)
    assert 1 <= calls <= 3
    check_result(result, calls)
    sent = [r["n_images"] for r in requests_since(server["log"], start) if r["n_images"] > 0]
    assert sent == [len(s.frame_times) for s in result.trace]


def test_confidence_from_logprobs_end_to_end(server, video):
    # The stand-in writes this text with P=0.6 on the digit, 0.3 on "not", 0.1 on "x".
    g = Grounder.from_pretrained("script:<think>ok</think><answer>3.5 to 7.0</answer>",
                                 backend="openai", base_url=server["base_url"], check=False)
    result = g.ground(video["path"], video["query"], strategy="uniform", budget=FAST)
    check_result(result, 1)
    (seg,) = result.segments
    w0 = result.trace[0].window_start
    assert (seg.start, seg.end) == pytest.approx((w0 + 3.5, w0 + 7.0))
    assert result.trace[0].score == pytest.approx(0.6 / 0.9)
    assert result.trace[0].score_from == "model" and not any("not measured" in w for w in result.warnings)


def test_a_server_without_logprobs_says_its_scores_are_the_fallback(server, video):
    # transformers serve ignores `logprobs`: the span still counts, at the documented 0.5, and the
    # result says the confidence was not measured rather than passing 0.5 off as one
    g = Grounder.from_pretrained("nolp:<answer>3.5 to 7.0</answer>", backend="openai", base_url=server["base_url"],
                                 check=False)
    result = g.ground(video["path"], video["query"], strategy="uniform", budget=FAST)
    (step,) = result.trace
    assert step.span is not None and step.score == 0.5 and step.score_from == "fallback"
    (warning,) = [w for w in result.warnings if "not measured" in w]
    assert "1 of 1 model call" in warning and "no token logprobs" in warning
    assert result.to_dict()["trace"][0]["score_from"] == "fallback"


def test_reasoning_content_is_read_with_the_answer(server, video):
    # vLLM's reasoning parsers move <think>...</think> to reasoning_content; its anchors aim the zooms
    g = Grounder.from_pretrained("reason:<think>It is at <timestamp>1.0 to 2.0</timestamp>.</think>"
                                 "<answer>3.5 to 7.0</answer>", backend="openai", base_url=server["base_url"],
                                 check=False)
    result = g.ground(video["path"], video["query"], strategy="uniform", budget=FAST)
    step = result.trace[0]
    assert step.text.startswith("<think>It is at <timestamp>1.0 to 2.0</timestamp>")
    assert step.anchors == [pytest.approx((step.window_start + 1.0, step.window_start + 2.0))]
    assert step.span == pytest.approx((step.window_start + 3.5, step.window_start + 7.0))


def test_a_model_the_server_does_not_list_fails_before_any_video_is_read(server, tmp_path):
    with pytest.raises(ModelError) as err:
        Grounder.from_pretrained("no-such-model", backend="openai", base_url=server["base_url"], max_retries=0)
    assert "does not serve 'no-such-model'" in str(err.value) and "tiny" in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_a_server_that_cannot_list_its_models_still_serves_the_named_one(server, video, caplog):
    broken = server["base_url"].replace("/v1", "/broken-models/v1")
    with caplog.at_level("WARNING", logger="grounder.openai_backend"):
        g = Grounder.from_pretrained("tiny", backend="openai", base_url=broken, max_retries=0)
    assert any("HTTP 500" in r.getMessage() and "going on" in r.getMessage() for r in caplog.records)
    check_result(g.ground(video["path"], video["query"], strategy="uniform", budget=FAST), 1)
    with pytest.raises(ModelError):  # without a name there is nothing to go on with
        Grounder.from_pretrained(None, backend="openai", base_url=broken, max_retries=0)


def test_garbage_output_gives_no_segments_with_reason(server, video):
    g = Grounder.from_pretrained("script:lorem ipsum dolor", backend="openai",
                                 base_url=server["base_url"], check=False)
    result = g.ground(video["path"], video["query"], strategy="uniform", budget=FAST)
    check_result(result, 1)
    assert result.segments == [] and "no window gave a usable span" in result.reason
    assert result.trace[0].score == 0.0


def test_http_error_is_one_line_model_error(server, video):
    g = Grounder.from_pretrained("no-such-model", backend="openai", base_url=server["base_url"],
                                 check=False, max_retries=0)
    with pytest.raises(ModelError) as err:
        g.ground(video["path"], video["query"], strategy="uniform", budget=FAST)
    msg = str(err.value)
    assert "\n" not in msg and "404" in msg and "no-such-model" in msg


def test_server_down_is_one_line_model_error(video):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(ModelError) as err:
        Grounder.from_pretrained("tiny", backend="openai", base_url=url, max_retries=1, timeout=5)
    assert "\n" not in str(err.value) and "cannot reach" in str(err.value)
    g = Grounder.from_pretrained("tiny", backend="openai", base_url=url, check=False,
                                 max_retries=0, timeout=5)
    with pytest.raises(ModelError) as err:
        g.ground(video["path"], video["query"], strategy="uniform", budget=FAST)
    assert "\n" not in str(err.value) and url in str(err.value)


def test_cli_backend_openai(server, video, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_BASE_URL", server["base_url"])
    rc = main(["ground", str(video["path"]), video["query"], "--backend", "openai",
               "--model", "tiny", "--strategy", "uniform", "--max-new-tokens", "16", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["cost"]["model_calls"] == 1 and "segments" in out
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    rc = main(["ground", str(video["path"]), video["query"], "--backend", "openai", "--json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and err[-1].startswith("groundqa: error: cannot reach")


# -- pure parts (no server) ------------------------------------------------------------------
def tok(text, top=None):
    return {"token": text, "logprob": 0.0, "top_logprobs": top or []}


def test_logprob_confidence():
    import math

    alts = [{"token": "1", "logprob": math.log(0.5)}, {"token": "2", "logprob": math.log(0.2)},
            {"token": "not", "logprob": math.log(0.1)}, {"token": "the", "logprob": math.log(0.2)}]
    content = [tok("<think>"), tok("</think>"), tok("<answer>"), tok(" "), tok("1", alts), tok("0")]
    assert logprob_confidence(content) == pytest.approx(0.7 / 0.8)
    split = [tok("<"), tok("answer"), tok(">"), tok("not", alts)]
    assert logprob_confidence(split) == pytest.approx(0.7 / 0.8)
    assert logprob_confidence(None) is None
    assert logprob_confidence([tok("no answer here")]) is None
    assert logprob_confidence([tok("<answer>3")]) is None  # tag and answer share a token
    # a short-trace model decides at the reasoning's first token: P("Not") there scales it down
    opening = [{"token": "It", "logprob": math.log(0.6)}, {"token": "Not", "logprob": math.log(0.4)}]
    short = [tok("<think>"), tok("It", opening), tok(" is at 1 to 2.</think>"), tok("<answer>"), tok("1", alts)]
    assert logprob_confidence(short) == pytest.approx(0.7 / 0.8 * 0.6)


def test_video_url_form():
    b = OpenAIBackend("m", base_url="http://127.0.0.1:1/v1", video=True)
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    req = ModelRequest(frames, np.array([10.0, 11.0, 12.0, 13.0]), 25.0, 10.0, 14.0, "x")
    parts = b.content(req)
    assert [p["type"] for p in parts] == ["text", "video_url", "text"]
    assert parts[0]["text"] == "Query: x."  # the query before the video (prompts.query_lead)
    url = parts[1]["video_url"]["url"]
    assert url.startswith("data:video/jpeg;base64,") and url.count(",") == 4
    parts = OpenAIBackend("m", base_url="http://127.0.0.1:1/v1").content(req)[1:]
    assert [p["text"] for p in parts[:-1:2]] == ["<0.0 seconds>", "<1.0 seconds>", "<2.0 seconds>", "<3.0 seconds>"]
    assert all(p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in parts[1:-1:2])
