"""Benchmark loaders: the real annotation files (counts, exact values, spans inside the
video) and hand-written rows of the formats not shipped in ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.loaders import (
    benchmark_key,
    clip_spans,
    load_benchmark,
    missing_videos,
    resolve_video,
)
from evals.loaders.qa import split_lvbench_question
from grounder.errors import InputError

REAL = [  # (benchmark, file under benchmarks/, rows, distinct videos)
    ("charades", "charades_sta/charades_test.json", 3720, 1334),
    ("activitynet", "activitynet_captions/val_2.json", 17031, 4885),
    ("qvhighlights", "qvhighlights/highlight_val_release.jsonl", 1550, 1519),
    ("tvgbench", "tvgbench/tvgbench.json", 800, 462),
    ("rextime", "rextime/rextime_val.jsonl", 921, 696),
    ("nextgqa", "nextgqa/test.csv", 5553, 990),
]


def _write(path: Path, obj) -> Path:
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


# ----------------------------------------------------------------------------- real files

@pytest.fixture(scope="module")
def real_rows(request) -> dict[str, list[dict]]:
    shared = request.getfixturevalue("shared_data")
    return {name: load_benchmark(name, shared / "benchmarks" / f) for name, f, _, _ in REAL}


@pytest.mark.parametrize("name,fname,n_rows,n_videos", REAL)
def test_real_files_counts_and_spans_inside(real_rows, name, fname, n_rows, n_videos):
    rows = real_rows[name]
    assert len(rows) == n_rows
    assert len({r["video"] for r in rows}) == n_videos
    assert len({r["id"] for r in rows}) == n_rows  # ids are unique
    for r in rows:
        assert r["query"] and r["spans"], r["id"]
        assert all(0 <= s <= e <= r["duration"] for s, e in r["spans"]), r["id"]
    assert len(missing_videos(rows)) == n_videos  # no videos ship with the annotations


def test_real_values_exactly_as_in_the_files(real_rows):
    by_id = {n: {r["id"]: r for r in rows} for n, rows in real_rows.items()}
    r = by_id["charades"]["3MSZA#0"]
    assert (r["duration"], r["query"], r["spans"]) == (30.96, "person turn a light on.", [[24.3, 30.4]])
    assert r["video"].endswith("charades_sta/3MSZA.mp4")
    # Charades-STA overshoots the video (ends up to 1.5 s late): clipped to the duration
    assert by_id["charades"]["AKO6M#1"]["spans"] == [[12.7, 18.58]]
    r = by_id["activitynet"]["v_uqiMw7tQ1Cc#1"]  # sentences lose ActivityNet's leading space
    assert r["duration"] == 55.15 and r["spans"] == [[4.14, 33.36]]
    assert r["query"].startswith("One man is holding")
    # 113.26 vs 113.25999999999999: float noise, clipped
    assert by_id["activitynet"]["v_EQMDnhIKU4w#4"]["spans"] == [[103.06, 113.25999999999999]]
    r = by_id["qvhighlights"]["2638"]
    assert r["spans"] == [[0, 74], [76, 142], [144, 150]] and r["duration"] == 150
    assert r["video"].endswith("bP5KfdFJzC4_60.0_210.0.mp4")
    r = by_id["tvgbench"]["tvgbench_0"]
    assert (r["duration"], r["spans"], r["source"], r["qtype"]) == (30.12, [[13.4, 28.1]], "charades", "Human Pose")
    r = by_id["tvgbench"]["tvgbench_154"]  # cut from a longer file: spans relative to the clip
    assert r["clip"] == pytest.approx([53.05562446378865, 152.42562446378867])
    assert r["duration"] == 99.37 and r["source"] == "hirest"
    r = by_id["rextime"]["anet_val92"]
    assert (r["duration"], r["spans"], r["answer"], r["options"]) == (100.5, [[5, 8]], "A", [])
    r = by_id["nextgqa"]["2574374895_8"]
    assert r["answer"] == "C" and r["options"][2] == "lay on floor" and r["qtype"] == "TN"
    assert r["duration"] == 30 and r["spans"] == [[23.0, 27.7]]
    assert by_id["nextgqa"]["3305288577_0"]["spans"] == [[0.0, 25.1]]  # -0.1 in the file


def test_nextgqa_accepts_folder_or_either_file(shared_data):
    d = shared_data / "benchmarks" / "nextgqa"
    for p in (d, d / "gsub_test.json"):
        assert len(load_benchmark("nextgqa", p)) == 5553


# ----------------------------------------------------------------------------- hand-written

def test_charades_txt_format(tmp_path):
    ann = _write(tmp_path / "charades_sta_test.txt",
                 "3MSZA 24.3 30.4##person turn a light on.\n\nAO8RW 8.2 0.0##a person is putting a book.\n")
    rows = load_benchmark("charades-sta", ann)
    assert [r["query"] for r in rows] == ["person turn a light on.", "a person is putting a book."]
    assert rows[0]["spans"] == [[24.3, 30.4]] and rows[1]["spans"] == [[0.0, 8.2]]  # sorted
    assert rows[0]["duration"] is None  # not in the .txt: read from the video
    assert rows[0]["video"] == str(tmp_path / "3MSZA.mp4")
    _write(ann, "3MSZA 24.3##no end\n")
    with pytest.raises(InputError, match=":1: expected"):
        load_benchmark("charades", ann)


def test_videomme_json_and_parquet(tmp_path):
    rows_in = [{"video_id": "001", "duration": "short", "domain": "Knowledge",
                "sub_category": "Humanity & History", "videoID": "fFjv93ACGo8", "question_id": "001-1",
                "task_type": "Counting Problem", "question": "How many people?",
                "options": ["A. One.", "B. Two.", "C. Three.", "D. Four."], "answer": "C"}]
    rows = load_benchmark("video-mme", _write(tmp_path / "videomme.json", rows_in), tmp_path)
    r = rows[0]
    assert r["options"] == ["One.", "Two.", "Three.", "Four."] and r["answer"] == "C"
    assert (r["id"], r["qtype"], r["duration"], r["duration_group"]) == \
        ("001-1", "Counting Problem", None, "short")
    assert r["video"] == str(tmp_path / "fFjv93ACGo8.mp4") and r["spans"] == []
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa
    pq.write_table(pa.Table.from_pylist(rows_in), tmp_path / "test.parquet")
    assert load_benchmark("videomme", tmp_path / "test.parquet", tmp_path) == rows
    _write(tmp_path / "bad.parquet", "not parquet")
    with pytest.raises(InputError, match="parquet"):
        load_benchmark("videomme", tmp_path / "bad.parquet")


def test_longvideobench(tmp_path):
    ann = _write(tmp_path / "lvb_val.json", [
        {"video_id": "86CxyhFV9MI", "question": "What is the man holding?",
         "candidates": ["a cup", "a phone", "a book"], "correct_choice": 1, "duration": 527.0,
         "duration_group": 600, "question_category": "TOS", "video_path": "86CxyhFV9MI.mp4",
         "id": "86CxyhFV9MI_0"},
        {"video_id": "x", "question": "q?", "candidates": ["a", "b"], "id": "x_1"}])  # test split
    rows = load_benchmark("longvideobench", ann)
    assert rows[0]["answer"] == "B" and rows[0]["duration"] == 527.0 and rows[0]["qtype"] == "TOS"
    assert rows[1]["answer"] is None and rows[1]["duration"] is None


def test_mlvu_file_and_folder(tmp_path):
    d = tmp_path / "json"
    d.mkdir()
    _write(d / "1_plotQA.json", [{"video": "movie101_66.mp4", "duration": 246,
                                  "question": "What color is the car?", "candidates": ["Red", "Blue"],
                                  "answer": "Blue", "question_type": "plotQA"}])
    _write(d / "2_needle.json", [{"video": "needle_32.mp4", "duration": 467.0, "question": "q",
                                  "candidates": ["x", "y", "z"], "answer": "x"}])
    rows = load_benchmark("mlvu", d)
    assert [r["answer"] for r in rows] == ["B", "A"]
    assert [r["qtype"] for r in rows] == ["plotQA", "needle"] and rows[0]["duration"] == 246.0
    assert len(load_benchmark("mlvu", d / "1_plotQA.json")) == 1
    # an answer that is none of the options: the official template's letter "@", never right
    _write(d / "3_odd.json", [{"video": "v.mp4", "question": "q", "candidates": ["x"], "answer": "w"}])
    assert load_benchmark("mlvu", d)[-1]["answer"] == "@"
    # a generation task (no candidates) is left out of the folder, and refused on its own
    _write(d / "9_summary.json", [{"video": "v.mp4", "question": "sum it up", "answer": "...",
                                   "question_type": "summary"}])
    assert len(load_benchmark("mlvu", d)) == 3
    with pytest.raises(InputError, match="generation task"):
        load_benchmark("mlvu", d / "9_summary.json")


def test_lvbench(tmp_path):
    q = "What year appears in the opening caption?\n(A) 1636\n(B) 1366\n(C) 1363\n(D) 1633"
    assert split_lvbench_question(q) == ("What year appears in the opening caption?",
                                         ["1636", "1366", "1363", "1633"])
    ann = _write(tmp_path / "video_info.meta.jsonl", json.dumps({
        "key": "sPwe3GzS3zg", "type": "cartoon",
        "video_info": {"duration_minutes": 60.5},
        "qa": [{"uid": "101", "question": q, "answer": "B",
                "question_type": ["key information retrieval"], "time_reference": "00:15-00:19"},
               {"uid": "102", "question": q, "answer": "(D)", "question_type": ["reasoning"],
                "time_reference": "1:00:10-1:02:00"}]}) + "\n")
    rows = load_benchmark("lvbench", ann)
    assert rows[0]["spans"] == [[15.0, 19.0]] and rows[0]["duration"] == 3630.0
    assert rows[0]["qtype"] == "key information retrieval" and rows[0]["options"][1] == "1366"
    assert rows[1]["answer"] == "D" and rows[1]["spans"] == [[3610.0, 3630.0]]  # 3720 clipped to 3630


def test_egoschema_public_answers(tmp_path):
    opts = {f"option {k}": f"o{k}" for k in range(5)}
    _write(tmp_path / "questions.json", [
        {"q_uid": "uid-a", "google_drive_id": "g", "question": "What is c doing?", **opts},
        {"q_uid": "uid-b", "google_drive_id": "g", "question": "hidden answer", **opts}])
    _write(tmp_path / "subset_answers.json", {"uid-a": 3, "uid-c": 0})
    rows = load_benchmark("egoschema", tmp_path)
    # one row per public answer; the question text where questions.json has it
    assert [r["id"] for r in rows] == ["uid-a", "uid-c"]
    assert rows[0]["answer"] == "D" and rows[0]["options"][3] == "o3" and rows[0]["question"] == "What is c doing?"
    assert rows[0]["duration"] == 180.0 and rows[0]["video"].endswith("uid-a.mp4")
    assert rows[1]["answer"] == "A" and rows[1]["question"] == "" and len(rows[1]["options"]) == 5


def test_synthetic_paths_relative_to_the_annotations(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "v0.mp4").write_bytes(b"x")
    ann = _write(tmp_path / "annotations.jsonl", "\n".join(json.dumps(r) for r in [
        {"video": "videos/v0.mp4", "duration": 600.0, "query": "when does the green triangle enter",
         "spans": [[10.0, 12.5]], "difficulty": 0.4},
        {"video": "videos/v1.mp4", "duration": 600.0, "query": "q", "spans": [[590, 605]],
         "question": "what colour?", "options": ["red", "blue"], "answer": 1}]))
    rows = load_benchmark("synthetic", ann)
    assert rows[0]["video"] == str(tmp_path / "videos" / "v0.mp4") and rows[0]["difficulty"] == 0.4
    assert rows[1]["spans"] == [[590.0, 600.0]]
    assert (rows[1]["answer"], rows[1]["answer_index"]) == ("B", 1)  # the world writes indices
    assert missing_videos(rows) == [str(tmp_path / "videos" / "v1.mp4")]


# ----------------------------------------------------------------------------- helpers

def test_resolve_video_tries_the_usual_extensions(tmp_path):
    vids = tmp_path / "vids"
    vids.mkdir()
    (vids / "abc.mkv").write_bytes(b"x")
    (vids / "clip_210.0_360.0.webm").write_bytes(b"x")
    ann = tmp_path / "ann.json"
    assert resolve_video("abc", ann, vids) == str(vids / "abc.mkv")
    assert resolve_video("abc.mp4", ann, vids) == str(vids / "abc.mkv")  # named .mp4, stored .mkv
    assert resolve_video("clip_210.0_360.0", ann, vids) == str(vids / "clip_210.0_360.0.webm")
    assert resolve_video("nope", ann, vids) == str(vids / "nope.mp4")  # first candidate if missing
    assert resolve_video("abc", ann, None) == str(tmp_path / "abc.mp4")


def test_clip_spans():
    assert clip_spans([[5, 2], [-0.1, 3], [8, 12], [11, 13], [4, 4]], 10) == \
        [[2.0, 5.0], [0.0, 3.0], [8.0, 10.0], [4.0, 4.0]]  # [11, 13] lies past the end: dropped
    with pytest.raises(InputError):
        clip_spans([[1]], 10)


def test_registry_and_bad_inputs(tmp_path):
    assert benchmark_key("Charades-STA") == "charades" and benchmark_key("ANet") == "activitynet"
    with pytest.raises(InputError, match="unknown benchmark"):
        load_benchmark("nope", tmp_path / "x.json")
    with pytest.raises(InputError, match="not found"):
        load_benchmark("charades", tmp_path / "missing.json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_benchmark("charades", _write(tmp_path / "bad.json", "{"))
    with pytest.raises(InputError, match="missing field 'timestamps'"):
        load_benchmark("charades", _write(tmp_path / "c.json", {"v": {"duration": 3, "sentences": []}}))
    with pytest.raises(InputError, match="row 2"):
        load_benchmark("qvhighlights", _write(tmp_path / "q.jsonl", '{"qid": 1, "vid": "a", "query": "q",'
                                              ' "duration": 9}\n{"qid": 2}\n'))
    with pytest.raises(InputError, match="videos folder"):
        load_benchmark("charades", tmp_path / "c.json", tmp_path / "no_such_dir")
