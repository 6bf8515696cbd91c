"""Tiny offline Qwen-VL models: tokenizer, processors and randomly initialised models.

Everything here is built from code, with no network: a byte-level BPE tokenizer trained with
`tokenizers` on the synthetic world's vocabulary, the real transformers processor classes
(`Qwen2_5_VLProcessor`, `Qwen3VLProcessor`) with small pixel budgets, and the real model classes
(`Qwen2_5_VLForConditionalGeneration`, `Qwen3VLForConditionalGeneration`) from small configs.
Tests use them directly; the embedded default is one of them after training; `save_tiny` writes a
folder that `AutoModelForImageTextToText.from_pretrained` / `AutoProcessor.from_pretrained` load
offline (no `trust_remote_code`).

    model, processor = build_tiny("qwen2_5_vl", seed=0)
    save_tiny("out/tiny-qwen3", "qwen3_vl")

The processor call (see `grounder.qwen.build_video_inputs`, which does all of this):

    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(
        text=[text], videos=[frames],            # frames: np.uint8 [N, H, W, 3], already sampled
        video_metadata=[{
            "fps": source_fps,                    # the video file's frame rate
            "frames_indices": [round((t - origin) * source_fps) for t in timestamps],
            "total_num_frames": N * source_fps / sample_fps,   # makes sampled_fps == sample_fps
            "duration": N / sample_fps,
        }],
        do_sample_frames=False,                  # keep our frames (Qwen3-VL samples by default!)
        return_tensors="pt",
    )
    model(**inputs) / model.generate(**inputs)   # pass everything, incl. mm_token_type_ids

`messages` hold one `{"type": "video"}` content block (no frames inside: the template only
places the marker). Without `video_metadata` both processors silently assume 24 fps.
What the metadata drives, in transformers 5.25:

- Qwen2.5-VL: `second_per_grid_ts = temporal_patch_size / metadata.sampled_fps`, where
  `sampled_fps = len(frames_indices) / total_num_frames * fps`; MRoPE's temporal positions are
  `int(k * tokens_per_second * second_per_grid_ts)` for the k-th pair of frames.
- Qwen3-VL: before each pair of frames the prompt gets `<{t:.1f} seconds>`, t the mean of the
  pair's `frames_indices / fps` (the last frame is repeated when N is odd). So `origin` (the
  window start) makes these window-relative, as the grounder's answers are.

The processors return `input_ids, attention_mask, pixel_values_videos, video_grid_thw,
mm_token_type_ids` (+ `second_per_grid_ts` for Qwen2.5-VL). `mm_token_type_ids` must reach the
model: without it transformers falls back to 1-D positions with no error.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)

Family = Literal["qwen2_5_vl", "qwen3_vl"]
FAMILIES: tuple[Family, ...] = ("qwen2_5_vl", "qwen3_vl")

# Chat and vision tokens that the Qwen chat templates, processors and model configs refer to.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# The grounder's output tags: single tokens, but not "special" (decoding must keep them).
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>", "<timestamp>", "</timestamp>"]

# Qwen2's pre-tokenizer regex (transformers' Qwen2Tokenizer). `\p{N}` alone isolates every digit,
# so numbers are split one digit per token exactly as in Qwen.
QWEN_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

VOCAB_SIZE = 2048


def _words(text: str) -> list[str]:
    return text.split()


COLOURS = _words("red green blue yellow purple orange white cyan pink black gray")
SHAPES = _words("circle square triangle star cross diamond")
SIDES = _words("left right top bottom")
EVENTS = _words("enter leave appear disappear move stop turn grow shrink spin bounce")
SCENE_WORDS = _words(
    "scene background screen frame frames clip video object objects shape shapes colour color "
    "moment event segment start end middle corner edge center centre side sides near far "
    "fast slow moving still static large small big tiny same different another other first last "
    "next previous before after during while until then again once twice distractor distractors "
    "looks alike similar cut change changes changed fade flash seconds second minute minutes hour "
    "time times timestamp timestamps window windows query question answer option options "
    # the synthetic world's own words (evals.synthetic.questions.vocabulary())
    "dark grey striped checkered turns enters leaves through"
)
GLUE_WORDS = _words(
    "the a an of to in on at by for from with and or but not no yes is are was were be been "
    "does do did has have had will would can could should may might must this that these those "
    "it its they them their there here what which who whom whose when where why how many much "
    "some any all each every both either neither one two three four five six seven eight nine ten "
    "i you we he she me my your our us see seen saw look looks looking find found give given "
    "return write say says said think thinks thought reason reasoning step steps answer answers "
    "only also just about around between within inside outside into onto out up down over under "
    "right left top bottom above below than then so because if else true false none present "
    "visible shown absent clip please following format exactly letter choose pick best correct "
    "assistant user system helpful model you're it's i'm don't can't isn't"
)
REASONING = [
    "I see the {c} {s} near the {side}.",
    "The object appears near {t} seconds.",
    "So the event is between {a} and {b} seconds.",
    "At {t} seconds the {c} {s} is still on screen.",
    "The {c} {s} moves from the {side} to the {side2}.",
    "I look at the frames around <timestamp>{a} to {b}</timestamp> first.",
    "There is a {c2} {s2} that looks alike, but it is a distractor.",
    "The scene changes at {t} seconds, so the answer must come after that.",
    "Nothing matches the query in this clip.",
]
QUERIES = [
    "when does the {c} {s} enter from the {side}",
    "when does the {c} {s} leave",
    "when does the {c} {s} leave through the {side}",
    "when does the {c} {s} appear",
    "when does the {c} {s} disappear",
    "when is the {c} {s} on screen",
    "when does the {c} {s} {e}",
    "when does the scene change",
    "when does the background turn {c}",
]
QUESTIONS = [
    "what colour is the shape that appears right after the {c} {s} leaves?",
    "what shape enters right before the {c} {s} appears?",
    "which side does the {c} {s} enter from?",
    "how many shapes are on screen when the {c} {s} enters?",
    "what colour is the background when the {c} {s} disappears?",
    "what happens right after the {c} {s} enters from the {side}?",
]
PROMPTS = [
    "You are given a video clip of {d} seconds. Find the moment that matches the query: {q}.",
    (
        "Think step by step inside <think> </think>, then give the start and end time in seconds "
        "inside <answer> </answer>, for example <answer>{a} to {b}</answer>."
    ),
    "If the event is not in the clip, answer not present.",
    "Answer the question about the video with the letter of the correct option.",
    "The clip covers {a} to {b} seconds of a video that is {d} seconds long.",
]


def _time(rng: random.Random) -> str:
    """A time as the models write it: seconds with one decimal, sometimes clock time or integer."""
    r = rng.random()
    if r < 0.7:
        return f"{rng.uniform(0, 3600):.1f}"
    if r < 0.85:
        return str(rng.randint(0, 999))
    return f"{rng.randint(0, 59)}:{rng.randint(0, 59):02d}"


def training_corpus(seed: int = 0, n: int = 4000) -> list[str]:
    """Sentences of the synthetic world (queries, questions, options, prompts, reasoning)."""
    rng = random.Random(seed)

    def fill(template: str) -> str:
        c, c2 = rng.sample(COLOURS, 2)
        s, s2 = rng.choice(SHAPES), rng.choice(SHAPES)
        side, side2 = rng.sample(SIDES, 2)
        a, b = sorted([round(rng.uniform(0, 600), 1), round(rng.uniform(0, 600), 1)])
        return template.format(
            c=c,
            c2=c2,
            s=s,
            s2=s2,
            side=side,
            side2=side2,
            e=rng.choice(EVENTS),
            t=_time(rng),
            a=f"{a:.1f}",
            b=f"{b:.1f}",
            d=_time(rng),
            q=fill_query(),
        )

    def fill_query() -> str:
        c, s, side = rng.choice(COLOURS), rng.choice(SHAPES), rng.choice(SIDES)
        return rng.choice(QUERIES).format(c=c, s=s, side=side, e=rng.choice(EVENTS))

    lines: list[str] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.25:
            lines.append(fill(rng.choice(QUERIES)))
        elif kind < 0.4:
            options = " ".join(f"{letter}. {rng.choice(COLOURS)}" for letter in "ABCDE")
            lines.append(
                f"{fill(rng.choice(QUESTIONS))} {options} The answer is {rng.choice('ABCDE')}."
            )
        elif kind < 0.6:
            lines.append(" ".join(fill(p) for p in rng.sample(PROMPTS, 2)))
        elif kind < 0.85:
            think = " ".join(fill(r) for r in rng.sample(REASONING, 3))
            lines.append(f"<think>{think}</think><answer>{fill('{a} to {b}')}</answer>")
        else:
            words = SCENE_WORDS + GLUE_WORDS + COLOURS + SHAPES + SIDES + EVENTS
            lines.append(" ".join(rng.choice(words) for _ in range(12)).capitalize() + ".")
    # Every word at least a few times, with and without a leading space and capitalised.
    for word in COLOURS + SHAPES + SIDES + EVENTS + SCENE_WORDS + GLUE_WORDS:
        lines.extend([word, f" {word}", word.capitalize(), f"{word}s", f"{word}ing"] * 2)
    lines.extend(["A B C D E", "(A) (B) (C) (D) (E)", "A. B. C. D. E.", "0 1 2 3 4 5 6 7 8 9"] * 5)
    return lines


def build_tokenizer(vocab_size: int = VOCAB_SIZE, seed: int = 0):
    """Train the byte-level BPE on `training_corpus` and wrap it as transformers' Qwen2Tokenizer.

    Same normalizer, pre-tokenizer and decoder as Qwen2Tokenizer, so reloading through that class
    (which rebuilds the pipeline from vocab + merges) gives the same tokens. Deterministic.
    """
    from transformers import Qwen2Tokenizer

    backend = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(TAG_TOKENS),
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(training_corpus(seed), trainer=trainer)
    backend.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in TAG_TOKENS])

    vocab = backend.get_vocab()
    merges = [
        tuple(m) if isinstance(m, (list, tuple)) else tuple(m.split(" ")) for m in _merges(backend)
    ]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        # Named multimodal tokens: the Qwen processors read tokenizer.image_token etc. when present.
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_start_token": "<|vision_start|>",
            "vision_end_token": "<|vision_end|>",
        },
        model_max_length=8192,
        padding_side="left",  # generation batches pad on the left
    )
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    for token in SPECIAL_TOKENS + TAG_TOKENS:  # ids must not move when wrapped
        assert tokenizer.convert_tokens_to_ids(token) == vocab[token], token
    return tokenizer


def _merges(backend: Tokenizer) -> list:
    import json

    return json.loads(backend.to_str())["model"]["merges"]


def chat_template(family: Family) -> str:
    """A compact Qwen-style (ChatML) template: system/user/assistant, text/image/video blocks.

    Assistant turns sit inside `{% generation %}` so TRL's `assistant_only_loss` can mask the rest.
    Blocks are told apart by `type` first, because HF datasets fill missing keys with None.
    Qwen3-VL's processor wraps each frame in vision_start/end itself (after its `<t seconds>`), so
    that family's video marker is the bare pad token.
    """
    video = (
        "<|video_pad|>" if family == "qwen3_vl" else "<|vision_start|><|video_pad|><|vision_end|>"
    )
    image = "<|vision_start|><|image_pad|><|vision_end|>"
    return (
        "{%- for message in messages -%}"
        "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
        "{%- if message['role'] == 'assistant' -%}{%- generation -%}"
        "{%- if message['content'] is string -%}{{- message['content'] -}}"
        "{%- else -%}{%- for c in message['content'] -%}"
        "{%- if c['text'] is defined and c['text'] is not none -%}{{- c['text'] -}}{%- endif -%}"
        "{%- endfor -%}{%- endif -%}"
        "{{- '<|im_end|>' -}}{%- endgeneration -%}{{- '\\n' -}}"
        "{%- else -%}"
        "{%- if message['content'] is string -%}{{- message['content'] -}}"
        "{%- else -%}{%- for c in message['content'] -%}"
        "{%- set kind = c['type'] if c['type'] is defined and c['type'] else "
        "('video' if c['video'] is defined and c['video'] is not none else "
        "('image' if c['image'] is defined and c['image'] is not none else 'text')) -%}"
        f"{{%- if kind == 'video' -%}}{{{{- '{video}' -}}}}"
        f"{{%- elif kind == 'image' -%}}{{{{- '{image}' -}}}}"
        "{%- elif c['text'] is defined and c['text'] is not none -%}{{- c['text'] -}}{%- endif -%}"
        "{%- endfor -%}{%- endif -%}"
        "{{- '<|im_end|>\\n' -}}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
    )


@dataclass(frozen=True)
class TinySize:
    """Sizes of the tiny models. head_dim = hidden / heads; mrope sections sum to head_dim / 2."""

    hidden: int = 128
    intermediate: int = 256
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    vision_hidden: int = 64
    vision_intermediate: int = 128
    vision_layers: int = 2
    vision_heads: int = 2
    # A frame is resized to at most this many pixels (~112x112): 16 visual tokens per frame pair.
    max_frame_pixels: int = 128 * 128
    min_frame_pixels: int = 32 * 32


def patch_size(family: Family) -> int:
    """The real models' patch sizes: 14 (Qwen2.5-VL), 16 (Qwen3-VL)."""
    return 14 if family == "qwen2_5_vl" else 16


def build_processor(family: Family, tokenizer=None, size: TinySize = TinySize()):
    """The family's transformers processor around our tokenizer, with small pixel budgets."""
    from transformers import (
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    # The tokenizer gets the template too: text-only callers (TRL's assistant-only masks) use it.
    tokenizer.chat_template = chat_template(family)
    patch = patch_size(family)
    factor = patch * 2  # patch * merge_size: frame sides are rounded to multiples of this
    common = {"patch_size": patch, "temporal_patch_size": 2, "merge_size": 2}
    # Qwen3-VL normalises with mean = std = 0.5 (its video processor's default), Qwen2.5-VL with CLIP's.
    norm = (
        {}
        if family == "qwen2_5_vl"
        else {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    )
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": size.min_frame_pixels, "longest_edge": size.max_frame_pixels},
        **common,
        **norm,
    )
    if family == "qwen2_5_vl":
        # Qwen2-VL's video processor caps pixels per frame; no frame sampling unless asked.
        video_processor = Qwen2VLVideoProcessor(
            size={"shortest_edge": size.min_frame_pixels, "longest_edge": size.max_frame_pixels},
            cap_pixels_per_frame=False,
            do_sample_frames=False,
            **common,
        )
        return Qwen2_5_VLProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=video_processor,
            chat_template=chat_template(family),
        )
    # Qwen3-VL's `longest_edge` bounds the pixels of the *whole video*; `cap_pixels_per_frame`
    # with `max_video_tokens` (patches per frame, in units of factor**2) bounds each frame instead.
    video_processor = Qwen3VLVideoProcessor(
        size={"shortest_edge": size.min_frame_pixels, "longest_edge": size.max_frame_pixels * 4096},
        cap_pixels_per_frame=True,
        max_video_tokens=size.max_frame_pixels // factor**2,
        do_sample_frames=False,  # the class default is True: it would resample our frames at 2 fps
        **common,
    )
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=chat_template(family),
    )


def build_config(family: Family, tokenizer, size: TinySize = TinySize()):
    """Model config with token ids wired to our tokenizer."""
    from transformers import Qwen2_5_VLConfig, Qwen3VLConfig

    ids = {
        name: tokenizer.convert_tokens_to_ids(token)
        for name, token in [
            ("image_token_id", "<|image_pad|>"),
            ("video_token_id", "<|video_pad|>"),
            ("vision_start_token_id", "<|vision_start|>"),
            ("vision_end_token_id", "<|vision_end|>"),
        ]
    }
    head_dim = size.hidden // size.heads
    half = head_dim // 2
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": size.hidden,
        "intermediate_size": size.intermediate,
        "num_hidden_layers": size.layers,
        "num_attention_heads": size.heads,
        "num_key_value_heads": size.kv_heads,
        "max_position_embeddings": 32768,
        "bos_token_id": None,
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    }
    vision = {
        "depth": size.vision_layers,
        "hidden_size": size.vision_hidden,
        "intermediate_size": size.vision_intermediate,
        "num_heads": size.vision_heads,
        "patch_size": patch_size(family),
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": size.hidden,
    }
    if family == "qwen2_5_vl":
        # Qwen2.5-VL splits head_dim/2 as 16:24:24 (t:h:w); same proportions here.
        t = half // 4
        mrope = [t, (half - t) // 2, half - t - (half - t) // 2]
        text["rope_parameters"] = {
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": mrope,
        }
        vision.update(
            tokens_per_second=2,  # as the released Qwen2.5-VL checkpoints
            window_size=112,
            fullatt_block_indexes=[size.vision_layers - 1],
        )
        return Qwen2_5_VLConfig(
            text_config=text, vision_config=vision, tie_word_embeddings=True, **ids
        )
    if family == "qwen3_vl":
        # Qwen3-VL interleaves t/h/w frequencies, sections 24:20:20 of 64.
        hw = half * 5 // 16
        mrope = [half - 2 * hw, hw, hw]
        text.update(
            head_dim=head_dim,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 5_000_000.0,
                "mrope_section": mrope,
                "mrope_interleaved": True,
            },
        )
        grid = -(-int(size.max_frame_pixels**0.5) // patch_size(family))  # patches per side
        vision.update(
            hidden_act="gelu_pytorch_tanh",
            num_position_embeddings=grid * grid,
            deepstack_visual_indexes=[0],
        )
        return Qwen3VLConfig(
            text_config=text, vision_config=vision, tie_word_embeddings=True, **ids
        )
    raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")


def build_tiny(family: Family, seed: int = 0, size: TinySize = TinySize()):
    """(model, processor): a randomly initialised tiny model of the family, seeded, in eval mode."""
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen3VLForConditionalGeneration,
    )

    processor = build_processor(family, size=size)
    tokenizer = processor.tokenizer
    config = build_config(family, tokenizer, size)
    cls = (
        Qwen2_5_VLForConditionalGeneration
        if family == "qwen2_5_vl"
        else Qwen3VLForConditionalGeneration
    )
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
        torch.manual_seed(seed)
        model = cls(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[
            tokenizer.convert_tokens_to_ids("<|im_end|>"),
            tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        ],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    model.eval()
    return model, processor


def save_tiny(
    out_dir: str | Path, family: Family, seed: int = 0, size: TinySize = TinySize()
) -> Path:
    """Write safetensors + config + generation config + processor + tokenizer into `out_dir`."""
    model, processor = build_tiny(family, seed=seed, size=size)
    return save_pretrained(model, processor, out_dir)


def save_pretrained(model, processor, out_dir: str | Path) -> Path:
    """Write a (trained or fresh) model with its processor so that the Auto classes reload it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    for path in out.iterdir():  # safetensors are written 0600; package data must be readable by all
        if path.is_file():
            path.chmod(0o644)
    return out


def folder_size(path: str | Path) -> int:
    """Bytes of all files under `path`."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
