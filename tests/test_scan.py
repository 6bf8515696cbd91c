"""Scan logic: time conversion, window arithmetic, budgets, and the coarse-to-fine decisions.

The decision test scripts the model's text (a callable backend); everything that runs a model
for real lives in test_grounder.py.
"""

from __future__ import annotations

import math

import pytest
from conftest import ScriptedVLM

from evals.synthetic import generate_world
from grounder.errors import InputError
from grounder.grounder import Grounder
from grounder.scan import ScanBudget, plan_windows, planned_calls, refine, to_absolute
from grounder.video import open_video
from grounder.windows import Window, zoom, zoom_lengths


@pytest.fixture(scope="module")
def ten_minutes(tmp_path_factory):
    out = tmp_path_factory.mktemp("scan_world")
    rows = generate_world(out, n_videos=1, minutes=(10, 10), seed=3)
    with open_video(out / rows[0]["video"]) as reader:
        yield reader


# -- the one time conversion -----------------------------------------------------------------
def test_to_absolute_adds_the_window_start_and_clips_to_the_window():
    w = Window(100.0, 116.0, 32)
    assert to_absolute((2.0, 5.5), w) == (102.0, 105.5)
    assert to_absolute((-3.0, 40.0), w) == (100.0, 116.0)  # outside the window: clipped
    assert to_absolute((9.0, 4.0), w) == (104.0, 109.0)  # swapped ends ordered


def test_refine_keeps_the_parent_end_where_the_zoom_hits_its_edge():
    w = Window(100.0, 116.0, 32)  # one frame interval = 0.5 s
    assert refine((90.0, 130.0), (100.2, 115.9), w) == (90.0, 130.0)  # long event: both sides
    assert refine((104.0, 108.0), (104.5, 107.5), w) == (104.5, 107.5)  # inside: the zoom wins
    assert refine((95.0, 108.0), (100.0, 107.0), w) == (95.0, 107.0)
    assert refine(None, (101.0, 102.0), w) == (101.0, 102.0)


# -- window arithmetic -------------------------------------------------------------------------
def test_zoom_lengths_halve_to_the_fine_window():
    assert zoom_lengths(128.0, 16.0) == [64.0, 32.0, 16.0]
    assert zoom_lengths(52.0, 16.0) == [26.0, 16.0]
    assert zoom_lengths(10.0, 16.0) == [10.0]  # short window: one fine look at all of it
    assert zoom_lengths(0.0, 16.0) == []


def test_zoom_max_length_caps_around_the_span():
    assert zoom((40.0, 60.0), 100.0, 0.5, 10.0, max_length=30.0) == (35.0, 65.0)
    assert zoom((50.0, 50.0), 1000.0, 0.25, 64.0) == (18.0, 82.0)  # a point: centred window


def test_planned_windows_per_strategy():
    b = ScanBudget()
    (u, px) = plan_windows(900.0, "uniform", b)[0]
    assert (u.start, u.end, u.num_frames, px) == (0.0, 900.0, 32, b.fine_max_pixels)
    sliding = plan_windows(900.0, "sliding", b)
    assert len(sliding) == math.ceil(900 / 16) and all(w.fps == pytest.approx(2.0) for w, _ in sliding)
    assert sliding[0][0].start == 0.0 and sliding[-1][0].end == 900.0
    coarse = plan_windows(900.0, "coarse-to-fine", b)
    assert [w.length for w, _ in coarse[:-1]] == [128.0] * 7 and coarse[-1][0].end == 900.0
    assert {px for _, px in coarse} == {b.coarse_max_pixels}
    # coarse-to-fine calls: coarse windows + top_k chains x 3 zoom levels
    assert planned_calls(900.0, "coarse-to-fine", b) == 8 + 3 * 3
    assert planned_calls(7200.0, "coarse-to-fine", b) == 57 + 9
    assert planned_calls(7200.0, "sliding", b) == 450


def test_default_budget_meets_the_token_targets_by_construction():
    """The docstring's arithmetic: coarse 0.5 tok/s, zoom 2304 tokens, sliding 16 tok/s."""
    b = ScanBudget()
    t_coarse, t_fine = 4, 16  # tokens per frame pair at 56x56 and at the synthetic 112x112

    def c2f(d):
        coarse = sum(w.num_frames for w, _ in plan_windows(d, "coarse-to-fine", b)) / 2 * t_coarse
        return coarse + b.top_k * b.zoom_calls(128.0) * b.frames_per_call / 2 * t_fine

    def sliding(d):
        return sum(w.num_frames for w, _ in plan_windows(d, "sliding", b)) / 2 * t_fine

    assert c2f(7200) / c2f(900) <= 2.5
    assert c2f(7200) / sliding(7200) <= 0.2
    assert sliding(7200) / sliding(900) == pytest.approx(8.0)


def test_auto_coarse_window_widens_only_past_max_calls():
    b = ScanBudget()
    assert b.coarse_window(7200.0) == 128.0
    long = b.coarse_window(6 * 3600.0)
    assert long > 128.0 and math.ceil(6 * 3600.0 / long) + 9 <= b.max_calls
    assert ScanBudget(coarse_window_s=60.0).coarse_window(7200.0) == 60.0


@pytest.mark.parametrize("kwargs", [
    {"max_calls": 0}, {"frames_per_call": 1}, {"target_fps": 0.0}, {"zoom_margin": -1.0},
    {"coarse_window_s": -5.0}, {"max_new_tokens": 2},
])
def test_bad_budgets_are_input_errors(kwargs):
    with pytest.raises(InputError):
        ScanBudget(**kwargs)


# -- decisions, with scripted model text -------------------------------------------------------
EVENT = (400.0, 405.0)  # absolute seconds, inside the 4th coarse window [384, 512]


def Scripted() -> ScriptedVLM:
    """A window containing EVENT gets its window-relative span at confidence 0.9, others 0.05."""
    return ScriptedVLM(EVENT, 0.9, 0.05)


def test_coarse_to_fine_zooms_into_the_confident_window(ten_minutes):
    backend = Scripted()
    result = Grounder(backend).ground(ten_minutes, "when does the red circle enter")
    trace = result.trace
    coarse = [s for s in trace if s.level == 0]
    assert [(s.window_start, s.window_end) for s in coarse] == [
        (0.0, 128.0), (128.0, 256.0), (256.0, 384.0), (384.0, 512.0), (512.0, 600.0)]
    hit = coarse[3]
    assert hit.span_relative == pytest.approx((16.0, 21.0)) and hit.span == pytest.approx(EVENT)
    # The confident window's chain: 64 -> 32 -> 16 s windows around the event, parent links.
    chain = [hit]
    while (child := next((s for s in trace if s.parent == chain[-1].index), None)) is not None:
        chain.append(child)
    assert [round(s.window_end - s.window_start, 6) for s in chain[1:]] == [64.0, 32.0, 16.0]
    for step in chain[1:]:
        assert step.window_start <= EVENT[0] and EVENT[1] <= step.window_end
        assert step.span == pytest.approx(EVENT)  # relative answer -> absolute, every level
        assert step.span_relative == pytest.approx((EVENT[0] - step.window_start,
                                                    EVENT[1] - step.window_start))
        assert len(step.frame_times) == 32 and step.max_pixels == ScanBudget().fine_max_pixels
    assert [s.level for s in chain] == [0, 1, 2, 3]
    # The best segment is the event, with the closest look's confidence.
    best = result.segments[0]
    assert (best.start, best.end) == pytest.approx(EVENT) and best.score == pytest.approx(0.9)
    assert len(result.segments) == 1  # the runner-up chains found nothing
    # Fixed zoom allotment: 5 coarse + 3 chains x 3 levels.
    assert result.cost.model_calls == len(trace) == 5 + 9 == len(backend.requests)
    assert result.cost.visual_tokens == sum(s.visual_tokens for s in trace)
    # The model saw window-relative frame times: requests carry the window origin.
    for req in backend.requests:
        assert req.window_start <= req.timestamps[0] and req.timestamps[-1] <= req.window_end


def test_max_calls_cuts_the_zoom_stage(ten_minutes):
    result = Grounder(Scripted()).ground(ten_minutes, "red circle", budget=ScanBudget(max_calls=7))
    assert result.cost.model_calls == 7
    assert any("max_calls=7" in w for w in result.warnings)
    # Chains advance level by level, best first: the event's chain got its first zoom.
    assert result.segments and result.segments[0].start == pytest.approx(EVENT[0])


def test_proposals_seed_extra_chains(ten_minutes):
    result = Grounder(Scripted()).ground(ten_minutes, "red circle", proposals=[(398.0, 407.0)])
    seeded = [s for s in result.trace if s.level == 1 and s.parent is None]
    assert len(seeded) == 1 and seeded[0].window_start <= 398.0 and seeded[0].window_end >= 407.0
    assert result.segments[0].start == pytest.approx(EVENT[0])


def test_uniform_and_sliding_map_spans_to_absolute_time(ten_minutes):
    g = Grounder(Scripted())
    sliding = g.ground(ten_minutes, "red circle", strategy="sliding")
    assert sliding.cost.model_calls == math.ceil(600 / 16)
    assert [(s.start, s.end) for s in sliding.segments] == [pytest.approx(EVENT)]
    uniform = g.ground(ten_minutes, "red circle", strategy="uniform")
    assert uniform.cost.model_calls == 1 and uniform.segments[0].start == pytest.approx(EVENT[0])
