"""`groundqa repro`: each claim's two arms differ only in its named setting, and both train (smoke)."""

from __future__ import annotations

import json

import pytest

from evals.repro import (
    CLAIMS,
    NOT_YET,
    arm_recipe,
    base_recipe,
    context_differences,
    differing_keys,
    only_named,
    paired_interval,
    qa_contexts,
)
from groundqa.cli import main


@pytest.mark.parametrize("name", sorted(n for n, c in CLAIMS.items() if c.kind == "grpo"))
def test_the_arms_differ_in_the_named_setting_only(name, tmp_path):
    claim = CLAIMS[name]
    base = base_recipe(tmp_path / "train.jsonl", tmp_path / "run", 10, 0, claim.view)
    a, b = arm_recipe(claim, "A", base), arm_recipe(claim, "B", base)
    differ = differing_keys(a, b)
    assert only_named(differ, claim.setting) and all(any(k.startswith(s) for k in differ) for s in claim.setting)
    assert not only_named(differ | {"train.steps"}, claim.setting) and not only_named(set(), claim.setting)


def test_the_qa_claim_changes_the_strategy_only():
    a, b = qa_contexts(CLAIMS["ground-then-answer"])
    assert context_differences(a, b) == {"strategy"} and a.strategy == "coarse-to-fine" and b.strategy == "uniform"


def test_paired_interval_covers_a_known_difference():
    a = [[0.5 + 0.01 * i for i in range(40)] for _ in range(3)]
    b = [[x - 0.1 for x in row] for row in a]
    d, lo, hi = paired_interval(a, b)
    assert d == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    noisy = [[0.5 + (0.2 if i % 2 else -0.2) for i in range(40)]]
    d, lo, hi = paired_interval(noisy, [[0.5] * 40])
    assert lo < d < hi and lo < 0 < hi  # no difference on average: the interval holds 0


def test_smoke_trains_both_arms_of_every_claim(tmp_path, capsys):
    """What CI runs: one seed, two GRPO steps per arm from the embedded default, a few held-out windows."""
    assert main(["repro", "all", "--smoke", "--out", str(tmp_path / "r"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["claims"]
    assert [r["claim"] for r in res] == list(CLAIMS)
    for r in res:
        assert r["only_named_setting_differs"] and r["seeds"] == 1
        assert r["steps"] == (2 if CLAIMS[r["claim"]].kind == "grpo" else 0)
        for arm in ("A", "B"):
            if CLAIMS[r["claim"]].kind == "grpo":
                assert r["trained"][arm][0]["steps"] == 2
            assert 0 <= r[arm]["mean"] <= 100
    assert next(r for r in res if r["claim"] == "ground-then-answer")["items"] == 3
    assert (tmp_path / "r" / "results.json").is_file()


def test_unknown_or_unwired_claims_are_one_line(capsys):
    assert main(["repro", "nope"]) == 2
    assert "unknown claim 'nope'" in capsys.readouterr().err
    name = min(NOT_YET)
    assert main(["repro", name]) == 2
    assert "not wired yet" in capsys.readouterr().err
