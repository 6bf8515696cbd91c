"""`groundqa demo`: one multiple-choice question about a synthetic video through the real agent."""

from __future__ import annotations

import json

import pytest

from agent.api import Agent
from evals.demo import DEFAULT_SEED, pick_question, run_demo
from grounder.scan import ScanBudget
from groundqa.cli import main

# Untrained tiny models never stop early: short generations, few frames, few calls.
SMALL = ScanBudget(max_new_tokens=16, max_calls=3, top_k=1, frames_per_call=8,
                   coarse_frames_per_window=8)
QA = {"qa_max_new_tokens": 6, "qa_max_frames": 8, "qa_global_frames": 2}


def test_demo_seed_is_not_a_training_or_eval_seed():
    # training: groundqa synth --seed 1000 (60 videos); held-out evaluation: 9000..
    assert not 1000 <= DEFAULT_SEED < 1100 and not 9000 <= DEFAULT_SEED < 9100


def test_pick_question_takes_the_mc_row_nearest_the_middle():
    rows = [{"id": "g", "kind": "grounding", "spans": [[50, 52]]},
            {"id": "a", "kind": "qa", "options": ["x", "y"], "answer": 0, "spans": [[5, 8]]},
            {"id": "b", "kind": "qa", "options": ["x", "y"], "answer": 1, "spans": [[45, 49]]}]
    assert pick_question(rows, 100.0)["id"] == "b"
    with pytest.raises(Exception, match="no multiple-choice question"):
        pick_question(rows[:1], 100.0)


def test_demo_asks_through_the_agent_and_writes_the_timeline(tmp_path, capsys):
    agent = Agent(budget=SMALL, max_rounds=1, **QA)  # the embedded default, small budget
    rep = run_demo(str(tmp_path / "d"), minutes=1.0, seed=DEFAULT_SEED, as_json=False, agent=agent)
    out = capsys.readouterr().out
    for word in ("question", "options", "answer", "segments", "truth", "cost", "timeline"):
        assert word in out
    assert rep["question"] in out and rep["truth"]["answer"] in out
    assert len(rep["options"]) == 4 and rep["truth"]["choice"] in "ABCD"
    assert rep["choice"] is None or rep["choice"] in "ABCD"
    assert rep["correct"] == (rep["choice"] == rep["truth"]["choice"])
    assert rep["cost"]["model_calls"] >= 1 and rep["cost"]["visual_tokens"] > 0
    s, e = rep["truth"]["spans"][0]
    assert 0 <= s < e <= rep["duration"] == pytest.approx(60.0)
    for seg in rep["segments"]:  # absolute video times
        assert 0 <= seg["start"] <= seg["end"] <= rep["duration"]
    png = tmp_path / "d" / "timeline.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in png.parent.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("args, msg", [
    (["--minutes", "0.1"], "--minutes must be between"),
    (["--minutes", "500"], "--minutes must be between"),
    (["--seed", "-1"], "--seed must be >= 0"),
])
def test_demo_bad_input_is_one_line(tmp_path, capsys, args, msg):
    code = main(["demo", "--out", str(tmp_path / "d"), *args])
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and msg in err and "Traceback" not in err


def test_demo_out_is_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    code = main(["demo", "--out", str(f), "--minutes", "0.5"])
    _out, err = capsys.readouterr()
    assert code != 0 and err.count("\n") == 1 and "not a folder" in err


@pytest.mark.slow
def test_demo_cli_json_short_video(tmp_path, capsys):
    """The real command with the embedded default and its own budget, on a 1-minute video."""
    code = main(["demo", "--out", str(tmp_path / "d"), "--minutes", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rep = json.loads(out)
    assert {"question", "options", "choice", "answer", "segments", "truth", "cost", "timeline",
            "seconds"} <= set(rep)
    assert set(rep["cost"]) >= {"model_calls", "frames", "visual_tokens", "seconds"}
    assert (tmp_path / "d" / "timeline.png").is_file()
