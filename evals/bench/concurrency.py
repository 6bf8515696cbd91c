"""Eval throughput against a served model: `groundqa eval run --backend openai --concurrency N`.

    python -m evals.bench.concurrency [--items 16] [--delay 0.5] [--concurrency 1,4] [--no-write]

Starts our loopback stand-in of an OpenAI-compatible server (`tests/openai_server.py`, a tiny
Qwen2.5-VL folder behind it) with a fixed delay per chat completion, as a remote model would
have, and a scripted reply (a span, so no generation: the delay is the model's whole time); runs
the same grounding items (a synthetic video, the uniform strategy: one request per item) once per
concurrency into fresh run folders, in the same process; reports items per second and the ratio
against one at a time, and checks every run wrote each item exactly once. Writes its section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests" / "openai_server.py"
REPLY = "script:<answer>2.0 to 6.0</answer>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def stand_in(model_dir: Path, delay: float = 0.0, names: tuple[str, ...] = (REPLY,), log: Path | None = None,
             threads: int = 1):
    """Our stand-in OpenAI-compatible server (`tests/openai_server.py`) serving `model_dir` as "tiny"
    on a free loopback port, `names` listed too; yields its base URL; torn down at the end."""
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    args = [sys.executable, str(SERVER), str(model_dir), "--name", "tiny", "--port", str(port),
            "--delay", str(delay)]
    if log is not None:
        args += ["--log", str(log)]
    for n in names:
        args += ["--list", n]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    with serving(proc, f"http://127.0.0.1:{port}", "stand-in server") as url:
        yield url


@contextmanager
def serving(proc: subprocess.Popen, url: str, what: str, timeout: float = 90.0):
    """Waits until the server process `proc` answers `url`/health, yields `url`/v1, and stops it at
    the end (whatever happens inside)."""
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
                raise RuntimeError(f"{what} exited: {err}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not become ready within {timeout:g} s")
            time.sleep(0.25)
        yield url + "/v1"
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Ask a server process to end (SIGTERM); kill it when it has not within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_once(ann: Path, out: Path, items: int, concurrency: int) -> dict[str, Any]:
    from evals.runner import RunConfig, load_predictions, run_benchmark
    from grounder.video import clear_shared_readers

    clear_shared_readers()  # every run decodes its frames itself (no frame cache from the run before)
    cfg = RunConfig(bench="synthetic", ann=str(ann), out=str(out), model=REPLY, strategy="uniform",
                    kind="grounding", limit=items, backend="openai", concurrency=concurrency,
                    budget={"max_new_tokens": 16})
    t0 = time.perf_counter()
    summary = run_benchmark(cfg, show_progress=False)
    seconds = time.perf_counter() - t0
    records = load_predictions(out)
    ids = [r["id"] for r in records]
    lines = sum(p.read_text().count("\n") for p in out.glob("predictions*.jsonl"))
    return {"concurrency": concurrency, "items": summary["ran"], "errors": summary["errors"],
            "seconds": round(seconds, 2), "items_per_s": round(summary["ran"] / seconds, 3),
            "records": len(records), "lines": lines, "distinct": len(set(ids))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--delay", type=float, default=0.5, help="seconds the server waits per request")
    ap.add_argument("--concurrency", default="1,4", help="comma-separated; the first is the baseline")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",")]

    from evals.bench.report_md import publish
    from evals.synthetic import generate_world
    from grounder.tiny import save_tiny

    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        generate_world(tmp_p / "world", n_videos=2, minutes=(6, 6), seed=21)
        ann = tmp_p / "world" / "annotations.jsonl"
        model_dir = save_tiny(tmp_p / "tiny", "qwen2_5_vl")
        with stand_in(model_dir, args.delay) as base_url:
            os.environ["OPENAI_BASE_URL"] = base_url
            run_once(ann, tmp_p / "warm-up", 2, 1)  # loads the grounder and imports once, untimed
            results = [run_once(ann, tmp_p / f"run-c{c}", args.items, c) for c in levels]
    base = results[0]["items_per_s"]
    lines = [
        "## Eval throughput against a server (evals/bench/concurrency.py)",
        "",
        (f"`python -m evals.bench.concurrency --items {args.items} --delay {args.delay}` on {date.today().isoformat()}, "
        f"machine: {os.cpu_count()} CPU cores, no GPU, CPython {platform.python_version()}. `groundqa eval run "
        "--backend openai` on the grounding rows of two 6-minute synthetic videos (up to `--items`; after an untimed "
        "warm-up run that loads the grounder; "
        "each run opens its videos afresh), uniform strategy (one chat completion per item), against "
        f"our loopback stand-in server (`tests/openai_server.py`) answering each request after {args.delay} s (a "
        "scripted span: the delay is the model's whole time). Each concurrency runs the same items into a fresh "
        "folder in the same process; `records` / `lines` / `distinct` check that every item was written exactly "
        "once."),
        "",
        "| concurrency | items | seconds | items / s | vs one at a time | errors | records | lines | distinct ids |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['concurrency']} | {r['items']} | {r['seconds']} | {r['items_per_s']} | "
                     f"**{r['items_per_s'] / base:.2f}x** | {r['errors']} | {r['records']} | {r['lines']} | "
                     f"{r['distinct']} |")
    lines += ["", ("Reading: one at a time, each item costs the server's delay plus our own work (decoding its "
                   "frames, encoding them for the request) and the server's (decoding them, its processor), in "
                   "series; with several in flight all of that overlaps the waits, so the gain can pass the number "
                   "in flight."),
              "", ("Resumability after `kill -9` mid-run at concurrency 4 is a test "
              "(`tests/test_eval_concurrency.py`): the rerun finishes the rest and no item is written twice.")]
    publish("\n".join(lines) + "\n", results, write=not args.no_write)


if __name__ == "__main__":
    main()
