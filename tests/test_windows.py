"""Window arithmetic of the scan strategies."""

import pytest

from grounder.windows import Window, sliding_windows, tile, uniform_windows, zoom


def test_window_frame_times_are_slice_starts():
    """Frame i at start + i / fps: where a video processor puts frame i of a clip of the window's
    frames (tests/test_transformers_serve.py checks the token ids both ways)."""
    w = Window(10.0, 18.0, 4)
    assert w.times() == [10.0, 12.0, 14.0, 16.0]
    assert w.fps == 0.5


def test_uniform_is_one_call():
    (w,) = uniform_windows(3600.0, 16)
    assert (w.start, w.end, w.num_frames) == (0.0, 3600.0, 16)


def test_tile_covers_without_gaps_or_overlap():
    ws = tile(100.0, 30.0, 12)
    assert [(w.start, w.end) for w in ws] == [(0, 30), (30, 60), (60, 90), (90, 100)]
    assert [w.num_frames for w in ws] == [12, 12, 12, 4]  # same rate in the short tail
    assert tile(60.0, 30.0, 8)[-1].end == 60.0 and len(tile(60.0, 30.0, 8)) == 2
    assert tile(0.0, 30.0, 8) == []


def test_sliding_cost_grows_linearly_with_length():
    f15 = sum(w.num_frames for w in sliding_windows(900, fps=1.0, frames_per_call=16))
    f120 = sum(w.num_frames for w in sliding_windows(7200, fps=1.0, frames_per_call=16))
    assert f15 == 900 and f120 == 7200


@pytest.mark.parametrize("span, want", [
    ((40, 60), (30.0, 70.0)),  # 50 % margin each side
    ((0, 4), (0.0, 30.0)),  # minimum length, pushed inside the video
    ((95, 100), (70.0, 100.0)),
    ((60, 40), (30.0, 70.0)),  # swapped ends
    ((40, 50), (30.0, 60.0)),  # too short after the margin: centred minimum
])
def test_zoom(span, want):
    assert zoom(span, duration=100.0, margin=0.5, min_length=30.0) == want
