"""The reward parser and the token-aware KL mask on the real Qwen2 tokenizer (../shared/data/models):
timestamps written the ways grounding models write them are read as the same span, and exactly the
tokens that write their numbers get the timestamp KL weight."""

from __future__ import annotations

import re

import pytest

from grounder.answer_format import parse_answer
from trainer.kl import timestamp_token_mask, timestamp_token_mask_ids

WRITINGS = [
    # (who writes it this way, the completion)
    ("ours / TAR-TVG", "<think>It starts near <timestamp>12.0 to 14.0</timestamp>.</think><answer>12.5 to 30.0</answer>"),
    ("TimeZero (two decimals)", "<think>The person stands up.</think> <answer>12.50 to 30.00</answer>"),
    ("Time-R1", "<think>...</think>\n<answer>12.5 to 30.0</answer>"),
    ("plain seconds with a dash", "The event happens at 12.5 - 30.0 seconds."),
    ("clock time", "It happens from 00:12.5 to 00:30."),
    ("between ... and", "The moment is between 12.5 and 30.0 seconds."),
    ("unit on both ends", "From 12.5s to 30.0s the man runs."),
]


@pytest.fixture(scope="module")
def tokenizer(shared_data):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(shared_data / "models" / "Qwen2.5-VL-7B-Instruct")


@pytest.mark.parametrize("who, text", WRITINGS, ids=[w for w, _ in WRITINGS])
def test_every_writing_parses_to_the_same_span(who, text):
    assert parse_answer(text, window=60.0).span == pytest.approx((12.5, 30.0)), who


@pytest.mark.parametrize("who, text", WRITINGS, ids=[w for w, _ in WRITINGS])
def test_exactly_the_number_tokens_get_the_timestamp_weight(who, text, tokenizer):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = [tokenizer.decode([i]) for i in ids]
    numbers: dict[str, list[str]] = {"tags": [], "anywhere": []}
    for m in re.finditer(r"\d+(?:[.:]\d+)*", text):
        numbers["anywhere"].append(m.group(0))
        inside = any(a <= m.start() and m.end() <= b for a, b in
                     [(x.start(2), x.end(2)) for x in re.finditer(r"<(answer|timestamp)>(.*?)</\1>", text)])
        if inside:
            numbers["tags"].append(m.group(0))
    for scope in ("tags", "anywhere"):
        mask = timestamp_token_mask(tokenizer, text, scope)
        assert mask == timestamp_token_mask_ids(tokenizer, ids, scope)  # generated ids, the same tokens
        marked = "".join(p for p, m in zip(pieces, mask) if m)
        # exactly the numbers (inside the tags, or anywhere): no letters, spaces, tags or full stops
        assert marked == "".join(numbers[scope]), (who, scope, marked)
    if "<answer>" not in text:
        assert not any(timestamp_token_mask(tokenizer, text, "tags"))  # untagged: no timestamp weight
    # the real tokenizer writes one digit per token (Qwen2's pre-tokenizer isolates digits), so a
    # number's every digit is its own masked token
    digit_tokens = [p for p in pieces if p.strip().isdigit()]
    assert all(len(p.strip()) == 1 for p in digit_tokens)
