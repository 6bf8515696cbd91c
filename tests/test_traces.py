"""`groundqa data traces`: the TAR-TVG keep rule on hand-written traces, the SFT row it writes,
the command end to end with the tiny untrained teacher (k=2, few tokens), one-line errors."""

from __future__ import annotations

import json

import pytest

from groundqa.cli import main
from trainer.traces import keep_traces, trace_row

RISING = ("<think>first <timestamp>0.0 to 10.0</timestamp> then <timestamp>2.0 to 7.0</timestamp> "
          "so</think><answer>3.0 to 6.0</answer>")
FALLING = ("<think><timestamp>2.0 to 7.0</timestamp> then <timestamp>0.0 to 10.0</timestamp>"
           "</think><answer>3.0 to 6.0</answer>")
OFF = ("<think>first <timestamp>0.0 to 10.0</timestamp> then <timestamp>2.0 to 7.0</timestamp>"
       "</think><answer>12.0 to 19.0</answer>")
NO_ANCHOR = "<think>hmm</think><answer>3.0 to 6.0</answer>"


def test_keep_rule_by_hand():
    texts = [RISING, FALLING, OFF, NO_ANCHOR]
    assert keep_traces(texts, (3.0, 6.0), 20.0, 0.5) == [RISING]  # anchors rise and IoU 1.0
    assert keep_traces([RISING], (3.0, 6.0), 20.0, 1.0) == [RISING]
    assert keep_traces([RISING], (3.5, 9.0), 20.0, 0.9) == []  # IoU 2.5/6 below the threshold
    assert keep_traces([RISING], None, 20.0, 0.0) == []  # a window without the event


def test_trace_row_loads_as_an_sft_row(tmp_path):
    raw = {"video": "v.mp4", "duration": 60.0, "query": "q", "spans": [[5.0, 8.0], [40.0, 44.0]],
           "difficulty": 0.3}
    row = trace_row(raw, RISING, 2.0, 22.0, (3.0, 6.0))
    assert row["trace"] == RISING and row["window"] == [2.0, 22.0] and row["spans"] == [[5.0, 8.0]]
    assert "difficulty" not in row and row["query"] == "q"
    # trainer.data reads it back: the trace is the SFT target, the window is shown again
    from trainer.data import load_rows

    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (r,) = load_rows(path)
    assert r.extra["trace"] == RISING and r.extra["window"] == [2.0, 22.0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from evals.synthetic.generate import generate_world

    out = tmp_path_factory.mktemp("traces_world")
    generate_world(out, 1, minutes=(1, 1), seed=0)
    return out


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    from grounder.tiny import save_tiny

    return save_tiny(tmp_path_factory.mktemp("teacher"), "qwen2_5_vl", seed=0)


def test_traces_end_to_end_with_the_tiny_teacher(world, teacher, tmp_path, capsys):
    src = world / "annotations.jsonl"
    out = world / f"traces_{tmp_path.name}.jsonl"  # beside the videos: the trainer reads it back
    code = main(["data", "traces", str(src), "--teacher", str(teacher), "--out", str(out), "--k", "2",
                 "--min-iou", "0.0", "--max-new-tokens", "8", "--limit", "2", "--window", "20",
                 "--max-frames", "4", "--json"])
    o, err = capsys.readouterr()
    assert code == 0, err
    s = json.loads(o)
    assert (s["rows"], s["k"], s["sampled"]) == (2, 2, 4)
    assert 0 <= s["kept"] <= 4 and s["keep_rate"] == pytest.approx(s["kept"] / 4, abs=1e-4)
    assert 0 <= s["rows_with_trace"] <= 2
    assert out.is_file()
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == s["kept"]
    for r in rows:
        assert r["trace"] and len(r["window"]) == 2 and (out.parent / r["video"]).is_file()


def test_make_sample_replays_a_written_trace(world, tmp_path):
    src = [json.loads(x) for x in (world / "annotations.jsonl").read_text().splitlines()]
    raw = next(r for r in src if r.get("kind", "grounding") == "grounding")
    s, e = raw["spans"][0]
    start = max(0.0, s - 5.0)
    row = trace_row(raw, RISING, start, start + 20.0, (s - start, min(e, start + 20.0) - start))
    path = world / f"t_{tmp_path.name}.jsonl"
    path.write_text(json.dumps(row) + "\n")
    from trainer.data import FrameConfig, GroundingDataset

    sample = GroundingDataset(path, FrameConfig(max_frames=2)).sample(0)
    assert sample.target == RISING and sample.start == pytest.approx(start)
    assert sample.span == pytest.approx((round(s - start, 3), round(min(e, start + 20.0) - start, 3)))


@pytest.mark.parametrize("case", ["missing", "empty", "bad_teacher"])
def test_traces_bad_input_is_one_line(case, world, tmp_path, capsys):
    src = world / "annotations.jsonl"
    teacher_dir = tmp_path / "no_model"
    teacher_dir.mkdir()
    if case == "missing":
        src = tmp_path / "nope.jsonl"
    elif case == "empty":
        src = tmp_path / "empty.jsonl"
        src.write_text("\n")
    code = main(["data", "traces", str(src), "--teacher", str(teacher_dir), "--out", str(tmp_path / "o.jsonl")])
    _, err = capsys.readouterr()
    assert code != 0 and not (tmp_path / "o.jsonl").exists()
    assert err.startswith("groundqa: error:") and len(err.strip().splitlines()) == 1, err
