"""SFT cold start on video conversations: prompt (video + grounding prompt) -> reasoning trace.

A thin loop of our own (not TRL's SFTTrainer): our samples carry decoded frames and their
`video_metadata`, which SFTTrainer's collator would rebuild through HF `datasets` (None-filled
content blocks) and without the window's timestamps. The collator here builds the batch with
`grounder.qwen.build_video_batch` and masks the labels so that only the assistant's tokens
(`<think>...</think><answer>S to E</answer><|im_end|>`) count: the system and user turns, the
video placeholder tokens and padding are -100.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from grounder.errors import ConfigError
from grounder.qwen import build_video_batch
from trainer.data import GroundingSample
from trainer.grpo import freeze_vision
from trainer.runtime import split_batch

IGNORE = -100
END = "<|im_end|>"


def sft_batch(processor: Any, samples: Sequence[GroundingSample]) -> Any:
    """Processor outputs for prompt + target of each sample, with `labels` on the targets only.

    The target's tokens are the tokenizer's own encoding of `target + <|im_end|>`, checked
    against the tail of each row; a row whose tail differs (a merge across the prompt boundary)
    falls back to running the processor on the prompts alone to find where they end.
    """
    full = build_video_batch(processor, [s.video_sample(s.target + END) for s in samples])
    tok = processor.tokenizer
    attn = full["attention_mask"]
    labels = torch.full_like(full["input_ids"], IGNORE)
    fallback = []
    for i, s in enumerate(samples):
        pos = attn[i].nonzero().squeeze(1)  # real tokens, whatever the padding side
        want = torch.tensor(tok(s.target + END, add_special_tokens=False)["input_ids"])
        keep = pos[len(pos) - len(want):]
        if len(want) <= len(pos) and torch.equal(full["input_ids"][i, keep], want):
            labels[i, keep] = want
        else:
            fallback.append(i)
    if fallback:
        prompt = build_video_batch(processor, [samples[i].video_sample() for i in fallback])
        n_prompt = prompt["attention_mask"].sum(1)
        for j, i in enumerate(fallback):
            pos = attn[i].nonzero().squeeze(1)
            keep = pos[int(n_prompt[j]):]
            if len(keep) != int(attn[i].sum() - n_prompt[j]):
                raise RuntimeError("prompt tokens are not a prefix of prompt + completion")
            labels[i, keep] = full["input_ids"][i, keep]
    video_id = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    labels[full["input_ids"] == video_id] = IGNORE
    full["labels"] = labels
    return full


class VideoSFT:
    """`step(samples)`: one optimizer step of assistant-only cross-entropy."""

    def __init__(self, model: Any, processor: Any, learning_rate: float = 1e-4,
                 freeze_vision_tower: bool = True, optimizer: torch.optim.Optimizer | None = None,
                 max_grad_norm: float = 1.0, binding: float = 0.0, binding_layer: int | None = None,
                 attend: float = 0.0, attend_span: float = 0.0) -> None:
        self.model = model
        self.processor = processor
        if freeze_vision_tower:
            freeze_vision(model)
        params = [p for p in model.parameters() if p.requires_grad]
        # trainer.binding: a per-frame-group "is the named object here" head on the hidden states
        # after LM layer `binding_layer` (default: the middle one: the answer's later layers must
        # be able to attend to what it found), trained beside the answer loss and thrown away
        # (restarts on resume).
        self.binding = binding
        layers = model.config.get_text_config().num_hidden_layers
        self.binding_layer = layers // 2 if binding_layer is None else binding_layer
        if not 0 <= self.binding_layer <= layers:
            raise ConfigError(f"train.binding_layer must be in [0, {layers}] for this model, got {binding_layer}")
        # trainer.binding.attention_loss: the answer's decision position attends, in the layer that
        # reads binding_layer's output, to the frame groups that show the named object.
        # trainer.binding.span_attention_loss: likewise for the positions that write the span's numbers.
        self.attend = attend
        self.attend_span = attend_span
        self._numbers = self._number_ids() if attend_span else None
        if attend or attend_span:
            if self.binding_layer >= layers:
                raise ConfigError(f"train.attend and train.attend_span: attend needs a layer after train.binding_layer ({self.binding_layer} of {layers})")
            # The model stays on SDPA; the layer's queries and keys give the few rows the losses read
            # (trainer.attention_rows). Eager attention for every layer made a step 1.5x slower.
            from trainer.attention_rows import LayerProbe

            self._probe: Any = LayerProbe(model, self.binding_layer)
        self.binding_head: torch.nn.Module | None = None
        self._hidden: torch.Tensor | None = None
        self._attn: Any = None
        if binding:
            hidden = model.config.get_text_config().hidden_size
            self.binding_head = torch.nn.Linear(hidden, 1).to(next(model.parameters()).device)
            params += list(self.binding_head.parameters())
        self.optimizer = optimizer or torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
        self.max_grad_norm = max_grad_norm
        # Hooks the training loop replaces under `accelerate launch` (accelerator.backward / clip_grad_norm_,
        # the sum of a count over processes and their number) and for `train.dtype` (the forwards' context).
        self.backward: Any = torch.Tensor.backward
        self.clip_grad_norm: Any = torch.nn.utils.clip_grad_norm_
        self.sum_over_processes: Any = lambda t: t
        self.processes = 1
        self.autocast: Any = contextlib.nullcontext
        self.accumulation = 1  # train.gradient_accumulation_steps

    def loss(self, batch: Any) -> torch.Tensor:
        looks = bool(self.attend or self.attend_span)
        if not self.binding and not looks:
            return self.model(**batch).loss
        out = self.model(**batch, output_hidden_states=bool(self.binding))
        if self.binding:
            self._hidden = out.hidden_states[self.binding_layer]
        if looks:
            self._attn = self._probe.rows(batch)  # layer binding_layer reads hidden_states[binding_layer]
        return out.loss

    def _number_ids(self) -> tuple[int, set[int], set[int]]:
        """("<timestamp>" id, digit ids, ids that continue a number) for span_attention_loss."""
        ids = self.processor.tokenizer.convert_tokens_to_ids
        digits = {ids(str(d)) for d in range(10)}
        return ids("<timestamp>"), digits, digits | {ids(".")}

    def step(self, samples: Sequence[GroundingSample]) -> dict[str, float]:
        """One optimizer step over `samples`, back-propagated in `accumulation` micro-batches. Each
        micro-batch's mean token loss is weighted by its share of the step's target tokens (over all
        processes; DDP averages the processes' gradients, hence the x processes), so the update is
        that of the mean over every target token of the step, however it is cut."""
        device = next(self.model.parameters()).device
        parts = split_batch(list(samples), self.accumulation)
        batches = [sft_batch(self.processor, part).to(device) for part in parts]
        counts = [(b["labels"][:, 1:] != IGNORE).sum().float() for b in batches]
        total = self.sum_over_processes(torch.stack(counts).sum().clone()).clamp(min=1.0)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for part, batch, n in zip(parts, batches, counts):
            share = len(part) / len(samples)
            with self.autocast():
                loss, extra = self._micro_loss(batch, part)
            loss = loss * (n * self.processes / total)
            for k, v in extra.items():  # the extra losses: means over the step's samples
                loss = loss + getattr(self, k) * v * share
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * share
            self.backward(loss)
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
        if self.max_grad_norm:
            self.clip_grad_norm(
                [p for p in self.model.parameters() if p.requires_grad], self.max_grad_norm)
        self.optimizer.step()
        self.model.eval()
        tokens = float(sum(float((b["labels"] != IGNORE).sum()) for b in batches))
        return {"loss": sums.pop("loss"), "tokens": tokens, **sums}

    def _micro_loss(self, batch: Any, samples: Sequence[GroundingSample]) -> tuple[torch.Tensor, dict[str, Any]]:
        """The answer's mean token loss over one micro-batch, and the extra losses that are on
        (binding, attend, attend_span: each that applies to this micro-batch)."""
        loss = self.loss(batch)
        extra: dict[str, Any] = {}
        vid = self.processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
        if self.binding_head is not None and self._hidden is not None:
            from trainer.binding import binding_loss

            b = binding_loss(self._hidden, batch, list(samples), self.binding_head, vid)
            self._hidden = None
            if b is not None:
                extra["binding"] = b
        if self._attn is not None:
            from trainer.binding import attention_loss, span_attention_loss

            a = attention_loss(self._attn, batch, list(samples), vid) if self.attend else None
            if a is not None:
                extra["attend"] = a
            a = span_attention_loss(self._attn, batch, list(samples), vid, *self._numbers) if self._numbers else None
            self._attn = None
            if a is not None:
                extra["attend_span"] = a
        return loss, extra
