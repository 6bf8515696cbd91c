"""A few rows of one layer's attention, without running every layer eagerly.

The attention losses (trainer.binding) need the softmax weights of a handful of query positions
(the answer's decision position, the positions that write the span's numbers) in one LM layer.
transformers returns attention weights only from its eager path, for every layer, as [B, heads, T, T]
tensors; that made an SFT step 0.87 s instead of 0.57 s (BENCHMARKS.md). Here the model keeps SDPA;
the probed layer's attention function also hands over its rotated queries and keys, and
`AttentionRows` computes softmax(q k^T * scaling) under the causal + padding mask for just the rows
asked for. Same numbers as eager (tests/test_vision_pretrain.py), and gradients flow through q and k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

PROBE = "groundqa_sdpa_probe"  # the attention implementation name the probed model runs under


@dataclass
class AttentionRows:
    """softmax(q[i, :, p] . k[i]^T * scaling) over the keys a causal model lets position p see.
    query [B, heads, T, D] and key [B, kv_heads, T, D] as the layer's attention function got them
    (after norm and rotary embedding); mask [B, T], 1 = real token."""

    query: torch.Tensor
    key: torch.Tensor
    mask: torch.Tensor
    scaling: float

    def __call__(self, i: int, p: int) -> torch.Tensor:
        """[heads, T] attention weights of sample i's position p."""
        heads, kv = self.query.shape[1], self.key.shape[1]
        k = self.key[i].repeat_interleave(heads // kv, dim=0)  # query head h reads kv head h // groups
        scores = (k @ self.query[i, :, p].unsqueeze(-1)).squeeze(-1).float() * self.scaling
        t = torch.arange(scores.shape[-1], device=scores.device)
        seen = (t <= p) & self.mask[i].bool()
        return torch.softmax(scores.masked_fill(~seen, float("-inf")), dim=-1)


def rows_of(attn: Any) -> Any:
    """The losses take AttentionRows or an eager [B, heads, T, T] tensor; both as rows(i, p)."""
    if isinstance(attn, torch.Tensor):
        return lambda i, p: attn[i, :, p]
    return attn


def _probe_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: Any, **kwargs: Any) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if getattr(module, "_groundqa_probe", False):
        module._groundqa_qk = (query, key, kwargs.get("scaling") or module.scaling)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def _register() -> None:
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(PROBE, _probe_attention)
    AttentionMaskInterface.register(PROBE, sdpa_mask)  # the masks SDPA gets


class LayerProbe:
    """Runs `model` under SDPA with layer `layer`'s queries and keys kept after each forward.
    `rows(batch)` then gives that forward's AttentionRows (and forgets them)."""

    def __init__(self, model: Any, layer: int) -> None:
        _register()
        model.set_attn_implementation(PROBE)
        inner = model.model if hasattr(model, "model") else model
        lm = getattr(inner, "language_model", inner)
        self.module = lm.layers[layer].self_attn
        self.module._groundqa_probe = True

    def rows(self, batch: Any) -> AttentionRows | None:
        qk = getattr(self.module, "_groundqa_qk", None)
        self.module._groundqa_qk = None
        if qk is None:
            return None
        q, k, scaling = qk
        return AttentionRows(q, k, batch["attention_mask"], float(scaling))
