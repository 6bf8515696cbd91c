"""Shared pieces of the benchmark loaders: reading files with one-line errors, resolving
video paths, and keeping spans inside the video.

Every loader returns rows of the dataset JSONL (docs/architecture.md):
`{"video", "duration", "query", "spans", "id"?, "qtype"?, "question"?, "options"?, "answer"?}`.
QA answers are option letters ("A", "B", ...) and `options` are the option texts without
their "A." prefixes, so every benchmark scores the same way.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from grounder.errors import InputError

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".webm", ".avi")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

Row = dict[str, Any]


# ----------------------------------------------------------------------------- reading

def _existing(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"file not found: {p}")
    return p


def read_json(path: str | os.PathLike) -> Any:
    """Parsed JSON, or an InputError naming the file and the problem."""
    p = _existing(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{p}: not valid JSON ({e})") from None


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """One parsed object per non-blank line; errors name the line."""
    p = _existing(path)
    out = []
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"{p}: not UTF-8 text ({e})") from None
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"{p}:{n}: not valid JSON ({e.msg})") from None
    return out


def read_json_or_jsonl(path: str | os.PathLike) -> list[Any]:
    """A JSON list or JSONL file as a list (benchmarks ship either)."""
    p = _existing(path)
    if p.suffix == ".jsonl":
        return read_jsonl(p)
    data = read_json(p)
    return data if isinstance(data, list) else [data]


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    p = _existing(path)
    try:
        with p.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{p}: not a readable CSV file ({e})") from None


def field(obj: Any, key: str, where: str) -> Any:
    """obj[key], or an InputError saying which record lacks it (instead of a KeyError)."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise InputError(f"{where}: missing field {key!r}")
    return obj[key]


def as_float(x: Any, where: str) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        raise InputError(f"{where}: not a number: {x!r}") from None


# ----------------------------------------------------------------------------- spans

def given_spans(spans: Iterable[Sequence[Any]], where: str = "") -> list[list[float]]:
    """Spans as the benchmark publishes them (floats; not sorted, not clipped): what official
    scorers score against (`spans_raw` of a row; `evals.metrics.grounding`)."""
    out = []
    for s in spans:
        if not isinstance(s, (list, tuple)) or len(s) < 2:
            raise InputError(f"{where}: a span must be [start, end], got {s!r}")
        out.append([as_float(s[0], where), as_float(s[1], where)])
    return out


def clip_spans(spans: Iterable[Sequence[Any]], duration: float | None, where: str = "") -> list[list[float]]:
    """Spans as sorted float pairs clipped to [0, duration].

    Public annotations overshoot the video a little (Charades-STA ends up to 1.5 s past the
    video, ActivityNet by float noise, NExT-GQA starts at -0.1 s): clipping keeps every span
    inside the video the grounder sees. A span left with no length is dropped, unless it
    was a point to begin with (kept as annotated)."""
    out = []
    for s in spans:
        if not isinstance(s, (list, tuple)) or len(s) < 2:
            raise InputError(f"{where}: a span must be [start, end], got {s!r}")
        a, b = sorted((as_float(s[0], where), as_float(s[1], where)))
        point = a == b
        a = max(a, 0.0)
        if duration is not None:
            a, b = min(a, duration), min(b, duration)
        if b > a or (point and a == b):
            out.append([a, b])
    return out


def parse_span_text(text: str, where: str) -> list[float]:
    """'13.4-28.1' (TVGBench answers) or '00:15-00:19' / '1:02:03-1:02:10' (LVBench) -> [s, e]."""
    m = re.fullmatch(r"\s*([\d:.]+)\s*-\s*([\d:.]+)\s*", str(text))
    if not m:
        raise InputError(f"{where}: cannot read a time span from {text!r}")
    return [parse_clock(m.group(1), where), parse_clock(m.group(2), where)]


def parse_clock(text: str, where: str) -> float:
    """Seconds from '83.5', '01:23' or '1:01:23'."""
    parts = text.split(":")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise InputError(f"{where}: not a time: {text!r}") from None
    sec = 0.0
    for v in vals:
        sec = sec * 60 + v
    return sec


# ----------------------------------------------------------------------------- options

def strip_option_prefix(text: str) -> str:
    """'A. a dog' / '(A) a dog' / 'A) a dog' -> 'a dog' (Video-MME, LVBench write them so)."""
    return re.sub(r"^\s*\(?[A-Z]\s*[\).:]\s*", "", str(text)).strip()


def letter(index: int, n_options: int, where: str) -> str:
    if not 0 <= index < n_options:
        raise InputError(f"{where}: answer index {index} outside {n_options} options")
    return LETTERS[index]


def answer_letter_from_text(answer: str, options: Sequence[str], where: str) -> str:
    """The letter of the option whose text is the answer (MLVU, NExT-QA give the text)."""
    norm = [o.strip().lower() for o in options]
    try:
        return LETTERS[norm.index(str(answer).strip().lower())]
    except ValueError:
        raise InputError(f"{where}: answer {answer!r} is none of the options") from None


# ----------------------------------------------------------------------------- videos

def resolve_video(name: str, ann_path: str | os.PathLike, videos_dir: str | os.PathLike | None) -> str:
    """Where the video of a row lives.

    Looks in `videos_dir` when given, else beside the annotation file; tries the name as
    written, then with each of .mp4 .mkv .webm .avi in place of (or added to) its
    extension. The first file that exists wins; when none does, the first candidate is
    returned so `missing_videos` can name it."""
    p = Path(name)
    if p.is_absolute() and videos_dir is None:
        return str(p)
    base = Path(videos_dir) if videos_dir is not None else Path(ann_path).resolve().parent
    rel = Path(p.name) if p.is_absolute() else p
    stem = rel.with_suffix("") if rel.suffix.lower() in VIDEO_EXTENSIONS else rel
    candidates = [base / rel] if rel.suffix.lower() in VIDEO_EXTENSIONS else []
    candidates += [base / f"{stem}{ext}" for ext in VIDEO_EXTENSIONS]
    for c in candidates:
        if c.is_file():
            return str(c)
    return str(candidates[0])


def resolver(ann_path: str | os.PathLike, videos_dir: str | os.PathLike | None) -> Callable[[str], str]:
    """`resolve_video` bound to one annotation file, remembering each name: benchmarks ask
    many questions per video, and each lookup costs several stat calls."""
    base = Path(ann_path).resolve()

    @functools.cache
    def resolve(name: str) -> str:
        return resolve_video(name, base, videos_dir)

    return resolve


def missing_videos(rows: Iterable[Row]) -> list[str]:
    """Distinct video paths of `rows` that are not files, in first-seen order: the runner
    reports them before any work starts instead of failing hours in."""
    seen: dict[str, bool] = {}
    for r in rows:
        v = str(r.get("video", ""))
        if v not in seen:
            seen[v] = os.path.isfile(v)
    return [v for v, ok in seen.items() if not ok]


def iter_rows_checked(rows: Iterable[Row]) -> Iterator[Row]:
    """Rows with the keys every consumer relies on, so a loader bug shows up at load time."""
    for r in rows:
        for k in ("video", "duration", "query", "spans"):
            if k not in r:
                raise InputError(f"row {r.get('id', '?')}: missing {k!r}")
        yield r
