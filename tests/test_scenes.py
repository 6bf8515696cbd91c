"""`trainer.scenes` and `groundqa data scenes`: stitched real clips with known cuts, a fade, bad input."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest

from groundqa.cli import main
from trainer.scenes import detect_scenes

FPS, W, H = 25, 320, 180
# (clip, start s, end s): cuts land at 3.0, 5.5 and 7.0 s. The bikes stretch lies between
# its own shot changes at 1.20 and 3.04 s, so it adds no cut of its own.
PLAN = [("bigbuckbunny", 0.0, 3.0), ("carphone_pristine", 0.0, 2.5), ("bikes", 1.4, 2.9),
        ("bigbuckbunny", 3.0, 5.0)]
CUTS = [3.0, 5.5, 7.0]


def _encode(path, frames) -> None:
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"preset": "ultrafast", "g": "50"}
        for k, rgb in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(W, H, "yuv420p")
            f.pts, f.time_base = k, Fraction(1, FPS)
            out.mux(s.encode(f))
        out.mux(s.encode(None))


@pytest.fixture(scope="module")
def stitched(shared_data, tmp_path_factory):
    from grounder.video import open_video

    frames = []
    for name, a, b in PLAN:
        with open_video(shared_data / "videos" / f"{name}.mp4") as r:
            f, _ = r.sample(a + np.arange(round((b - a) * FPS)) / FPS)
        frames += [av.VideoFrame.from_ndarray(x, format="rgb24").reformat(W, H, "rgb24").to_ndarray() for x in f]
    path = tmp_path_factory.mktemp("scenes") / "stitched.mp4"
    _encode(path, frames)
    return path


def test_stitched_real_clips_all_cuts_no_false_ones(stitched):
    r = detect_scenes(stitched)
    assert len(r.cuts) == len(CUTS), r.cuts
    for got, want in zip(r.cuts, CUTS, strict=True):
        assert abs(got - want) <= 0.5
        assert abs(got - want) < 0.5 / FPS  # refinement lands on the exact first frame
    assert r.coarse_frames < r.duration * 2 + 2  # the coarse pass ran at 2 fps, not 25
    assert r.scenes[0].start == 0.0 and r.scenes[-1].end == pytest.approx(r.duration)


def test_fade_is_not_cut_into_many_scenes(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (H // 20, W // 20, 3)).repeat(20, 0).repeat(20, 1).astype(np.float32)
    b = rng.integers(0, 256, (H // 20, W // 20, 3)).repeat(20, 0).repeat(20, 1).astype(np.float32)
    frames = [a] * 50 + [a + (b - a) * k / 75 for k in range(1, 76)] + [b] * 50  # 2 s, 3 s fade, 2 s
    path = tmp_path / "fade.mp4"
    _encode(path, [f.astype(np.uint8) for f in frames])
    r = detect_scenes(path)
    # A dissolve is not a hard cut: its change is spread over many small steps (documented).
    assert len(r.scenes) <= 2, r.cuts


def test_cli_writes_valid_json_and_thumbnails(capsys, stitched, tmp_path):
    out = tmp_path / "out"
    code = main(["data", "scenes", str(stitched), "--out", str(out), "--json"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(stdout)
    [row] = summary["videos"]
    assert row["num_scenes"] == len(CUTS) + 1
    doc = json.loads((out / "stitched.scenes.json").read_text())
    assert [s["start"] for s in doc["scenes"][1:]] == doc["cuts"]
    for s in doc["scenes"]:
        assert set(s) >= {"start", "end", "thumbnail"} and s["start"] < s["end"]
        assert (out / s["thumbnail"]).read_bytes()[:2] == b"\xff\xd8"  # JPEG
    assert not list(out.glob(".*tmp"))  # atomic writes left no temp files


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_cli_bad_input_is_one_line_error(capsys, tmp_path, kind):
    video = tmp_path / "bad.mp4"
    if kind == "corrupt":
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)
    code = main(["data", "scenes", str(video), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "bad.scenes.json").exists()


def test_cli_refuses_two_videos_of_one_name_and_checks_every_file_first(capsys, stitched, tmp_path):
    import shutil

    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(stitched, tmp_path / d / "clip.mp4")
    out = tmp_path / "out"
    code = main(["data", "scenes", str(tmp_path / "a" / "clip.mp4"), str(tmp_path / "b" / "clip.mp4"), "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1 and "share the name 'clip'" in err
    assert not out.exists()  # refused before any work
    # a good file then a corrupt one: the corrupt one is found before the good one is processed
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)
    code = main(["data", "scenes", str(tmp_path / "a" / "clip.mp4"), str(tmp_path / "bad.mp4"), "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert not (out / "clip.scenes.json").exists()
