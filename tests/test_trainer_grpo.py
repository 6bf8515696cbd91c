"""trainer.grpo: the video reaches every log-prob forward; token-aware KL weights apply."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grounder.tiny import build_tiny
from trainer.data import GroundingSample
from trainer.grpo import (
    GRPOConfig,
    VideoGRPO,
    encode_video,
    group_advantages,
    grpo_token_loss,
)
from trainer.kl import timestamp_token_mask, timestamp_token_mask_ids

COMPLETIONS = [
    "<think>I look at <timestamp>1.0 to 6.0</timestamp> first.</think><answer>3.5 to 7.0</answer>",
    "<think>The object appears near 2 seconds.</think><answer>2.0 to 4.5</answer>",
    "<think>Nothing matches the query in this clip.</think><answer>not in this clip</answer>",
]


def _sample(seed: int) -> GroundingSample:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(4, 64, 64, 3), dtype=np.uint8)
    return GroundingSample(video=None, query="when does the red circle enter from the left",  # type: ignore[arg-type]
                           start=10.0, end=20.0, span=(3.0, 6.0), frames=frames,
                           timestamps=np.array([11.25, 13.75, 16.25, 18.75]), fps=2.0)


def _trainer(family: str, **cfg) -> VideoGRPO:
    model, processor = build_tiny(family, seed=0)
    t = VideoGRPO(model, processor, GRPOConfig(num_generations=3, max_new_tokens=8, **cfg))
    with torch.no_grad():  # the policy drifts from the reference (as after some updates)
        for p in t.model.model.language_model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return t


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_logps_see_the_video_in_policy_and_reference(family):
    t = _trainer(family, beta=0.1)
    a = t.make_rollout(_sample(0), COMPLETIONS)
    b = t.make_rollout(_sample(1), COMPLETIONS)
    assert torch.equal(a.prompt["input_ids"], b.prompt["input_ids"])  # same text, other frames
    assert not torch.equal(a.prompt["pixel_values_videos"], b.prompt["pixel_values_videos"])
    for features in (False, True):  # re-encoding, and the once-per-step reuse path
        fa = encode_video(t.model, a.prompt) if features else None
        fb = encode_video(t.model, b.prompt) if features else None
        _, da = t.loss(a, fa)
        _, db = t.loss(b, fb)
        m = a.completion_mask.bool()
        assert (da["logps"] - db["logps"])[m].abs().max() > 1e-4, "policy log-probs ignore the video"
        assert (da["ref_logps"] - db["ref_logps"])[m].abs().max() > 1e-4, "reference log-probs ignore the video"
    # reuse gives the same numbers as re-encoding, on the completion tokens (the padding after
    # EOS is masked out of the loss; its positions differ between the two paths)
    fa = encode_video(t.model, a.prompt)
    m = a.completion_mask.bool()
    assert torch.allclose(t.logps(t.model, a, fa)[m], t.logps(t.model, a, None)[m], atol=1e-5)


def test_reuse_runs_the_vision_tower_once_per_prompt():
    t = _trainer("qwen2_5_vl", beta=0.1)
    calls = []
    t.model.model.visual.register_forward_hook(lambda *a: calls.append(1))
    t.ref_model.model.visual.register_forward_hook(lambda *a: calls.append(1))
    metrics = t.step([_sample(0)])
    assert len(calls) == 1
    for key in ("reward", "reward/iou", "reward/cendist", "reward/format", "reward/anchor", "kl", "loss"):
        assert key in metrics
    calls.clear()
    t.config.reuse_vision = False
    t.step([_sample(0)])
    assert len(calls) >= 3  # generation + policy + reference each run it


def test_timestamp_mask_on_generated_ids_matches_text_mask():
    _, processor = build_tiny("qwen2_5_vl")
    tok = processor.tokenizer
    for text in COMPLETIONS:
        ids = tok.encode(text, add_special_tokens=False)
        assert timestamp_token_mask_ids(tok, ids) == timestamp_token_mask(tok, text)
    ids = tok.encode(COMPLETIONS[0], add_special_tokens=False)
    assert sum(timestamp_token_mask_ids(tok, ids)) == 12  # 1.0 6.0 3.5 7.0, one digit/dot a token


def test_kl_weights_apply_per_token():
    t = _trainer("qwen2_5_vl", beta=0.5, beta_time=0.0)
    r = t.make_rollout(_sample(0), COMPLETIONS)
    r.advantages = torch.tensor([1.0, -0.5, -0.5])
    _, d = t.loss(r)
    m, tm = r.completion_mask.bool(), r.time_mask
    assert tm.sum() == 12 + 6
    assert (d["kl"][tm] > 0).all(), "policy and reference differ on timestamp tokens"
    assert (d["kl_term"][tm] == 0).all(), "beta_time=0: timestamp tokens carry no KL"
    assert (d["kl_term"][m & ~tm] > 0).all()
    losses = {}
    for beta, beta_time in [(0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (0.0, 0.5)]:
        t.config.beta, t.config.beta_time = beta, beta_time
        losses[beta, beta_time] = float(t.loss(r)[0].detach())
    assert losses[0.5, 0.0] != pytest.approx(losses[0.0, 0.0], abs=1e-6)
    assert losses[0.5, 0.5] > losses[0.5, 0.0] > losses[0.0, 0.0]
    assert losses[0.0, 0.5] > losses[0.0, 0.0]  # the KL on timestamp tokens alone


def test_advantages_and_clipped_loss():
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]))
    assert adv.sum().abs() < 1e-6 and adv[0] > 0
    assert torch.equal(group_advantages(torch.ones(3)), torch.zeros(3))
    lp = torch.zeros(2, 3, requires_grad=True)
    old = torch.log(torch.full((2, 3), 0.5))  # ratio 2: clipped at 1 + eps for A > 0
    loss, d = grpo_token_loss(lp, old, None, torch.tensor([1.0, -1.0]), torch.ones(2, 3), None, 0.2)
    assert float(loss) == pytest.approx((-1.2 + 2.0) / 2)
    assert d["clipped"].all()


def test_token_level_loss_weighs_tokens_not_completions():
    lp = torch.zeros(2, 4)
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1, 1, 1]])
    adv = torch.tensor([1.0, -1.0])
    seq, _ = grpo_token_loss(lp, lp, None, adv, mask, None, 0.2, "sequence")
    tok, _ = grpo_token_loss(lp, lp, None, adv, mask, None, 0.2, "token")
    assert float(seq) == pytest.approx(0.0) and float(tok) == pytest.approx((-1 + 4) / 5)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_prompt_reuse_samples_and_scores_like_the_naive_path(family):
    """The reuse path (prompt prefilled once, KV cache shared by the G completions) draws the
    same completions as `generate` with G prompt copies, and gives the same loss and gradients."""
    t = _trainer(family, beta=0.1, top_k=50, temperature=0.9)
    t.config.num_generations, t.config.max_new_tokens = 4, 10
    bump = torch.zeros(t.model.config.text_config.vocab_size)
    bump[t.eos_ids[0]] = 2.0  # EOS likely enough that completions end at different lengths
    for m in (t.model, t.ref_model):
        m.lm_head.register_forward_hook(lambda mod, inp, out: out + bump)
    sample = _sample(0)
    prompt = sample.inputs(t.processor)
    f = encode_video(t.model, prompt)
    lengths = set()
    for seed in range(3):
        torch.manual_seed(seed)
        a = t.generate(prompt, f)
        torch.manual_seed(seed)
        b = t.generate(prompt, None)
        assert torch.equal(a, b), f"seed {seed}: the reuse path sampled other completions"
        lengths |= set(t.make_rollout(sample, a, prompt).completion_mask.sum(1).tolist())
    assert len(lengths) > 1, "the check needs completions of different lengths"
    r = t.make_rollout(sample, a, prompt)
    t.model.train()
    grads = []
    for features in (f, None):
        t.optimizer.zero_grad(set_to_none=True)
        loss, d = t.loss(r, features)
        loss.backward()
        grads.append([p.grad.clone() for p in t.model.parameters() if p.grad is not None])
        if features is not None:
            reuse_loss, reuse_d = loss, d
    m = r.completion_mask.bool()
    assert abs(float(reuse_loss.detach()) - float(loss.detach())) < 1e-6
    assert torch.allclose(reuse_d["ref_logps"][m], d["ref_logps"][m], atol=1e-5)
    assert len(grads[0]) == len(grads[1]) > 0
    for ga, gb in zip(*grads):
        assert torch.allclose(ga, gb, atol=1e-6, rtol=1e-4)


def test_prompt_reuse_runs_the_prompt_once_per_model():
    t = _trainer("qwen2_5_vl", beta=0.1)
    sample = _sample(0)
    n_prompt = int(sample.inputs(t.processor)["input_ids"].shape[1])
    shapes = []
    for m in (t.model, t.ref_model):
        m.model.language_model.register_forward_pre_hook(
            lambda mod, args, kwargs: shapes.append(tuple(kwargs["inputs_embeds"].shape[:2])), with_kwargs=True)
    t.step([sample])
    prompt_runs = [s for s in shapes if s[1] >= n_prompt]
    # one prefill each: generation (policy), reference, policy forward; all with a batch of one
    assert prompt_runs == [(1, n_prompt)] * 3, shapes
    shapes.clear()
    t.config.reuse_vision = False
    t.step([sample])
    g = t.config.num_generations
    assert [s[0] for s in shapes if s[1] >= n_prompt] == [g] * 3  # G prompt copies each time
