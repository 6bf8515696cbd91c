"""The pinned TRL's GRPO loss is the one trainer/grpo.py re-implements.

trainer/grpo.py does not run TRL's GRPOTrainer (see its module docstring); it keeps the GRPO maths
in `grpo_token_loss`: the clipped importance ratio, the k3 per-token KL
exp(ref - logp) - (ref - logp) - 1 and the two loss reductions ("sequence" = TRL's "grpo",
"token" = TRL's "bnpo"). These tests fail when the TRL in the environment is not the one that
maths was checked against: its `_compute_loss` source changed (hash), or the numbers differ.
"""

from __future__ import annotations

import hashlib
import inspect
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

trl = pytest.importorskip("trl")
from trl.trainer.grpo_trainer import GRPOTrainer

from trainer.grpo import grpo_token_loss, kl_weight_tensor

PINNED_VERSION = "1.16.0"
# sha256 of inspect.getsource(GRPOTrainer._compute_loss) in TRL 1.16.0
COMPUTE_LOSS_SHA256 = "80295546bbdbf6f711acce7f6e69b0100ab40aa8f23ed8052cc564ff024e3e40"

RECHECK = (
    "TRL's GRPO loss code changed under us (TRL {version}). trainer/grpo.py re-implements that "
    "maths in grpo_token_loss (k3 per-token KL exp(ref-logp)-(ref-logp)-1, ratio clipped to "
    "[1-eps, 1+eps] with -min(ratio*A, clip*A), loss types 'sequence' = TRL 'grpo' and "
    "'token' = TRL 'bnpo'). Read the new GRPOTrainer._compute_loss, re-check grpo_token_loss "
    "against it (and test_grpo_token_loss_matches_trl below), then update PINNED_VERSION / "
    "COMPUTE_LOSS_SHA256 here and the trl pin in pyproject.toml."
)


def test_trl_version_is_the_pinned_one():
    assert trl.__version__ == PINNED_VERSION, RECHECK.format(version=trl.__version__)


def test_trl_grpo_compute_loss_source_is_unchanged():
    src = inspect.getsource(GRPOTrainer._compute_loss)
    digest = hashlib.sha256(src.encode()).hexdigest()
    assert digest == COMPUTE_LOSS_SHA256, RECHECK.format(version=trl.__version__) + f" (new sha256 {digest})"
    # the lines our KL term copies, spelled out so a reader sees what the hash guards
    assert "torch.exp(ref_per_token_logps - per_token_logps) - (ref_per_token_logps - per_token_logps) - 1" in src
    assert "per_token_loss = -torch.min(per_token_loss1, per_token_loss2)" in src


class _Accelerator:
    num_processes = 1
    sync_gradients = True

    @staticmethod
    def reduce(x, reduction="sum"):
        return x

    @staticmethod
    def gather(x):
        return x

    gather_for_metrics = gather


def _trl_loss(logps, old, ref, adv, mask, beta, eps, loss_type):
    """TRL's own `_compute_loss`, run on a stand-in trainer whose forward returns `logps`."""
    stub = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logps, torch.zeros_like(logps), None),
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level="token",
        beta=beta, loss_type=loss_type, epsilon_low=eps, epsilon_high=eps,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None),
        use_vllm=False, vllm_importance_sampling_correction=False, aux_loss_enabled=False,
        _entropy_bonus_enabled=False, model=SimpleNamespace(training=False),
        current_gradient_accumulation_steps=1, accelerator=_Accelerator(),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )
    g, lc = logps.shape
    inputs = {
        "prompt_ids": torch.zeros(g, 3, dtype=torch.long), "prompt_mask": torch.ones(g, 3, dtype=torch.long),
        "completion_ids": torch.zeros(g, lc, dtype=torch.long), "completion_mask": mask,
        "advantages": adv, "old_per_token_logps": old, "ref_per_token_logps": ref,
    }
    return GRPOTrainer._compute_loss(stub, None, inputs)


@pytest.mark.parametrize(("ours", "theirs"), [("sequence", "grpo"), ("token", "bnpo")])
def test_grpo_token_loss_matches_trl(ours, theirs):
    torch.manual_seed(0)
    g, lc, beta, eps = 5, 7, 0.04, 0.2
    logps = -torch.rand(g, lc) * 5
    old = logps + 0.3 * torch.randn(g, lc)  # ratios both inside and outside the clip range
    ref = logps + 0.5 * torch.randn(g, lc)
    adv = torch.randn(g)
    lengths = torch.tensor([7, 3, 5, 1, 6])
    mask = (torch.arange(lc)[None, :] < lengths[:, None]).float()
    weights = kl_weight_tensor(torch.zeros(g, lc, dtype=torch.bool), beta, beta)  # uniform beta, as TRL
    loss, terms = grpo_token_loss(logps, old, ref, adv, mask, weights, eps, ours)
    assert terms["clipped"][mask.bool()].any() and not terms["clipped"][mask.bool()].all()
    expected = _trl_loss(logps, old, ref, adv, mask, beta, eps, theirs)
    assert torch.allclose(loss, expected, atol=1e-6, rtol=1e-6), (float(loss), float(expected))
    # without a reference (beta = 0) too
    loss0, _ = grpo_token_loss(logps, old, None, adv, mask, None, eps, ours)
    assert torch.allclose(loss0, _trl_loss(logps, old, ref, adv, mask, 0.0, eps, theirs), atol=1e-6, rtol=1e-6)
