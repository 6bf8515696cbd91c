"""Retrieval proposals with a tiny untrained CLIP (built from a config, loaded by
sentence-transformers from a folder) on real synthetic MP4s."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from evals.synthetic import generate_world
from grounder import grounder as grounder_module
from grounder import retrieval
from grounder.backends import UNTRAINED_WARNING, TransformersBackend
from grounder.embedders import SentenceTransformersEmbedder, load_embedder
from grounder.errors import ModelError
from grounder.files import write_atomic
from grounder.grounder import Grounder
from grounder.retrieval import FrameIndex, Retriever, file_fingerprint, proposals
from grounder.scan import ScanBudget
from grounder.tiny import build_tiny
from grounder.video import open_video
from groundqa.cli import main

# openai/clip-vit-base-patch32's published config and preprocessor values, at one layer per tower
# (reduced depth) and with a character-level vocabulary (its BPE files are not here).
CLIP_B32 = {
    "projection_dim": 512, "logit_scale_init_value": 2.6592,
    "text": {"hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8, "max_position_embeddings": 77,
             "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5},
    "vision": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "image_size": 224,
               "patch_size": 32, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5},
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
}


def char_tokenizer(max_length: int = 77):
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    for c in "abcdefghijklmnopqrstuvwxyz0123456789.,'?":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length), vocab


def save_tiny_clip(folder, kind: str = "clip"):
    """A CLIPModel (or SiglipModel) from real ViT-B/32 (SigLIP base) sizes at one layer, with the real
    CLIP image processor and a character-level tokenizer, saved to `folder`."""
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        SiglipConfig,
        SiglipModel,
    )

    tokenizer, vocab = char_tokenizer(77 if kind == "clip" else 64)
    end = vocab["<|endoftext|>"]
    text = {**CLIP_B32["text"], "vocab_size": len(vocab), "num_hidden_layers": 1,
            "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": end, "pad_token_id": end}
    vision = {**CLIP_B32["vision"], "num_hidden_layers": 1}
    torch.manual_seed(0)
    if kind == "clip":
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=CLIP_B32["projection_dim"],
                                     logit_scale_init_value=CLIP_B32["logit_scale_init_value"]))
    else:  # google/siglip-base-patch16-224's sizes: 768 wide towers, 16-px patches, 64 text positions
        text = {**text, "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
                "max_position_embeddings": 64, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6}
        vision = {**vision, "patch_size": 16, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6}
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
    images = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                image_mean=CLIP_B32["image_mean"], image_std=CLIP_B32["image_std"])
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="module")
def embedder(clip_folder):
    return load_embedder(clip_folder)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 2-minute and a 1-minute synthetic video."""
    out = tmp_path_factory.mktemp("retrieval_world")
    rows = generate_world(out, 1, minutes=(2, 2), seed=0)
    other = generate_world(out / "other", 1, minutes=(1, 1), seed=1)
    return {"video": out / rows[0]["video"], "query": rows[0]["query"],
            "other": out / "other" / other[0]["video"]}


@pytest.fixture(scope="module")
def tiny_backend():
    model, processor = build_tiny("qwen2_5_vl", seed=0)
    return TransformersBackend(model, processor, "qwen2_5_vl")


@pytest.fixture(scope="module")
def built(world, embedder, tmp_path_factory):
    """One index built through the cache (shared by the tests that only read it)."""
    cache = tmp_path_factory.mktemp("retrieval_cache")
    return FrameIndex.load_or_build(world["video"], embedder, cache_dir=cache), cache


def cache_files(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("kind", ["transformers", "sentence-transformers"])
def test_a_clip_folder_embeds_frames_and_texts_as_unit_vectors(clip_folder, kind):
    from sentence_transformers import SentenceTransformer

    from grounder.embedders import TransformersEmbedder

    if kind == "transformers":  # what load_embedder picks for a transformers CLIPModel folder
        embedder = load_embedder(clip_folder)
        assert isinstance(embedder, TransformersEmbedder) and embedder.presence(np.zeros(2)) is None
    else:
        embedder = SentenceTransformersEmbedder.load(clip_folder)
        assert isinstance(embedder.model, SentenceTransformer)
    texts = embedder.embed_text(["the red circle enters", "a blue square"])
    frames = np.random.default_rng(0).integers(0, 255, (3, 48, 64, 3), dtype=np.uint8)
    images = embedder.embed_frames(frames)
    assert texts.shape == (2, embedder.dim) and images.shape == (3, embedder.dim)
    assert texts.dtype == images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_index_builds_and_search_returns_sorted_hits_inside_the_video(built, world):
    index, _ = built
    with open_video(world["video"]) as reader:
        duration = reader.duration
    assert not index.from_cache
    assert len(index) == int(np.ceil(duration * retrieval.DEFAULT_FPS - 1e-9))  # 0.5 fps over 2 min
    assert abs(index.duration - duration) < 1e-6
    assert np.all(np.diff(index.times) > 0) and index.times[0] >= 0 and index.times[-1] <= duration
    hits = index.search(world["query"], k=5)
    assert len(hits) == 5
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True) and all(-1.0 - 1e-5 <= s <= 1.0 + 1e-5 for s in scores)
    assert all(0.0 <= t <= duration for t, _ in hits) and len({t for t, _ in hits}) == 5
    assert {t for t, _ in hits} <= set(index.times.tolist())
    assert len(index.search(world["query"], k=10_000)) == len(index)  # k larger than the index


def test_cache_is_reused_without_embedding(built, world, embedder):
    index, cache = built
    before = embedder.images_embedded
    again = FrameIndex.load_or_build(world["video"], embedder, cache_dir=cache)
    assert again.from_cache and embedder.images_embedded == before  # nothing re-embedded
    np.testing.assert_array_equal(again.times, index.times)
    np.testing.assert_array_equal(again.vectors, index.vectors)
    assert again.search(world["query"], 3) == index.search(world["query"], 3)
    np.testing.assert_array_equal(again.changes, index.changes)
    # no temp files, only the four files of one entry, metadata is JSON (no pickle)
    names = cache_files(cache)
    assert len(names) == 4 and not any(n.startswith(".") or n.endswith(".tmp") for n in names)
    meta = json.loads((cache / next(n for n in names if n.endswith(".json"))).read_text())
    assert meta["fps"] == retrieval.DEFAULT_FPS and meta["frames"] == len(index)


def test_cache_key_follows_content_and_settings(built, world, embedder, tmp_path):
    _, cache = built
    video = tmp_path / "copy.mp4"
    shutil.copy(world["video"], video)
    before = embedder.images_embedded
    copy = FrameIndex.load_or_build(video, embedder, cache_dir=cache)  # same content, other path
    assert copy.from_cache and embedder.images_embedded == before
    denser = FrameIndex.load_or_build(video, embedder, cache_dir=cache, fps=0.25)  # other settings
    assert not denser.from_cache and len(denser) == 30

    shutil.copy(world["other"], video)  # rewritten with other content -> rebuilt
    before = embedder.images_embedded
    rebuilt = FrameIndex.load_or_build(video, embedder, cache_dir=cache)
    assert not rebuilt.from_cache and embedder.images_embedded == before + len(rebuilt)
    assert rebuilt.duration < 70 and rebuilt.times[-1] <= rebuilt.duration


def test_file_fingerprint_hashes_content_and_samples_big_files(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes())
    a.write_bytes(data)
    b.write_bytes(data)
    assert file_fingerprint(a) == file_fingerprint(b)
    data[len(data) // 2 + 12345] ^= 1
    b.write_bytes(data)
    assert file_fingerprint(a) != file_fingerprint(b)  # whole-file hash below the limit
    # above the limit only the size and sampled chunks count (the first and last always)
    assert file_fingerprint(a, full_hash_bytes=1024) != file_fingerprint(a)
    data[0] ^= 1
    b.write_bytes(data)
    assert file_fingerprint(a, full_hash_bytes=1024) != file_fingerprint(b, full_hash_bytes=1024)


@pytest.mark.parametrize("victim", ["vectors.npy", "times.npy", "changes.npy", "json"])
def test_a_corrupt_cache_entry_is_rebuilt(world, embedder, tmp_path, victim):
    cache = tmp_path / "cache"
    first = FrameIndex.load_or_build(world["video"], embedder, cache_dir=cache, max_pixels=32 * 32)
    path = next(p for p in cache.iterdir() if p.name.endswith(victim))
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2] + b"garbage")
    before = embedder.images_embedded
    again = FrameIndex.load_or_build(world["video"], embedder, cache_dir=cache, max_pixels=32 * 32)
    assert not again.from_cache and embedder.images_embedded == before + len(again)
    np.testing.assert_allclose(again.vectors, first.vectors, atol=1e-5)
    assert len(cache_files(cache)) == 4  # rewritten in place, nothing left over
    third = FrameIndex.load_or_build(world["video"], embedder, cache_dir=cache, max_pixels=32 * 32)
    assert third.from_cache


def test_a_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "x.npy"

    def boom(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomic(target, boom)
    assert list(tmp_path.iterdir()) == []


def test_proposals_merge_nearby_hits():
    hits = [(10.0, 0.9), (14.0, 0.5), (50.0, 0.95), (100.0, 0.2), (118.0, 0.3)]
    spans = proposals(hits, margin=2.0, merge_gap=5.0, duration=119.0)
    # 10 & 14 merge; 50 alone and best; 100 and 118 too far apart (18 > 5)
    assert spans == [(48.0, 52.0), (8.0, 16.0), (116.0, 119.0), (98.0, 102.0)]
    # a wide margin makes the widened spans overlap: they merge, at the better rank
    assert proposals([(10.0, 0.1), (20.0, 0.9)], margin=6.0, merge_gap=1.0) == [(4.0, 26.0)]
    assert proposals([(3.0, 0.5)], margin=5.0, merge_gap=1.0, duration=60.0) == [(0.0, 8.0)]
    assert proposals(hits, margin=2.0, merge_gap=5.0, max_spans=2) == [(48.0, 52.0), (8.0, 16.0)]
    assert proposals([], margin=2.0) == []


def test_grounder_with_a_retriever_grounds_only_inside_its_windows(world, embedder, tiny_backend, tmp_path):
    retriever = Retriever(embedder, cache_dir=tmp_path)
    budget = ScanBudget(max_new_tokens=8, frames_per_call=4, fine_max_pixels=56 * 56, target_fps=2.0,
                        retrieval_windows=2, retrieval_min_window=16.0, retrieval_max_window=32.0)
    g = Grounder(tiny_backend, retriever=retriever)
    result = g.ground(world["video"], world["query"], budget=budget)
    cands = result.retrieval.candidates
    dense = sum(round((c.end - c.start) * 2.0) for c in cands)  # each window re-scored at 2 fps
    assert 1 <= len(cands) <= 2 and result.cost.embedder_frames == 60 + dense  # 2 min at 0.5 fps
    assert result.trace and all(s.level >= 1 for s in result.trace)  # no coarse tiling pass
    for step in result.trace:  # every look lies inside a candidate window, 2 s long (4 frames at 2 fps)
        assert any(c.start - 1e-6 <= step.window_start and step.window_end <= c.end + 1e-6 for c in cands)
        assert step.window_end - step.window_start == pytest.approx(2.0)
    assert result.cost.embedder_seconds > 0 and result.cost.seconds >= result.cost.embedder_seconds
    again = g.ground(world["video"], world["query"], budget=budget)  # the index is cached per video
    assert again.retrieval.from_cache and again.cost.embedder_frames == dense
    off = g.ground(world["video"], world["query"], budget=budget, strategy="uniform")
    assert off.retrieval is None and off.cost.embedder_frames == 0


def test_bad_model_folders_are_one_line_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_embedder(tmp_path / "missing")
    with pytest.raises(ModelError, match="no config.json"):
        load_embedder(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError) as err:
        load_embedder(tmp_path)
    assert len(str(err.value).splitlines()) == 1
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))  # a text-only model
    with pytest.raises(ModelError) as err:
        load_embedder(tmp_path)
    assert len(str(err.value).splitlines()) == 1


def test_cli_ground_with_retrieval(world, clip_folder, tiny_backend, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(grounder_module, "load_default",
                        lambda device="cpu", dtype=None: (tiny_backend, [UNTRAINED_WARNING]))
    monkeypatch.setenv("GROUNDQA_HOME", str(tmp_path / "home"))
    rc = main(["ground", str(world["video"]), world["query"], "--json", "--retriever", str(clip_folder),
               "--max-calls", "2", "--max-new-tokens", "8"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["cost"]["model_calls"] == 2 and out["retrieval"]["candidates"]
    assert out["cost"]["embedder_frames"] >= 60 and out["cost"]["embedder_seconds"] > 0
    assert all(0 <= c["start"] < c["end"] <= 121 for c in out["retrieval"]["candidates"])
    assert len(list((tmp_path / "home" / "retrieval").iterdir())) == 4  # cached under GROUNDQA_HOME
    rc = main(["ground", str(world["video"]), "red circle", "--retriever", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "retriever folder not found" in err


def test_a_siglip_retriever_is_calibrated_and_a_clip_one_ranks_within_the_video(world, clip_folder, tmp_path):
    """SigLIP was trained with a sigmoid loss: its presence is sigmoid(scale * cos + bias); CLIP has
    no such calibration, so the scan ranks its curve within the video (median frame 0, best 1)."""
    from grounder.embedders import TransformersEmbedder

    siglip = load_embedder(save_tiny_clip(tmp_path / "siglip", kind="siglip"))
    assert isinstance(siglip, TransformersEmbedder) and siglip.model_type == "siglip"
    cos = np.array([-0.5, 0.0, 0.5])
    scale, bias = float(siglip.model.logit_scale.detach().exp()), float(siglip.model.logit_bias.detach())
    np.testing.assert_allclose(siglip.presence(cos), 1 / (1 + np.exp(-(scale * cos + bias))), rtol=1e-6)
    budget = ScanBudget(retrieval_windows=2, retrieval_dense_fps=0.5)
    for emb in (siglip, load_embedder(clip_folder)):
        got = Retriever(emb, cache_dir=tmp_path / "cache").retrieve(world["video"], world["query"], budget)
        assert 1 <= len(got.candidates) <= 2 and got.frames_embedded >= 60
        assert np.all((got.scores >= 0) & (got.scores <= 1)) and got.scores.max() > 0
        c = got.candidates[0]
        assert 0 <= c.start < c.end <= 121 and c.start <= c.peak <= c.end
