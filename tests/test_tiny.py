"""Tiny offline Qwen-VL models (grounder.tiny) and the processor call (grounder.qwen).

Models are built once per module; everything runs offline on a CPU.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"

from grounder.qwen import build_video_inputs, video_messages, video_metadata
from grounder.tiny import (
    FAMILIES,
    SPECIAL_TOKENS,
    TAG_TOKENS,
    build_tokenizer,
    folder_size,
    save_pretrained,
)


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def tiny() -> dict:
    from grounder.tiny import build_tiny

    return {family: build_tiny(family, seed=0) for family in FAMILIES}


@pytest.fixture(scope="module")
def synthetic_mp4(tmp_path_factory) -> Path:
    """20 s of H.264 at 10 fps, 112x112: a coloured square crossing a gray background."""
    import av

    path = tmp_path_factory.mktemp("video") / "shapes.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 112, 112, "yuv420p"
        for i in range(200):
            img = np.full((112, 112, 3), 128, np.uint8)
            x = (i * 3) % 92
            img[40:60, x : x + 20] = [(255, 0, 0), (0, 255, 0), (0, 0, 255)][(i // 40) % 3]
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_at(path: Path, times: list[float]) -> tuple[np.ndarray, np.ndarray, float]:
    """Frames on screen at `times` (last frame with timestamp <= t), their own times, source fps."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        decoded = [
            (float(frame.pts * stream.time_base), frame.to_ndarray(format="rgb24"))
            for frame in container.decode(stream)
        ]
    stamps = np.array([t for t, _ in decoded])
    picks = [max(int(np.searchsorted(stamps, t, side="right")) - 1, 0) for t in times]
    return np.stack([decoded[i][1] for i in picks]), stamps[picks], fps


# -- tokenizer ------------------------------------------------------------------------------
def test_tokenizer_splits_digits_one_per_token(tokenizer):
    text = "<answer>12.5 to 170.0</answer> at 1:05 and 2024 seconds, 3600.9"
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])
    with_digits = [t for t in tokens if re.search(r"\d", t)]
    assert with_digits and all(len(t) == 1 for t in with_digits), with_digits
    assert "".join(with_digits) == re.sub(r"\D", "", text)


def test_tokenizer_keeps_tags_and_special_tokens_whole(tokenizer):
    for token in SPECIAL_TOKENS + TAG_TOKENS:
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and tokenizer.convert_ids_to_tokens(ids[0]) == token
    # The tags survive skip_special_tokens (the grounder parses them); chat tokens do not.
    text = "<|im_start|>assistant\n<think>I see <timestamp>1.0 to 2.0</timestamp></think><answer>1.0 to 2.0</answer><|im_end|>"
    decoded = tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True)
    assert decoded == "assistant\n" + text[len("<|im_start|>assistant\n") : -len("<|im_end|>")]


@pytest.mark.parametrize(
    "text",
    [
        "when does the green triangle enter from the left",
        "what colour is the shape that appears right after the blue circle leaves? A. red B. cyan",
        "<think>The object appears near 95.0 seconds, so the event is between 93.5 and 97.0.</think>",
        "Unseen words: zebra quixotic café — naïve 東京 🙂\n\ttabs  and  spaces ",
    ],
)
def test_tokenizer_round_trips(tokenizer, text):
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_tokenizer_is_small_and_deterministic(tokenizer):
    assert 1000 <= len(tokenizer) <= 4096
    assert build_tokenizer().get_vocab() == tokenizer.get_vocab()
    # Words of the synthetic world are single tokens (with their leading space).
    for word in ["green", "triangle", "circle", "left", "enter", "seconds"]:
        assert len(tokenizer(" " + word)["input_ids"]) == 1, word


# -- chat template --------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_chat_template_roles_blocks_and_generation_mask(tiny, family):
    _, processor = tiny[family]
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        # HF datasets fill missing keys with None: such blocks must not become extra videos.
        {
            "role": "user",
            "content": [
                {"type": "video", "text": None, "video": None},
                {"type": "text", "text": "when?", "video": None},
            ],
        },
        {"role": "assistant", "content": "<answer>1.0 to 2.0</answer>"},
    ]
    text = processor.apply_chat_template(messages, tokenize=False)
    video = (
        "<|video_pad|>" if family == "qwen3_vl" else "<|vision_start|><|video_pad|><|vision_end|>"
    )
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        f"<|im_start|>user\n{video}when?<|im_end|>\n"
        "<|im_start|>assistant\n<answer>1.0 to 2.0</answer><|im_end|>\n"
    )
    prompt = processor.apply_chat_template(
        video_messages("q"), add_generation_prompt=True, tokenize=False
    )
    assert prompt.endswith("<|im_start|>assistant\n") and prompt.count("<|video_pad|>") == 1

    # {% generation %}: only the assistant's reply (and its <|im_end|>) is trained on.
    tok = processor.tokenizer
    out = tok.apply_chat_template(
        [{"role": "user", "content": "when?"}, messages[2]],
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids = np.array(out["input_ids"])
    mask = np.array(out["assistant_masks"], bool)
    assert tok.decode(ids[mask]) == "<answer>1.0 to 2.0</answer><|im_end|>"


# -- models: save / reload ------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_save_and_reload_offline_gives_identical_logits(tiny, family, tmp_path, synthetic_mp4):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, processor = tiny[family]
    out = save_pretrained(model, processor, tmp_path / family)
    assert (out / "model.safetensors").is_file()
    assert folder_size(out) < 20 * 1024 * 1024
    model2 = AutoModelForImageTextToText.from_pretrained(out).eval()
    processor2 = AutoProcessor.from_pretrained(out)
    assert type(model2) is type(model) and type(processor2) is type(processor)
    assert processor2.video_processor.do_sample_frames is False

    frames, stamps, fps = decode_at(synthetic_mp4, [0.25 + 0.5 * k for k in range(6)])
    args = {
        "frames": frames,
        "timestamps": stamps,
        "fps": fps,
        "prompt": "when does the red square leave",
        "sample_fps": 2.0,
    }
    inputs = build_video_inputs(processor, **args)
    inputs2 = build_video_inputs(processor2, **args)
    assert inputs.keys() == inputs2.keys()
    for key in inputs:
        assert torch.equal(inputs[key], inputs2[key]), key
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, model2(**inputs2).logits)


# -- models: real video through the processor -------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_forward_and_generate_on_decoded_mp4(tiny, family, synthetic_mp4):
    model, processor = tiny[family]
    times = [0.25 + 0.5 * k for k in range(40)]  # 20 s window at 2 fps
    frames, stamps, fps = decode_at(synthetic_mp4, times)
    assert fps == 10.0 and frames.shape == (40, 112, 112, 3)
    inputs = build_video_inputs(
        processor,
        frames,
        stamps,
        fps,
        "when does the red square enter from the left",
        sample_fps=2.0,
    )
    assert set(inputs) >= {
        "input_ids",
        "attention_mask",
        "pixel_values_videos",
        "video_grid_thw",
        "mm_token_type_ids",
    }
    assert inputs["video_grid_thw"].tolist() == [
        [20, 8, 8]
    ]  # do_sample_frames=False: all 40 frames
    with torch.no_grad():
        logits = model(**inputs).logits
        assert logits.shape == (
            1,
            inputs["input_ids"].shape[1],
            model.config.text_config.vocab_size,
        )
        assert torch.isfinite(logits).all()
        generated = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    new = generated[0, inputs["input_ids"].shape[1] :]
    assert 1 <= len(new) <= 6
    assert isinstance(processor.decode(new, skip_special_tokens=True), str)


def test_qwen2_5_second_per_grid_ts_uses_the_real_sampling_rate(tiny, shared_data):
    """carphone is 30000/1001 fps; frames at 2 fps and at 4 fps; never the 24 fps default."""
    _, processor = tiny["qwen2_5_vl"]
    clip = shared_data / "videos" / "carphone_pristine.mp4"
    for rate in (2.0, 4.0):
        times = [(k + 0.5) / rate for k in range(int(4 * rate))]
        frames, stamps, fps = decode_at(clip, times)
        assert fps == pytest.approx(30000 / 1001)
        inputs = build_video_inputs(processor, frames, stamps, fps, "when?", sample_fps=rate)
        assert inputs["second_per_grid_ts"].tolist() == pytest.approx([2 / rate], abs=1e-9)
        # Without sample_fps it is estimated from the snapped frame times: close, not exact.
        est = build_video_inputs(processor, frames, stamps, fps, "when?")[
            "second_per_grid_ts"
        ].item()
        assert est == pytest.approx(2 / rate, rel=0.02)
    # What the trap looks like: no metadata -> 24 fps.
    text = processor.apply_chat_template(
        video_messages("when?"), add_generation_prompt=True, tokenize=False
    )
    bare = processor(text=[text], videos=[frames], do_sample_frames=False, return_tensors="pt")
    assert bare["second_per_grid_ts"].item() == pytest.approx(2 / 24)


def test_qwen3_prompt_timestamps_are_the_real_frame_times(tiny, shared_data):
    _, processor = tiny["qwen3_vl"]
    clip = shared_data / "videos" / "carphone_pristine.mp4"
    times = [0.25 + 0.5 * k for k in range(8)]
    frames, stamps, fps = decode_at(clip, times)
    for origin in (0.0, 1.0):
        inputs = build_video_inputs(
            processor, frames, stamps, fps, "when?", sample_fps=2.0, origin=origin
        )
        text = processor.tokenizer.decode(inputs["input_ids"][0])
        shown = [float(x) for x in re.findall(r"<([\d.]+) seconds>", text)]
        # One time per pair of frames: the mean of the pair's times, relative to origin.
        rel = np.maximum(stamps - origin, 0)
        expected = [(rel[i] + rel[i + 1]) / 2 for i in range(0, len(rel), 2)]
        assert len(shown) == inputs["video_grid_thw"][0, 0] == 4
        assert shown == pytest.approx(expected, abs=0.051)
        # Each frame pair is wrapped once in vision_start / vision_end.
        assert text.count("<|vision_start|>") == text.count("<|vision_end|>") == 4
    # Bare processor without metadata: 24 fps times, i.e. wrong.
    md = video_metadata(stamps, fps, 2.0)
    assert md["frames_indices"] == [round(t * fps) for t in stamps]
    text = processor.apply_chat_template(
        video_messages("when?"), add_generation_prompt=True, tokenize=False
    )
    bare = processor(text=[text], videos=[frames], do_sample_frames=False, return_tensors="pt")
    shown = [
        float(x)
        for x in re.findall(r"<([\d.]+) seconds>", processor.tokenizer.decode(bare["input_ids"][0]))
    ]
    assert shown == pytest.approx([0.5 / 24 + 2 * k / 24 for k in range(4)], abs=0.051)


# -- mm_token_type_ids: 3-D positions, not the silent 1-D fallback ------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_mm_token_type_ids_reach_the_model(tiny, family, synthetic_mp4):
    model, processor = tiny[family]
    frames, stamps, fps = decode_at(synthetic_mp4, [0.25 + 0.5 * k for k in range(8)])
    inputs = build_video_inputs(
        processor, frames, stamps, fps, "when does the red square leave", sample_fps=2.0
    )
    video_id = model.config.video_token_id
    types = inputs["mm_token_type_ids"]
    assert torch.equal(types == 2, inputs["input_ids"] == video_id) and (types == 2).sum() == 4 * 16

    rope_kwargs = {
        k: inputs[k]
        for k in ("video_grid_thw", "second_per_grid_ts", "attention_mask")
        if k in inputs
    }
    positions, _ = model.model.get_rope_index(
        inputs["input_ids"], inputs["mm_token_type_ids"], **rope_kwargs
    )
    seq = inputs["input_ids"].shape[1]
    flat = torch.arange(seq).expand(3, 1, seq)
    assert positions.shape == (3, 1, seq) and not torch.equal(positions, flat)
    blocks = positions[:, 0, (types[0] == 2)].reshape(3, 4, 16)  # (t/h/w, frame pair, 4x4 tokens)
    for t, h, w in zip(*blocks.tolist()):
        assert len(set(t)) == 1 and len(set(h)) == 4 and len(set(w)) == 4
    if family == "qwen2_5_vl":
        # Temporal positions step by tokens_per_second * second_per_grid_ts = 2 * 1.0 per frame pair.
        starts = blocks[0, :, 0]
        assert (starts - starts[0]).tolist() == [0, 2, 4, 6]

    no_types = {k: v for k, v in inputs.items() if k != "mm_token_type_ids"}
    with torch.no_grad():
        with_types = model(**inputs).logits
        explicit = model(**inputs, position_ids=positions).logits
        assert torch.allclose(with_types, explicit, atol=1e-5)
        if family == "qwen2_5_vl":
            # The trap: Qwen2.5-VL silently runs on 1-D positions without mm_token_type_ids.
            without = model(**no_types).logits
            flat_logits = model(**no_types, position_ids=flat).logits
            assert torch.allclose(without, flat_logits, atol=1e-5)
            assert not torch.allclose(with_types, without, atol=1e-4)
        else:
            # Qwen3-VL (transformers 5.25) refuses instead.
            with pytest.raises(ValueError, match="mm_token_type_ids"):
                model(**no_types)


@pytest.mark.parametrize("family", FAMILIES)
def test_frames_are_kept_as_given(tiny, family, synthetic_mp4):
    """do_sample_frames=False: N frames in, N/2 temporal patches out (odd N: last frame repeated)."""
    _, processor = tiny[family]
    for n in (2, 7, 30):
        times = [0.1 + 0.3 * k for k in range(n)]
        frames, stamps, fps = decode_at(synthetic_mp4, times)
        inputs = build_video_inputs(processor, frames, stamps, fps, "q")
        assert inputs["video_grid_thw"][0, 0].item() == (n + 1) // 2
    # Qwen3-VL's class default would resample our frames at 2 fps; ours must not.
    assert processor.video_processor.do_sample_frames is False
    frames, stamps, fps = decode_at(synthetic_mp4, [0.5 * k for k in range(1)])
    assert (
        build_video_inputs(processor, frames, stamps, fps, "q")["video_grid_thw"][0, 0].item() == 1
    )


def test_video_metadata_makes_sampled_fps_exact():
    from transformers.video_utils import VideoMetadata

    stamps = [k * 1001 / 30000 * 15 for k in range(10)]
    md = VideoMetadata(**video_metadata(stamps, 30000 / 1001, sample_fps=2.0, origin=0.0))
    assert md.sampled_fps == pytest.approx(2.0, abs=1e-12)
    assert md.frames_indices == [15 * k for k in range(10)]
    assert md.timestamps == pytest.approx(stamps)
    with pytest.raises(ValueError):
        video_metadata([], 30.0)


@pytest.mark.parametrize("family", FAMILIES)
def test_left_padded_batch_matches_single_prompts(tiny, family, synthetic_mp4):
    from grounder.qwen import VideoSample, build_video_batch

    model, processor = tiny[family]
    frames, stamps, fps = decode_at(synthetic_mp4, [0.25 + 0.5 * k for k in range(8)])
    samples = [
        VideoSample(frames, stamps, fps, "when does the red square leave", sample_fps=2.0),
        VideoSample(frames[:4, :96], stamps[:4], fps, "when", sample_fps=2.0, origin=0.2),
    ]
    batch = build_video_batch(processor, samples)
    with torch.no_grad():
        batched = model(**batch).logits
        for row, s in enumerate(samples):
            single = build_video_inputs(
                processor,
                s.frames,
                s.timestamps,
                s.fps,
                s.prompt,
                sample_fps=s.sample_fps,
                origin=s.origin,
            )
            logits = model(**single).logits[0]
            assert torch.allclose(batched[row, -len(logits) :], logits, atol=1e-5)


def test_tokenizer_knows_every_word_of_the_synthetic_world():
    # The embedded model is trained on the synthetic world: its words should be single tokens.
    from evals.synthetic.questions import vocabulary

    tok = build_tokenizer()
    assert [w for w in vocabulary() if len(tok.tokenize(" " + w)) > 1] == []
