"""Rewards and the token-aware KL mask, each checked against hand-computed values."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from trainer.kl import kl_weights, timestamp_token_mask
from trainer.rewards import (
    RewardWeights,
    anchor_reward,
    cendist,
    format_reward,
    grounding_reward,
    iou,
    qa_reward,
)

GOOD = "<think>look <timestamp>0.0 to 20.0</timestamp> then <timestamp>5.0 to 12.0</timestamp></think><answer>6.0 to 10.0</answer>"


def test_iou():
    assert iou((2.0, 6.0), (4.0, 8.0)) == pytest.approx(2 / 6)
    assert iou(None, (4.0, 8.0)) == 0.0
    assert iou((6.0, 6.0), (4.0, 8.0)) == 0.0


def test_cendist():
    # centres 4 and 6 in a 40 s window: 1 - 2/40
    assert cendist((2.0, 6.0), (4.0, 8.0), 40.0) == pytest.approx(0.95)
    assert cendist((0.0, 2.0), (98.0, 100.0), 50.0) == 0.0  # floored at 0
    assert cendist(None, (4.0, 8.0), 40.0) == 0.0
    # dense where IoU is zero: nearer is better
    assert cendist((10, 12), (20, 22), 60) > cendist((40, 42), (20, 22), 60) > 0


@pytest.mark.parametrize("text, want", [
    ("<think>a</think><answer>1.5 to 3.0</answer>", 1.0),
    ("  <think>\nmulti\nline</think>\n<answer> 1 to 3 </answer>\n", 1.0),
    ("<think>a</think><answer>1.5 - 3.0</answer>", 0.0),  # wrong separator
    ("<answer>1.5 to 3.0</answer>", 0.0),  # no reasoning
    ("<think>a</think><answer>1.5 to 3.0</answer> extra", 0.0),  # trailing text
    ("<think>a</think><answer>1.5 to 3.0</answer><answer>1 to 2</answer>", 0.0),
    ("<think>a<answer>1 to 2</answer></think><answer>1.5 to 3.0</answer>", 0.0),
    ("<think>a</think><answer>soon</answer>", 0.0),
])
def test_format_reward(text, want):
    assert format_reward(text) == want


def test_anchor_reward_counts_strictly_rising_steps():
    gt = (6.0, 10.0)
    # IoUs: 4/20=0.2 -> 4/7 -> 1.0 : both steps rise
    assert anchor_reward(GOOD, gt) == 1.0
    worse = GOOD.replace("5.0 to 12.0", "0.0 to 30.0")  # 0.2 -> 0.133 -> 1.0 : one of two
    assert anchor_reward(worse, gt) == 0.5
    flat = GOOD.replace("5.0 to 12.0", "0.0 to 20.0")  # equal is not a rise
    assert anchor_reward(flat, gt) == 0.5
    assert anchor_reward("<think>none</think><answer>6.0 to 10.0</answer>", gt) == 0.0
    assert anchor_reward(GOOD + " trailing", gt) == 0.0  # invalid format


def test_qa_reward():
    assert qa_reward("B", "B") == 1.0
    assert qa_reward("(b)", "B") == 1.0
    assert qa_reward(1, "B") == 1.0
    assert qa_reward("C", 1) == 0.0
    assert qa_reward(None, "A") == 0.0


def test_grounding_reward_components():
    total, parts = grounding_reward(GOOD, (6.0, 10.0), 40.0, RewardWeights(iou=1, cendist=0.5, format=0.5, anchor=1))
    assert parts == {"iou": 1.0, "cendist": 1.0, "format": 1.0, "anchor": 1.0}
    assert total == pytest.approx(3.0)


@pytest.fixture(scope="module")
def bpe_tokenizer():
    # A real byte-level BPE with merges across digits, so masks must work from offsets.
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<answer>", "</answer>", "<timestamp>",
                                                                  "</timestamp>", "<think>", "</think>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = ["the event is 12.5 to 30.0 seconds at 1:05", "answer 100 200 3.5 7.25"] * 50
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def test_timestamp_mask_only_inside_tags(bpe_tokenizer):
    text = "<think>at 12.5 I see <timestamp>3.0 to 7.5</timestamp></think><answer>4.0 to 1:05</answer>"
    mask = timestamp_token_mask(bpe_tokenizer, text)
    enc = bpe_tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    assert len(mask) == len(enc["input_ids"])
    marked = "".join(text[s:e] for (s, e), m in zip(enc["offset_mapping"], mask) if m).replace(" ", "")
    assert marked == "3.07.54.01:05"  # the "12.5" in free reasoning is not a timestamp
    anywhere = timestamp_token_mask(bpe_tokenizer, text, scope="anywhere")
    assert sum(anywhere) > sum(mask)


def test_timestamp_mask_unclosed_answer(bpe_tokenizer):
    text = "<think>x</think><answer>4.0 to 9"
    mask = timestamp_token_mask(bpe_tokenizer, text)
    enc = bpe_tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    marked = "".join(text[s:e] for (s, e), m in zip(enc["offset_mapping"], mask) if m).replace(" ", "")
    assert marked == "4.09"


def test_kl_weights():
    assert kl_weights([True, False, True], beta=0.04, beta_time=0.0) == [0.0, 0.04, 0.0]
