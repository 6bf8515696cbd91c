"""The resumable batch runner behind `groundqa eval run`.

    rows = load_benchmark(bench, ann, videos)          # evals.loaders
    run_benchmark(RunConfig(bench=..., ann=..., out=...), predictor=None)

What a run folder holds
-----------------------
- `run.json`: the config that decides what the predictions mean (benchmark, annotation file,
  videos folder, model, strategy, budget, predictor). A rerun into the same folder with a
  different config is refused (one line naming the first difference); `--limit`,
  `--skip-missing` and the number of processes are not part of it, so a run can be extended
  or resharded. Its `subset` entry (`kind`, `stride`, `limit`) records the latest invocation's
  row selection, so that a report can say which command reproduces it.
- `predictions.jsonl` (one process) or `predictions.rank{r}.jsonl` (process r of K): one JSON
  object per finished item, written as it finishes (`item_record`).

Resumability
------------
Each line is written with one `write` of `line + "\\n"`, then `flush` + `fsync`, in append mode.
A `kill -9` can therefore lose at most the line being written, which is left without its
newline: on start the process truncates its own file back to the last newline (a partial last
line is dropped), then reads the ids already finished in *every* prediction file of the folder
and skips them. Items whose grounding failed with a user-level error (corrupt video, ...) are
recorded with `"error"` and retried on the next run.

Sharding
--------
Under `accelerate launch --num_processes K` (or any launcher that sets `RANK` / `WORLD_SIZE`),
process r takes the items whose index i (in the loaded, --limit-ed row order) has
i % K == r, and writes `predictions.rank{r}.jsonl`; `eval report` merges every prediction
file of the folder by id. Decoding is greedy and each item is grounded on its own (no
batching), so an item's prediction does not depend on which process ran it: K processes give
the same report as one. On a CPU-only machine `accelerate launch --multi_gpu --num_processes 2
-m groundqa eval run ...` starts 2 ranks through torchrun (checked); `--cpu` with
`--num_processes` starts a single process (accelerate's simple launcher), which then runs
everything as rank 0 of 1.

Predictors
----------
`Predictor` is the per-item interface: `predict(row) -> dict` of prediction fields. The
grounder one (`GroundingPredictor`) grounds the row's query (for QA rows: their evidence query)
and leaves the answer empty. `evals.predictors` (imported at the end of this module) registers
the others in `PREDICTORS`: `agent` (ground, then answer: the record also has `"choice"`, the
option letter), `qa-uniform` and `qa-text` (QA baselines without grounding) and `random-span`
(a grounding baseline). A record has a `"choice"` key only when its predictor answers
questions, and `eval report` gives QA accuracy only over such records; it has a `"top1"` key
only when its predictor grounds (a predictor with `grounds = False` leaves it out), and the
grounding metrics count only such records. The QA predictors (`evals.predictors.QA_PREDICTORS`)
run only over the rows that ask a question: the others are dropped before `--limit`.

TVGBench clip rows
------------------
Rows with `"clip": [start, end]` annotate a cut of a longer file: duration and spans are
relative to the clip start. They are grounded inside the clip through `ClipReader`, a view of
the file that shifts time by `start` and ends at `end`, so predictions come out clip-relative
like the ground truth.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from evals.predictors import PREDICTORS, QA_PREDICTORS, Predictor, clip_reader, is_question_row
from evals.run_config import RunConfig, make_budget, parse_budget, resolved_budget
from grounder.errors import ConfigError, GroundQAError, InputError
from grounder.files import write_text_atomic

# re-exported: what users and tests import from the runner
__all__ = ["PREDICTORS", "PRED_FILE", "RUN_FILE", "RunConfig", "assign_ids", "clip_reader", "load_predictions",
           "make_budget", "parse_budget", "recover_partial", "resolved_budget", "run_benchmark"]

PRED_FILE = "predictions.jsonl"
RUN_FILE = "run.json"
RANK_FILE_RE = re.compile(r"^predictions(\.rank\d+)?\.jsonl$")

# Keys of run.json that must match for a rerun to continue a run folder.
IDENTITY_KEYS = ("bench", "ann", "videos", "model", "strategy", "budget", "predictor")


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment (accelerate / torchrun set both)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)
    except ValueError:
        raise ConfigError("RANK / WORLD_SIZE must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"bad process rank {rank} of WORLD_SIZE={world}")
    return rank, world


def pred_path(out: str | os.PathLike, rank: int, world: int) -> Path:
    return Path(out) / (PRED_FILE if world == 1 else f"predictions.rank{rank}.jsonl")


def record_subset(out: Path, cfg: RunConfig) -> None:
    """run.json's `subset`: this invocation's --kind / --stride / --limit (not part of the identity)."""
    path = out / RUN_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    subset = {"kind": cfg.kind, "stride": cfg.stride, "limit": cfg.limit}
    if data.get("subset") != subset:
        data["subset"] = subset
        write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def check_run_json(out: Path, identity: dict[str, Any]) -> None:
    """Write run.json, or make sure the one there describes the same run."""
    path = out / RUN_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path} is unreadable ({e}); delete it or use another --out") from None
        diff = [k for k in IDENTITY_KEYS if old.get(k) != identity.get(k)]
        if diff:
            k = diff[0]
            what = _budget_diff(old.get(k), identity.get(k)) if k == "budget" else \
                f"{old.get(k)!r} there, {identity.get(k)!r} now"
            raise ConfigError(f"{out} holds a run with a different {k} ({what}); "
                              "use another --out or delete the folder")
        return
    write_text_atomic(path, json.dumps(identity, indent=2) + "\n")


def _budget_diff(old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            if old.get(k) != new.get(k):
                return f"{k}: {old.get(k)!r} there, {new.get(k)!r} now"
    return f"{old!r} there, {new!r} now"


# ----------------------------------------------------------------------------- files

def recover_partial(path: Path) -> int:
    """Truncate `path` back to its last newline (a line cut by a kill); returns bytes dropped."""
    if not path.is_file():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return 0
        # find the last newline, reading backwards in blocks
        pos, block, keep = size, 65536, 0
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            i = chunk.rfind(b"\n")
            if i >= 0:
                keep = start + i + 1
                break
            pos = start
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


def read_records(path: Path) -> list[dict[str, Any]]:
    """Complete records of one prediction file; a cut or unparsable line is skipped."""
    out = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return out
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # a line being written by another process, or cut by a kill
        if isinstance(rec, dict) and "id" in rec:
            out.append(rec)
    return out


def prediction_files(run_dir: str | os.PathLike) -> list[Path]:
    d = Path(run_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if RANK_FILE_RE.match(p.name))


def load_predictions(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every finished record of a run folder, merged over ranks, one per id (a successful
    record beats an errored one), sorted by the item index."""
    best: dict[str, dict[str, Any]] = {}
    for p in prediction_files(run_dir):
        for rec in read_records(p):
            old = best.get(rec["id"])
            if old is None or (old.get("error") and not rec.get("error")):
                best[rec["id"]] = rec
    return sorted(best.values(), key=lambda r: (r.get("index", 0), str(r["id"])))


def _predict(pred: Any, row: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """(prediction or error record, seconds) of one item; a user-level error is the record's."""
    t1 = time.perf_counter()
    try:
        p = pred.predict(row)
    except GroundQAError as e:
        p = {"error": str(e), "segments": []}
        if getattr(pred, "grounds", True):
            p["top1"] = None
    return p, time.perf_counter() - t1


class JsonlAppender:
    """Append one JSON object per line, durable before the next item starts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = open(path, "ab")  # noqa: SIM115 - closed in close()
        # a line cut by a kill stays cut: the next record starts on a line of its own
        if path.stat().st_size:
            with open(path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self.f.write(b"\n")

    def write(self, obj: dict[str, Any]) -> None:
        line = (json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        self.f.write(line)
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


# ----------------------------------------------------------------------------- items

def assign_ids(rows: Sequence[dict[str, Any]], bench: str) -> list[str]:
    """The row's id, else `bench#index`; repeats get `~k` so every item is distinct."""
    seen: dict[str, int] = {}
    ids = []
    for i, r in enumerate(rows):
        base = str(r["id"]) if r.get("id") is not None else f"{bench}#{i}"
        k = seen.get(base, 0)
        seen[base] = k + 1
        ids.append(base if k == 0 else f"{base}~{k}")
    return ids


def item_record(index: int, item_id: str, row: dict[str, Any], strategy: str,
                pred: dict[str, Any], seconds: float, rank: int) -> dict[str, Any]:
    """One line of predictions.jsonl."""
    is_qa = bool(row.get("options")) or row.get("kind") == "qa"
    rec: dict[str, Any] = {
        "id": item_id,
        "index": index,
        "video": row.get("video"),
        "kind": "qa" if is_qa else "grounding",
        "query": row.get("query"),
        "duration": pred.get("duration", row.get("duration")),
        "strategy": strategy,
        "segments": pred.get("segments", []),
        "top1": pred.get("top1"),
        "text": pred.get("text", ""),
        "cost": pred.get("cost", {}),
        "gt": row.get("spans") or [],
        "qtype": row.get("qtype"),
        "category": row.get("category", row.get("duration_group", row.get("source"))),
    }
    if row.get("spans_raw") and row["spans_raw"] != rec["gt"]:
        rec["gt_raw"] = row["spans_raw"]  # as published (not clipped): what reports score against
    if "top1" not in pred:  # predictors that do not ground (QA baselines) leave it out
        del rec["top1"]
    if row.get("clip"):
        rec["clip"] = row["clip"]
    if is_qa:
        rec["question"] = row.get("question")
        rec["options"] = row.get("options")
        rec["answer"] = row.get("answer")
    if "choice" in pred:
        rec["choice"] = pred["choice"]
    for k in ("reason", "warnings", "error", "evidence"):
        if pred.get(k):
            rec[k] = pred[k]
    rec["seconds"] = round(seconds, 3)
    rec["rank"] = rank
    return rec


def _clean_warnings(warnings: Iterable[str], seen: set[str]) -> None:
    for w in warnings:
        if w not in seen:
            seen.add(w)
            print(f"groundqa: warning: {w}", file=sys.stderr)


def run_benchmark(cfg: RunConfig, predictor: Predictor | None = None,
                  show_progress: bool = True) -> dict[str, Any]:
    """Run (or resume) a benchmark into `cfg.out`; returns a summary dict.

    Order: load rows -> limit -> missing videos (error unless skip_missing) -> run.json check
    -> own file's partial line dropped -> finished ids skipped -> predictor built -> items.
    """
    from evals.loaders import benchmark_key, load_benchmark, missing_videos
    from grounder.cliutil import progress
    from grounder.devices import check_device
    from grounder.grounder import check_strategy

    t0 = time.perf_counter()
    cfg.bench = benchmark_key(cfg.bench)
    cfg.strategy = check_strategy(cfg.strategy)
    if cfg.predictor not in PREDICTORS and predictor is None:
        raise InputError(f"unknown predictor {cfg.predictor!r} (known: {', '.join(PREDICTORS)})")
    if cfg.limit is not None and cfg.limit < 1:
        raise InputError(f"--limit must be >= 1, got {cfg.limit}")
    make_budget(cfg.budget)
    cfg.device = check_device(cfg.device)
    rank, world = rank_and_world()

    rows = load_benchmark(cfg.bench, cfg.ann, cfg.videos, cfg.allow_outside_paths)
    if not rows:
        raise InputError(f"{cfg.ann}: no items")
    ids = assign_ids(rows, cfg.bench)
    items = list(enumerate(zip(ids, rows)))
    if cfg.predictor in QA_PREDICTORS:  # QA predictors answer questions: only those rows
        items = [it for it in items if is_question_row(it[1][1])]
        if not items:
            raise InputError(f"{cfg.ann}: no question rows for the {cfg.predictor} predictor")
    if cfg.kind is not None:
        items = [it for it in items if it[1][1].get("kind") == cfg.kind]
        if not items:
            raise InputError(f"{cfg.ann}: no rows of kind {cfg.kind!r}")
    if cfg.stride < 1:
        raise InputError(f"--stride must be >= 1, got {cfg.stride}")
    items = items[:: cfg.stride]
    if cfg.limit is not None:
        items = items[: cfg.limit]

    missing = missing_videos(r for _, (_, r) in items)
    if missing:
        if not cfg.skip_missing:
            first = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise InputError(f"{len(missing)} video(s) not found, e.g. {first} "
                             "(pass --videos DIR, or --skip-missing to run the rest)")
        gone = set(missing)
        before = len(items)
        items = [it for it in items if str(it[1][1].get("video", "")) not in gone]
        print(f"groundqa: warning: skipping {before - len(items)} item(s) of {len(missing)} "
              "missing video(s)", file=sys.stderr)

    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    check_run_json(out, cfg.identity())
    if rank == 0:
        record_subset(out, cfg)

    mine = pred_path(out, rank, world)
    dropped = recover_partial(mine)
    if dropped:
        print(f"groundqa: warning: dropped a partial last line ({dropped} bytes) of {mine.name}",
              file=sys.stderr)
    done = {r["id"] for r in load_predictions(out) if not r.get("error")}
    todo = [it for it in items if it[0] % world == rank and it[1][0] not in done]
    shard = sum(1 for it in items if it[0] % world == rank)

    summary: dict[str, Any] = {
        "out": str(out), "predictions": str(mine), "rank": rank, "world_size": world,
        "items": len(items), "shard": shard, "already_done": shard - len(todo),
        "ran": 0, "errors": 0,
    }
    if todo:
        pred = predictor if predictor is not None else PREDICTORS[cfg.predictor](cfg)
        writer = JsonlAppender(mine)
        seen_warnings: set[str] = set()
        try:
            label = f"eval {cfg.bench} ({cfg.strategy})" + (f" [{rank}/{world}]" if world > 1 else "")
            with progress(label, total=len(todo), enabled=show_progress) as advance:
                def finish(index: int, item_id: str, row: dict[str, Any], p: dict[str, Any], seconds: float) -> None:
                    if p.get("error"):
                        summary["errors"] += 1
                        print(f"groundqa: warning: {item_id}: {p['error']}", file=sys.stderr)
                    _clean_warnings(p.get("warnings") or [], seen_warnings)
                    writer.write(item_record(index, item_id, row, cfg.strategy, p, seconds, rank))
                    summary["ran"] += 1
                    advance(1)

                if int(cfg.concurrency) <= 1:
                    for index, (item_id, row) in todo:
                        finish(index, item_id, row, *_predict(pred, row))
                else:
                    # items in flight at once, each written whole by this thread as it finishes (in
                    # any order: records carry their index); a kill loses only the ones in flight
                    with ThreadPoolExecutor(max_workers=int(cfg.concurrency)) as pool:
                        running = {pool.submit(_predict, pred, row): (index, item_id, row)
                                   for index, (item_id, row) in todo}
                        try:
                            for done in as_completed(running):
                                index, item_id, row = running[done]
                                finish(index, item_id, row, *done.result())
                        except BaseException:
                            for f in running:
                                f.cancel()
                            raise
        finally:
            writer.close()
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary

