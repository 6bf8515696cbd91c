"""Retrieve, then ground: candidate windows from a score curve (pure), and the scan's closer looks
inside them (with a scripted VLM); the grounder picks up a model folder's own retriever."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import ScriptedVLM

from grounder.errors import InputError, ModelError
from grounder.grounder import Grounder, resolve_retriever
from grounder.odds import logit
from grounder.retrieval import (
    Candidate,
    Retrieved,
    candidate_windows,
    normalise_curve,
    retrieval_text,
    sharpen,
)
from grounder.scan import ScanBudget, combine, run_scan

# -- candidate windows (pure) ---------------------------------------------------------------------


def curve(duration=600.0, fps=0.5, bumps=()):
    t = (np.arange(int(duration * fps)) + 0.5) / fps
    s = np.full_like(t, 0.01)
    for a, b, v in bumps:
        s[(t >= a) & (t <= b)] = v
    return t, s


def test_candidate_windows_are_peaks_grown_by_a_margin_best_first():
    t, s = curve(bumps=[(100, 120, 0.9), (300, 304, 0.95), (500, 502, 0.3)])
    cands = candidate_windows(t, s, 5, duration=600.0, margin=8.0, min_length=16.0, max_length=64.0)
    assert [round(c.peak) for c in cands[:3]] == [301, 101, 501]  # best score first
    best = cands[0]
    assert best.run == (301.0, 303.0) and (best.start, best.end) == (293.0, 311.0)  # run +- 8 s
    assert cands[1].run == (101.0, 119.0) and (cands[1].start, cands[1].end) == (93.0, 127.0)
    third = cands[2]  # a one-frame run: the window is min_length long, centred on it
    assert third.end - third.start == pytest.approx(16.0) and third.start < 501.0 < third.end
    assert len(cands) == 5  # always k windows (recall), at k different places
    for a in cands:
        for b in cands:
            assert a is b or a.end <= b.start or b.end <= a.start or a.peak != b.peak


def test_candidate_windows_stay_inside_the_video_and_cap_long_runs():
    t, s = curve(duration=100.0, bumps=[(0, 99, 0.9)])
    (c,) = candidate_windows(t, s, 1, duration=100.0, max_length=64.0)
    assert c.end - c.start == pytest.approx(64.0) and 0.0 <= c.start and c.end <= 100.0
    t, s = curve(duration=10.0, bumps=[(0, 10, 0.9)])
    (c,) = candidate_windows(t, s, 3, duration=10.0)
    assert (c.start, c.end) == (0.0, 10.0)  # a video shorter than a window: all of it, once
    assert candidate_windows(np.zeros(0), np.zeros(0), 3, duration=5.0) == []
    with pytest.raises(InputError):
        candidate_windows(t, s[:-1], 3, duration=10.0)
    with pytest.raises(InputError):
        candidate_windows(t, s, 0, duration=10.0)


def test_sharpen_finds_where_the_profile_crosses_half_its_peak():
    c = Candidate(90.0, 130.0, 101.0, 0.8, (99.0, 121.0))
    t = np.arange(90.0, 130.0, 0.5)
    p = np.where((t >= 100.0) & (t <= 118.0), 1.0, 0.0)
    out = sharpen(c, t, p)
    assert out.run == pytest.approx((99.75, 118.25))  # half-way between the last 0 and the first 1
    assert out.score == 1.0 and (out.start, out.end) == (c.start, c.end)
    assert out.score_in(95.0, 105.0) == 1.0 and out.score_in(121.0, 129.0) == 0.0
    assert c.score_in(0.0, 1.0) == 0.8  # no profile: the candidate's own score
    assert sharpen(c, np.zeros(0), np.zeros(0)) is c


def test_normalise_curve_and_retrieval_text():
    x = normalise_curve(np.array([0.1, 0.1, 0.1, 0.3, 0.2]))
    assert x.tolist() == pytest.approx([0.0, 0.0, 0.0, 1.0, 0.5])
    assert retrieval_text("When does the red cross enter from the bottom?") == "the red cross enter from the bottom"
    assert retrieval_text("when is the blue star on screen") == "the blue star on screen"
    assert retrieval_text("the speaker shows a chart.") == "the speaker shows a chart"


def test_logit_is_log_odds_clipped_away_from_0_and_1():
    assert logit(0.5) == 0.0 and logit(0.9) == pytest.approx(np.log(9.0))
    assert logit(np.array([0.1, 0.9])).tolist() == pytest.approx([-np.log(9.0), np.log(9.0)])
    assert logit(1.0) == pytest.approx(np.log((1 - 1e-6) / 1e-6)) and np.isfinite(logit(0.0))
    assert logit(1.0, eps=1e-9) > logit(1.0)


def test_combine_needs_both_to_agree():
    assert combine(0.9, None, 0.5) == 0.9 and combine(0.9, 0.1, 0.0) == 0.9
    assert combine(0.9, 0.9, 0.5) == pytest.approx(0.9)
    assert combine(0.99, 0.2, 0.5) < combine(0.9, 0.9, 0.5)
    assert combine(0.99, 0.9, 0.5) > combine(0.95, 0.9, 0.5)  # confidences near 1 still rank


# -- the scan's looks, with a scripted VLM ----------------------------------------------------------

EVENT = (402.0, 405.0)


def Scripted() -> ScriptedVLM:
    """The event's window-relative span at confidence 0.95 when a look holds it, else 0.05."""
    return ScriptedVLM(EVENT, 0.95, 0.05)


@pytest.fixture(scope="module")
def reader(synth_world):
    from grounder.video import open_video

    ann = synth_world(1, 10, 3)
    row = json.loads(ann.read_text().splitlines()[0])
    with open_video(ann.parent / row["video"]) as r:
        yield r


def retrieved(*cands):
    return Retrieved(list(cands), "scripted", 0.5, 40, 0.25, False)


def test_looks_are_short_and_centred_where_the_thing_appears_and_goes(reader):
    backend = Scripted()
    long_run = Candidate(390.0, 440.0, 410.0, 0.9, (403.5, 430.0))  # the event's object
    short_run = Candidate(100.0, 116.0, 108.0, 0.95, (107.0, 109.0))  # a look-alike, briefly
    budget = ScanBudget(frames_per_call=16, target_fps=2.0)  # looks of 8 s
    result = run_scan(reader, "red cross", backend, "coarse-to-fine", budget, retrieved=retrieved(long_run, short_run))
    looks = [(s.window_start, s.window_end) for s in result.trace]
    assert looks == [(399.5, 407.5), (426.0, 434.0), (104.0, 112.0)]  # run ends, then a short run's middle
    assert all(len(s.frame_times) == 16 for s in result.trace)
    best = result.segments[0]
    assert (best.start, best.end) == pytest.approx(EVENT)  # the VLM's span, in absolute time
    assert best.score == pytest.approx(combine(0.95, 0.9, budget.retrieval_weight))
    # looks that found nothing leave their run, at the low score their confidence earns
    assert any((s.start, s.end) == pytest.approx((107.0, 109.0)) for s in result.segments[1:])
    assert all(s.score < best.score for s in result.segments[1:])
    c = result.cost
    assert c.model_calls == 3 and c.embedder_frames == 40 and c.embedder_seconds == pytest.approx(0.25)
    assert c.seconds >= 0.25 and result.to_dict()["retrieval"]["candidates"][0]["run"] == [403.5, 430.0]


def test_without_sharpening_the_first_look_is_the_whole_window(reader):
    backend = Scripted()
    cand = Candidate(384.0, 416.0, 400.0, 0.9, (395.0, 405.0))
    budget = ScanBudget(frames_per_call=16, target_fps=2.0, retrieval_dense_fps=0.0)
    result = run_scan(reader, "red cross", backend, "coarse-to-fine", budget, retrieved=retrieved(cand))
    looks = [round(s.window_end - s.window_start, 6) for s in result.trace]
    assert looks == [32.0, 16.0, 8.0]  # the window, then zoom levels halving to the fine look
    assert result.segments[0].start == pytest.approx(EVENT[0])


def test_max_calls_and_retrieval_windows_bound_the_looks(reader):
    cands = [Candidate(100.0 * i, 100.0 * i + 40, 100.0 * i + 20, 0.5, (100.0 * i + 5, 100.0 * i + 35))
             for i in range(1, 6)]
    result = run_scan(reader, "x", Scripted(), "coarse-to-fine", ScanBudget(retrieval_windows=2),
                      retrieved=retrieved(*cands))
    assert result.cost.model_calls == 4  # two windows, two looks each
    result = run_scan(reader, "x", Scripted(), "coarse-to-fine", ScanBudget(max_calls=3), retrieved=retrieved(*cands))
    assert result.cost.model_calls == 3 and any("max_calls=3" in w for w in result.warnings)


# -- the grounder finds the model folder's own retriever -------------------------------------------

def test_a_model_folder_with_a_retriever_retrieves_then_grounds(tmp_path):
    import torch

    from grounder.dual_encoder import DualEncoder, DualEncoderConfig
    from grounder.tiny import save_tiny
    from trainer.embedder import default_tokenizer

    model = save_tiny(tmp_path / "vlm", "qwen3_vl")
    tok = default_tokenizer()
    torch.manual_seed(0)
    DualEncoder(DualEncoderConfig(channels=[8, 8, 16, 16], embed_dim=16, text_hidden=16, text_layers=1,
                                  text_heads=2, vocab_size=tok.get_vocab_size()), tok).save_pretrained(model / "retriever")
    g = Grounder.from_pretrained(model)
    assert g.retriever is not None and g.retriever.embedder.clip_offsets == (-0.5, 0.5)
    assert Grounder.from_pretrained(model, retriever="none").retriever is None
    shutil.rmtree(model / "retriever")
    assert Grounder.from_pretrained(model).retriever is None
    with pytest.raises(ModelError) as err:  # a bad retriever fails before the VLM loads
        resolve_retriever(tmp_path / "vlm", None)  # a VLM folder is not a retriever
    assert len(str(err.value).splitlines()) == 1


def test_a_measured_run_bias_moves_the_looks(reader, tmp_path):
    """The retriever's runs start early and end late (its clips reach ahead and back); the shifts
    measured on its training world move each run end, and so the look centred on it."""
    import torch

    from grounder.dual_encoder import DualEncoder, DualEncoderConfig
    from grounder.retrieval import Retriever, shift_run
    from trainer.embedder import default_tokenizer

    c = Candidate(90.0, 130.0, 101.0, 0.8, (99.0, 121.0))
    assert shift_run(c, 0.6, -0.9).run == pytest.approx((99.6, 120.1))
    assert shift_run(c, 0.0, 0.0) == c
    assert shift_run(Candidate(0.0, 16.0, 8.0, 0.5, (8.0, 8.5)), 1.0, -1.0).run == pytest.approx((8.0, 8.5))

    tok = default_tokenizer()
    torch.manual_seed(0)
    DualEncoder(DualEncoderConfig(channels=[8, 8, 16, 16], embed_dim=16, text_hidden=16, text_layers=1,
                                  text_heads=2, vocab_size=tok.get_vocab_size()), tok).save_pretrained(tmp_path / "r")
    retriever = Retriever.load(tmp_path / "r", cache_dir=tmp_path / "cache")
    plain = retriever.retrieve(reader, "the red cross enters", ScanBudget(retrieval_windows=2))
    shifted = retriever.retrieve(reader, "the red cross enters",
                                 ScanBudget(retrieval_windows=2, retrieval_onset_shift=0.5, retrieval_offset_shift=-0.5))
    assert len(plain.candidates) == 2
    for a, b in zip(plain.candidates, shifted.candidates):
        assert (b.start, b.end, b.peak) == (a.start, a.end, a.peak)
        assert b.run == pytest.approx(shift_run(a, 0.5, -0.5).run)


def test_calibration_takes_the_nearest_run_end_within_reach():
    from trainer.calibrate import nearest_error

    assert nearest_error([10.0, 50.0, 101.2], 100.6) == pytest.approx(0.6)
    assert nearest_error([10.0, 99.9, 101.0], 100.6) == pytest.approx(0.4)
    assert nearest_error([10.0, 50.0], 100.6) is None  # another appearance, not this one's bias
