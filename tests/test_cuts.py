"""Scene cuts (pure), and queries anchored on them: "when does X enter right after the scene turns Y"
retrieves the appearance of X that follows a cut, on a real synthetic video with the shipped
retriever."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grounder.backends import DEFAULT_MODEL_DIR
from grounder.budget import ScanBudget, read_scan_config
from grounder.cuts import (
    after_cut_weights,
    frame_changes,
    names_scene_change,
    scene_cuts,
    thumbnails,
)
from grounder.errors import InputError
from grounder.retrieval import Candidate


def test_which_queries_name_a_scene_change():
    for q in ("when does the red cross enter right after the scene turns grey?",
              "what colour is the circle that enters right after the scene turns dark?",
              "who speaks just after the shot changes", "what happens after the cut?",
              "When does the dog bark immediately after the background becomes white"):
        assert names_scene_change(q), q
    for q in ("when does the red cross enter from the left?", "what shape enters right after the red cross leaves?",
              "when is the grey scene on screen?", "the scene after which the dog barks", "after the cutting board"):
        assert not names_scene_change(q), q


def frames_of(backgrounds, square_at):
    """64 x 64 frames of a flat background with a 16-px white square moving along the top."""
    out = np.zeros((len(backgrounds), 64, 64, 3), np.uint8)
    for i, (bg, x) in enumerate(zip(backgrounds, square_at)):
        out[i] = bg
        out[i, 4:20, x:x + 16] = 255
    return out


def test_a_new_background_is_a_cut_a_moving_thing_is_not():
    f = frames_of([40, 40, 40, 200, 200], [0, 10, 20, 30, 40])
    ch = frame_changes(f)
    assert ch[0] == 0.0 and ch[1] == 0.0 and ch[2] == 0.0  # the square moved: the median pixel did not
    assert ch[3] == pytest.approx(160.0) and ch[4] == 0.0
    # across batches: the first frame of a batch is compared with the last of the one before
    assert frame_changes(f[3:], previous=thumbnails(f[2:3])[0])[0] == pytest.approx(160.0)
    assert thumbnails(f).shape == (5, 32, 32) and thumbnails(np.zeros((2, 8, 10, 3), np.uint8)).shape == (2, 8, 8)
    times = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    assert scene_cuts(times, ch).tolist() == [6.0]  # half-way between the last old and the first new frame
    assert scene_cuts(times, ch, threshold=200.0).tolist() == []


def test_after_cut_weights_keep_the_moments_shortly_after_a_cut():
    t = np.arange(0.0, 100.0, 2.0)
    w = after_cut_weights(t, np.array([50.0, 20.0]), within=10.0, floor=0.1)
    kept = t[w == 1.0].tolist()
    assert kept == [20.0, 22.0, 24.0, 26.0, 28.0, 30.0, 50.0, 52.0, 54.0, 56.0, 58.0, 60.0]
    assert set(w[w != 1.0].tolist()) == {0.1}
    assert after_cut_weights(t, np.zeros(0), within=10.0).tolist() == [1.0] * len(t)  # no cut: no anchor


def test_anchor_settings_are_checked():
    with pytest.raises(InputError):
        ScanBudget(retrieval_anchor_floor=0.0)
    with pytest.raises(InputError):
        ScanBudget(retrieval_after_cut_s=-1.0)
    with pytest.raises(InputError):
        ScanBudget(retrieval_cut_threshold=0.0)
    c = Candidate(0.0, 16.0, 8.0, 0.8, (6.0, 10.0), anchor=0.05)
    assert c.score_in(0.0, 16.0) == pytest.approx(0.04) and c.to_dict()["anchor"] == 0.05


@pytest.fixture(scope="module")
def retriever(tmp_path_factory):
    """The shipped retriever with one cache for the module (the world's video is indexed once)."""
    from grounder.retrieval import Retriever

    return Retriever.load(DEFAULT_MODEL_DIR / "retriever", cache_dir=tmp_path_factory.mktemp("cuts_cache"))


@pytest.fixture(scope="module")
def scene_world(synth_world):
    """The 10-minute world with one scene change and one "right after the scene turns" row."""
    ann = synth_world(1, 10, 3)
    rows = [json.loads(line) for line in ann.read_text().splitlines()]
    row = next(r for r in rows if r.get("qtype") == "enter_after_scene")
    spec = json.loads((ann.parent / "specs" / "v0000.json").read_text())
    return ann.parent / row["video"], row, [s["start"] for s in spec["scenes"][1:]]


def test_the_index_finds_the_world_s_scene_changes(scene_world, retriever):
    video, _, truth = scene_world
    index = retriever.index(video, fps=0.5, max_pixels=112 * 112)  # the scan's settings: built once here
    cuts = scene_cuts(index.times, index.changes)
    assert len(cuts) == len(truth) >= 1
    assert np.abs(cuts - np.array(truth)).max() <= 1.0  # within half the 2-s sampling step
    again = retriever.index(video, fps=0.5, max_pixels=112 * 112)
    assert again.from_cache and again.changes.tolist() == index.changes.tolist()


def test_right_after_the_scene_turns_retrieves_the_appearance_after_the_cut(scene_world, retriever):
    video, row, truth = scene_world
    budget = ScanBudget(**read_scan_config(DEFAULT_MODEL_DIR))
    got = retriever.retrieve(video, row["query"], budget)
    start = row["spans"][0][0]
    top = got.candidates[0]
    assert top.start <= start <= top.end and top.anchor == 1.0
    assert got.cuts is not None and np.abs(got.cuts - np.array(truth)).max() <= 1.0
    assert got.to_dict()["anchor"]["kind"] == "after scene cut"
    assert all(c.anchor == 1.0 or c.anchor == budget.retrieval_anchor_floor for c in got.candidates)
    # a query that does not name a scene change is not anchored
    plain = retriever.retrieve(video, row["query"].split(" right after")[0] + "?", budget)
    assert plain.cuts is None and all(c.anchor == 1.0 for c in plain.candidates)
