"""Loaders of the (grounded) video QA benchmarks: ReXTime, NExT-GQA, Video-MME,
LongVideoBench, MLVU, LVBench, EgoSchema.

QA rows carry `question`, `options` (texts) and `answer` (a letter); `query` is the
question, which is what the grounder is asked when a benchmark has no separate query.
`spans` holds the evidence when the benchmark annotates it (ReXTime, NExT-GQA, LVBench's
time references) and is [] otherwise. `duration` is None when the annotation does not give
seconds (Video-MME has only short/medium/long): the runner reads it from the video."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from evals.loaders.common import (
    LETTERS,
    Row,
    answer_letter_from_text,
    as_float,
    clip_spans,
    field,
    given_spans,
    letter,
    parse_span_text,
    read_csv,
    read_json,
    read_json_or_jsonl,
    read_jsonl,
    resolver,
    strip_option_prefix,
)
from evals.metrics.qa import NO_OPTION
from grounder.errors import InputError

PathLike = str | os.PathLike


def _qa_row(rid: str, video: str, duration: float | None, question: str, options: list[str],
            answer: str | None, spans: list[list[float]], qtype: Any = None, **extra: Any) -> Row:
    row: Row = {"id": rid, "video": video, "duration": duration, "query": question.strip(),
                "spans": spans, "question": question.strip(), "options": options, "answer": answer}
    if qtype is not None:
        row["qtype"] = qtype
    row.update({k: v for k, v in extra.items() if v is not None})
    return row


def load_rextime(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """ReXTime JSONL (`qid, query, duration, vid, relevant_windows, ans`). The shipped val
    file has no option texts (they live in the full release): `options` is then [] and only
    the letter answer is known; `options`/`question` are used when present."""
    video_of = resolver(ann_path, videos_dir)
    rows: list[Row] = []
    for i, d in enumerate(read_jsonl(ann_path)):
        where = f"{ann_path}: row {i + 1}"
        duration = as_float(field(d, "duration", where), where)
        question = str(d.get("question") or field(d, "query", where))
        options = [strip_option_prefix(o) for o in d.get("options") or []]
        answer = d.get("ans", d.get("answer"))
        if isinstance(answer, int):
            answer = letter(answer, len(options) or 4, where)
        qid = str(field(d, "qid", where))
        rows.append(_qa_row(
            qid, video_of(str(field(d, "vid", where))), duration,
            question, options, None if answer is None else str(answer).strip().upper(),
            clip_spans(d.get("relevant_windows") or [], duration, where),
            qtype=qid.split("_")[0],  # the source: anet / qvh
            spans_raw=given_spans(d.get("relevant_windows") or [], where) or None,  # as published
            answer_raw=d.get("ans", d.get("answer")),  # its scorer compares the strings as they are
        ))
    return rows


def _nextgqa_files(ann_path: PathLike) -> tuple[Path, Path]:
    """NExT-GQA is two files: the QA csv and the `gsub_*.json` spans beside it."""
    p = Path(ann_path)
    if p.is_dir():
        csvs = sorted(p.glob("test.csv")) or sorted(p.glob("*.csv"))
        if not csvs:
            raise InputError(f"{p}: no NExT-GQA .csv file in this folder")
        p = csvs[0]
    elif p.suffix == ".json" and p.stem.startswith("gsub_"):  # given the other half
        p = p.with_name(f"{p.stem[len('gsub_'):]}.csv")
    split = p.stem  # test / val
    gsub = p.with_name(f"gsub_{split}.json")
    if not gsub.is_file():
        found = sorted(p.parent.glob("gsub_*.json"))
        if len(found) != 1:
            raise InputError(f"{p}: expected the grounding file {gsub.name} beside it")
        gsub = found[0]
    return p, gsub


def load_nextgqa(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """NExT-GQA: `test.csv` (video_id, question, answer text, qid, type, a0..a4) joined with
    `gsub_test.json` ({video_id: {duration, fps, location: {qid: [[s, e], ...]}}}).
    `ann_path` is the csv or its folder. Questions without a grounding entry keep spans []
    and duration None. Videos are looked up flat as `<video_id>.mp4` (NExT-QA ships them
    in sub-folders; point `videos_dir` at a flat copy or links)."""
    csv_path, gsub_path = _nextgqa_files(ann_path)
    gsub = read_json(gsub_path)
    if not isinstance(gsub, dict):
        raise InputError(f"{gsub_path}: expected an object {{video_id: ...}}")
    video_of = resolver(csv_path, videos_dir)
    rows: list[Row] = []
    for i, r in enumerate(read_csv(csv_path)):
        where = f"{csv_path}: row {i + 2}"
        vid, qid = str(field(r, "video_id", where)), str(field(r, "qid", where))
        options = [r[f"a{k}"].strip() for k in range(5) if r.get(f"a{k}") not in (None, "")]
        g = gsub.get(vid) or {}
        duration = as_float(g["duration"], where) if "duration" in g else None
        spans = (g.get("location") or {}).get(qid, [])
        rows.append(_qa_row(
            f"{vid}_{qid}", video_of(vid),
            duration, str(field(r, "question", where)), options,
            answer_letter_from_text(field(r, "answer", where), options, where),
            clip_spans(spans, duration, where), qtype=r.get("type"), fps=g.get("fps"),
            spans_raw=given_spans(spans, where) if spans else None,  # as published: scorers use these
        ))
    return rows


def load_videomme(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """Video-MME (`test-*.parquet` or the same rows as JSON/JSONL): `video_id, duration
    (short|medium|long), domain, sub_category, videoID, question_id, task_type, question,
    options ["A. ...", ...], answer "A"`. Videos are `<videoID>.mp4`; `duration` is None
    (only the category is given, kept as `duration_group`)."""
    rows_in = _read_table(ann_path)
    video_of = resolver(ann_path, videos_dir)
    rows: list[Row] = []
    for i, d in enumerate(rows_in):
        where = f"{ann_path}: row {i + 1}"
        options = [strip_option_prefix(o) for o in _as_list(field(d, "options", where))]
        qid = str(d.get("question_id") or i)
        rows.append(_qa_row(
            qid, video_of(str(field(d, "videoID", where))), None,
            str(field(d, "question", where)), options,
            str(field(d, "answer", where)).strip().upper(), [], qtype=d.get("task_type"),
            duration_group=d.get("duration"), domain=d.get("domain"),
            aliases=[f"videomme_{qid}"],  # the qid Time-R1's inference writes (data_loader.py:202)
        ))
    return rows


def _as_list(x: Any) -> list[str]:
    """Parquet gives numpy arrays for list columns; JSON gives lists."""
    return [str(o) for o in (x.tolist() if hasattr(x, "tolist") else list(x))]


def _read_table(path: PathLike) -> list[dict[str, Any]]:
    """Rows of a parquet (via pyarrow), JSON or JSONL file."""
    p = Path(path)
    if p.suffix == ".parquet":
        if not p.is_file():
            raise InputError(f"file not found: {p}")
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError("reading .parquet needs pyarrow (pip install pyarrow)") from None
        try:
            return pq.read_table(p).to_pylist()
        except (OSError, ValueError, pa.ArrowException) as e:  # corrupt or not parquet
            raise InputError(f"{p}: not a readable parquet file ({e})") from None
    return read_json_or_jsonl(p)


def _lvb_options(d: dict[str, Any], where: str) -> list[str]:
    """`candidates` (the JSON form), or `option0..option4` (the parquet form, padded with the
    literal "N/A": the list stops at the first one, as lmms-eval's scorer does)."""
    if "candidates" in d:
        return [str(c) for c in field(d, "candidates", where)]
    out = []
    for k in range(10):
        o = d.get(f"option{k}")
        if o is None or str(o) == "N/A":
            break
        out.append(str(o))
    if not out:
        raise InputError(f"{where}: missing field 'candidates' (or option0..)")
    return out


def load_longvideobench(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """LongVideoBench: `lvb_val.json` (`video_id, question, candidates, correct_choice (0-based
    index), duration (s), duration_group, question_category, video_path, id`) or the parquet
    form lmms-eval loads (`option0..4`, "N/A"-padded). Videos come from `video_path`: 135
    val rows have a `video_id` that is not the file name. Options are kept as given (8 val rows
    repeat one) and the answer is the index's letter (the official rule). A `correct_choice` of
    -1 or none (the test split) leaves `answer` None."""
    video_of = resolver(ann_path, videos_dir)
    rows: list[Row] = []
    for i, d in enumerate(_read_table(ann_path)):
        where = f"{ann_path}: item {i}"
        options = _lvb_options(d, where)
        choice = d.get("correct_choice")
        choice = None if choice is None or int(choice) < 0 else int(choice)
        video = d.get("video_path") or field(d, "video_id", where)
        duration = d.get("duration")
        rows.append(_qa_row(
            str(d.get("id") or f"{d.get('video_id')}_{i}"),
            video_of(str(video)),
            None if duration is None else as_float(duration, where),
            str(field(d, "question", where)), options,
            None if choice is None else letter(choice, len(options), where), [],
            qtype=d.get("question_category"), duration_group=d.get("duration_group"),
        ))
    return rows




def mlvu_answer_letter(answer: Any, options: list[str]) -> str:
    """The official rule: the index of the *last* option equal to the answer text (exact string
    equality; two dev rows repeat the answer among their options), "@" when none is."""
    idx = -1
    for i, o in enumerate(options):
        if o == answer:
            idx = i
    return LETTERS[idx] if idx >= 0 else NO_OPTION  # the template's index -1: chr(ord("A") - 1)


def load_mlvu(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """MLVU multiple-choice json (one file per task, e.g. `1_plotQA.json`, or the folder of
    them): `video, duration, question, candidates, answer (text), question_type`. The folder
    form reads every *.json in name order and leaves out the generation tasks (no `candidates`:
    sub-scene captioning and summary are judged by an LLM). The answer letter follows the
    official template (`mlvu_answer_letter`): last equal option, "@" (never right) when the
    answer is none of them. The official score is M-Avg, the mean of the per-task accuracies
    (`evals.score`)."""
    p = Path(ann_path)
    files = sorted(p.glob("*.json")) if p.is_dir() else [p]
    if not files:
        raise InputError(f"{p}: no MLVU .json files in this folder")
    rows: list[Row] = []
    for f in files:
        task = re.sub(r"^\d+_", "", f.stem)
        video_of = resolver(f, videos_dir)
        items = read_json_or_jsonl(f)
        if items and all(isinstance(d, dict) and "candidates" not in d for d in items):
            if not p.is_dir():
                raise InputError(f"{f}: an MLVU generation task (no candidates), judged by an LLM: not scored here")
            continue
        for i, d in enumerate(items):
            where = f"{f}: item {i}"
            options = [str(c) for c in field(d, "candidates", where)]
            duration = d.get("duration")
            rows.append(_qa_row(
                f"{task}_{i}", video_of(str(field(d, "video", where))),
                None if duration is None else as_float(duration, where),
                str(field(d, "question", where)), options,
                mlvu_answer_letter(field(d, "answer", where), options), [],
                qtype=d.get("question_type") or task,
            ))
    return rows


_LVB_OPTION = re.compile(r"^\s*\(([A-Z])\)\s*(.*)$")


def split_lvbench_question(text: str) -> tuple[str, list[str]]:
    """LVBench writes the options into the question: 'Q?\\n(A) x\\n(B) y...' -> (Q?, [x, y])."""
    lines = str(text).splitlines()
    stem, options = [], []
    for line in lines:
        m = _LVB_OPTION.match(line)
        if m:
            options.append(m.group(2).strip())
        elif options:  # a wrapped option line
            options[-1] += " " + line.strip()
        else:
            stem.append(line)
    return "\n".join(stem).strip(), options


def load_lvbench(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """LVBench `video_info.meta.jsonl`: per video `key, type, video_info {duration_minutes,
    ...}, qa [{uid, question (options inlined), answer letter, question_type [..],
    time_reference "MM:SS-MM:SS"}]`. The time reference becomes the span."""
    video_of = resolver(ann_path, videos_dir)
    rows: list[Row] = []
    for i, d in enumerate(read_json_or_jsonl(ann_path)):
        where = f"{ann_path}: row {i + 1}"
        key = str(field(d, "key", where))
        info = d.get("video_info") or {}
        duration = info.get("duration") or (
            info["duration_minutes"] * 60 if info.get("duration_minutes") is not None else None)
        duration = None if duration is None else as_float(duration, where)
        video = video_of(key)
        for j, qa in enumerate(field(d, "qa", where)):
            w = f"{where} qa {j}"
            question, options = split_lvbench_question(field(qa, "question", w))
            ref = qa.get("time_reference")
            spans = clip_spans([parse_span_text(ref, w)], duration, w) if ref else []
            qtypes = qa.get("question_type")
            rows.append(_qa_row(
                str(qa["uid"]) if qa.get("uid") is not None else f"{key}_{j}", video, duration, question, options,
                str(field(qa, "answer", w)).strip().strip("()").upper(), spans,
                qtype=qtypes[0] if isinstance(qtypes, list) and qtypes else qtypes,
                qtypes=qtypes if isinstance(qtypes, list) else None, video_type=d.get("type"),
                answer_raw=qa.get("answer"),  # its scorer compares the submitted string with this as it is
            ))
    return rows


# EgoSchema clips are all three minutes long; the annotation files do not repeat it.
EGOSCHEMA_DURATION = 180.0


def load_egoschema(ann_path: PathLike, videos_dir: PathLike | None = None) -> list[Row]:
    """EgoSchema's public 500-question subset: one row per `subset_answers.json` entry
    ({q_uid: 0-based index}), the only answers released (the rest are scored by the authors'
    server). `ann_path` is questions.json, subset_answers.json or their folder. Question and
    options come from `questions.json` (`q_uid, question, option 0..4`) when it holds the uid;
    the authors' preview file holds 20 questions, none in the subset, so without the full file
    a row has an empty question and the five option slots only ("option 0".."option 4"):
    enough to score predictions given as indices or letters, as the official submission is
    ({q_uid: index}). Videos are `<q_uid>.mp4`; every clip is 180 s."""
    p = Path(ann_path)
    folder = p if p.is_dir() else p.parent
    afile = folder / "subset_answers.json"
    qfile = folder / "questions.json"
    answers = read_json(afile)
    if not isinstance(answers, dict):
        raise InputError(f"{afile}: expected an object {{q_uid: answer index}}")
    questions: dict[str, dict[str, Any]] = {}
    if qfile.is_file():
        listed = read_json(qfile)
        if not isinstance(listed, list):
            raise InputError(f"{qfile}: expected a list of questions")
        for i, d in enumerate(listed):
            questions[str(field(d, "q_uid", f"{qfile}: item {i}"))] = d
    video_of = resolver(afile, videos_dir)
    rows: list[Row] = []
    for uid, answer in answers.items():
        where = f"{afile}: {uid}"
        d = questions.get(str(uid), {})
        options = [str(d[f"option {k}"]) for k in range(5) if f"option {k}" in d] or \
            [f"option {k}" for k in range(5)]
        try:
            index = int(answer)
        except (TypeError, ValueError):
            raise InputError(f"{where}: answer {answer!r} is not an option index") from None
        rows.append(_qa_row(
            str(uid), video_of(str(uid)), EGOSCHEMA_DURATION, str(d.get("question", "")), options,
            letter(index, len(options), where), [], has_question=bool(d),
        ))
    return rows
