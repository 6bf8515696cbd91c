"""How much memory a training step needs: a model of the parts, to plan a run on GPUs (pure).

    gb = step_memory(counts, text=TextShape(...), tokens=1100, kept=300, gpus=8, shard=True)

Static, per parameter (the trainer's settings: fp32 weights, AdamW, bf16 only in the forwards):
weights 4 bytes, and for each trainable parameter its gradient 4 and AdamW's two moments 8; a GRPO
reference model (beta > 0) 4 more per parameter. Sharded (FSDP full shard / ZeRO-3) divides all of
it by the number of GPUs; DDP divides nothing.

Activations, per token of the sequence (prompt + completion) in each decoder layer, what autograd
keeps for backward in a Qwen decoder layer: the normed input and residuals (~4 x hidden), q, k, v
and the attention output (2 x hidden + 2 x kv width), the MLP's gate, up, their product and the
activation (4 x intermediate), at `act_bytes` each (2 under bf16 autocast, 4 in fp32). With
activation checkpointing a layer keeps only its input (hidden x act_bytes) and one layer at a time
is recomputed in full. The logits are kept for the scored positions only (`kept`), in fp32, three
times (logits, log-softmax, their gradient). The vision tower is frozen and runs without grad.

This is a model, not a measurement: evals/bench/trainer_shapes.py sets it beside measured peaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TextShape:
    hidden: int
    intermediate: int
    kv_width: int  # num_key_value_heads x head_dim
    layers: int
    vocab: int


def text_shape(text: Any) -> TextShape:
    """The TextShape of a transformers text config (`config.get_text_config()`)."""
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return TextShape(text.hidden_size, text.intermediate_size, text.num_key_value_heads * head_dim,
                     text.num_hidden_layers, text.vocab_size)


def activation_bytes_per_token(shape: TextShape, act_bytes: int, checkpointing: bool) -> float:
    """Bytes autograd keeps per sequence token over all decoder layers (module docstring)."""
    full_layer = (6 * shape.hidden + 2 * shape.kv_width + 4 * shape.intermediate) * act_bytes
    if checkpointing:
        return shape.layers * shape.hidden * act_bytes + full_layer
    return shape.layers * full_layer


def static_bytes(total: int, trainable: int, reference: bool) -> float:
    """Weights (4 B/parameter), gradients and AdamW moments (12 B/trainable), a reference copy (4 B)."""
    return 4.0 * total + 12.0 * trainable + (4.0 * total if reference else 0.0)


def step_memory(total: int, trainable: int, text: TextShape, tokens: int, kept: int,
                gpus: int = 1, shard: bool = False, checkpointing: bool = False,
                reference: bool = False, act_bytes: int = 2) -> dict[str, float]:
    """GB per GPU for one micro-batch of `tokens` sequence tokens (`kept` of them scored)."""
    static = static_bytes(total, trainable, reference) / (gpus if shard else 1)
    acts = tokens * activation_bytes_per_token(text, act_bytes, checkpointing)
    logits = 3 * 4.0 * kept * text.vocab
    gb = 1024 ** 3
    return {"static_gb": static / gb, "activations_gb": acts / gb, "logits_gb": logits / gb,
            "total_gb": (static + acts + logits) / gb}
