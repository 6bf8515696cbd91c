"""The vision warm-up stage: labels from the world's timelines, and a short run on real frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grounder.errors import InputError
from trainer.vision_pretrain import (
    COLORS,
    N_COMBOS,
    SHAPES,
    Timeline,
    Track,
    boxes_at,
    presence_auc,
    read_timeline,
    token_labels,
)


def _timeline(*tracks: Track) -> Timeline:
    return Timeline(112, 112, 100.0, ((0.0, 0), (50.0, 2)), tracks)


def test_boxes_follow_the_knots_and_clip_at_the_frame():
    red_cross = COLORS.index("red") * len(SHAPES) + SHAPES.index("cross")
    # enters from the left at t=10 (centre x -10 -> 11 by t=12), stays, leaves at t=20..22
    tr = Track(red_cross, 20, (10.0, 12.0, 20.0, 22.0), (-10.0, 11.0, 11.0, -10.0), (50.0, 50.0, 50.0, 50.0))
    tl = _timeline(tr)
    assert boxes_at(tl, 5.0) == []
    assert boxes_at(tl, 10.0) == []  # fully outside at t_in
    assert boxes_at(tl, 15.0) == [(red_cross, 1, 40, 21, 60)]
    x0 = boxes_at(tl, 11.0)[0]
    assert x0[1] == 0 and 0 < x0[3] < 20  # half-way in: clipped at the left edge


def test_token_labels_mark_the_tokens_a_box_meets():
    combo = 7
    # box x 1..21, y 40..60: on a 4x4 token grid (28 px tokens): column 0, rows 1-2
    tr = Track(combo, 20, (0.0, 100.0), (11.0, 11.0), (50.0, 50.0))
    lab = token_labels(_timeline(tr), [15.0], 4, 4).reshape(4, 4, N_COMBOS)
    assert lab[:, :, combo].astype(int).tolist() == [[0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert lab.sum() == 2  # nothing else is labelled
    # two frames of a temporal pair: the union of both positions
    mover = Track(combo, 20, (0.0, 100.0), (11.0, 101.0), (14.0, 14.0))
    pair = token_labels(_timeline(mover), [0.0, 100.0], 4, 4).reshape(4, 4, N_COMBOS)
    assert pair[0, :, combo].tolist() == [1, 0, 0, 1]


def test_presence_auc():
    assert presence_auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0])) == 1.0
    assert presence_auc(np.array([0.1, 0.2, 0.9, 0.8]), np.array([1, 1, 0, 0])) == 0.0
    assert presence_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([1, 0, 1, 0])) == 0.5


@pytest.fixture(scope="module")
def world(synth_world):
    return synth_world(2, 1, 5)


def test_timeline_agrees_with_the_world_state(world):
    # the trainer reads the spec file itself; its boxes must be the renderer's (evals.synthetic)
    from evals.synthetic import load_spec

    path = world.parent / "specs" / "v0000.json"
    tl, spec = read_timeline(path), load_spec(path)
    for t in np.linspace(0, spec.duration - 1, 40):
        mine = sorted((c, x0, y0, x1, y1) for c, x0, y0, x1, y1 in boxes_at(tl, float(t)))
        theirs = sorted((COLORS.index(o.color) * len(SHAPES) + SHAPES.index(o.shape), *o.bbox)
                        for o in spec.state(float(t)).objects)
        # state() drops objects whose clipped mask has no pixels (a star's corner); boxes do not
        assert set(theirs) <= set(mine)


def test_a_short_run_trains_the_tower_and_reports(world, tmp_path):
    import torch

    from grounder.tiny import build_tiny
    from trainer.vision_pretrain import ClipView, VisionConfig, run_vision

    model, processor = build_tiny("qwen3_vl")
    before = {k: v.clone() for k, v in model.model.visual.state_dict().items()}
    lm_before = model.model.language_model.layers[0].mlp.up_proj.weight.clone()
    cfg = VisionConfig(steps=3, batch_size=4, eval_pairs=8, holdout_videos=1,
                       views=[ClipView(0.25, 3136), ClipView(2.0, 12544)])
    s = run_vision(cfg, model, processor, world, tmp_path / "vision", progress=False)
    assert s["steps"] == 3 and 0.0 <= s["after_clip_auc"] <= 1.0 and s["after_scene_acc"] >= 0.0
    assert "after_clip_auc_same_colour" in s  # nan when no held-out pair shows a same-colour decoy
    after = model.model.visual.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(lm_before, model.model.language_model.layers[0].mlp.up_proj.weight)
    rows = [json.loads(x) for x in (tmp_path / "vision" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert (tmp_path / "vision" / "curves.png").stat().st_size > 0


def test_a_folder_without_specs_is_a_clear_error(tmp_path):
    from trainer.vision_pretrain import synth_videos

    (tmp_path / "annotations.jsonl").write_text("")
    with pytest.raises(InputError, match="specs"):
        synth_videos(tmp_path / "annotations.jsonl")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="not a synthetic-world spec"):
        read_timeline(bad)


def test_binding_labels_follow_the_named_object(world):
    from trainer.binding import group_labels, spec_path, visible
    from trainer.data import FrameConfig, GroundingDataset, View, WindowConfig

    ds = GroundingDataset(world, views=[View(WindowConfig(16.0, True, 0.0), FrameConfig(1.0, 16, 3136))], seed=0)
    row = next(r for r in ds.rows if r.extra["event"]["type"] == "visible")
    s = ds.sample(ds.rows.index(row))
    lab = group_labels(s)
    assert lab is not None and len(lab) == (len(s.frames) + 1) // 2
    tl = read_timeline(spec_path(s.video))
    target = row.extra["event"]["target"]
    for g, y in enumerate(lab):
        assert y == float(any(visible(tl, target, float(t)) for t in s.timestamps[2 * g: 2 * g + 2]))
    assert 0 < sum(lab)  # the window holds the target's visible span (no negatives drawn)
    # "the next shape after X leaves" does not name its target: no label
    s.extra = {**s.extra, "event": {**s.extra["event"], "type": "after_leave"}}
    assert group_labels(s) is None


def test_sft_with_binding_trains_a_head_beside_the_answer_loss(world, tmp_path):
    from trainer.config import load_recipe
    from trainer.loop import run

    over = [f"data.train={world}", f"train.out_dir={tmp_path / 'sft'}", "train.steps=2", "train.batch_size=2",
            "data.frames.max_frames=4", "data.frames.max_pixels=4096", "data.window.negative_prob=0.0",
            "train.binding=1.0", "model.family=qwen3_vl"]
    out = run("sft", load_recipe(None, "sft", over), False)
    assert "binding" in out["last"] and out["last"]["binding"] > 0


def test_attention_loss_rewards_looking_at_the_groups_that_show_the_object(world):
    import torch

    from grounder.tiny import build_tiny
    from trainer.binding import attention_loss, group_labels
    from trainer.data import FrameConfig, GroundingDataset, View, WindowConfig
    from trainer.sft import sft_batch

    _, processor = build_tiny("qwen3_vl", seed=0)
    ds = GroundingDataset(world, views=[View(WindowConfig(16.0, True, 0.0), FrameConfig(1.0, 16, 3136))],
                          seed=0, trace="direct")
    s = next(x for x in (ds.sample(i) for i in range(len(ds)))
             if (lab := group_labels(x)) is not None and 0 < sum(lab) < len(lab))
    lab = group_labels(s)
    batch = sft_batch(processor, [s])
    vid = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    pos = (batch["input_ids"][0] == vid).nonzero().squeeze(1)
    decide = int((batch["labels"][0] != -100).nonzero()[0])
    per = len(pos) // len(lab)
    T = batch["input_ids"].shape[1]

    def attn_on(groups):
        a = torch.zeros(1, 2, T, T)
        cols = torch.cat([pos[g * per:(g + 1) * per] for g in groups])
        a[0, :, decide, cols] = 1.0 / len(cols)
        return a

    shown = [g for g, y in enumerate(lab) if y]
    hidden = [g for g, y in enumerate(lab) if not y]
    assert attention_loss(attn_on(shown), batch, [s], vid) < 1e-4  # all mass where the object is
    assert attention_loss(attn_on(hidden), batch, [s], vid) > 10  # none of it
    s.span = None  # a window without the event: nothing to look for, no loss
    assert attention_loss(attn_on(shown), batch, [s], vid) is None


def test_probed_attention_rows_match_eager_attention_and_its_gradient(world):
    import copy

    import torch

    from grounder.tiny import build_tiny
    from trainer.attention_rows import LayerProbe
    from trainer.binding import attention_loss, group_labels
    from trainer.data import FrameConfig, GroundingDataset, View, WindowConfig
    from trainer.sft import sft_batch

    model, processor = build_tiny("qwen3_vl", seed=0)
    ds = GroundingDataset(world, views=[View(WindowConfig(16.0, True, 0.0), FrameConfig(1.0, 8, 3136))],
                          seed=0, trace="direct")
    shows = [x for x in (ds.sample(i) for i in range(len(ds))) if (lab := group_labels(x)) and 0 < sum(lab)]
    samples = [shows[0], next(x for x in shows if len(x.target) != len(shows[0].target))]  # padded batch
    batch = sft_batch(processor, samples)
    assert not bool(batch["attention_mask"].all())
    vid = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    layer = 1

    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    want = eager(**batch, output_attentions=True).attentions[layer]
    probe = LayerProbe(model, layer)
    model(**batch)
    rows = probe.rows(batch)
    for i in range(2):
        real = batch["attention_mask"][i].nonzero().squeeze(1)
        for p in (int(real[0]), int(real[len(real) // 2]), int(real[-1])):
            assert torch.allclose(rows(i, p)[:, real], want[i, :, p, real], atol=1e-5)
            assert float(rows(i, p).detach().sum(-1).min()) == pytest.approx(1.0, abs=1e-5)
    assert probe.rows(batch) is None  # one forward, one read
    # the loss and its gradient reach the probed layer's projections as through eager weights
    a = attention_loss(rows, batch, samples, vid)
    b = attention_loss(want, batch, samples, vid)
    assert float(a) == pytest.approx(float(b), rel=1e-4)
    a.backward()
    b.backward()
    g = model.model.language_model.layers[layer].self_attn.q_proj.weight.grad
    h = eager.model.language_model.layers[layer].self_attn.q_proj.weight.grad
    assert g is not None and float(g.abs().max()) > 0
    assert torch.allclose(g, h, atol=1e-4 * float(h.abs().max()))


def test_sft_with_attend_trains_the_decision_position_to_look(world, tmp_path):
    from trainer.config import load_recipe
    from trainer.loop import run

    over = [f"data.train={world}", f"train.out_dir={tmp_path / 'sft'}", "train.steps=2", "train.batch_size=2",
            "data.frames.max_frames=4", "data.frames.max_pixels=4096", "data.window.negative_prob=0.0",
            "train.binding=1.0", "train.attend=1.0", "model.family=qwen3_vl"]
    out = run("sft", load_recipe(None, "sft", over), False)
    assert out["last"]["attend"] > 0 and "binding" in out["last"]


def test_number_positions_are_the_tokens_before_each_number():
    from trainer.binding import number_positions

    # "<ts>" "1" "2" "." "5" " to" " " "2" "0" "." "0" with digits 1..9 -> ids 1..9 (0 -> 10), "." -> 11
    ids = [100, 1, 2, 11, 5, 200, 201, 2, 10, 11, 10]
    digits = set(range(1, 11))
    assert number_positions(ids, 0, digits, digits | {11}) == [0, 6]
    assert number_positions(ids, 1, digits, digits | {11}) == [6]  # from the end's writer on


def test_span_attention_loss_rewards_looking_at_the_frames_whose_time_is_written(world):
    import torch

    from grounder.tiny import build_tiny
    from trainer.binding import span_attention_loss, span_groups
    from trainer.data import FrameConfig, GroundingDataset, View, WindowConfig
    from trainer.sft import VideoSFT, sft_batch

    model, processor = build_tiny("qwen3_vl", seed=0)
    ds = GroundingDataset(world, views=[View(WindowConfig(16.0, True, 0.0), FrameConfig(1.0, 16, 3136))],
                          seed=0, trace="direct")
    s = next(x for x in (ds.sample(i) for i in range(len(ds)))
             if (g := span_groups(x)) is not None and g[0] != g[1])
    first, last = span_groups(s)
    rel = [float(t) - s.start for t in s.timestamps]
    assert rel[2 * first] <= s.span[0] + 1.0 and rel[2 * last + 1] >= s.span[1] - 1.0  # the span's own frames
    batch = sft_batch(processor, [s])
    vid = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    ids = VideoSFT(model, processor)._number_ids()
    pos = (batch["input_ids"][0] == vid).nonzero().squeeze(1)
    per = len(pos) // -(-len(s.timestamps) // 2)
    tok = processor.tokenizer
    row = batch["input_ids"][0].tolist()
    opened = row.index(ids[0], int((batch["labels"][0] != -100).nonzero()[0]))  # the answer's, not the prompt's
    writers = [p for p in range(opened, len(row) - 1) if row[p + 1] in ids[1] and row[p] not in ids[2]][:2]
    assert tok.decode(row[writers[0] + 1:]).startswith(f"{s.span[0]:.1f} to ")  # the start's writer
    assert tok.decode(row[writers[1] + 1:]).startswith(f"{s.span[1]:.1f}<")  # the end's writer
    T = len(row)

    def attn_on(start_group, end_group):
        a = torch.zeros(1, 2, T, T)
        for p, g in zip(writers, (start_group, end_group)):
            a[0, :, p, pos[g * per:(g + 1) * per]] = 1.0 / per
        return a

    assert span_attention_loss(attn_on(first, last), batch, [s], vid, *ids) < 1e-4
    assert span_attention_loss(attn_on(last, first), batch, [s], vid, *ids) > 10  # swapped: wrong frames
    s.span = None
    assert span_attention_loss(attn_on(first, last), batch, [s], vid, *ids) is None


def test_sft_with_attend_span_reports_its_loss(world, tmp_path):
    from trainer.config import load_recipe
    from trainer.loop import run

    over = [f"data.train={world}", f"train.out_dir={tmp_path / 'sft'}", "train.steps=2", "train.batch_size=2",
            "data.frames.max_frames=4", "data.frames.max_pixels=4096", "data.window.negative_prob=0.0",
            "data.trace=direct", "train.attend_span=1.0", "model.family=qwen3_vl"]
    out = run("sft", load_recipe(None, "sft", over), False)
    assert out["last"]["attend_span"] > 0 and "attend" not in out["last"]


def test_binding_reads_a_middle_layer_that_later_layers_can_attend_to():
    import pytest

    from grounder.errors import ConfigError
    from grounder.tiny import build_tiny
    from trainer.sft import VideoSFT

    model, processor = build_tiny("qwen3_vl", seed=0)
    layers = model.config.get_text_config().num_hidden_layers
    assert VideoSFT(model, processor, binding=1.0).binding_layer == layers // 2
    assert VideoSFT(model, processor, binding=1.0, binding_layer=layers).binding_layer == layers
    with pytest.raises(ConfigError, match="binding_layer"):
        VideoSFT(model, processor, binding=1.0, binding_layer=layers + 1)
    with pytest.raises(ConfigError, match="attend needs a layer after"):
        VideoSFT(model, processor, binding=1.0, binding_layer=layers, attend=1.0)


def _combo(colour: str, shape: str) -> int:
    return COLORS.index(colour) * len(SHAPES) + SHAPES.index(shape)


def test_same_colour_auc_counts_only_other_shapes_of_a_colour_on_screen():
    from trainer.vision_pretrain import same_colour_auc

    gs, gc, rc = _combo("green", "star"), _combo("green", "circle"), _combo("red", "circle")
    truth = np.zeros((3, N_COMBOS))
    truth[0, gs] = truth[1, gc] = truth[2, rc] = 1
    scores = np.zeros((3, N_COMBOS))
    scores[0, gs] = scores[1, gc] = scores[2, rc] = 2.0
    assert same_colour_auc(scores, truth) == 1.0
    scores[2, gs] = 5.0  # "green star" high on a clip with no green: not a same-colour negative
    assert same_colour_auc(scores, truth) == 1.0
    scores[1, gs] = 3.0  # ... on the clip with the green circle: a shape-blind read-out
    # 3 positives vs 12 same-colour negatives (4 other shapes x 3 clips), one above them all
    assert same_colour_auc(scores, truth) == pytest.approx(11 / 12)
    assert presence_auc(scores.flatten(), truth.flatten()) < 1.0


def test_binding_loss_is_the_mean_over_the_labelled_groups(lone_sightings):
    from types import SimpleNamespace

    import torch

    from trainer.binding import binding_loss

    x = lone_sightings[0]
    row = x["row"]
    # two frame groups: one away from the named object, one showing it
    sample = SimpleNamespace(video=row.video, extra=row.extra, timestamps=[x["t"], x["t"], x["t_me"], x["t_me"]])
    hidden = torch.randn(1, 5, 8)
    batch = {"video_grid_thw": torch.tensor([[2, 2, 2]]), "input_ids": torch.tensor([[5, 9, 9, 1, 1]])}
    head = torch.nn.Linear(8, 1)
    s0, s1 = head(hidden[0, 1:3]).squeeze(-1).tolist()
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    plain = (bce(torch.tensor(s0), torch.tensor(0.0)) + bce(torch.tensor(s1), torch.tensor(1.0))) / 2
    assert float(binding_loss(hidden, batch, [sample], head, 9)) == pytest.approx(float(plain), rel=1e-5)
