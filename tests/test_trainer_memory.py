"""trainer.memory: the memory model's parts behave as the settings they model."""

from __future__ import annotations

import pytest

from trainer.memory import TextShape, activation_bytes_per_token, static_bytes, step_memory

SHAPE = TextShape(hidden=3584, intermediate=18944, kv_width=512, layers=28, vocab=152064)


def test_static_is_sixteen_bytes_per_trained_parameter():
    assert static_bytes(10, 10, reference=False) == 160
    assert static_bytes(10, 4, reference=True) == 40 + 48 + 40


def test_sharding_divides_the_static_part_and_checkpointing_the_activations():
    one = step_memory(8_292_000_000, 6_526_000_000, SHAPE, tokens=2048, kept=256)
    eight = step_memory(8_292_000_000, 6_526_000_000, SHAPE, tokens=2048, kept=256, gpus=8, shard=True)
    ddp = step_memory(8_292_000_000, 6_526_000_000, SHAPE, tokens=2048, kept=256, gpus=8, shard=False)
    assert eight["static_gb"] == pytest.approx(one["static_gb"] / 8) and ddp["static_gb"] == one["static_gb"]
    ckpt = step_memory(8_292_000_000, 6_526_000_000, SHAPE, tokens=2048, kept=256, checkpointing=True)
    assert ckpt["activations_gb"] < one["activations_gb"] / 10
    assert activation_bytes_per_token(SHAPE, 4, False) == 2 * activation_bytes_per_token(SHAPE, 2, False)
    # a full fine-tune of an 8B model does not fit one 80 GB GPU; sharded over eight it does
    assert one["total_gb"] > 80 > eight["total_gb"]
