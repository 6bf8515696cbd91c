"""grounder.real_shapes: the public Qwen-VL configs (../shared/data/models) at reduced depth, every
width kept, and the parameter counts the memory model plans with."""

from __future__ import annotations

import json

import pytest

from grounder.errors import ConfigError
from grounder.real_shapes import build_real_shape, parameter_groups, real_config

MODELS = ["Qwen2.5-VL-7B-Instruct", "Qwen3-VL-4B-Instruct", "Qwen3-VL-8B-Instruct"]


@pytest.mark.parametrize("name", MODELS)
def test_depth_is_cut_and_every_width_kept(name, shared_data):
    folder = shared_data / "models" / name
    raw = json.loads((folder / "config.json").read_text())
    text_raw = raw.get("text_config", raw)
    full, _ = build_real_shape(folder, None, None, meta=True)
    cut, _ = build_real_shape(folder, 2, 2, meta=True)
    text = cut.config.get_text_config()
    assert (text.num_hidden_layers, cut.config.vision_config.depth) == (2, 2)
    assert len(cut.model.language_model.layers) == 2 and len(cut.model.visual.blocks) == 2
    for key in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "vocab_size"):
        assert getattr(text, key) == text_raw[key], key
    vision = cut.config.vision_config
    assert all(i < 2 for i in getattr(vision, "deepstack_visual_indexes", None) or [])
    assert all(i < 2 for i in getattr(vision, "fullatt_block_indexes", None) or [])
    a, b = parameter_groups(full), parameter_groups(cut)
    per_layer = (a["text_layers"] - b["text_layers"]) / (text_raw["num_hidden_layers"] - 2)
    assert b["text_layers"] == pytest.approx(2 * per_layer, rel=1e-3)  # (+ the final norm)
    assert a["embed"] == b["embed"] == text_raw["vocab_size"] * text_raw["hidden_size"]
    assert (a["lm_head"] == 0) == bool(raw.get("tie_word_embeddings", text_raw.get("tie_word_embeddings")))


def test_the_published_sizes(shared_data):
    totals = {n: parameter_groups(build_real_shape(shared_data / "models" / n, None, None, meta=True)[0])["total"]
              for n in MODELS}
    # the model cards' round figures: 8.3 B, 4.4 B, 8.8 B
    assert [round(totals[n] / 1e9, 1) for n in MODELS] == [8.3, 4.4, 8.8]


def test_a_folder_without_a_config_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        real_config(tmp_path)
