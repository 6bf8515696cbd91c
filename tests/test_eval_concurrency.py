"""`groundqa eval run --backend openai --concurrency N` against the loopback stand-in server: items
in flight at once, each record written once, and a `kill -9` mid-run loses only what was in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evals.bench.concurrency import REPLY, stand_in
from evals.runner import JsonlAppender, RunConfig, load_predictions, read_records
from grounder.errors import InputError
from grounder.tiny import save_tiny


def test_concurrency_needs_a_served_model():
    with pytest.raises(InputError, match="--backend openai"):
        RunConfig(bench="synthetic", ann="a.jsonl", out="o", concurrency=4)
    with pytest.raises(InputError, match=">= 1"):
        RunConfig(bench="synthetic", ann="a.jsonl", out="o", backend="openai", concurrency=0)


def test_a_cut_line_does_not_swallow_the_next_record(tmp_path):
    p = tmp_path / "predictions.jsonl"
    p.write_bytes(b'{"id": "a", "index": 0}\n{"id": "b", "ind')  # killed while writing b
    w = JsonlAppender(p)
    w.write({"id": "b", "index": 1})
    w.close()
    assert [r["id"] for r in read_records(p)] == ["a", "b"]


def _lines(out: Path) -> int:
    return sum(f.read_bytes().count(b"\n") for f in out.glob("predictions*.jsonl"))


def test_kill_9_mid_run_then_resume_writes_every_item_once(synth_world, tmp_path):
    ann = synth_world(1, 10, 3)
    n = 12
    out = tmp_path / "run"
    model_dir = save_tiny(tmp_path / "tiny", "qwen2_5_vl")
    cmd = [sys.executable, "-m", "groundqa", "eval", "run", "synthetic", "--ann", str(ann), "--out", str(out),
           "--model", REPLY, "--backend", "openai", "--concurrency", "4", "--strategy", "uniform",
           "--kind", "grounding", "--limit", str(n), "--budget", "max_new_tokens=16", "--json"]
    with stand_in(model_dir, delay=1.0) as base_url:  # batches of 4 a second apart: room to kill between
        env = dict(os.environ, OPENAI_BASE_URL=base_url)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 120
        while _lines(out) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        first = len(load_predictions(out))
        assert 3 <= first < n  # killed with items still to do (others were in flight)
        again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    assert summary["already_done"] == first and summary["ran"] == n - first and summary["errors"] == 0
    records = load_predictions(out)
    assert len(records) == n and len({r["id"] for r in records}) == n
    assert sum(len(read_records(f)) for f in out.glob("predictions*.jsonl")) == n  # none written twice
    assert all(r.get("top1") for r in records)
