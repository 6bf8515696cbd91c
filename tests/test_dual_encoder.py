"""The embedded retriever's model: a small clip-text dual encoder saved as an HF-style folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grounder.dual_encoder import MODEL_TYPE, DualEncoder, DualEncoderConfig
from grounder.embedders import DualEncoderEmbedder, load_embedder
from grounder.errors import InputError, ModelError
from trainer.embedder import default_tokenizer

SMALL = {"channels": [8, 8, 16, 16], "embed_dim": 16, "text_hidden": 16, "text_layers": 1, "text_heads": 2,
         "image_size": 32}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    import torch

    tok = default_tokenizer()
    torch.manual_seed(0)
    model = DualEncoder(DualEncoderConfig(**SMALL, vocab_size=tok.get_vocab_size()), tok).eval()
    return model.save_pretrained(tmp_path_factory.mktemp("retriever"))


def clips(n, k=2, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (n, k, 40, 56, 3), dtype=np.uint8)


def test_folder_round_trip_gives_the_same_vectors(folder):
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model_type"] == MODEL_TYPE and cfg["clip_offsets"] == [-0.5, 0.5]
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    emb = load_embedder(folder)  # dispatch by model_type
    assert isinstance(emb, DualEncoderEmbedder) and emb.clip_offsets == (-0.5, 0.5)
    assert emb.heads == ("what", "moment") and emb.dim == 16  # the index keeps the "what" head
    again = DualEncoder.from_pretrained(folder)
    x = clips(5)
    a, b = emb.embed_frames(x), again.embed_frames(x)
    assert a.shape == (5, 16) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    texts = ["the red cross enter from the bottom", "the blue star on screen"]
    what = emb.embed_text(texts)
    assert what.shape == (2, 16) and emb.images_embedded == 5 and emb.texts_embedded == 2
    # the moment head: best location of each clip, a calibrated probability [texts, clips]
    m = emb.moment(x, texts)
    assert m.shape == (2, 5) and np.all((m > 0) & (m < 1))
    import torch

    with torch.no_grad():
        f = again.clip_features(again.pixels(x))["moment"]
        ids, mask = again.token_ids(texts)
        t = again.text_features(ids, mask)["moment"]
        cos = torch.einsum("td,nld->tnl", t, f).amax(-1)
        i = again.cfg.heads.index("moment")
        want = torch.sigmoid(again.logit_scale[i].exp() * cos + again.logit_bias[i]).numpy()
    np.testing.assert_allclose(m, want, atol=1e-5)
    # a calibrated probability, increasing in the cosine
    p = emb.presence(np.array([-1.0, 0.0, 1.0]))
    assert np.all((p > 0) & (p < 1)) and np.all(np.diff(p) > 0)
    with pytest.raises(InputError, match="no 'when' head"):
        again.embed_text(texts, head="when")


def test_text_normalisation_makes_case_and_spacing_irrelevant(folder):
    enc = DualEncoder.from_pretrained(folder)
    a = enc.embed_text(["When does the RED cross   enter?"])
    b = enc.embed_text(["when does the red cross enter"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_clips_of_the_wrong_shape_are_input_errors(folder):
    enc = DualEncoder.from_pretrained(folder)
    with pytest.raises(InputError, match=r"\[N, 2, H, W, 3\]"):
        enc.embed_frames(np.zeros((3, 40, 56, 3), np.uint8))  # single frames for a 2-frame model


def test_bad_retriever_folders_are_one_line_model_errors(folder, tmp_path):
    import shutil

    def one_line(fn):
        with pytest.raises(ModelError) as err:
            fn()
        assert len(str(err.value).splitlines()) == 1
        return str(err.value)

    assert "no config.json" in one_line(lambda: DualEncoder.from_pretrained(tmp_path))
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    (bad / "model.safetensors").write_bytes(b"not safetensors")
    assert "cannot load retriever" in one_line(lambda: load_embedder(bad))
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "embed_dim": 32}))  # weights no longer fit
    assert "cannot load retriever" in one_line(lambda: load_embedder(other))
    (other / "config.json").write_text(json.dumps({**cfg, "model_type": "qwen2_5_vl"}))
    assert "not a groundqa dual encoder" in one_line(lambda: DualEncoder.from_pretrained(other))
    (other / "config.json").write_text(json.dumps({**cfg, "channels": [8, 8]}))
    assert "channels" in one_line(lambda: DualEncoder.from_pretrained(other))
