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
from grounder.grounder import Grounder
from grounder.retrieval import FrameIndex, Retriever, file_fingerprint, proposals
from grounder.scan import ScanBudget
from grounder.tiny import build_tiny
from grounder.video import open_video
from groundqa.cli import main


def save_tiny_clip(folder):
    """A tiny CLIPModel + CLIPProcessor (character-level CLIP tokenizer) saved to `folder`."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    vocab: dict[str, int] = {}
    for c in "abcdefghijklmnopqrstuvwxyz0123456789.,'?":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    end = vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 128,
                     "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": end, "pad_token_id": end},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    model = CLIPModel(config)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
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
    # no temp files, only the three files of one entry, metadata is JSON (no pickle)
    names = cache_files(cache)
    assert len(names) == 3 and not any(n.startswith(".") or n.endswith(".tmp") for n in names)
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


@pytest.mark.parametrize("victim", ["vectors.npy", "times.npy", "json"])
def test_a_corrupt_cache_entry_is_rebuilt(world, embedder, tmp_path, victim):
    cache = tmp_path / "cache"
    first = FrameIndex.load_or_build(world["video"], embedder, cache_dir=cache, max_pixels=32 * 32)
    path = next(p for p in cache.iterdir() if p.name.endswith(victim))
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2] + b"garbage")
    before = embedder.images_embedded
    again = FrameIndex.load_or_build(world["video"], embedder, cache_dir=cache, max_pixels=32 * 32)
    assert not again.from_cache and embedder.images_embedded == before + len(again)
    np.testing.assert_allclose(again.vectors, first.vectors, atol=1e-5)
    assert len(cache_files(cache)) == 3  # rewritten in place, nothing left over
    third = FrameIndex.load_or_build(world["video"], embedder, cache_dir=cache, max_pixels=32 * 32)
    assert third.from_cache


def test_a_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "x.npy"

    def boom(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        retrieval._atomic_write(target, boom)
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
    assert len(list((tmp_path / "home" / "retrieval").iterdir())) == 3  # cached under GROUNDQA_HOME
    rc = main(["ground", str(world["video"]), "red circle", "--retriever", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "retriever folder not found" in err
