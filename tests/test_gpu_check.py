"""The GPU check script runs its whole code path on the CPU (`--smoke`, a tiny model), so that the one
run a GPU session gets is not spent on a typo."""

from __future__ import annotations

import json


def test_gpu_check_smoke_writes_every_figure(tmp_path):
    from evals.bench.gpu_check import main

    out = tmp_path / "gpu_check.json"
    main(["--smoke", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["device"] == "cpu"
    assert [(r["model"], r["stage"]) for r in report["shapes"]] == [("tiny", "sft"), ("tiny", "grpo")]
    full = report["full"]
    assert full["stage"] == "grpo" and full["tokens_per_s"] > 0 and full["trained"] < full["parameters"]
    assert full["completion_tokens"] > 0 and "mfu" not in full  # no GPU peak to divide by here
