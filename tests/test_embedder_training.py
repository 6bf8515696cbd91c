"""`groundqa train embedder`: labels from the world's timelines, templates from its queries, a
short real training run whose folder the grounder loads."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from grounder.embedders import DualEncoderEmbedder, load_embedder
from grounder.synthetic_words import COLORS, SHAPES
from groundqa.cli import main
from trainer.clip_labels import ClipObject, clip_objects, decoy_kind, named_attributes, pair_label
from trainer.embedder import (
    EmbedderConfig,
    Template,
    auc,
    covers,
    fill,
    look_alike,
    text_templates,
    to_template,
)
from trainer.vision_pretrain import read_timeline, spec_path, synth_videos


def combo(color: str, shape: str) -> int:
    return COLORS.index(color) * len(SHAPES) + SHAPES.index(shape)


RED_CROSS = combo("red", "cross")


def obj(c=RED_CROSS, share=1.0, first=1.0, last=1.0, edges=()):
    return ClipObject(c, share, first, last, frozenset(edges))


def test_labels_follow_what_the_text_says():
    enter_bottom = {"color": "red", "shape": "cross", "side": "bottom", "verb": "enter"}
    entering = obj(share=0.6, first=0.2, last=0.6, edges={"bottom"})
    assert pair_label(enter_bottom, [entering], 0) == 1.0
    assert pair_label(enter_bottom, [obj()], 0) == 0.0  # the right object, inside: the wrong moment
    assert pair_label(enter_bottom, [obj()], 0, elsewhere=0.8) == 0.8
    leaving = obj(share=0.6, first=0.6, last=0.2, edges={"bottom"})
    assert pair_label(enter_bottom, [leaving], 0) == 0.0  # moving the other way
    assert pair_label({**enter_bottom, "verb": "leave"}, [leaving], 0) == 1.0
    other_side = obj(share=0.6, first=0.2, last=0.6, edges={"top"})
    assert pair_label(enter_bottom, [other_side], 0) == 0.0
    assert pair_label({k: v for k, v in enter_bottom.items() if k != "side"}, [other_side], 0) == 1.0
    look_alike_ = obj(c=combo("red", "star"), share=0.6, first=0.2, last=0.6, edges={"bottom"})
    assert pair_label(enter_bottom, [look_alike_], 0) == 0.0
    visible = {"color": "red", "shape": "cross"}
    assert pair_label(visible, [obj()], 0) == 1.0
    assert math.isnan(pair_label(visible, [obj(share=0.3)], 0))  # partly on screen: left out
    assert pair_label({**visible, "scene": "grey"}, [obj()], 0) == 0.0  # scene 0 is "dark"
    assert pair_label({"shape": "cross", "scene": "dark"}, [obj()], 0) == 1.0  # shape alone
    # "right after the scene turns grey": the clip's context frame must show another scene
    after_change = {"color": "red", "shape": "cross", "scene": "grey", "change": "1", "verb": "enter"}
    grey, dark = 1, 0
    assert pair_label(after_change, [entering], grey, scene_before=dark) == 1.0
    assert pair_label(after_change, [entering], grey, scene_before=grey) == 0.0  # grey for a while
    assert pair_label(after_change, [entering], grey) == 1.0  # a clip without a context frame cannot tell
    assert decoy_kind(visible, []) == {"empty"}
    assert decoy_kind(visible, [obj(c=combo("red", "star")), obj(c=combo("blue", "cross"))]) == \
        {"same_colour", "same_shape"}
    assert decoy_kind(enter_bottom, [obj()]) == {"moment"}


def test_named_attributes_of_each_query_type():
    assert named_attributes({"type": "enter", "color": "red", "shape": "cross", "side": "top"}) == \
        {"color": "red", "shape": "cross", "side": "top", "verb": "enter"}
    assert named_attributes({"type": "visible", "color": "red", "shape": "cross"}) == \
        {"color": "red", "shape": "cross"}
    # "what colour is the shape that enters right after the red cross leaves": the anchor leaves
    assert named_attributes({"type": "after_leave", "color": "red", "shape": "cross", "side": None,
                             "ask": "color"}) == {"color": "red", "shape": "cross", "verb": "leave"}
    assert named_attributes({"type": "after_scene", "shape": "star", "scene": "grey", "ask": "color"}) == \
        {"shape": "star", "scene": "grey", "change": "1", "verb": "enter"}


@pytest.fixture(scope="module")
def world(synth_world):
    return synth_world(3, 2, 11)


def test_clip_objects_see_an_entry_from_the_timeline(world):
    (video, spec), *_ = synth_videos(world)
    tl = read_timeline(spec)
    raw = json.loads(spec_path(video).read_text())
    o = raw["objects"][0]
    mid_entry = (o["times"][0] + o["times"][1]) / 2
    seen = [x for x in clip_objects(tl, mid_entry, (-0.5, 0.5)) if x.combo == combo(o["color"], o["shape"])]
    assert seen and seen[0].last > seen[0].first and o["enter_side"] in seen[0].edges
    inside = (o["times"][1] + o["times"][-2]) / 2
    still = [x for x in clip_objects(tl, inside, (-0.5, 0.5)) if x.combo == combo(o["color"], o["shape"])]
    assert still and still[0].share == pytest.approx(1.0) and not still[0].edges


def test_templates_refill_to_the_rows_own_text(world):
    rows = [json.loads(line) for line in world.read_text().splitlines()]
    templates = text_templates(rows)
    assert templates and all("{shape}" in t.text for t in templates)
    assert {t.verb for t in templates} >= {"enter", "leave", ""}
    for r in rows[:20]:
        attrs = named_attributes(r["event"])
        t = to_template(r["query"], attrs)
        assert t is not None
        text, named = fill(t, combo(attrs.get("color", "red"), attrs["shape"]), 0, attrs.get("side", "left"))
        if "color" in attrs and "scene" not in attrs:
            from grounder.retrieval import retrieval_text

            assert text == retrieval_text(r["query"]).lower()
        assert named.get("verb", "") == t.verb
    assert to_template("the blue star on screen", {"color": "red", "shape": "cross"}) is None
    assert Template("the {color} {shape}", ("color", "shape")).fill(color="red", shape="star") == "the red star"


def test_look_alikes_share_exactly_one_attribute():
    rng = random.Random(0)
    for _ in range(50):
        other = look_alike(RED_CROSS, rng)
        same = (other // len(SHAPES) == RED_CROSS // len(SHAPES)) + (other % len(SHAPES) == RED_CROSS % len(SHAPES))
        assert other != RED_CROSS and same == 1


def test_auc_and_covers():
    assert auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0])) == 1.0
    assert auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5  # ties count half
    assert math.isnan(auc(np.array([0.5]), np.array([1])))
    assert covers((10.0, 30.0), (12.0, 15.0)) and not covers((10.0, 13.0), (12.0, 15.0))


def test_a_short_run_learns_and_ships_a_folder_the_grounder_loads(world, tmp_path, capsys):
    out = tmp_path / "emb"
    rc = main(["train", "embedder", "trainer/recipes/embedder.yaml", f"data={world}", f"out_dir={out}",
               "steps=40", "batch_size=16", "holdout_videos=1", "warmup_steps=5", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 40 and summary["heldout_rows"] > 0
    assert 0.0 <= summary["heldout_recall@5"] <= 1.0 and "heldout_auc_same_colour" in summary
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 40 and np.mean(losses[-10:]) < np.mean(losses[:10])  # it learns
    emb = load_embedder(out / "model")
    assert isinstance(emb, DualEncoderEmbedder)
    # the words its texts were filled with, for a reader that probes "the {color} {shape}"
    assert emb.slots["shape"] == ["circle", "square", "triangle", "star", "cross"] and "grey" in emb.slots["scene"]
    card = (out / "model" / "README.md").read_text()
    assert "synthetic world only" in card and "Recall@5" in card
    assert not list(out.glob(".model.tmp*"))  # written whole, then renamed


@pytest.mark.parametrize("override, message", [
    ("steps=0", "steps must be >= 1"), ("elsewhere=2", "elsewhere must be in"),
    ("model.channels=[8]", "channels"), ("data=nowhere.jsonl", "not found"), ("bogus=1", "unknown config key"),
])
def test_bad_recipes_are_one_line_errors(world, tmp_path, capsys, override, message):
    rc = main(["train", "embedder", "trainer/recipes/embedder.yaml", f"data={world}",
               f"out_dir={tmp_path / 'x'}", override])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and message in err


def test_config_defaults_work():
    cfg = EmbedderConfig(data="x.jsonl")
    assert cfg.model.clip_offsets == [-0.5, 0.5] and cfg.steps > 0
