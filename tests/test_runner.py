"""`groundqa eval run`: resumable after kill -9, sharded = single process, missing videos and
config mismatches refused up front. Real (tiny, untrained) model, real synthetic MP4s; the
uniform strategy with a small budget keeps each item under a second on a CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evals.report import summarize
from evals.runner import (
    PRED_FILE,
    assign_ids,
    clip_reader,
    load_predictions,
    parse_budget,
    recover_partial,
)
from evals.synthetic import generate_world
from grounder.backends import DEFAULT_MODEL_DIR
from grounder.errors import InputError
from grounder.scan import COST_KEYS, ScanBudget
from grounder.video import open_video
from groundqa.cli import main

ROOT = Path(__file__).resolve().parents[1]
N = 6
FAST = ["--strategy", "uniform", "--budget", "frames_per_call=4", "--budget", "max_new_tokens=8",
        "--budget", "fine_max_pixels=3136", "--limit", str(N)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_world")
    rows = generate_world(out, n_videos=2, minutes=(1, 2), seed=3)
    return {"dir": out, "ann": out / "annotations.jsonl", "rows": rows}


def run_args(world, out, *extra):
    return ["eval", "run", "synthetic", "--ann", str(world["ann"]), "--out", str(out), *FAST, *extra]


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory):
    """An uninterrupted single-process run (in this process: the model stays loaded)."""
    out = tmp_path_factory.mktemp("ref")
    assert main(run_args(world, out, "--json")) == 0
    return out


def metrics(run_dir):
    rep = summarize(run_dir)
    cost = {k: v for k, v in rep["cost"].items() if k != "seconds"}  # wall time differs
    return {"grounding": rep["grounding"], "qa": rep["qa"], "n": rep["n"], "cost": cost}


def outputs(run_dir):
    """What must not depend on interruption or sharding: per id, the prediction and raw text."""
    return {r["id"]: (r["top1"], r["segments"], r["text"], r["cost"]["visual_tokens"])
            for r in load_predictions(run_dir)}


def env(**extra):
    e = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    e.pop("GROUNDQA_PROGRESS", None)
    e.update(extra)
    return e


def cli_process(args, **extra_env):
    return subprocess.Popen([sys.executable, "-m", "groundqa", *args], cwd=ROOT, env=env(**extra_env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def lines(path):
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def test_run_then_report_json(reference, capsys):
    recs = load_predictions(reference)
    assert len(recs) == N and len({r["id"] for r in recs}) == N
    for r in recs:
        for k in ("id", "segments", "top1", "text", "cost", "gt", "duration", "strategy", "qtype"):
            assert k in r, k
        assert r["strategy"] == "uniform" and r["cost"]["model_calls"] == 1
    run = json.loads((reference / "run.json").read_text())
    assert run["strategy"] == "uniform" and run["budget"]["frames_per_call"] == 4
    # the budget the scan ran with: the shipped model's scan_config.json under the overrides
    shipped = json.loads((DEFAULT_MODEL_DIR / "scan_config.json").read_text())
    assert run["budget"]["top_k"] == shipped["top_k"] != ScanBudget().top_k
    assert run["budget"]["max_new_tokens"] == 8
    capsys.readouterr()
    assert main(["eval", "report", str(reference), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["grounding"]) == {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU"}
    assert all(0.0 <= v <= 100.0 for v in rep["grounding"].values())
    assert rep["qa"] is None  # the grounder predictor does not answer questions
    assert rep["n"] == N
    assert set(rep["cost"]) == set(COST_KEYS)
    assert rep["cost"]["model_calls"] == 1.0 and rep["cost"]["frames"] == 4.0
    for name in ("report.md", "iou_hist.png", "accuracy_by_length.png", "cost_vs_accuracy.png"):
        assert (reference / name).stat().st_size > 0, name


def test_rerun_skips_finished_items(world, reference, capsys):
    capsys.readouterr()
    assert main(run_args(world, reference, "--json")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ran"] == 0 and summary["already_done"] == N
    assert lines(reference / PRED_FILE) == N


def test_kill9_then_resume_equals_uninterrupted(world, reference, tmp_path):
    out = tmp_path / "killed"
    proc = cli_process(run_args(world, out))
    pred = out / PRED_FILE
    deadline = time.monotonic() + 60
    while lines(pred) < 1:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no prediction line within 60 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert 1 <= lines(pred) < N, "the run was not interrupted in the middle"

    assert main(run_args(world, out)) == 0
    assert lines(pred) == N
    assert metrics(out) == metrics(reference)
    assert outputs(out) == outputs(reference)


def test_two_processes_equal_one(world, reference, tmp_path, monkeypatch):
    """Rank 1 in a subprocess, rank 0 in this process at the same time (the model is loaded
    here already), as `accelerate launch --num_processes 2` would split them."""
    out = tmp_path / "sharded"
    proc = cli_process(run_args(world, out), RANK="1", WORLD_SIZE="2", LOCAL_RANK="1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(run_args(world, out)) == 0
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    ranks = [load_ids(out / f"predictions.rank{r}.jsonl") for r in (0, 1)]
    assert ranks[0] and ranks[1] and not ranks[0] & ranks[1]
    assert ranks[0] == {r["id"] for r in load_predictions(out) if r["index"] % 2 == 0}
    assert not (out / PRED_FILE).exists()
    assert metrics(out) == metrics(reference)
    assert outputs(out) == outputs(reference)


def load_ids(path):
    return {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}


def test_partial_last_line_is_dropped_and_redone(world, reference, tmp_path):
    out = tmp_path / "partial"
    out.mkdir()
    (out / "run.json").write_bytes((reference / "run.json").read_bytes())
    data = (reference / PRED_FILE).read_bytes()
    cut = data.rstrip(b"\n").rfind(b"\n") + 1 + 40  # the last line, cut 40 bytes in
    (out / PRED_FILE).write_bytes(data[:cut])
    assert load_predictions(out) and len(load_predictions(out)) == N - 1  # cut line ignored

    assert main(run_args(world, out)) == 0
    text = (out / PRED_FILE).read_text()
    assert text.endswith("\n") and len(text.splitlines()) == N
    assert all(json.loads(line) for line in text.splitlines())
    assert outputs(out) == outputs(reference)


def test_recover_partial(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"id": 1}\n{"id": 2}\n{"id"')
    assert recover_partial(p) == 5 and p.read_bytes() == b'{"id": 1}\n{"id": 2}\n'
    assert recover_partial(p) == 0
    p.write_bytes(b'{"id": 1')
    assert recover_partial(p) == 8 and p.read_bytes() == b""


def test_config_mismatch_refused(world, reference, capsys):
    capsys.readouterr()
    before = (reference / PRED_FILE).read_bytes()
    args = run_args(world, reference)
    args[args.index("uniform")] = "sliding"
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "different strategy" in err and "Traceback" not in err
    args = run_args(world, reference, "--budget", "max_new_tokens=9")
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert "different budget" in err and "max_new_tokens" in err
    assert (reference / PRED_FILE).read_bytes() == before


def test_missing_videos_listed_before_any_work(world, tmp_path, capsys):
    rows = [dict(r) for r in world["rows"]]
    for r in rows[:3]:
        r["video"] = f"videos/gone_{r['id']}.mp4"
    ann = world["dir"] / "with_missing.jsonl"
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "missing"
    capsys.readouterr()
    args = ["eval", "run", "synthetic", "--ann", str(ann), "--out", str(out), *FAST]
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "3 video(s) not found" in err and "gone_" in err and "--skip-missing" in err
    assert not out.exists()  # nothing started

    assert main([*args[:-2], "--limit", "5", "--skip-missing"]) == 0
    assert {r["id"] for r in load_predictions(out)} == {r["id"] for r in rows[3:5]}


def test_bad_arguments_are_one_line_errors(world, tmp_path, capsys):
    for extra in (["--budget", "nope=1"], ["--budget", "frames_per_call=x"],
                  ["--strategy", "diagonal"], ["--predictor", "oracle"]):
        capsys.readouterr()
        args = ["eval", "run", "synthetic", "--ann", str(world["ann"]), "--out", str(tmp_path / "b"),
                *extra]
        assert main(args) != 0, extra
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("groundqa: error:"), err
    assert main(["eval", "run", "nosuchbench", "--ann", str(world["ann"]), "--out", str(tmp_path)]) != 0
    assert main(["eval", "report", str(tmp_path / "nothing")]) != 0


def test_parse_budget_and_ids():
    assert parse_budget(["frames_per_call=8", "coarse-fps=0.5", "coarse_window_s=none"]) == {
        "frames_per_call": 8, "coarse_fps": 0.5, "coarse_window_s": None}
    with pytest.raises(InputError):
        parse_budget(["frames_per_call=1"])  # ScanBudget's own check, before any work
    assert assign_ids([{"id": "a"}, {}, {"id": "a"}], "b") == ["a", "b#1", "a~1"]


def test_clip_rows_are_grounded_inside_the_clip(world, tmp_path):
    video = world["dir"] / world["rows"][0]["video"]
    with open_video(video) as base:
        clip = clip_reader(base, 10.0, 30.0)
        assert clip.duration == pytest.approx(20.0)
        frames, stamps = clip.sample([0.0, 5.0, 19.9])
        ref_frames, ref_stamps = base.sample([10.0, 15.0, 29.9])
        assert np.array_equal(frames, ref_frames)
        assert np.allclose(stamps, np.maximum(ref_stamps - 10.0, 0.0))
    ann = tmp_path / "tvg.json"
    ann.write_text(json.dumps([{"path": video.name, "question": "the green triangle enters",
                                "answer": "2.0-6.0", "duration": 20.0, "start": 10.0, "end": 30.0,
                                "qsemtype": "human"}]))
    out = tmp_path / "tvg"
    args = ["eval", "run", "tvgbench", "--ann", str(ann), "--videos", str(video.parent),
            "--out", str(out), *FAST]
    assert main(args) == 0
    (rec,) = load_predictions(out)
    assert rec["clip"] == [10.0, 30.0] and rec["duration"] == pytest.approx(20.0)
    assert rec["gt"] == [[2.0, 6.0]] and rec["qtype"] == "human"
    for seg in rec["segments"]:
        assert 0.0 <= seg["start"] < seg["end"] <= 20.0 + 1e-6


def test_a_run_whose_every_item_failed_exits_non_zero(world, tmp_path, capsys):
    """Corrupt videos: each item's error is recorded, and the run as a whole is a failure (exit 1)."""
    bad = world["dir"] / "videos" / "corrupt.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    rows = [dict(r, video="videos/corrupt.mp4") for r in world["rows"][:2]]
    ann = world["dir"] / "all_corrupt.jsonl"
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "failed"
    capsys.readouterr()
    assert main(["eval", "run", "synthetic", "--ann", str(ann), "--out", str(out), *FAST]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("groundqa: error: every item of this run failed (2 of 2")
    assert all(r.get("error") for r in load_predictions(out)) and len(load_predictions(out)) == 2


@pytest.mark.parametrize("escape", ["../../etc/{name}", "/tmp/elsewhere/{name}"])
def test_annotation_paths_stay_inside_their_dataset(world, tmp_path, escape):
    """A video named outside the annotation's folder (or --videos) is refused in one line before
    any work; --allow-outside-paths lets the user opt in (then the run goes on to find it missing)."""
    rows = [dict(r) for r in world["rows"][:2]]
    rows[1]["video"] = escape.format(name=Path(rows[1]["video"]).name)
    ann = world["dir"] / f"escaping_{abs(hash(escape))}.jsonl"
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    base = ["eval", "run", "synthetic", "--ann", str(ann), "--out", str(out), *FAST]
    p = subprocess.run([sys.executable, "-m", "groundqa", *base], cwd=ROOT, env=env(), capture_output=True,
                       text=True, timeout=300, check=False)
    assert p.returncode == 2
    err = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(err) == 1 and "lies outside" in err[0] and "--allow-outside-paths" in err[0], p.stderr
    assert not out.exists()
    p = subprocess.run([sys.executable, "-m", "groundqa", *base, "--allow-outside-paths"], cwd=ROOT, env=env(),
                       capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 2 and "not found" in p.stderr and "lies outside" not in p.stderr
