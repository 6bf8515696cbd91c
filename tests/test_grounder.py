"""The grounder end to end with real (tiny, untrained) models on real synthetic MP4s, and the CLI."""

from __future__ import annotations

import json
import math

import pytest

from evals.synthetic import generate_world
from grounder import grounder as grounder_module
from grounder.backends import (
    UNTRAINED_WARNING,
    ForceAnswer,
    TransformersBackend,
    answer_position,
)
from grounder.errors import InputError, ModelError
from grounder.grounder import Grounder
from grounder.scan import COST_KEYS, ScanBudget
from grounder.tiny import build_tiny, save_tiny
from grounder.video import open_video
from groundqa.cli import main

FAST = ScanBudget(max_new_tokens=16)  # untrained models never stop early; keep calls short


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 3-minute and a 1-minute synthetic video (the second shorter than one coarse window)."""
    out = tmp_path_factory.mktemp("grounder_world")
    rows = generate_world(out, n_videos=1, minutes=(3, 3), seed=5)
    short = generate_world(out / "short", n_videos=1, minutes=(1, 1), seed=6)
    return {"video": out / rows[0]["video"], "query": rows[0]["query"],
            "short": out / "short" / short[0]["video"]}


@pytest.fixture(scope="module")
def grounders(tmp_path_factory):
    """Qwen2.5-VL built in memory; Qwen3-VL saved and loaded through from_pretrained."""
    model, processor = build_tiny("qwen2_5_vl", seed=0)
    folder = save_tiny(tmp_path_factory.mktemp("tiny_qwen3"), "qwen3_vl", seed=0)
    return {
        "qwen2_5_vl": Grounder(TransformersBackend(model, processor, "qwen2_5_vl")),
        "qwen3_vl": Grounder.from_pretrained(folder),
    }


def test_family_comes_from_the_config(grounders):
    assert grounders["qwen3_vl"].backend.family == "qwen3_vl"


def check_well_formed(result, duration):
    assert result.cost.model_calls == len(result.trace) > 0
    assert result.cost.frames == sum(len(s.frame_times) for s in result.trace)
    assert result.cost.visual_tokens == sum(s.visual_tokens for s in result.trace) > 0
    assert all(s.visual_tokens > 0 for s in result.trace)
    assert result.cost.seconds > 0
    for seg in result.segments:
        assert 0.0 <= seg.start < seg.end <= duration and 0.0 <= seg.score <= 1.0
    for step in result.trace:
        assert 0.0 <= step.window_start < step.window_end <= duration + 1e-9
        assert all(step.window_start - 0.5 <= t <= step.window_end for t in step.frame_times)
        assert isinstance(step.text, str) and 0.0 <= step.score <= 1.0
        assert step.span is not None or step.reason  # no span -> the trace says why
    if not result.segments:
        assert result.reason.startswith("no window gave a usable span")
    d = result.to_dict()
    assert set(d) >= {"segments", "cost", "trace", "warnings"}
    assert set(d["cost"]) == set(COST_KEYS)
    json.dumps(d)  # serialisable


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_strategies_on_a_real_video(grounders, world, family):
    g = grounders[family]
    with open_video(world["video"]) as reader:
        d = reader.duration
        uniform = g.ground(reader, world["query"], strategy="uniform", budget=FAST)
        check_well_formed(uniform, d)
        (step,) = uniform.trace
        assert (step.window_start, step.window_end, len(step.frame_times)) == (0.0, d, 32)

        c2f = g.ground(reader, world["query"], budget=FAST)
        check_well_formed(c2f, d)
        coarse = [s for s in c2f.trace if s.level == 0]
        assert [(s.window_start, s.window_end) for s in coarse] == [(0.0, 128.0), (128.0, d)]
        # 2 coarse windows -> 2 chains: 128 s -> 64, 32, 16 s; 52 s -> 26, 16 s.
        assert len(c2f.trace) == 2 + 3 + 2
        zooms = [s for s in c2f.trace if s.level > 0]
        assert sorted(round(s.window_end - s.window_start, 6) for s in zooms) == [
            16.0, 16.0, 26.0, 32.0, 64.0]
        # Coarse frames are small: 4 tokens per pair of frames; zoom frames 16 per pair.
        assert coarse[0].visual_tokens == 32 // 2 * 4
        assert all(s.visual_tokens == len(s.frame_times) // 2 * 16 for s in zooms)
        # The untrained model's text is garbage: no segments, and the result says why.
        assert c2f.segments == [] and "no window gave a usable span" in c2f.reason

    with open_video(world["short"]) as reader:
        sliding = g.ground(reader, world["query"], strategy="sliding", budget=FAST)
        check_well_formed(sliding, reader.duration)
        assert [(s.window_start, s.window_end, len(s.frame_times)) for s in sliding.trace] == [
            (0.0, 16.0, 32), (16.0, 32.0, 32), (32.0, 48.0, 32), (48.0, 60.0, 24)]
        assert c2f.cost.visual_tokens / d < sliding.cost.visual_tokens / reader.duration


def test_coarse_to_fine_respects_max_calls(grounders, world):
    budget = ScanBudget(max_calls=4, max_new_tokens=16)
    result = grounders["qwen2_5_vl"].ground(world["video"], world["query"], budget=budget)
    assert result.cost.model_calls == 4
    assert any("max_calls=4" in w for w in result.warnings)


def test_video_shorter_than_a_window_is_one_window(grounders, world):
    result = grounders["qwen3_vl"].ground(world["short"], "the red circle", budget=FAST)
    coarse = [s for s in result.trace if s.level == 0]
    assert len(coarse) == 1 and (coarse[0].window_start, coarse[0].window_end) == (0.0, 60.0)
    assert len(coarse[0].frame_times) == 15  # 0.25 fps over 60 s
    check_well_formed(result, 60.0)


def test_two_queries_share_decoded_frames(grounders, world):
    g = grounders["qwen2_5_vl"]
    with open_video(world["short"]) as reader:
        g.ground(reader, "when does the red circle enter", strategy="sliding", budget=FAST)
        decoded = reader.frames_decoded
        assert decoded > 0
        g.ground(reader, "when does the blue star leave", strategy="sliding", budget=FAST)
        assert reader.frames_decoded == decoded  # same windows: every frame from the cache
    one_chain = ScanBudget(top_k=1, max_new_tokens=16)
    with open_video(world["video"]) as reader:
        g.ground(reader, "when does the red circle enter", budget=one_chain)
        after_first = reader.frames_decoded
        second = g.ground(reader, "when does the blue star leave", budget=one_chain)
        zoom_frames = sum(len(s.frame_times) for s in second.trace if s.level > 0)
        assert reader.frames_decoded - after_first <= zoom_frames  # the coarse pass is shared


def test_a_path_uses_the_shared_reader(grounders, world):
    from grounder.video import shared_reader

    reader = shared_reader(world["video"])
    grounders["qwen2_5_vl"].ground(str(world["video"]), "red circle", strategy="uniform", budget=FAST)
    decoded = reader.frames_decoded
    grounders["qwen2_5_vl"].ground(world["video"], "blue star", strategy="uniform", budget=FAST)
    assert reader.frames_decoded == decoded > 0


@pytest.mark.parametrize("query", ["", "   \n"])
def test_empty_query_is_an_input_error(grounders, world, query):
    with pytest.raises(InputError):
        grounders["qwen2_5_vl"].ground(world["video"], query)


def test_unknown_strategy_and_unloadable_models(grounders, world, tmp_path):
    with pytest.raises(InputError):
        grounders["qwen2_5_vl"].ground(world["video"], "x", strategy="random")
    with pytest.raises(ModelError):
        Grounder.from_pretrained(tmp_path / "missing")
    with pytest.raises(ModelError):
        Grounder.from_pretrained(tmp_path)  # a folder without config.json
    with pytest.raises(InputError):
        Grounder.from_pretrained(tmp_path, backend="nope")


# -- CLI ------------------------------------------------------------------------------------
@pytest.fixture
def default_model(grounders, monkeypatch):
    """The CLI's default model, built once per test module instead of per command."""
    backend = grounders["qwen2_5_vl"].backend
    monkeypatch.setattr(grounder_module, "load_default",
                        lambda device="cpu", dtype=None: (backend, [UNTRAINED_WARNING]))


def test_cli_json(world, default_model, capsys):
    rc = main(["ground", str(world["video"]), world["query"], "--strategy", "uniform", "--json",
               "--max-new-tokens", "16"])
    captured = capsys.readouterr()
    assert rc == 0
    out = json.loads(captured.out)
    assert set(out) >= {"segments", "cost", "warnings"} and "trace" not in out
    assert set(out["cost"]) == set(COST_KEYS)
    assert out["cost"]["model_calls"] == 1 and out["warnings"] == [UNTRAINED_WARNING]
    assert "not trained" in captured.err  # the untrained warning is also on stderr


def test_cli_trace_and_plot(world, default_model, capsys, tmp_path):
    png = tmp_path / "timeline.png"
    rc = main(["ground", str(world["video"]), world["query"], "--strategy", "uniform", "--json",
               "--trace", "--plot", str(png), "--max-new-tokens", "16"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(out["trace"]) == 1 and out["trace"][0]["frame_times"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["timeline.png"]  # no temp file left


def test_cli_human_output(world, default_model, capsys):
    rc = main(["ground", str(world["video"]), "red circle", "--strategy", "uniform",
               "--max-new-tokens", "16"])
    out = capsys.readouterr().out
    assert rc == 0 and "uniform on" in out and "cost: 1 model calls" in out


@pytest.mark.parametrize("args, message", [
    (["ground", "{missing}", "red circle"], "not found"),
    (["ground", "{video}", "  "], "query is empty"),
    (["ground", "{video}", "When is the?"], "names nothing to look for"),
    (["ground", "{video}", " ? "], "names nothing to look for"),
    (["ground", "{video}", "red circle", "--strategy", "zigzag"], "unknown strategy"),
    (["ground", "{video}", "red circle", "--model", "{tmp}/no-model"], "cannot load model"),
    (["ground", "{bad}", "red circle"], ""),
])
def test_cli_errors_are_one_line(world, tmp_path, capsys, args, message):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    paths = {"missing": tmp_path / "missing.mp4", "video": world["video"], "tmp": tmp_path,
             "bad": bad}
    rc = main([a.format(**paths) for a in args])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("groundqa: error:") and message in err


# -- confidence plumbing (real tokenizers, hand-made logits) ------------------------------------
@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_answer_confidence_reads_time_vs_absent_at_the_first_answer_token(grounders, family):
    import torch

    backend = grounders[family].backend
    tok = backend.tokenizer
    gen = tok.encode("<think>I see it.</think><answer>12.5 to 14.0</answer>", add_special_tokens=False)
    pos = answer_position(tok, gen)
    assert tok.decode(gen[:pos]).endswith("<answer>") and tok.decode(gen[pos:pos + 1]) == "1"
    vocab = backend.model.config.get_text_config().vocab_size
    digit, not_ = tok.convert_tokens_to_ids("1"), tok.encode("not", add_special_tokens=False)[0]
    logits = [torch.full((1, vocab), -1e9) for _ in gen]
    logits[pos][0, digit], logits[pos][0, not_] = math.log(3.0), math.log(1.0)
    think = answer_position(tok, gen, "<think>")
    assert tok.decode(gen[think:think + 1]).strip() == "I"
    logits[think][0, gen[think]] = 0.0  # the reasoning opens with "I" for sure: no factor
    assert backend.answer_confidence(gen, logits) == pytest.approx(0.75)
    # a model that might have opened its reasoning with "not" (the short-trace absent form)
    logits[think][0, not_] = 0.0  # P("not") = 1/2 there
    assert backend.answer_confidence(gen, logits) == pytest.approx(0.75 * 0.5)
    assert backend.answer_confidence(tok.encode("no tags here", add_special_tokens=False),
                                     logits) is None


def test_force_answer_bans_stopping_then_closes_the_reasoning(grounders):
    import torch

    tok = grounders["qwen2_5_vl"].backend.tokenizer
    force_ids = tok.encode("</think><answer>", add_special_tokens=False)
    force = ForceAnswer(tok, prompt_len=2, force_ids=force_ids, eos_ids=[0], force_at=3)
    ids = torch.tensor([[5, 6]])
    steps = []
    for _ in range(3 + len(force_ids) + 1):
        scores = force(ids, torch.zeros((1, len(tok))))
        steps.append(scores)
        nxt = int(scores[0].argmax()) if torch.isinf(scores).sum() > 1 else 7
        ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    assert all(torch.isinf(s[0, 0]) for s in steps[:3])  # no stopping before the answer
    assert tok.decode(ids[0, 2:].tolist()).endswith("</think><answer>" + tok.decode([7]))
    assert not torch.isinf(steps[-1]).any()  # after <answer>: untouched
