"""`groundqa eval report DIR [DIR ...]`: metrics, a markdown table and plots of run folders.

    summarize(run_dir) -> {"grounding": {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU"} | None,
                           "qa": {"accuracy", "n"} | None, "n", "cost": {mean per item}, ...}

Percentages throughout (`evals.metrics`). Prediction files of all ranks are merged by id
(`evals.runner.load_predictions`). Grounding metrics are over the items that have ground-truth
spans (QA rows count with their evidence spans) and a `"top1"` key (predictors that do not
ground, the QA baselines, leave it out); an item without a prediction (top1 None: no segment,
or an error) scores IoU 0. QA accuracy is over the records whose predictor answered (a `"choice"`
key) and whose row has an answer; None when there are none. Cost is the mean per item of
model calls, frames, visual tokens and seconds.

Files written into each run folder (atomically): `report.json`, `report.md`,
`iou_hist.png`, `accuracy_by_length.png`, `cost_vs_accuracy.png`. With several folders the
comparison (`cost_vs_accuracy.png` with one point per run, labelled by strategy, and
`comparison.md`) goes to `out` (default: the first folder, replacing its single-run figure).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.loaders import official_protocol
from evals.metrics import best_iou, grounding_metrics, qa_accuracy
from evals.metrics.grounding import Protocol, protocol_for
from evals.runner import RUN_FILE, load_predictions
from grounder.errors import InputError
from grounder.files import write_text_atomic
from grounder.scan import COST_KEYS

# Video-length buckets (seconds): the long-video benchmarks' usual cuts.
LENGTH_BUCKETS: tuple[tuple[float, float, str], ...] = (
    (0, 60, "<1 min"), (60, 180, "1-3 min"), (180, 600, "3-10 min"), (600, 1800, "10-30 min"),
    (1800, 3600, "30-60 min"), (3600, math.inf, ">60 min"),
)


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def bucket_of(duration: Any) -> str | None:
    try:
        d = float(duration)
    except (TypeError, ValueError):
        return None
    for lo, hi, label in LENGTH_BUCKETS:
        if lo <= d < hi:
            return label
    return None


def grounded(r: dict[str, Any]) -> bool:
    """The record counts for the grounding metrics: ground truth, and a grounding predictor."""
    return bool(r.get("gt")) and "top1" in r


# the protocols a run folder's top-1 spans can be scored under (evals.metrics.grounding)
GROUNDING_PROTOCOLS = ("groundqa", "timezero", "time-r1")


def _grounding(recs: Sequence[dict[str, Any]], protocol: Protocol) -> dict[str, float] | None:
    """R1@t and mIoU of the grounded records under `protocol` (evals.metrics.grounding; default
    groundqa: every item counts), the truth as published. A protocol that leaves out rows never
    predicted leaves out the items whose run failed (an error record); an item the model ran on
    but gave no span for counts, as those scorers count an unparsed answer."""
    g = [r for r in recs if grounded(r)]
    if protocol.missing == "skip":
        g = [r for r in g if not r.get("error")]
    if not g:
        return None
    m = grounding_metrics([r.get("top1") for r in g], [r.get("gt_raw") or r["gt"] for r in g], protocol=protocol)
    return {k: _r(v) for k, v in m.items()}


def _qa(recs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    q = [r for r in recs if "choice" in r and r.get("answer") is not None]
    if not q:
        return None
    m = qa_accuracy([r["choice"] for r in q], [r["answer"] for r in q])
    return {"accuracy": _r(m["accuracy"]), "n": m["n"]}


def _scored_line(recs: Sequence[dict[str, Any]], proto: Protocol) -> str:
    """"scored N of M rows (K missing, J unparsed)" for the grounding metrics, as `eval score` says it."""
    g = [r for r in recs if grounded(r)]
    missing = sum(1 for r in g if r.get("error"))
    unparsed = sum(1 for r in g if not r.get("error") and r.get("top1") is None)
    n = len(g) - (missing if proto.missing == "skip" else 0)
    return f"scored {n} of {len(g)} rows ({missing} missing, {unparsed} unparsed)"


def by_length(recs: Sequence[dict[str, Any]], protocol: Protocol) -> list[dict[str, Any]]:
    """Per length bucket (non-empty ones, short to long): n, R1@0.5, mIoU (under `protocol`), QA accuracy."""
    out = []
    for _, _, label in LENGTH_BUCKETS:
        rs = [r for r in recs if bucket_of(r.get("duration")) == label]
        if not rs:
            continue
        g, q = _grounding(rs, protocol), _qa(rs)
        out.append({"bucket": label, "n": len(rs),
                    "R1@0.5": g["R1@0.5"] if g else None, "mIoU": g["mIoU"] if g else None,
                    "accuracy": q["accuracy"] if q else None})
    return out


def read_run_config(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def summarize(run_dir: str | os.PathLike, protocol: str = "official") -> dict[str, Any]:
    """The report of one run folder (see module docstring) under `protocol` ("official" picks the
    benchmark's, `evals.metrics.grounding`); writes nothing."""
    d = Path(run_dir)
    if not d.is_dir():
        raise InputError(f"run folder not found: {d}")
    recs = load_predictions(d)
    if not recs:
        raise InputError(f"{d}: no predictions yet (run `groundqa eval run ... --out {d}` first)")
    cfg = read_run_config(d)
    try:
        proto = protocol_for(protocol, official_protocol(cfg.get("bench")))
    except ValueError as e:
        raise InputError(str(e)) from None
    note = None
    if proto.name not in GROUNDING_PROTOCOLS:  # a QA benchmark's own scorer lives in `eval score`
        note = (f"{cfg.get('bench')}'s own scorer ({proto.name}) is `groundqa eval score --protocol official`; "
                "this report counts every item (groundqa)")
        proto = protocol_for("groundqa")
    strategies = sorted({str(r.get("strategy")) for r in recs if r.get("strategy")})
    n = len(recs)
    cost = {k: _r(sum(float((r.get("cost") or {}).get(k, 0) or 0) for r in recs) / n)
            for k in COST_KEYS}
    return {
        "run_dir": str(d),
        "bench": cfg.get("bench"),
        "model": cfg.get("model"),
        "predictor": cfg.get("predictor"),
        "strategy": cfg.get("strategy") or ("/".join(strategies) or None),
        "grounding": _grounding(recs, proto),
        # how items count (evals.metrics.grounding); `--protocol` picks another
        "protocol": proto.name,
        "protocol_source": proto.source,
        "scored": _scored_line(recs, proto),
        **({"protocol_note": note} if note else {}),
        "qa": _qa(recs),
        "n": n,
        "n_grounding": sum(1 for r in recs if grounded(r)),
        "n_qa": sum(1 for r in recs if r.get("kind") == "qa"),
        "errors": sum(1 for r in recs if r.get("error")),
        "no_prediction": sum(1 for r in recs if "top1" in r and r["top1"] is None),
        "cost": cost,
        "by_length": by_length(recs, proto),
    }


def _fmt(x: Any) -> str:
    return "-" if x is None else (f"{x:.2f}" if isinstance(x, float) else str(x))


def markdown(rep: dict[str, Any]) -> str:
    g, q, c = rep.get("grounding") or {}, rep.get("qa") or {}, rep["cost"]
    lines = [
        (f"# {rep.get('bench') or 'run'} — {rep.get('predictor') or 'grounder'}, "
         f"{rep.get('strategy') or '?'}"),
        "",
        (f"Run folder `{rep['run_dir']}`, model `{rep.get('model')}`: {rep['n']} items "
         f"({rep['n_grounding']} scored for grounding, {rep['n_qa']} QA, "
         f"{rep['errors']} errors, {rep['no_prediction']} without a segment). Protocol "
         f"`{rep.get('protocol', 'groundqa')}`: {rep.get('scored', '')}."),
        "",
        "| R1@0.3 | R1@0.5 | R1@0.7 | mIoU | QA accuracy | n |",
        "|---:|---:|---:|---:|---:|---:|",
        (f"| {_fmt(g.get('R1@0.3'))} | {_fmt(g.get('R1@0.5'))} | {_fmt(g.get('R1@0.7'))} "
         f"| {_fmt(g.get('mIoU'))} | {_fmt(q.get('accuracy'))} | {rep['n']} |"),
        "",
        (f"Cost per item (mean): {_fmt(c['model_calls'])} model calls, {_fmt(c['frames'])} "
         f"frames, {_fmt(c['visual_tokens'])} visual tokens, {_fmt(c['seconds'])} s."),
        "",
    ]
    if rep.get("by_length"):
        lines += ["## By video length", "", "| length | n | R1@0.5 | mIoU | QA accuracy |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {b['bucket']} | {b['n']} | {_fmt(b['R1@0.5'])} | {_fmt(b['mIoU'])} "
                  f"| {_fmt(b['accuracy'])} |" for b in rep["by_length"]]
        lines.append("")
    lines += ["![IoU histogram](iou_hist.png)", "", "![accuracy by length](accuracy_by_length.png)",
              "", "![cost vs accuracy](cost_vs_accuracy.png)", ""]
    return "\n".join(lines)


def comparison_markdown(reps: Sequence[dict[str, Any]]) -> str:
    lines = ["# Comparison", "",
             ("| run | predictor | strategy | R1@0.3 | R1@0.5 | R1@0.7 | mIoU | QA accuracy "
              "| model calls | visual tokens | seconds | n |"),
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in reps:
        g, q, c = r.get("grounding") or {}, r.get("qa") or {}, r["cost"]
        lines.append(f"| `{r['run_dir']}` | {r.get('predictor') or 'grounder'} | {r.get('strategy')} "
                     f"| {_fmt(g.get('R1@0.3'))} | {_fmt(g.get('R1@0.5'))} | {_fmt(g.get('R1@0.7'))} "
                     f"| {_fmt(g.get('mIoU'))} | {_fmt(q.get('accuracy'))} | {_fmt(c['model_calls'])} "
                     f"| {_fmt(c['visual_tokens'])} | {_fmt(c['seconds'])} | {r['n']} |")
    lines += ["", "![cost vs accuracy](cost_vs_accuracy.png)", ""]
    return "\n".join(lines)


def write_report(run_dir: str | os.PathLike, protocol: str = "official") -> dict[str, Any]:
    """summarize + report.json, report.md and the three plots in the run folder."""
    from evals import plots

    d = Path(run_dir)
    rep = summarize(d, protocol)
    recs = load_predictions(d)
    ious = [best_iou(r.get("top1"), r["gt"]) for r in recs if grounded(r)]
    label = f"{rep.get('bench') or ''} {rep.get('strategy') or ''}".strip()
    files = {
        "report_md": str(d / "report.md"),
        "iou_hist": str(plots.iou_hist(ious, d / "iou_hist.png", title=f"IoU, {label} (n={len(ious)})")),
        "accuracy_by_length": str(plots.accuracy_by_length(rep["by_length"], d / "accuracy_by_length.png",
                                                           title=f"by video length, {label}")),
        "cost_vs_accuracy": str(plots.cost_vs_accuracy(
            [rep], d / "cost_vs_accuracy.png",
            items=[(float((r.get("cost") or {}).get("visual_tokens", 0) or 0),
                    100.0 * best_iou(r.get("top1"), r["gt"])) for r in recs if grounded(r)])),
    }
    rep["files"] = files
    write_text_atomic(d / "report.md", markdown(rep))
    write_text_atomic(d / "report.json", json.dumps(rep, indent=2) + "\n")
    return rep


def write_reports(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike | None = None,
                  protocol: str = "official") -> list[dict[str, Any]]:
    """One report per folder; with several, the comparison plot + table in `out` (or the first)."""
    from evals import plots

    if not run_dirs:
        raise InputError("give at least one run folder")
    for d in run_dirs:  # all folders checked before anything is written
        summarize(d, protocol)
    reps = [write_report(d, protocol) for d in run_dirs]
    if len(reps) > 1:
        target = Path(out) if out is not None else Path(run_dirs[0])
        target.mkdir(parents=True, exist_ok=True)
        path = plots.cost_vs_accuracy(reps, target / "cost_vs_accuracy.png")
        write_text_atomic(target / "comparison.md", comparison_markdown(reps))
        for r in reps:
            r["files"]["comparison"] = str(path)
    return reps


def format_human(rep: dict[str, Any]) -> str:
    g, q, c = rep.get("grounding"), rep.get("qa"), rep["cost"]
    qa_text = f"accuracy {q['accuracy']:.2f} (n={q['n']})" if q else "-"
    gl = ("  ".join(f"{k} {v:.2f}" for k, v in g.items()) if g
          else "- (no ground-truth spans, or a predictor that does not ground)")
    lines = [
        f"{rep['run_dir']}: {rep.get('bench')} / {rep.get('predictor') or 'grounder'} / "
        f"{rep.get('strategy')}, {rep['n']} items"
        + (f", {rep['errors']} errors" if rep["errors"] else ""),
        f"  grounding  {gl}",
        f"  qa         {qa_text}",
        (f"  cost/item  {c['model_calls']:.2f} calls, {c['frames']:.1f} frames, "
         f"{c['visual_tokens']:.1f} visual tokens, {c['seconds']:.2f} s"),
        f"  report     {rep['files']['report_md']}",
    ]
    return "\n".join(lines)
