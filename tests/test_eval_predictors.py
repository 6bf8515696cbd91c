"""The eval predictors of issue #7 (`evals.predictors`): agent, qa-uniform, qa-text and
random-span end to end through `groundqa eval run` on a one-video synthetic world with a tiny
untrained Qwen2.5-VL folder, and `groundqa eval report` comparing their runs. Small budgets:
the untrained model always writes its whole token budget."""

from __future__ import annotations

import json

import pytest

from evals.loaders import load_benchmark
from evals.predictors import QA_PREDICTORS, is_question_row, median_span_length, random_span
from evals.report import summarize
from evals.runner import PREDICTORS, load_predictions
from evals.synthetic import generate_world
from grounder.tiny import save_tiny
from groundqa.cli import main

LIMIT = 2
SMALL = ["--budget", "max_new_tokens=8", "--budget", "fine_max_pixels=3136"]
GROUNDING = ["--budget", "max_calls=3", "--budget", "top_k=1", "--budget", "frames_per_call=4",
             "--budget", "coarse_frames_per_window=4"]
LETTERS = {"A", "B", "C", "D", "E", None}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("pred_world")
    rows = generate_world(out, n_videos=1, minutes=(1, 1), seed=11)
    assert any(r.get("question") for r in rows) and any(not r.get("question") for r in rows)
    model = save_tiny(tmp_path_factory.mktemp("tiny") / "qwen", "qwen2_5_vl")
    return {"ann": out / "annotations.jsonl", "model": str(model)}


def run(world, out, predictor, *extra):
    args = ["eval", "run", "synthetic", "--ann", str(world["ann"]), "--out", str(out),
            "--predictor", predictor, "--model", world["model"], "--limit", str(LIMIT),
            *SMALL, *extra, "--json"]
    assert main(args) == 0
    recs = load_predictions(out)
    assert len(recs) == LIMIT and not any(r.get("error") for r in recs)
    return recs


@pytest.fixture(scope="module")
def runs(world, tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    out = {}
    for name, extra in [("random-span", []), ("qa-text", []),
                        ("qa-uniform", ["--budget", "frames_per_call=4"]),
                        ("agent", GROUNDING)]:
        out[name] = (d / name, run(world, d / name, name, *extra))
    return out


def test_registered():
    assert {"grounder", "agent", "qa-uniform", "qa-text", "random-span"} <= set(PREDICTORS)
    assert QA_PREDICTORS == {"agent", "qa-uniform", "qa-text"}


def test_qa_predictors_answer_only_questions(runs):
    for name in QA_PREDICTORS:
        for r in runs[name][1]:
            assert r["kind"] == "qa" and r["options"] and r["answer"] in "ABCDE"
            assert "choice" in r and r["choice"] in LETTERS


def test_agent_records_choice_segments_and_total_cost(runs):
    for r in runs["agent"][1]:
        assert "top1" in r and isinstance(r["segments"], list) and r["gt"]
        if r["segments"]:
            assert r["top1"] == [r["segments"][0]["start"], r["segments"][0]["end"]]
        c = r["cost"]
        # grounding calls (>= 1) + the QA call; visual tokens of both
        assert c["model_calls"] >= 2 and c["visual_tokens"] > 0 and c["seconds"] >= 0
        assert r["evidence"]["frame_times"]


def test_qa_uniform_sees_n_even_frames_and_does_not_ground(runs):
    for r in runs["qa-uniform"][1]:
        assert "top1" not in r and r["segments"] == []
        assert r["cost"]["model_calls"] == 1 and r["cost"]["frames"] == 4
        assert r["cost"]["visual_tokens"] > 0
        d = r["duration"]
        want = [round((i + 0.5) * d / 4, 3) for i in range(4)]
        assert r["evidence"]["frame_times"] == pytest.approx(want, abs=0.05)


def test_qa_text_sees_no_video(runs):
    for r in runs["qa-text"][1]:
        assert "top1" not in r
        assert r["cost"]["model_calls"] == 1
        assert r["cost"]["frames"] == 0 and r["cost"]["visual_tokens"] == 0


def test_random_span_is_deterministic_and_median_long(world, runs, tmp_path):
    first = runs["random-span"][1]
    again = run(world, tmp_path / "again", "random-span")
    assert [r["top1"] for r in first] == [r["top1"] for r in again]
    length = median_span_length(load_benchmark("synthetic", world["ann"]))
    for r in first:
        s, e = r["top1"]
        assert 0 <= s < e <= r["duration"] and e - s == pytest.approx(min(length, r["duration"]), abs=2e-3)
        assert r["cost"]["model_calls"] == 0 and "choice" not in r
    # grounding rows are not dropped for random-span: the first rows of the file
    assert any(not is_question_row(r) for r in load_benchmark("synthetic", world["ann"])[:LIMIT])
    assert random_span(10.0, 30.0, 1) == (0.0, 10.0)  # capped at the video


def test_report_compares_runs(runs, tmp_path, capsys):
    reps = {name: summarize(d) for name, (d, _) in runs.items()}
    for name in ("agent", "qa-uniform", "qa-text"):
        assert reps[name]["qa"] is not None and reps[name]["qa"]["n"] == LIMIT
        assert reps[name]["predictor"] == name
    for name in ("agent", "random-span"):
        assert set(reps[name]["grounding"]) == {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU"}
    for name in ("qa-uniform", "qa-text"):
        assert reps[name]["grounding"] is None and reps[name]["no_prediction"] == 0
    assert reps["random-span"]["qa"] is None

    dirs = [str(d) for d, _ in runs.values()]
    assert main(["eval", "report", *dirs, "--out", str(tmp_path / "cmp"), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert [x["predictor"] for x in lines] == list(runs)
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| R1@0.3 | R1@0.5 | R1@0.7 | mIoU | QA accuracy |" in table
    for name in runs:
        assert f"| {name} |" in table


def test_qa_model_answers_instead_of_the_grounder_s_own(world, tmp_path, capsys):
    """`--qa-model` names the QA model: the embedded default grounds nothing here (qa-uniform), and
    the tiny VLM folder answers (one model call per question) instead of the default's matcher."""
    base = ["eval", "run", "synthetic", "--ann", str(world["ann"]), "--predictor", "qa-uniform", "--limit", "2",
            "--budget", "frames_per_call=4", *SMALL, "--json"]
    assert main([*base, "--out", str(tmp_path / "own")]) == 0
    own = load_predictions(tmp_path / "own")
    assert all(r["cost"]["model_calls"] == 0 and "statement matching" in r["reason"] for r in own)
    assert main([*base, "--out", str(tmp_path / "vlm"), "--qa-model", world["model"]]) == 0
    vlm = load_predictions(tmp_path / "vlm")
    assert all(r["cost"]["model_calls"] == 1 and "statement matching" not in r["reason"] for r in vlm)
    assert json.loads((tmp_path / "vlm" / "run.json").read_text())["qa_model"] == world["model"]
    capsys.readouterr()
    rc = main([*base[:5], "--predictor", "qa-text", "--out", str(tmp_path / "txt"), "--qa-model", "openai:x"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "model folder" in err
