"""`groundqa eval report`: metrics from hand-written prediction files (no model), rank files
merged, QA accuracy only when a predictor answered, plots and markdown written atomically."""

from __future__ import annotations

import json

import pytest

from evals.report import bucket_of, summarize
from evals.runner import load_predictions
from groundqa.cli import main


def rec(i, top1, gt, duration=90.0, strategy="uniform", calls=1, tokens=8, **extra):
    return {"id": f"item{i}", "index": i, "kind": "grounding", "duration": duration,
            "strategy": strategy, "segments": [] if top1 is None else
            [{"start": top1[0], "end": top1[1], "score": 0.5}], "top1": top1, "text": "",
            "cost": {"model_calls": calls, "frames": 4 * calls, "visual_tokens": tokens,
                     "seconds": 0.5}, "gt": gt, "qtype": None, "category": None, **extra}


def write_run(d, records, name="predictions.jsonl", strategy="uniform", tail=b""):
    d.mkdir(parents=True, exist_ok=True)
    (d / "run.json").write_text(json.dumps({"bench": "synthetic", "model": "default",
                                            "strategy": strategy}))
    data = "".join(json.dumps(r) + "\n" for r in records).encode() + tail
    (d / name).write_bytes(data)
    return d


RECORDS = [
    rec(0, [0.0, 10.0], [[0.0, 10.0]]),            # IoU 1
    rec(1, [0.0, 10.0], [[5.0, 10.0]]),            # IoU 0.5
    rec(2, [0.0, 10.0], [[0.0, 4.0], [8.0, 20.0]]),  # best of two: 0.4
    rec(3, None, [[1.0, 2.0]], duration=400.0),    # no prediction: IoU 0
]


def test_grounding_metrics_cost_and_length_buckets(tmp_path):
    rep = summarize(write_run(tmp_path / "run", RECORDS))
    assert rep["grounding"] == {"R1@0.3": 75.0, "R1@0.5": 50.0, "R1@0.7": 25.0, "mIoU": 47.5}
    assert rep["qa"] is None
    assert rep["n"] == 4 and rep["no_prediction"] == 1
    assert rep["cost"] == {"model_calls": 1.0, "frames": 4.0, "visual_tokens": 8.0, "seconds": 0.5,
                           "embedder_frames": 0.0, "embedder_seconds": 0.0}
    assert [(b["bucket"], b["n"]) for b in rep["by_length"]] == [("1-3 min", 3), ("3-10 min", 1)]
    assert rep["by_length"][1]["mIoU"] == 0.0
    assert bucket_of(None) is None and bucket_of(30) == "<1 min" and bucket_of(7200) == ">60 min"


def test_qa_accuracy_only_over_answered_records(tmp_path):
    qa = [rec(i, [0.0, 1.0], [[0.0, 1.0]], kind="qa", answer="B", choice=c)
          for i, c in enumerate(["B", "(b)", "A", None])]
    qa.append(rec(9, [0.0, 1.0], [[0.0, 1.0]], kind="qa", answer="C"))  # grounder only: no choice
    rep = summarize(write_run(tmp_path / "qa", qa))
    assert rep["qa"] == {"accuracy": 50.0, "n": 4}
    assert rep["n_qa"] == 5 and rep["grounding"]["R1@0.7"] == 100.0


def test_rank_files_merge_and_cut_lines_are_ignored(tmp_path):
    d = write_run(tmp_path / "sharded", RECORDS[0::2], name="predictions.rank0.jsonl",
                  tail=b'{"id": "item9", "ind')
    (d / "predictions.rank1.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in RECORDS[1::2])
        + json.dumps(rec(1, None, [[5.0, 10.0]], error="corrupt video")) + "\n")  # a failed try
    assert [r["id"] for r in load_predictions(d)] == ["item0", "item1", "item2", "item3"]
    single = summarize(write_run(tmp_path / "single", RECORDS))
    merged = summarize(d)
    assert merged["grounding"] == single["grounding"] and merged["n"] == 4 and merged["errors"] == 0


def test_report_cli_writes_files_and_json(tmp_path, capsys):
    d = write_run(tmp_path / "run", RECORDS)
    assert main(["eval", "report", str(d), "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    rep = json.loads(out[0])
    assert set(rep["grounding"]) == {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU"} and rep["qa"] is None
    for name in ("report.md", "report.json", "iou_hist.png", "accuracy_by_length.png",
                 "cost_vs_accuracy.png"):
        assert (d / name).stat().st_size > 0, name
    assert (d / "iou_hist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (d / "report.md").read_text()
    assert "| R1@0.3 |" in md and "| 75.00 | 50.00 | 25.00 | 47.50 |" in md
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # no temp files left
    assert json.loads((d / "report.json").read_text())["grounding"] == rep["grounding"]


def test_several_runs_compare_strategies(tmp_path, capsys):
    a = write_run(tmp_path / "uniform", RECORDS)
    b = write_run(tmp_path / "c2f", [dict(r, strategy="coarse-to-fine", top1=r["gt"][0],
                                          cost={"model_calls": 12, "frames": 300,
                                                "visual_tokens": 900, "seconds": 4.0})
                                     for r in RECORDS], strategy="coarse-to-fine")
    cmp_dir = tmp_path / "cmp"
    assert main(["eval", "report", str(a), str(b), "--out", str(cmp_dir), "--json"]) == 0
    reps = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["strategy"] for r in reps] == ["uniform", "coarse-to-fine"]
    assert reps[1]["grounding"]["mIoU"] == 100.0 and reps[1]["cost"]["visual_tokens"] == 900.0
    assert (cmp_dir / "cost_vs_accuracy.png").stat().st_size > 0
    assert "coarse-to-fine" in (cmp_dir / "comparison.md").read_text()
    assert (a / "report.md").is_file() and (b / "report.md").is_file()


def test_report_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for args in (["eval", "report", str(tmp_path / "nope")], ["eval", "report", str(tmp_path / "empty")]):
        capsys.readouterr()
        assert main(args) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("groundqa: error:")


@pytest.mark.parametrize("dur", [None, "n/a"])
def test_unknown_duration_has_no_bucket(tmp_path, dur):
    rep = summarize(write_run(tmp_path / "d", [rec(0, [0.0, 1.0], [[0.0, 1.0]], duration=dur)]))
    assert rep["by_length"] == [] and rep["grounding"]["mIoU"] == 100.0
