"""Video GRPO for the grounder: an explicit loop, not TRL's GRPOTrainer.

Why our own loop: TRL 1.16's GRPOTrainer hands the video to generation but not to the policy,
old-policy and reference log-prob forwards, has no per-token KL weight (the KL is inside
`_compute_loss`), goes through HF `datasets` (None-filled content blocks) and can only roll out
images through vLLM. Fixing all four means overriding most of its step; the GRPO maths itself is
a few lines (below), so we keep those lines and own them:

    for each prompt (one window of one video):
        G completions sampled with `generate` (the video goes in)
        rewards r_i (trainer.rewards, each component logged), advantages A_i = (r_i - mean) / std
    per completion token t:
        ratio = exp(logp - logp_old)                      # logp_old = logp.detach() when mu == 1
        pg    = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)
        kl    = exp(ref - logp) - (ref - logp) - 1        # k3 estimator, as TRL / DeepSeekMath
        loss_t = pg + w_t * kl,   w_t = beta_time on timestamp tokens, beta elsewhere
    loss = mean over completions of (sum_t loss_t / n_tokens)

Every forward (policy, old policy, reference) gets the prompt's video tensors
(`pixel_values_videos`, `video_grid_thw`, `second_per_grid_ts`, `mm_token_type_ids`).

Vision reuse: with the vision tower frozen, a prompt's video is encoded once per step and its
features are reused for the G sampled completions, the policy forward and the reference forward
(the reference's vision tower is the same frozen weights). This goes through transformers'
own `get_video_features` hook: it is replaced, for the duration of a step, by one returning the
cached features repeated for each copy of the video in the batch.

Prompt reuse (same switch): the G completions of one prompt share the prompt (system text, query
and video: ~300 tokens with the tests' tiny model's 128 visual ones, thousands with a real video)
against <= max_new_tokens of completion. The reuse path runs the language model over the prompt
once (batch of one, `prefill`), repeats its KV cache G times and runs only the completions over
it: in sampling (`sample_from_prefix`: the same logits processors and the same
`torch.multinomial` calls as `generate`, so a seed draws the same completions) and in the policy
and reference log-prob forwards (`logps_from_prefix`; the policy's prompt forward keeps its
graph, so the gradients are those of the G-copies forward). The completions' 3-D rope positions
continue the prompt's: `arange(P, P + L) + rope_deltas`, the deltas being
those the model computed from the video grid in the prefill.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from transformers.generation.logits_process import (
    LogitsProcessorList,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
)

from grounder.errors import check_number
from trainer.data import GroundingSample
from trainer.kl import timestamp_token_mask_ids
from trainer.lora import is_lora
from trainer.rewards import RewardWeights, window_reward
from trainer.runtime import is_checkpointing, split_batch

VIDEO_KEYS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")


@dataclass
class GRPOConfig:
    """GRPO hyper-parameters (defaults run on a CPU with a tiny model)."""

    num_generations: int = 4  # G completions per prompt
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k filter
    beta: float = 0.04  # KL weight on ordinary completion tokens
    beta_time: float = 0.0  # KL weight on timestamp tokens (token-aware KL, LongVTG-R1)
    kl_scope: Literal["tags", "anywhere"] = "tags"
    epsilon: float = 0.2  # ratio clip
    loss_type: Literal["sequence", "token"] = "sequence"  # mean per completion, or over all tokens (DAPO)
    num_iterations: int = 1  # mu: updates per batch of rollouts
    scale_rewards: bool = True  # divide advantages by the group's reward std
    freeze_vision: bool = True
    reuse_vision: bool = True  # encode each prompt's video once per step (needs freeze_vision)
    rewards: RewardWeights = field(default_factory=RewardWeights)

    def __post_init__(self) -> None:
        # >= 1 here (the difficulty stage samples with it, k = 1 included); training needs 2 (GRPORecipe)
        check_number("grpo.num_generations", self.num_generations, ge=1)
        check_number("grpo.max_new_tokens", self.max_new_tokens, ge=1)
        check_number("grpo.temperature", self.temperature, gt=0)
        check_number("grpo.top_k", self.top_k, ge=0)
        check_number("grpo.beta", self.beta, ge=0)
        check_number("grpo.beta_time", self.beta_time, ge=0)
        check_number("grpo.epsilon", self.epsilon, gt=0)
        check_number("grpo.num_iterations", self.num_iterations, ge=1)


@dataclass
class Rollout:
    """G completions of one prompt, with what the loss needs."""

    sample: GroundingSample
    prompt: Any  # BatchFeature, batch of one
    completion_ids: torch.Tensor  # [G, Lc] (padded with pad id)
    completion_mask: torch.Tensor  # [G, Lc] float, 1 up to and including EOS
    texts: list[str]
    rewards: torch.Tensor  # [G]
    parts: dict[str, torch.Tensor]  # reward components, [G] each
    advantages: torch.Tensor  # [G]
    time_mask: torch.Tensor  # [G, Lc] bool, timestamp tokens
    old_logps: torch.Tensor | None = None


# -- pure maths -------------------------------------------------------------------------------

def group_advantages(rewards: torch.Tensor, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """(r - mean) / (std + eps) within one group (std: unbiased, as TRL); no scaling if `scale` False."""
    adv = rewards - rewards.mean()
    if scale and rewards.numel() > 1:
        adv = adv / (rewards.std() + eps)
    return adv


def kl_weight_tensor(time_mask: torch.Tensor, beta: float, beta_time: float) -> torch.Tensor:
    """Per-token KL coefficients: `beta_time` where `time_mask`, `beta` elsewhere."""
    return torch.where(time_mask, torch.full_like(time_mask, beta_time, dtype=torch.float32),
                       torch.full_like(time_mask, beta, dtype=torch.float32))


def grpo_token_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    ref_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    kl_weight: torch.Tensor | None,
    epsilon: float = 0.2,
    loss_type: str = "sequence",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped-ratio policy loss plus per-token-weighted KL; see the module docstring.

    `loss_type`: "sequence" averages each completion's tokens, then the completions (GRPO);
    "token" averages over all tokens of the group (DAPO: long completions are not favoured).
    Returns the scalar loss and the per-token terms (`pg`, `kl`, `kl_term` = w * kl) for checks.
    """
    ratio = torch.exp(logps - old_logps)
    adv = advantages[:, None]
    pg = -torch.min(ratio * adv, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * adv)
    per_token = pg
    kl = torch.zeros_like(logps)
    kl_term = torch.zeros_like(logps)
    if ref_logps is not None and kl_weight is not None:
        d = ref_logps - logps
        kl = torch.exp(d) - d - 1
        kl_term = kl_weight * kl
        per_token = pg + kl_term
    if loss_type == "token":
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    else:
        loss = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1.0)).mean()
    clipped = ((ratio < 1 - epsilon) | (ratio > 1 + epsilon)).float()
    return loss, {"pg": pg, "kl": kl, "kl_term": kl_term, "ratio": ratio, "clipped": clipped}


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    return float((x.detach() * mask).sum() / mask.sum().clamp(min=1.0))


# -- vision reuse -----------------------------------------------------------------------------

def unwrap(model: Any) -> Any:
    """The model itself under a DDP / FSDP / DeepSpeed wrapper (`.module`) and under peft's LoRA
    wrapper (its base model, which carries the adapters in its layers), else `model`."""
    model = getattr(model, "module", model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _inner(model: Any) -> Any:
    """The `Qwen*VLModel` that owns `get_video_features` and `visual`."""
    model = unwrap(model)
    return model.model if hasattr(model.model, "visual") else model


def encode_video(model: Any, prompt: Any) -> Any:
    """The vision tower's output for the prompt's one video (no grad)."""
    inner = _inner(model)
    with torch.no_grad():
        return inner.get_video_features(prompt["pixel_values_videos"], prompt["video_grid_thw"],
                                        return_dict=True)


def _repeat_features(features: Any, n: int) -> Any:
    out = copy.copy(features)
    out["pooler_output"] = tuple(features.pooler_output) * n
    deep = getattr(features, "deepstack_features", None)
    if deep is not None:
        out["deepstack_features"] = [tuple(f) * n for f in deep]
    return out


@contextlib.contextmanager
def reuse_video_features(models: Sequence[Any], features: Any, grid: torch.Tensor) -> Iterator[None]:
    """Within the block, `get_video_features` of these models returns `features` (one video)
    repeated for each video of the call, without running the vision tower. Every video of the
    call must have the cached video's grid."""

    def cached(pixel_values_videos: Any = None, video_grid_thw: Any = None, **_: Any) -> Any:
        g = video_grid_thw.reshape(-1, 3)
        if not bool((g == grid.reshape(1, 3).to(g.device)).all()):
            raise RuntimeError("reuse_video_features: a video in the batch is not the cached one")
        return _repeat_features(features, int(g.shape[0]))

    inners = [_inner(m) for m in models if m is not None]
    for inner in inners:
        inner.get_video_features = cached
    try:
        yield
    finally:
        for inner in inners:
            del inner.get_video_features


@dataclass
class PromptPrefix:
    """One prompt run once through a model: its KV cache (batch of one), the logits at its last
    position (those of the first completion token) and the rope deltas of its video grid."""

    cache: Any
    last_logits: torch.Tensor  # [1, V]
    rope_deltas: torch.Tensor  # [1, 1]
    length: int

    def positions(self, rows: int, start: int, n: int) -> torch.Tensor:
        """3-D rope positions [3, rows, n] of text tokens at cache positions start .. start + n - 1."""
        pos = torch.arange(start, start + n, device=self.rope_deltas.device) + self.rope_deltas.reshape(-1)[:1]
        return pos.view(1, 1, n).expand(3, rows, n)


def freeze_vision(model: Any) -> None:
    for p in _inner(model).visual.parameters():
        p.requires_grad_(False)


# -- the trainer ------------------------------------------------------------------------------

class VideoGRPO:
    """GRPO on windows of videos. `step(samples)` = rollouts + update; the parts are public."""

    def __init__(self, model: Any, processor: Any, config: GRPOConfig | None = None,
                 ref_model: Any = None, optimizer: torch.optim.Optimizer | None = None,
                 learning_rate: float = 1e-5, max_grad_norm: float = 1.0) -> None:
        self.model = model
        self.max_grad_norm = max_grad_norm
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.config = config or GRPOConfig()
        if self.config.freeze_vision:
            freeze_vision(model)
        needs_ref = self.config.beta != 0 or self.config.beta_time != 0
        # with LoRA the reference is the base model: the adapters off for its forward (no copy)
        self.ref_from_base = needs_ref and ref_model is None and is_lora(model)
        if ref_model is None and needs_ref and not self.ref_from_base:
            ref_model = copy.deepcopy(model)
        if ref_model is not None:
            ref_model.eval()
            ref_model.requires_grad_(False)
        self.ref_model = ref_model
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = optimizer or torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
        # Hooks the training loop replaces under `accelerate launch` (accelerator.backward / clip_grad_norm_)
        # and for `train.dtype` (the context the forwards run in).
        self.backward: Any = torch.Tensor.backward
        self.clip_grad_norm: Any = torch.nn.utils.clip_grad_norm_
        self.autocast: Any = contextlib.nullcontext
        self.accumulation = 1  # train.gradient_accumulation_steps
        # Under FSDP2 every forward is a collective: sampling goes on while *any* process has an
        # unfinished completion. The loop sets this to that reduction (trainer.fsdp2.any_across);
        # None: each process stops when its own completions are done.
        self.any_process: Any = None
        self.eos_ids = self._eos_ids()
        # A sampled vision placeholder would desynchronise video tokens and features: never emit them.
        self.suppress_ids = [i for i in (self.tokenizer.convert_tokens_to_ids(t) for t in (
            "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"))
            if isinstance(i, int) and i >= 0 and i != self.tokenizer.unk_token_id]
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]

    @property
    def reuse(self) -> bool:
        return self.config.reuse_vision and self.config.freeze_vision

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        return ids or [self.tokenizer.convert_tokens_to_ids("<|im_end|>")]

    @contextlib.contextmanager
    def _video_context(self, rollout_prompt: Any, features: Any, models: Sequence[Any]) -> Iterator[None]:
        if features is None:
            yield
        else:
            with reuse_video_features(models, features, rollout_prompt["video_grid_thw"]):
                yield

    # -- rollouts -----------------------------------------------------------------------
    def prefill(self, model: Any, prompt: Any, features: Any = None) -> PromptPrefix:
        """Run `model` over the prompt (video included) once; grad follows the caller's mode."""
        with self._video_context(prompt, features, [model]):
            out = model(**prompt, use_cache=True, logits_to_keep=1)
        deltas = _inner(model).rope_deltas
        if deltas is None:
            raise RuntimeError("prefill: the model did not compute rope deltas for the prompt")
        return PromptPrefix(cache=out.cache, last_logits=out.logits[:, -1],
                            rope_deltas=deltas.detach().clone(), length=int(prompt["input_ids"].shape[1]))

    def _logits_processor(self) -> LogitsProcessorList:
        """The processors `generate` builds for our sampling arguments, in its order."""
        cfg = self.config
        procs: list[Any] = []
        if self.suppress_ids:
            procs.append(SuppressTokensLogitsProcessor(self.suppress_ids))
        if cfg.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(cfg.temperature))
        if cfg.top_k:
            procs.append(TopKLogitsWarper(top_k=cfg.top_k, min_tokens_to_keep=1))
        return LogitsProcessorList(procs)

    def sample_from_prefix(self, prefix: PromptPrefix, generator: torch.Generator | None = None) -> torch.Tensor:
        """G completions sampled over one prompt's prefix (its cache repeated G times).

        The sampling is `generate`'s (same processors, one `multinomial` over [G, V] per token,
        finished rows padded, stop when all have emitted an EOS or at max_new_tokens), so with
        the same seed it draws the same completions as `generate(num_return_sequences=G)`."""
        cfg, g = self.config, self.config.num_generations
        was_training = self.model.training
        self.model.eval()
        procs = self._logits_processor()
        dev = prefix.last_logits.device
        eos = torch.tensor(self.eos_ids, device=dev)
        cache = prefix.cache
        cache.batch_repeat_interleave(g)
        logits = prefix.last_logits.to(dtype=torch.float32).expand(g, -1).clone()
        attn = torch.ones(g, prefix.length, dtype=torch.long, device=dev)
        unfinished = torch.ones(g, dtype=torch.long, device=dev)
        tokens: list[torch.Tensor] = []
        with torch.no_grad():
            for t in range(cfg.max_new_tokens):
                history = torch.stack(tokens, 1) if tokens else torch.zeros(g, 0, dtype=torch.long, device=dev)
                probs = torch.softmax(procs(history, logits), dim=-1)
                nxt = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
                nxt = nxt * unfinished + self.pad_id * (1 - unfinished)
                tokens.append(nxt)
                unfinished = unfinished & ~torch.isin(nxt, eos)
                left = bool(unfinished.max())
                if t == cfg.max_new_tokens - 1 or not (left if self.any_process is None else self.any_process(left)):
                    break
                attn = torch.cat([attn, torch.ones(g, 1, dtype=torch.long, device=dev)], 1)
                out = self.model(input_ids=nxt[:, None], attention_mask=attn, cache=cache,
                                 position_ids=prefix.positions(g, prefix.length + t, 1), use_cache=True)
                logits = out.logits[:, -1].to(dtype=torch.float32)
        self.model.train(was_training)
        return torch.stack(tokens, 1)

    def generate(self, prompt: Any, features: Any = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """G sampled completions (token ids after the prompt, [G, <=max_new_tokens]).

        With `features` (reuse), the prompt is run once and its cache shared by the G samples;
        without, `generate` runs G copies of prompt and video (the naive baseline)."""
        cfg = self.config
        if features is not None:
            was_training = self.model.training
            self.model.eval()
            with torch.no_grad():
                prefix = self.prefill(self.model, prompt, features)
            self.model.train(was_training)
            return self.sample_from_prefix(prefix, generator)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad(), self._video_context(prompt, features, [self.model]):
            out = unwrap(self.model).generate(
                **prompt, do_sample=True, temperature=cfg.temperature, top_k=cfg.top_k or None,
                top_p=1.0, max_new_tokens=cfg.max_new_tokens, num_return_sequences=cfg.num_generations,
                pad_token_id=self.pad_id, eos_token_id=self.eos_ids, suppress_tokens=self.suppress_ids,
                synced_gpus=self.any_process is not None,
            )
        self.model.train(was_training)
        return out[:, prompt["input_ids"].shape[1]:]

    def make_rollout(self, sample: GroundingSample, completion_ids: torch.Tensor | Sequence[str],
                     prompt: Any = None) -> Rollout:
        """Rewards, advantages and masks for given completions (token ids [G, L] or texts)."""
        cfg = self.config
        prompt = prompt if prompt is not None else sample.inputs(self.processor)
        if not isinstance(completion_ids, torch.Tensor):  # texts (tests, offline rollouts)
            seqs = [self.tokenizer.encode(t, add_special_tokens=False) + [self.eos_ids[0]] for t in completion_ids]
            width = max(len(s) for s in seqs)
            completion_ids = torch.tensor([s + [self.pad_id] * (width - len(s)) for s in seqs],
                                          device=prompt["input_ids"].device)
        ids = completion_ids
        dev = ids.device  # every tensor of the rollout lives where the completions were sampled
        is_eos = torch.isin(ids, torch.tensor(self.eos_ids, device=dev))
        first = torch.where(is_eos.any(1), is_eos.float().argmax(1),
                            torch.full((ids.shape[0],), ids.shape[1], device=dev))
        pos = torch.arange(ids.shape[1], device=dev)[None, :]
        mask = (pos <= first[:, None]).float()
        texts, rewards, time_mask = [], [], []
        parts: dict[str, list[float]] = {}
        for row, n in zip(ids.tolist(), mask.sum(1).long().tolist()):
            kept = row[:n]
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            texts.append(text)
            total, comp = window_reward(text, sample.span, sample.length, cfg.rewards)
            rewards.append(total)
            for k, v in comp.items():
                parts.setdefault(k, []).append(v)
            tm = timestamp_token_mask_ids(self.tokenizer, kept, cfg.kl_scope)
            time_mask.append(tm + [False] * (ids.shape[1] - len(tm)))
        r = torch.tensor(rewards, dtype=torch.float32, device=dev)
        return Rollout(
            sample=sample, prompt=prompt, completion_ids=ids, completion_mask=mask, texts=texts,
            rewards=r, parts={k: torch.tensor(v, device=dev) for k, v in parts.items()},
            advantages=group_advantages(r, cfg.scale_rewards),
            time_mask=torch.tensor(time_mask, dtype=torch.bool, device=dev),
        )

    def rollout(self, sample: GroundingSample, features: Any = None) -> Rollout:
        prompt = sample.inputs(self.processor)
        return self.make_rollout(sample, self.generate(prompt, features), prompt)

    # -- forwards -----------------------------------------------------------------------
    def sequence_batch(self, rollout: Rollout, with_pixels: bool = True) -> dict[str, torch.Tensor]:
        """Model inputs for prompt + each completion (G rows), video tensors included."""
        p, g = rollout.prompt, rollout.completion_ids.shape[0]
        ids = torch.cat([p["input_ids"].repeat(g, 1), rollout.completion_ids], 1)
        attn = torch.cat([p["attention_mask"].repeat(g, 1), rollout.completion_mask.long()], 1)
        mm = torch.cat([p["mm_token_type_ids"].repeat(g, 1),
                        torch.zeros_like(rollout.completion_ids, dtype=p["mm_token_type_ids"].dtype)], 1)
        batch = {"input_ids": ids, "attention_mask": attn, "mm_token_type_ids": mm,
                 "video_grid_thw": p["video_grid_thw"].repeat(g, 1)}
        if "second_per_grid_ts" in p:
            batch["second_per_grid_ts"] = p["second_per_grid_ts"].repeat(g)
        if with_pixels:
            batch["pixel_values_videos"] = p["pixel_values_videos"].repeat(g, 1)
        return batch

    def logps(self, model: Any, rollout: Rollout, features: Any = None) -> torch.Tensor:
        """Per-token log-probs [G, Lc] of the completions under `model`, video included.

        With `features` (the prompt's encoded video) the vision tower is not run again and the
        prompt goes through the language model once (`logps_from_prefix`)."""
        if features is not None and not (model.training and is_checkpointing(model)):
            # (a checkpointed layer keeps no cache in training: the whole sequence then goes through,
            # the video still from `features`)
            return self.logps_from_prefix(model, rollout, self.prefill(model, rollout.prompt, features))
        lc = rollout.completion_ids.shape[1]
        batch = self.sequence_batch(rollout, with_pixels=features is None)
        if features is not None:
            batch["pixel_values_videos"] = rollout.prompt["pixel_values_videos"].repeat(
                rollout.completion_ids.shape[0], 1)  # shape only: the hook ignores pixels
        with self._video_context(rollout.prompt, features, [model]):
            logits = model(**batch, logits_to_keep=lc + 1).logits[:, :-1].float()
        return self._token_logps(logits, rollout.completion_ids)

    def _token_logps(self, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        logits = logits / self.config.temperature
        return torch.log_softmax(logits, -1).gather(-1, ids[..., None]).squeeze(-1)

    def logps_from_prefix(self, model: Any, rollout: Rollout, prefix: PromptPrefix) -> torch.Tensor:
        """Completion log-probs [G, Lc] given the prompt's prefix (consumed: its cache grows).

        The prefix cache is repeated G times (differentiably) and only the completion tokens are
        run, attending to it; the first token's logits are the prefix's last ones."""
        dev = prefix.last_logits.device
        ids, mask = rollout.completion_ids.to(dev), rollout.completion_mask.to(dev)
        g, lc = ids.shape
        prefix.cache.batch_repeat_interleave(g)
        attn = torch.cat([torch.ones(g, prefix.length, dtype=torch.long, device=dev), mask.long()], 1)
        logits = model(input_ids=ids, attention_mask=attn, cache=prefix.cache, use_cache=True,
                       position_ids=prefix.positions(g, prefix.length, lc), logits_to_keep=lc).logits
        first = prefix.last_logits[:, None, :].expand(g, 1, -1)
        logits = torch.cat([first, logits[:, :-1]], 1).float()
        return self._token_logps(logits, ids)

    def loss(self, rollout: Rollout, features: Any = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """GRPO loss of one group; `details` holds the tensors used (logps, ref_logps, terms)."""
        cfg = self.config
        logps = self.logps(self.model, rollout, features)
        ref = None
        if self.ref_model is not None:
            with torch.no_grad():
                ref = self.logps(self.ref_model, rollout, features)
        elif self.ref_from_base:
            with torch.no_grad(), getattr(self.model, "module", self.model).disable_adapter():
                ref = self.logps(self.model, rollout, features)
        old = rollout.old_logps if rollout.old_logps is not None else logps.detach()
        weights = kl_weight_tensor(rollout.time_mask, cfg.beta, cfg.beta_time)
        loss, terms = grpo_token_loss(logps, old, ref, rollout.advantages, rollout.completion_mask,
                                      weights if ref is not None else None, cfg.epsilon, cfg.loss_type)
        return loss, {"logps": logps, "ref_logps": ref, "kl_weight": weights, **terms}

    # -- one step -----------------------------------------------------------------------
    def _backward_groups(self, groups: Sequence[tuple[Rollout, Any]], n: int, logs: dict[str, list[float]]) -> None:
        """Back-propagate each group's loss / n (the mean over the step's prompts)."""
        self.model.train()
        for r, f in groups:
            with self.autocast():
                loss, d = self.loss(r, f)
            self.backward(loss / n)
            m = r.completion_mask
            logs.setdefault("loss", []).append(float(loss.detach()))
            logs.setdefault("kl", []).append(masked_mean(d["kl"], m))
            logs.setdefault("clip_ratio", []).append(masked_mean(d["clipped"], m))
        self.model.eval()

    def _update(self) -> None:
        if self.max_grad_norm:
            self.clip_grad_norm(
                [p for p in self.model.parameters() if p.requires_grad], self.max_grad_norm)
        self.optimizer.step()

    def step(self, samples: Sequence[GroundingSample], seeds: Sequence[int] | None = None) -> dict[str, float]:
        """Roll out G completions per sample, then `num_iterations` updates. Returns metrics.

        The samples go in `accumulation` micro-batches: each one's rollouts are made and (first
        iteration) back-propagated before the next one's are made, so only one micro-batch's video
        features are held at a time; the weights change only at the optimizer step, so the update
        is the one over the whole batch. Later iterations (num_iterations > 1) need every rollout
        and keep them all.

        `seeds` (one per sample): each sample's completions are drawn from its own generator, so a
        sample gets the same completions however the step is cut across processes or micro-batches
        (the training loop passes seeds from train.seed, the step and the sample's place in it).
        Without, the global RNG draws them (the `generate` path, reuse_vision off, always does)."""
        cfg = self.config
        device = next(self.model.parameters()).device
        rollouts: list[Rollout] = []
        kept: list[tuple[Rollout, Any]] = []
        logs: dict[str, list[float]] = {}
        self.optimizer.zero_grad(set_to_none=True)
        keyed = list(zip(samples, seeds if seeds is not None else [None] * len(samples)))
        for part in split_batch(keyed, self.accumulation):
            made = []
            for s, seed in part:
                prompt = s.inputs(self.processor).to(device)
                gen = None if seed is None else torch.Generator(device=device).manual_seed(int(seed))
                with self.autocast():
                    f = encode_video(self.model, prompt) if self.reuse else None
                    made.append((self.make_rollout(s, self.generate(prompt, f, gen), prompt), f))
            if cfg.num_iterations > 1:
                with torch.no_grad(), self.autocast():
                    for r, f in made:
                        r.old_logps = self.logps(self.model, r, f)
                kept += made
            self._backward_groups(made, len(samples), logs)
            rollouts += [r for r, _ in made]
        self._update()
        for _ in range(cfg.num_iterations - 1):
            self.optimizer.zero_grad(set_to_none=True)
            self._backward_groups(kept, len(samples), logs)
            self._update()
        out = {k: sum(v) / len(v) for k, v in logs.items()}
        rewards = torch.cat([r.rewards for r in rollouts])
        out["reward"] = float(rewards.mean())
        out["reward_std"] = float(torch.stack([r.rewards.std() if len(r.rewards) > 1 else r.rewards.new_zeros(())
                                               for r in rollouts]).mean())
        for k in rollouts[0].parts:
            out[f"reward/{k}"] = float(torch.cat([r.parts[k] for r in rollouts]).mean())
        out["completion_length"] = float(torch.cat([r.completion_mask.sum(1) for r in rollouts]).mean())
        self.last_rollouts = rollouts
        return out
