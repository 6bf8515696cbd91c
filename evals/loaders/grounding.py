"""Loaders of the temporal grounding benchmarks: Charades-STA (JSON and the official .txt),
ActivityNet Captions, QVHighlights, TVGBench, and the synthetic world's annotations.jsonl."""

from __future__ import annotations

import os
from pathlib import Path

from evals.loaders.common import (
    Row,
    as_float,
    clip_spans,
    field,
    given_spans,
    letter,
    parse_span_text,
    read_json,
    read_jsonl,
    resolver,
)
from grounder.errors import InputError

PathLike = str | os.PathLike


def load_captions_json(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """`{vid: {duration, timestamps, sentences}}` (Charades-STA as TimeZero ships it, and
    ActivityNet Captions): one row per sentence, its own timestamp as the single span."""
    data = read_json(ann_path)
    if not isinstance(data, dict):
        raise InputError(f"{ann_path}: expected an object {{video id: annotation}}")
    rows: list[Row] = []
    video_of = resolver(ann_path, videos_dir)
    for vid, ann in data.items():
        where = f"{ann_path}: {vid}"
        duration = as_float(field(ann, "duration", where), where)
        stamps, sents = field(ann, "timestamps", where), field(ann, "sentences", where)
        if len(stamps) != len(sents):
            raise InputError(f"{where}: {len(stamps)} timestamps for {len(sents)} sentences")
        video = video_of(vid)
        for i, (ts, sent) in enumerate(zip(stamps, sents)):
            rows.append({
                "id": f"{vid}#{i}", "video": video, "duration": duration,
                "query": str(sent).strip(), "spans": clip_spans([ts], duration, where),
                "spans_raw": given_spans([ts], where),
            })
    return rows


def load_charades_txt(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """The official Charades-STA `charades_sta_test.txt`: `VID START END##sentence` per line.

    The file has no video lengths: `duration` is None (the runner reads it from the video),
    and spans are kept as annotated, only sorted."""
    p = Path(ann_path)
    if not p.is_file():
        raise InputError(f"file not found: {p}")
    rows: list[Row] = []
    video_of = resolver(ann_path, videos_dir)
    for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        head, sep, sent = line.partition("##")
        parts = head.split()
        if not sep or len(parts) != 3:
            raise InputError(f"{where}: expected 'VID START END##sentence', got {line[:60]!r}")
        vid = parts[0]
        rows.append({
            "id": f"{vid}#{n}", "video": video_of(vid), "duration": None,
            "query": sent.strip(), "spans": clip_spans([parts[1:3]], None, where),
            "spans_raw": given_spans([parts[1:3]], where),
        })
    return rows


def with_time_r1_ids(rows: list[Row], name: str) -> list[Row]:
    """Each row also answers (`aliases`) to the qid Time-R1's inference writes for it, `{name}_{k}`
    with k counting sentences video by video, videos in the order they first appear
    (xiaomi-research/time-r1@7f2b594 src/vllm_inference/data/data_loader.py:8-80), so its result
    files are scored as they are."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(str(r["id"]).rsplit("#", 1)[0], []).append(r)
    k = 0
    for group in groups.values():
        for r in group:
            r.setdefault("aliases", []).append(f"{name}_{k}")
            k += 1
    return rows


def load_charades(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """Charades-STA in either shipped form, chosen by the file's extension."""
    if str(ann_path).endswith(".txt"):
        return with_time_r1_ids(load_charades_txt(ann_path, videos_dir), "charades")
    return with_time_r1_ids(load_captions_json(ann_path, videos_dir), "charades")


def load_activitynet(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """ActivityNet Captions (`val_1.json`, `val_2.json`, ...): the captions layout."""
    return with_time_r1_ids(load_captions_json(ann_path, videos_dir), "activitynet")


def load_qvhighlights(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """QVHighlights JSONL (`qid, query, duration, vid, relevant_windows, ...`): all relevant
    windows are spans; videos are the 150 s clips named by `vid`."""
    rows: list[Row] = []
    video_of = resolver(ann_path, videos_dir)
    for i, d in enumerate(read_jsonl(ann_path)):
        where = f"{ann_path}: row {i + 1}"
        duration = as_float(field(d, "duration", where), where)
        vid = str(field(d, "vid", where))
        rows.append({
            "id": str(field(d, "qid", where)), "video": video_of(vid),
            "duration": duration, "query": str(field(d, "query", where)).strip(),
            "spans": clip_spans(d.get("relevant_windows") or [], duration, where),
        })
    return rows


def load_tvgbench(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """TVGBench (Time-R1): a JSON list of `path, question, answer "S-E", duration, start,
    end, dataset_name?, qsemtype`.

    For some rows (Ego4D-NLQ, HiREST, a few ActivityNet) `start`/`end` cut a clip out of a
    longer file: `duration` and the answer are relative to that clip, and the row keeps
    `"clip": [start, end]` so the runner reads the file from `start`."""
    data = read_json(ann_path)
    if not isinstance(data, list):
        raise InputError(f"{ann_path}: expected a JSON list")
    rows: list[Row] = []
    video_of = resolver(ann_path, videos_dir)
    prefix = None
    for i, d in enumerate(data):
        where = f"{ann_path}: item {i}"
        duration = as_float(field(d, "duration", where), where)
        name = Path(str(field(d, "path", where))).name
        if isinstance(d.get("source"), str):  # Time-R1 keeps the last one for a row without
            prefix = Path(d["source"]).stem.replace(".", "_").replace("-", "_")
        given = [parse_span_text(field(d, "answer", where), where)]
        row: Row = {
            "id": f"tvgbench_{i}", "video": video_of(name),
            "duration": duration, "query": str(field(d, "question", where)).strip(),
            "spans": clip_spans(given, duration, where), "spans_raw": given_spans(given, where),
            "qtype": d.get("qsemtype"),
            "source": d.get("dataset_name") or (d.get("bins") or {}).get("dataset"),
            # the qid Time-R1's inference writes (data_loader.py:119-178; it counts only rows whose
            # video it found, so this holds when every video was there)
            "aliases": [f"{prefix}_{i}"] if prefix else [],
        }
        if d.get("start") is not None and d.get("end") is not None:
            row["clip"] = [as_float(d["start"], where), as_float(d["end"], where)]
        rows.append(row)
    return rows


def load_synthetic(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """The synthetic world's annotations.jsonl: already dataset rows; the video paths
    (relative to the annotation file, or to `videos_dir`) are made absolute, spans are
    kept inside the video, and 0-based answer indices become letters (`answer_index`
    keeps the index)."""
    rows: list[Row] = []
    video_of = resolver(ann_path, videos_dir)
    for i, d in enumerate(read_jsonl(ann_path)):
        where = f"{ann_path}: row {i + 1}"
        duration = d.get("duration")
        duration = None if duration is None else as_float(duration, where)
        row = dict(d)
        row["video"] = video_of(str(field(d, "video", where)))
        row["duration"] = duration
        row["query"] = str(d.get("query") or d.get("question") or "")
        row["spans"] = clip_spans(d.get("spans") or [], duration, where)
        if isinstance(d.get("answer"), int) and d.get("options"):
            # the world writes 0-based indices; loaders hand out letters like every benchmark
            row["answer_index"] = d["answer"]
            row["answer"] = letter(d["answer"], len(d["options"]), where)
        rows.append(row)
    return rows
