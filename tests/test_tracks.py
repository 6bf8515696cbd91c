"""Presence curves (pure): when a named thing comes and goes, and which edge it is nearest."""

from __future__ import annotations

import numpy as np

from grounder.tracks import (
    crossing,
    crossing_event,
    edge_side,
    falls,
    first_entry_after,
    named_crossing,
    nearest_side,
    onset,
    rises,
    smooth,
)


def test_rises_and_falls_need_the_other_side_before_them():
    p = [0.9, 0.9, 0.1, 0.0, 0.7, 0.8, 0.9, 0.2, 0.1]
    assert rises(p).tolist() == [4]  # the thing on screen at the start never "entered" here
    assert falls(p).tolist() == [1, 6]
    assert rises([0.6, 0.7]).tolist() == [] and falls([0.2]).tolist() == []


def test_hold_ignores_a_flicker():
    p = [0.0, 0.0, 0.0, 0.9, 0.9, 0.2, 0.9, 0.9, 0.9, 0.0, 0.0, 0.0]
    assert rises(p).tolist() == [3, 6] and falls(p).tolist() == [4, 8]
    assert rises(p, hold=2).tolist() == [3] and falls(p, hold=2).tolist() == [8]
    assert rises(p, hold=3).tolist() == [] and falls(p, hold=3).tolist() == [8]


def test_onset_walks_back_over_the_trace_of_a_thing_coming_in():
    p = [0.0, 0.05, 0.2, 0.3, 0.4, 0.9, 0.9]
    assert onset(p, 5) == 2
    assert onset(p, 5, most=2) == 3  # at most `most` clips back
    assert onset(p, 5, level=0.5) == 5


def test_first_entry_after_orders_by_onset():
    t = np.arange(10) * 0.5
    p = [0.0, 0.0, 0.0, 0.2, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    assert first_entry_after(t, p, after=1.0) == (3, 4)
    assert first_entry_after(t, p, after=1.6) is None  # it started to show at 1.5 s
    assert first_entry_after(t, [0.0] * 10, after=0.0) is None


def test_nearest_side():
    assert nearest_side(0.05, 0.5) == "left" and nearest_side(0.97, 0.4) == "right"
    assert nearest_side(0.5, 0.02) == "top" and nearest_side(0.4, 0.9) == "bottom"
    assert edge_side(0.05, 0.5) == "left" and edge_side(0.68, 0.68) is None  # mid-frame: no verdict


def test_crossing_reads_a_flickering_curve_and_lands_on_a_seen_clip():
    # half hidden while leaving: raw presence dips under 0.5 before the thing is really gone
    p = [0.9, 0.95, 0.9, 0.77, 0.46, 0.52, 0.22, 0.01, 0.0, 0.0, 0.0]
    assert falls(p, hold=3).tolist() == []  # raw: no clean fall
    i = crossing(p, "leave")
    assert i == 5 and p[i] >= 0.5  # the last clip it is seen on, where its position is read
    assert crossing(p[::-1], "enter") == len(p) - 1 - 5
    assert crossing([0.0] * 8, "enter") is None and crossing([0.9] * 8, "leave") is None
    assert smooth([0.0, 3.0, 0.0]).tolist() == [1.0, 1.0, 1.0] and smooth([1.0, 2.0], 1).tolist() == [1.0, 2.0]


def test_named_crossing_is_one_thing_crossing_one_side():
    assert named_crossing("when does the red cross enter from the left?") == ("enter", "left")
    assert named_crossing("The blue star leaves through the top edge") == ("leave", "top")
    assert named_crossing("when does the red cross enter?") is None
    assert crossing_event("when does the red cross enter?") == ("the red cross", "enter", None)
    assert crossing_event("The orange triangle disappears through the top edge") == ("the orange triangle", "leave", "top")
    # the side belongs to the anchor, not to the thing asked about
    assert named_crossing("when does the shape enter after the red star leaves through the bottom") is None
