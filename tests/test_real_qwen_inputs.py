"""Real Qwen-VL inputs end to end: the published tokenizer, chat template and processor files
(../shared/data/models, read in place) with narrow random-weight models of the real vocabulary and
rope layout (`grounder.real_shapes.save_narrow_model`), on real clips (../shared/data/videos):
a folder laid out as the published ones loads through `groundqa ground` / `ask`, and a frame
sampled at t seconds reaches the model as t seconds, at 0.5, 1 and 2 frames per second and from
a 29.97-fps source."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

FAMILIES = {"qwen2_5_vl": "Qwen2.5-VL-7B-Instruct", "qwen3_vl": "Qwen3-VL-4B-Instruct"}


@pytest.fixture(scope="module")
def folders(shared_data, tmp_path_factory):
    from grounder.real_shapes import save_narrow_model

    root = tmp_path_factory.mktemp("real-folders")
    return {fam: save_narrow_model(shared_data / "models" / name, root / name, max_shard_size="40MB")
            for fam, name in FAMILIES.items()}


def test_the_folder_is_laid_out_as_published(folders, shared_data):
    for fam, d in folders.items():
        index = json.loads((d / "model.safetensors.index.json").read_text())
        shards = sorted({v for v in index["weight_map"].values()})
        assert len(shards) > 1 and all((d / s).is_file() for s in shards)
        for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "chat_template.json",
                  "preprocessor_config.json"):
            assert (d / f).read_bytes() == (shared_data / "models" / FAMILIES[fam] / f).read_bytes(), f


@pytest.mark.parametrize("family", list(FAMILIES))
def test_ground_runs_on_a_real_clip_through_the_published_files(family, folders, shared_data, capsys):
    from groundqa.cli import main

    clip = shared_data / "videos" / "bikes.mp4"
    assert main(["ground", str(clip), "a person rides a bike", "--model", str(folders[family]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # random weights answer nonsense: the run must still send real video tokens and say why it found nothing
    assert out["cost"]["model_calls"] >= 1 and out["cost"]["visual_tokens"] > 0
    assert out["segments"] or "no window gave a usable span" in out["reason"]


def test_ask_runs_the_whole_agent_on_a_real_clip(folders, shared_data, capsys):
    from groundqa.cli import main

    clip = shared_data / "videos" / "carphone_pristine.mp4"
    code = main(["ask", str(clip), "What is the man holding?", "--option", "a phone", "--option", "a cup",
                 "--model", str(folders["qwen3_vl"]), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "answer" in out


def _frames(clip, sample_fps: float, start: float, n: int):
    from grounder.video import open_video

    reader = open_video(clip)
    frames, times = reader.sample(start + np.arange(n) / sample_fps)
    return frames[:, :112, :112], times, reader.fps


@pytest.mark.parametrize("clip_name, sample_fps", [
    ("bikes.mp4", 2.0), ("bikes.mp4", 1.0), ("bikes.mp4", 0.5), ("carphone_pristine.mp4", 2.0),
])
def test_qwen3_vl_writes_each_frame_pair_at_its_time(clip_name, sample_fps, shared_data):
    """Qwen3-VL reads time as text: `<t seconds>` before each pair of frames, t the pair's mean time
    (relative to the window start, as the grounder's answers)."""
    from transformers import AutoProcessor

    from grounder.qwen import build_video_inputs

    processor = AutoProcessor.from_pretrained(shared_data / "models" / FAMILIES["qwen3_vl"])
    start = 0.4
    frames, times, fps = _frames(shared_data / "videos" / clip_name, sample_fps, start, 4)
    inputs = build_video_inputs(processor, frames, times, fps=fps, prompt="When?", origin=start, sample_fps=sample_fps)
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    shown = [float(x) for x in re.findall(r"<([0-9.]+) seconds>", text)]
    snapped = np.rint((np.asarray(times) - start) * fps) / fps  # the source frames they are
    want = [(snapped[i] + snapped[i + 1]) / 2 for i in range(0, len(snapped), 2)]
    assert shown == pytest.approx(want, abs=0.05 + 1e-9)
    assert len(shown) == len(frames) // 2


@pytest.mark.parametrize("clip_name, sample_fps", [
    ("bikes.mp4", 2.0), ("bikes.mp4", 1.0), ("bikes.mp4", 0.5), ("carphone_pristine.mp4", 2.0),
])
def test_qwen2_5_vl_places_each_frame_group_at_its_time(clip_name, sample_fps, folders, shared_data):
    """Qwen2.5-VL reads time from M-RoPE: the temporal position of frame group k is
    tokens_per_second x its time (second_per_grid_ts = 2 / sample fps), truncated."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from grounder.qwen import build_video_inputs

    folder = folders["qwen2_5_vl"]
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    frames, times, fps = _frames(shared_data / "videos" / clip_name, sample_fps, 0.0, 8)
    inputs = build_video_inputs(processor, frames, times, fps=fps, prompt="When?", sample_fps=sample_fps)
    assert float(inputs["second_per_grid_ts"][0]) == pytest.approx(2.0 / sample_fps)
    pos, _ = model.model.get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"],
                                        video_grid_thw=inputs["video_grid_thw"],
                                        second_per_grid_ts=inputs["second_per_grid_ts"],
                                        attention_mask=inputs["attention_mask"])
    video = inputs["input_ids"][0] == processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    temporal = torch.unique(pos[0, 0, video])
    offsets = (temporal - temporal[0]).tolist()
    tps = model.config.vision_config.tokens_per_second
    group_times = np.arange(len(frames) // 2) * 2.0 / sample_fps  # each group's first frame, from the start
    assert offsets == [int(t * tps) for t in group_times]


def test_qwen3_vl_video_prompt_has_no_extra_outer_wrapper(shared_data):
    """The reference layout (transformers 4.57.6, the model card's): this fails on transformers 5.23,
    which wrapped the whole video in one more <|vision_start|>...<|vision_end|> pair."""
    from transformers import AutoProcessor

    from grounder.qwen import build_video_inputs

    processor = AutoProcessor.from_pretrained(shared_data / "models" / FAMILIES["qwen3_vl"])
    frames, times, fps = _frames(shared_data / "videos" / "bikes.mp4", 2.0, 0.0, 4)
    inputs = build_video_inputs(processor, frames, times, fps=fps, prompt="When?", sample_fps=2.0)
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    # the reference layout: <t seconds><|vision_start|>pads<|vision_end|> per pair, nothing around them
    assert "<|vision_start|><0.2 seconds>" not in text and text.count("<|vision_start|>") == 2


@pytest.mark.parametrize("breakage, named", [
    ("no tokenizer", "tokenizer"), ("bad config", "config.json"), ("unknown model type", "model_type"),
])
def test_a_broken_model_folder_is_one_line(breakage, named, folders, tmp_path, capsys, shared_data):
    from groundqa.cli import main

    d = tmp_path / "broken"
    shutil.copytree(folders["qwen2_5_vl"], d)
    if breakage == "no tokenizer":
        for f in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
            (d / f).unlink()
    elif breakage == "bad config":
        (d / "config.json").write_text("{not json")
    else:
        cfg = json.loads((d / "config.json").read_text())
        cfg["model_type"] = "llava"
        (d / "config.json").write_text(json.dumps(cfg))
    code = main(["ground", str(shared_data / "videos" / "bikes.mp4"), "a bike", "--model", str(d)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert named in err and "Traceback" not in err


@pytest.mark.parametrize("family", list(FAMILIES))
def test_our_inputs_equal_the_model_cards_path(family, shared_data):
    """The model card's way (the checkpoint's chat template and processor decoding the file itself at
    2 fps) and ours (frames decoded by our reader at the same source frames, their times and rate in
    the metadata): the same token ids, the same grid and time scale, the same pixels."""
    from transformers import AutoProcessor

    from grounder.qwen import build_video_inputs
    from grounder.video import open_video

    clip = shared_data / "videos" / "carphone_pristine.mp4"
    processor = AutoProcessor.from_pretrained(shared_data / "models" / FAMILIES[family])
    messages = [{"role": "user", "content": [{"type": "video", "path": str(clip)}, {"type": "text", "text": "When?"}]}]
    ref = processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt", fps=2,
                                        add_generation_prompt=True, return_metadata=True)
    meta = ref["video_metadata"][0]
    indices = [int(i) for i in meta.frames_indices]
    reader = open_video(clip)
    frames, times = reader.sample(np.asarray(indices) / reader.fps)
    assert np.rint(np.asarray(times) * reader.fps).astype(int).tolist() == indices  # the same source frames
    ours = build_video_inputs(processor, frames, times, fps=reader.fps, prompt="When?",
                              sample_fps=len(indices) * reader.fps / meta.total_num_frames)
    assert ours["input_ids"].tolist() == ref["input_ids"].tolist()
    assert torch.equal(ours["video_grid_thw"], ref["video_grid_thw"])
    if "second_per_grid_ts" in ref:
        assert ours["second_per_grid_ts"].tolist() == pytest.approx(ref["second_per_grid_ts"].tolist(), abs=1e-9)
    assert torch.allclose(ours["pixel_values_videos"], ref["pixel_values_videos"], atol=1e-5)
