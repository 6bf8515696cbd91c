"""The web page's pure parts: events -> steps, the timeline's element contract, the input checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grounder.errors import InputError
from groundqa.web.inputs import parse_options, pick_video, resolve_path
from groundqa.web.render import StepLog, frame_captions, timeline_html

EVENTS = [  # what Agent.stream yields for one coarse-to-fine question (node events left out)
    {"type": "plan", "queries": ["q1", "q2"], "planner": "rewrite"},
    {"type": "round", "round": 0, "query": "q1", "strategy": "coarse-to-fine", "top_k": 5, "max_calls": 160},
    {"type": "coarse", "round": 0, "seconds": 0.5, "frames_embedded": 700, "from_cache": False,
     "windows": [{"start": 40.0, "end": 64.0, "score": 0.9}, {"start": 300.0, "end": 316.0, "score": 0.2}]},
    {"type": "window", "round": 0, "call": 1, "start": 40.0, "end": 48.0, "frames": 16, "confidence": 0.9, "level": 1},
    {"type": "window", "round": 0, "call": 2, "start": 48.0, "end": 56.0, "frames": 16, "confidence": 0.1, "level": 1},
    {"type": "candidates", "round": 0, "query": "q1", "segments": [{"start": 41.0, "end": 47.0, "score": 0.8}]},
    {"type": "decide", "round": 0, "confidence": 0.8, "decision": "answer", "reason": "confidence 0.800 >= 0.5"},
    {"type": "qa", "segments": [{"start": 41.0, "end": 47.0, "score": 0.8}]},
    {"type": "answer", "answer": "white", "choice": "B", "confidence": 0.4, "segments": []},
]


def test_steps_follow_the_agent_and_say_what_each_took():
    log = StepLog()
    times = [0.1, 0.2, 0.7, 0.9, 1.2, 1.2, 1.3, 1.3, 1.8]
    assert all(log.add(ev, now=t) for ev, t in zip(EVENTS, times))
    assert not log.add({"type": "node", "node": "plan"}, now=1.9)  # not a step
    kinds = [s.kind for s in log.steps]
    assert kinds == ["plan", "coarse", "zoom", "found", "decide", "qa", "answer"]
    zoom = log.steps[2]
    assert zoom.text.startswith("2 model calls") and "48.0–56.0 s" in zoom.text  # one step that grows
    assert zoom.seconds == pytest.approx(0.5)  # both calls: 0.7 -> 0.9 -> 1.2
    assert log.steps[1].seconds == pytest.approx(0.5)  # retrieval: from the round's start to its report
    assert log.steps[5].seconds == pytest.approx(0.5)  # QA: until the answer arrived
    assert log.coarse_windows == EVENTS[2]["windows"]
    html = log.html(running=False)
    assert html.count("<li data-step=") == 7 and "working" not in html
    assert "working" in log.html(running=True)


def test_a_second_round_is_its_own_steps():
    log = StepLog()
    for ev in EVENTS[:5]:
        log.add(ev, now=0.0)
    log.add({"type": "round", "round": 1, "query": "q2", "strategy": "coarse-to-fine"}, now=0.0)
    log.add({**EVENTS[3], "round": 1}, now=0.0)
    assert [s.title for s in log.steps][-2:] == ["Round 1 · zoom", "Round 2 · zoom"]


def test_timeline_segments_carry_their_times_and_stay_inside_the_bar():
    segs = [{"start": 590.0, "end": 640.0, "score": 0.9}, {"start": 10.0, "end": 10.2, "score": 0.1}]
    html = timeline_html(600.0, segs, coarse=[{"start": 5.0, "end": 20.0, "score": 0.5}],
                         truth=[[9.0, 12.0]])
    starts = re.findall(r'class="segment[^"]*"[^>]*data-start="([\d.]+)" data-end="([\d.]+)"', html)
    # each final segment twice: its block in the lane and its button in the list
    assert sorted(set(starts)) == [("10.000", "10.200"), ("590.000", "640.000")] and len(starts) == 4
    for left, width in re.findall(r'left:([\d.]+)%;width:([\d.]+)%', html):
        assert 0 <= float(left) <= 100 and float(left) + float(width) <= 100.5
    # the coarse windows and the truth are drawn, but are not seek targets
    assert 'class="coarse"' in html and 'class="truth"' in html
    assert not re.search(r'class="(coarse|truth)"[^>]*data-start', html)
    assert "no segment found" in timeline_html(600.0, [])


def test_frame_captions_spread_evenly_when_there_are_too_many():
    times = [float(i) for i in range(100)]
    picked = frame_captions(times, 5)
    assert picked[0] == 0.0 and picked[-1] == 99.0 and len(picked) == 5
    assert frame_captions(times[:3], 5) == times[:3]


def test_options_box_one_per_line():
    assert parse_options("") is None and parse_options(" \n ") is None
    assert parse_options("red\n\n  light   blue \n") == ["red", "light blue"]
    assert parse_options("(A) red\nB. blue\nC) green") == ["red", "blue", "green"]


def test_server_paths_stay_inside_the_allowed_folders(tmp_path: Path):
    allowed = tmp_path / "videos"
    allowed.mkdir()
    (allowed / "a.mp4").write_bytes(b"x")
    (tmp_path / "secret.mp4").write_bytes(b"x")
    (allowed / "link.mp4").symlink_to(tmp_path / "secret.mp4")
    assert resolve_path(str(allowed / "a.mp4"), [allowed]) == allowed / "a.mp4"
    assert resolve_path("a.mp4", [allowed]) == allowed / "a.mp4"  # relative: to the first folder
    for bad, msg in [(str(tmp_path / "secret.mp4"), "outside the folders"),
                     (str(allowed / ".." / "secret.mp4"), "outside the folders"),
                     (str(allowed / "link.mp4"), "outside the folders"),  # a link out is refused
                     (str(allowed / "nope.mp4"), "no such file"),
                     (str(allowed), "not a file")]:
        with pytest.raises(InputError, match=msg):
            resolve_path(bad, [allowed])
    with pytest.raises(InputError, match="--allow-dir"):
        resolve_path("a.mp4", [])
    with pytest.raises(InputError, match="no video"):
        pick_video(None, "  ", [allowed])
    assert pick_video("/up/x.mp4", "", [allowed]) == Path("/up/x.mp4")
    assert pick_video("/up/x.mp4", "a.mp4", [allowed]) == allowed / "a.mp4"  # the typed path wins
