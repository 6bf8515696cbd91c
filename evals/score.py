"""`groundqa eval score`: a prediction file against a benchmark's ground truth, with the
benchmark's official metric names.

- qvhighlights: the official moment_detr evaluation on the official files (gt JSONL with
  `relevant_windows`/`saliency_scores`, predictions with `pred_relevant_windows` and/or
  `pred_saliency_scores`); the result keeps the official nesting (`brief`, `full`, `long`,
  `middle`, `short`, `HL-min-*`).
- every other benchmark: the ground truth is either a dataset JSONL (rows with `spans`)
  or the benchmark's own annotation file (read by its loader); predictions are JSONL rows
  `{"id", "segments": [{"start", "end", "score"}] | "spans": [[s, e], ...] | "pred": [s, e],
  "choice" | "answer"}` (the `groundqa ask/ground --json` objects plus an id), ranked best
  first, matched to the ground truth by `id` (or by line order when neither side has ids).
  Ground-truth rows with no prediction count as misses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.loaders import BENCHMARKS, benchmark_key, load_benchmark, official_protocol
from evals.loaders.common import LETTERS, read_json, read_jsonl
from evals.metrics.extract import MODES, READERS, extract_letter
from evals.metrics.grounding import grounding_metrics, protocol_for, recall_at_k
from evals.metrics.qa import (
    exact_accuracy,
    is_correct,
    nextgqa_metrics,
    normalize_choice,
    qa_accuracy,
    rextime_metrics,
    rextime_official_metrics,
)
from evals.metrics.qvhighlights import eval_submission
from grounder.errors import InputError

Span = list[float]


# ----------------------------------------------------------------------------- QVHighlights

def _check_qvh(gt: list[Any], sub: list[Any], gt_path: str, pred_path: str) -> None:
    """Shape checks up front, so a wrong file is one clear line, not an error deep inside."""
    for rows, path, keys in ((gt, gt_path, ("qid", "relevant_windows", "duration")),
                             (sub, pred_path, ("qid",))):
        if not rows:
            raise InputError(f"{path}: no rows")
        for i, d in enumerate(rows):
            if not isinstance(d, dict) or any(k not in d for k in keys):
                raise InputError(f"{path}: row {i + 1} lacks one of {', '.join(keys)}")
    if "pred_relevant_windows" not in sub[0] and "pred_saliency_scores" not in sub[0]:
        raise InputError(f"{pred_path}: rows need pred_relevant_windows and/or pred_saliency_scores")
    for i, d in enumerate(sub):
        for w in d.get("pred_relevant_windows", []) or []:
            if not isinstance(w, (list, tuple)) or len(w) < 3:
                raise InputError(f"{pred_path}: row {i + 1}: windows must be [start, end, score]")


def score_qvhighlights(gt_path: str, pred_path: str, match_number: bool = True) -> dict[str, Any]:
    """The official MR/HL metrics dict (nested exactly as moment_detr writes it)."""
    gt, sub = read_jsonl(gt_path), read_jsonl(pred_path)
    _check_qvh(gt, sub, gt_path, pred_path)
    try:
        return eval_submission(sub, gt, match_number=match_number)
    except ValueError as e:
        raise InputError(f"{pred_path}: {e}") from None
    except (KeyError, TypeError, IndexError) as e:
        raise InputError(f"{pred_path}: malformed row ({type(e).__name__}: {e})") from None


# ----------------------------------------------------------------------------- generic

def _pred_spans(d: dict[str, Any], where: str) -> list[Span]:
    """Ranked spans of one prediction row, whichever of the accepted shapes it uses."""
    if d.get("segments") is not None:
        segs = d["segments"]
        try:
            return [[float(s["start"]), float(s["end"])] for s in segs]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: segments must be objects with start and end") from None
    raw = d.get("spans", d.get("pred"))
    if raw is None:
        return []
    if isinstance(raw, (list, tuple)) and len(raw) == 2 and all(x is None for x in raw):
        return []  # Time-R1's result files write an answer they could not parse as [None, None]
    if len(raw) == 2 and all(isinstance(x, (int, float)) for x in raw):
        raw = [raw]
    try:
        return [[float(s[0]), float(s[1])] for s in raw]
    except (TypeError, ValueError, IndexError):
        raise InputError(f"{where}: spans must be [[start, end], ...]") from None


def _pred_choice(d: dict[str, Any], options: Sequence[str], extract: str = "strict") -> str | None:
    """The predicted letter: `choice`, else `answer`; an answer given as option text is mapped to
    its letter; any other reply is read by the `extract` mode (`evals.metrics.extract`), or is
    unparsed (None) under "strict"."""
    ans = _submitted(d)
    norm = normalize_choice(ans)
    if norm is not None and len(norm) > 1 and options:  # longer than a letter: an option's text?
        texts = [normalize_choice(o) for o in options]
        if norm in texts:
            return LETTERS[texts.index(norm)]
        # a reply that is no option: read it, or unparsed
        return None if extract == "strict" else extract_letter(str(ans), len(options), extract)
    return norm


def _load_gt(bench: str, gt_path: str) -> list[dict[str, Any]]:
    """Dataset JSONL rows as they are, else the benchmark's own annotation format."""
    if Path(gt_path).suffix == ".jsonl":
        rows = read_jsonl(gt_path)
        if rows and isinstance(rows[0], dict) and "spans" in rows[0]:
            return rows
    return load_benchmark(bench, gt_path, allow_outside=True)  # scoring opens no video


def match_predictions(gt: list[dict], preds: list[dict], pred_path: str) -> list[dict | None]:
    """The prediction of each ground-truth row (None when it has none): by `id` (or one of the
    row's `aliases`, the ids other systems give it) when the ground truth has ids, else by line
    order (then the counts must agree)."""
    if gt and all("id" in g for g in gt):
        by_id: dict[str, dict] = {}
        for i, p in enumerate(preds):
            if not isinstance(p, dict) or "id" not in p:
                raise InputError(f"{pred_path}: row {i + 1} has no id (the ground truth has ids)")
            by_id[str(p["id"])] = p
        matched = [by_id.get(str(g["id"])) or next((by_id[a] for a in g.get("aliases") or () if a in by_id), None)
                   for g in gt]
        if preds and not any(m is not None for m in matched):
            raise InputError(f"{pred_path}: no prediction id matches a ground-truth id")
        return matched
    if len(preds) != len(gt):
        raise InputError(f"{pred_path}: {len(preds)} predictions for {len(gt)} ground-truth rows "
                         "(rows without ids are matched by line)")
    return list(preds)


def _submitted(p: dict[str, Any] | None) -> Any:
    """A prediction's answer as submitted: `choice`, else `answer` (`as_prediction` has put other
    systems' keys there), not normalised."""
    if p is None:
        return None
    return p.get("choice") if p.get("choice") is not None else p.get("answer")


def _read_raw(p: dict[str, Any] | None, reader: Any) -> str | None:
    """A prediction's answer as a benchmark's own scorer reads it (`evals.metrics.extract.READERS`):
    the submitted string through that reader; None when nothing was submitted."""
    ans = _submitted(p)
    return None if ans is None else reader(str(ans))


def read_predictions(path: str) -> list[Any]:
    """Prediction rows (`as_prediction` each): JSONL, a JSON list of rows, or a JSON object
    {id: answer} (EgoSchema's submission form, `{q_uid: index}`, and the plainest one)."""
    p = Path(path)
    if p.suffix == ".json":
        data = read_json(p)
        if isinstance(data, dict):
            return [{"id": str(k), "answer": v} for k, v in data.items()]
        if not isinstance(data, list):
            raise InputError(f"{p}: expected a list of prediction rows or an object {{id: answer}}")
        rows = [q for d in data for q in _questions(d)]
    else:
        rows = read_jsonl(p)
    return [as_prediction(r) for r in rows]


_ID_KEYS = ("id", "qid", "question_id", "q_uid", "uid")


def _questions(d: Any) -> list[Any]:
    """The rows of one entry of a JSON list: Video-MME's results layout nests a video's questions
    (`{videoID, duration, ..., questions: [{question_id, task_type, answer, response}]}`, the
    file its eval_your_results.py reads; there `answer` is the truth and `response` the reply),
    every other layout is one row per entry."""
    if isinstance(d, dict) and isinstance(d.get("questions"), list):
        return [{"id": q.get("question_id"), "answer": q.get("response")} if isinstance(q, dict) else q
                for q in d["questions"]]
    return [d]


def _first_text(x: Any) -> Any:
    """The first leaf of lmms-eval's nested response lists (`[["A"]]`, `["A"]`)."""
    while isinstance(x, (list, tuple)) and x:
        x = x[0]
    return x


def as_prediction(d: Any) -> Any:
    """One prediction row in our keys, from the forms other systems write: an id under `qid`
    (QVHighlights, ReXTime), `question_id`, `q_uid` or inside lmms-eval's logged `doc`; spans
    as `pred_relevant_windows` ([[start, end, score], ...], ranked as given: QVHighlights',
    ReXTime's submissions) or `pred` ([start, end], Time-R1's result files: [None, None] when its
    parser found none); an answer as `ans` (ReXTime), `pred_answer`, `response` (Video-MME's
    results), lmms-eval's `filtered_resps` / `resps`, or Time-R1's `output_text` (the reply text:
    see `--extract`)."""
    if not isinstance(d, dict):
        return d
    out = dict(d)
    doc = d.get("doc") if isinstance(d.get("doc"), dict) else {}
    if "id" not in out:
        for key in _ID_KEYS:
            value = d.get(key, doc.get(key))
            if value is not None:
                out["id"] = value
                break
    if out.get("segments") is None and out.get("spans") is None and out.get("pred") is None \
            and isinstance(d.get("pred_relevant_windows"), list):
        out["spans"] = [w[:2] if isinstance(w, (list, tuple)) else w for w in d["pred_relevant_windows"]]
    if isinstance(d.get("pred"), int) and not isinstance(d.get("pred"), bool):
        out["choice"] = out.pop("pred")  # Time-R1's likelihood rows: the index of the likeliest option
    if out.get("choice") is None and out.get("answer") is None:
        for key in ("ans", "pred_answer", "response", "filtered_resps", "resps", "output_text"):
            if d.get(key) is not None:
                out["answer"] = _first_text(d[key])
                break
    return out


def score_rows(bench: str, gt: list[dict], matched: list[dict | None],
               protocol: str = "official", extract: str = "strict") -> dict[str, Any]:
    """Metrics for matched (ground truth, prediction) rows, named as the benchmark names them,
    counted as `protocol` says (`evals.metrics.grounding`: official, timezero, time-r1, groundqa).
    The ground truth is scored as published (`spans_raw`), not as clipped for the grounder."""
    where = "prediction"
    proto = protocol_for(protocol, official_protocol(bench))
    spec = BENCHMARKS.get(bench)
    reader = READERS.get(proto.name)  # the benchmark's own reply reader, when its scorer has one
    ranked = [_pred_spans(p, f"{where} for {g.get('id', i)}") if p else []
              for i, (g, p) in enumerate(zip(gt, matched))]
    missing = sum(p is None for p in matched)
    # unparsed: a prediction without what its row is scored on (a span where the truth has spans,
    # a choice where it has an answer)
    def unread(g: dict[str, Any], p: dict[str, Any], r: list[Span]) -> bool:
        if reader is not None:  # its scorer reads the answer only (a time reference is ours)
            return not _read_raw(p, reader)
        no_span = bool(g.get("spans_raw") or g.get("spans")) and not r
        no_choice = g.get("answer") is not None and _pred_choice(p, g.get("options") or [], extract) is None
        return no_span or no_choice

    unparsed = sum(p is not None and unread(g, p, r) for g, p, r in zip(gt, matched, ranked))
    if proto.missing == "skip":  # rows never predicted are not in the official scorers' means
        keep = [i for i, p in enumerate(matched) if p is not None]
        gt, matched, ranked = [gt[i] for i in keep], [matched[i] for i in keep], [ranked[i] for i in keep]
    top1 = [r[0] if r else None for r in ranked]
    gts = [g.get("spans_raw") or g.get("spans") or [] for g in gt]
    has_qa = any("answer" in g and g["answer"] is not None for g in gt)
    choices = [_pred_choice(p, g.get("options") or [], extract) if p else None for g, p in zip(gt, matched)]
    correct = [is_correct(c, g.get("answer")) for c, g in zip(choices, gt)] if has_qa else None

    total = len(gt) + (missing if proto.missing == "skip" else 0)
    read_by = f"{proto.name}'s own reader" if reader is not None else extract
    out: dict[str, Any] = {"protocol": proto.name, "protocol_source": proto.source, "extract": read_by, "n": len(gt),
                           "missing": missing, "unparsed": unparsed,
                           "scored": f"scored {len(gt)} of {total} rows ({missing} missing, {unparsed} unparsed)"}
    if bench == "nextgqa":
        keep = list(range(len(gt)))
        if proto.name == "nextgqa":  # eval_ground walks the grounded questions only
            keep = [i for i in keep if gts[i]]
        out.update(nextgqa_metrics([top1[i] for i in keep], [gts[i] for i in keep],
                                   [correct[i] for i in keep] if correct is not None else None))
        if correct is not None:  # QA accuracy over every question scored, grounded or not
            out["Acc@QA"] = 100.0 * sum(map(bool, correct)) / len(correct) if correct else 0.0
    elif bench == "rextime" and proto.name == "rextime":
        raw = [_submitted(p) for p in matched]  # its scorer compares the strings as they are
        out.update(rextime_official_metrics(top1, gts, raw if has_qa else None,
                                            [g.get("answer_raw", g.get("answer")) for g in gt] if has_qa else None))
    elif bench == "rextime":
        out.update(rextime_metrics(top1, gts, correct))
    else:
        grounded = [i for i, g in enumerate(gts) if g]
        if grounded:
            out.update(grounding_metrics([top1[i] for i in grounded], [gts[i] for i in grounded], protocol=proto))
            if any(len(ranked[i]) > 1 for i in grounded):
                out.update(recall_at_k([ranked[i] for i in grounded], [gts[i] for i in grounded], k=5))
        asked = [i for i, g in enumerate(gt) if g.get("answer") is not None]
        if asked and reader is not None:  # the benchmark's reader, strings compared as they are
            groups = spec.breakdowns if spec is not None else ("qtype",)
            out.update(exact_accuracy([_read_raw(matched[i], reader) for i in asked], [gt[i] for i in asked],
                                      answered_only=proto.unread == "skip", groups=groups))
            asked = []
        if asked:  # grounding-only rows (no answer) stay out of the QA accuracy
            qa = qa_accuracy([choices[i] for i in asked], [gt[i]["answer"] for i in asked],
                             [gt[i].get("qtype") for i in asked])
            out["accuracy"] = qa["accuracy"]
            if qa.get("per_category"):
                out["per_category"] = qa["per_category"]
        if spec is not None and spec.headline and out.get("per_category"):
            name, source = spec.headline
            out[name] = sum(out["per_category"].values()) / len(out["per_category"])
            out["headline"] = f"{name}: {source}"
    return out


def score(bench: str, gt_path: str, pred_path: str, protocol: str = "official",
          extract: str = "strict") -> dict[str, Any]:
    """Metrics of `pred_path` against `gt_path` for benchmark `bench`, under `protocol`, free-text
    answers read by `extract`."""
    key = benchmark_key(bench)
    if extract not in MODES:
        raise InputError(f"unknown --extract {extract!r} (choose from {', '.join(MODES)})")
    if key == "qvhighlights":
        first = read_jsonl(gt_path)[:1]
        if not (first and isinstance(first[0], dict) and "spans" in first[0]):
            return score_qvhighlights(gt_path, pred_path)
    gt = _load_gt(key, gt_path)
    if not gt:
        raise InputError(f"{gt_path}: no ground-truth rows")
    preds = read_predictions(pred_path)
    try:
        protocol_for(protocol, official_protocol(key))
    except ValueError as e:
        raise InputError(str(e)) from None
    return score_rows(key, gt, match_predictions(gt, preds, pred_path), protocol, extract)


def format_human(result: dict[str, Any], indent: int = 0) -> str:
    """Nested metrics as indented `name: value` lines."""
    lines = []
    for k, v in result.items():
        if isinstance(v, dict):
            lines.append(" " * indent + f"{k}:")
            lines.append(format_human(v, indent + 2))
        else:
            lines.append(" " * indent + f"{k}: {v:.2f}" if isinstance(v, float) else " " * indent + f"{k}: {v}")
    return "\n".join(lines)
