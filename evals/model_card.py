"""`groundqa eval card MODEL_DIR --pipeline RUN_DIR --reports R1 R2 ...`: the model's README.md.

Writes a Hugging Face style model card into MODEL_DIR/README.md (atomically: temp file, then
rename) from files only, never by loading the model:

- what it is: config.json (architecture, family, sizes) + the safetensors headers (parameter
  counts, no weights read) + the folder's size on disk;
- what it knows: the synthetic world (evals.synthetic) and nothing else, said plainly;
- how it was trained: RUN_DIR/pipeline.json (the recipe `groundqa train pipeline` ran) and
  RUN_DIR/timings.json (seconds, steps and last losses per stage), with the command to rerun it;
- the scan budget it expects: MODEL_DIR/scan_config.json;
- scores: `groundqa eval report` outputs (a run folder with report.json, a report.json file, or
  saved `--json` lines), one table row per run, and the commands that reproduce each row.

Trainer and evals exchange files, not imports: the recipe is read as JSON/YAML, not through
trainer.config.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grounder.errors import InputError, one_line
from trainer.config import flat_keys

CARD = "README.md"
DEFAULT_RECIPE = "trainer/recipes/default.yaml"
FAMILY_NAMES = {"qwen3_vl": "Qwen3-VL", "qwen2_5_vl": "Qwen2.5-VL"}
STAGES = ("synth", "embedder", "vision", "sft", "difficulty", "grpo", "after", "model")
STAGE_TEXT = {
    "synth": "seeded synthetic training videos + annotations (`groundqa synth`)",
    "embedder": "the clip-text retriever: candidate windows, which look, multiple-choice answers",
    "vision": "vision tower warm-up: per-token colour+shape and background labels (held-out presence AUC)",
    "sft": "supervised cold start on the scan's window shapes and QA samples",
    "difficulty": "k samples per grounding row with the SFT model -> difficulty (mean IoU)",
    "grpo": "GRPO from the SFT model on the rows of medium difficulty",
    "after": "difficulty again with the GRPO model (before/after)",
    "model": "the GRPO model copied out as the final folder",
}


# ----------------------------------------------------------------------------- reading inputs

def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}") from None
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not readable JSON ({one_line(e)})") from None


def safetensors_params(path: Path) -> dict[str, int]:
    """Parameter counts from a safetensors header (no tensor data read): total, vision, text."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n <= 0 or n > 100_000_000:
                raise ValueError("bad header length")
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error) as e:
        raise InputError(f"{path}: not a safetensors file ({e})") from None
    out = {"total": 0, "vision": 0, "text": 0}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        count = math.prod(info.get("shape") or [1])
        out["total"] += count
        out["vision" if ".visual." in f".{name}" or name.startswith("visual") else "text"] += count
    return out


def model_facts(model_dir: Path) -> dict[str, Any]:
    """Architecture, sizes, parameter counts and disk size of a model folder."""
    cfg = _read_json(model_dir / "config.json", "config.json of the model")
    text = cfg.get("text_config") or cfg
    vision = cfg.get("vision_config") or {}
    params = {"total": 0, "vision": 0, "text": 0}
    shards = sorted(model_dir.glob("*.safetensors"))
    if not shards:
        raise InputError(f"{model_dir}: no *.safetensors file (is this a model folder?)")
    for p in shards:
        for k, v in safetensors_params(p).items():
            params[k] += v
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name != CARD
                   and not p.name.startswith("."))
    model_type = cfg.get("model_type", "?")
    return {
        "architecture": (cfg.get("architectures") or ["?"])[0],
        "model_type": model_type,
        "family": FAMILY_NAMES.get(model_type, model_type),
        "dtype": cfg.get("dtype") or cfg.get("torch_dtype") or text.get("dtype"),
        "text": {k: text.get(k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                          "num_attention_heads", "num_key_value_heads", "vocab_size")},
        "vision": {k: vision.get(k) for k in ("hidden_size", "intermediate_size", "depth",
                                              "num_heads", "patch_size", "temporal_patch_size")},
        "params": params,
        "bytes": sum(p.stat().st_size for p in files),
        "files": [str(p.relative_to(model_dir)) for p in files],
    }


def read_pipeline(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """RUN_DIR/pipeline.json (the recipe) and RUN_DIR/timings.json (per-stage facts)."""
    if not run_dir.is_dir():
        raise InputError(f"--pipeline: run folder not found: {run_dir}")
    recipe = _read_json(run_dir / "pipeline.json", "pipeline.json (written by `groundqa train pipeline`)")
    timings = _read_json(run_dir / "timings.json", "timings.json (written by `groundqa train pipeline`)")
    if not isinstance(recipe, dict) or not isinstance(timings, dict):
        raise InputError(f"{run_dir}: pipeline.json and timings.json must hold JSON objects")
    return recipe, timings


def pipeline_command(recipe: dict[str, Any], recipe_path: str = DEFAULT_RECIPE,
                     repo_root: Path | None = None) -> str:
    """`groundqa train pipeline RECIPE key=value ...`: the recipe file plus the overrides that
    make it the recipe in pipeline.json (values that differ from the YAML's, e.g. out_dir).
    Keys the YAML leaves to the dataclass defaults cannot be told apart here; the card also
    carries the whole recipe."""
    if recipe.get("command"):
        return str(recipe["command"])
    root = repo_root or Path(__file__).resolve().parents[1]
    yaml_path = Path(recipe_path) if Path(recipe_path).is_absolute() else root / recipe_path
    overrides: list[str] = []
    try:
        import yaml

        base = flat_keys(yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {})
    except (OSError, ValueError, ImportError):
        base = {}
    if base:
        got = flat_keys(recipe)
        for key, want in base.items():
            if key in got and got[key] != want and not (isinstance(want, list) and got[key] == list(want)):
                overrides.append(f"{key}={_override_value(got[key])}")
    return " ".join(["groundqa train pipeline", recipe_path, *overrides])


def _override_value(v: Any) -> str:
    text = json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)
    return f"'{text}'" if any(c in text for c in " []{},\"'") else text


def load_reports(paths: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """Reports from run folders (their report.json, else summarised now), report.json files, or
    files of `groundqa eval report --json` lines."""
    from evals.report import summarize

    reps: list[dict[str, Any]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            if (p / "report.json").is_file():
                reps.append(_check_report(_read_json(p / "report.json", "report.json"), p))
            else:
                reps.append(summarize(p))
            continue
        if not p.is_file():
            raise InputError(f"--reports: not found: {p}")
        text = p.read_text(encoding="utf-8", errors="replace").strip()
        try:
            objs = [json.loads(text)]
        except json.JSONDecodeError:
            try:
                objs = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as e:
                raise InputError(f"{p}: not a report (JSON or JSON lines): {e.msg}") from None
        for o in objs:
            for r in o if isinstance(o, list) else [o]:
                reps.append(_check_report(r, p))
    if not reps:
        raise InputError("--reports: no report found")
    return reps


def _check_report(rep: Any, where: Path) -> dict[str, Any]:
    if not isinstance(rep, dict) or "n" not in rep or not ("grounding" in rep or "qa" in rep):
        raise InputError(f"{where}: not a `groundqa eval report --json` report")
    return rep


# ----------------------------------------------------------------------------- writing the card

def _fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _params(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k"


def scores_table(reps: Sequence[dict[str, Any]]) -> list[str]:
    lines = [("| benchmark | predictor | strategy | n | R1@0.3 | R1@0.5 | R1@0.7 | mIoU | QA accuracy "
             "| model calls / item | visual tokens / item | seconds / item |"),
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in reps:
        g, q, c = r.get("grounding") or {}, r.get("qa") or {}, r.get("cost") or {}
        qa = _fmt(q.get("accuracy")) + (f" (n={q['n']})" if q.get("n") is not None else "")
        lines.append(
            f"| {r.get('bench') or '?'} | {r.get('predictor') or 'grounder'} | {r.get('strategy') or '-'} "
            f"| {r.get('n')} | {_fmt(g.get('R1@0.3'))} | {_fmt(g.get('R1@0.5'))} | {_fmt(g.get('R1@0.7'))} "
            f"| {_fmt(g.get('mIoU'))} | {qa} | {_fmt(c.get('model_calls'))} "
            f"| {_fmt(c.get('visual_tokens'), 0)} | {_fmt(c.get('seconds'), 2)} |")
    return lines


def reproduce_commands(rep: dict[str, Any]) -> str:
    """`groundqa eval run ... && groundqa eval report ...` for one report, from its run.json."""
    from evals.report import read_run_config

    run_dir = Path(str(rep.get("run_dir") or "RUN_DIR"))
    cfg = read_run_config(run_dir)
    ann = cfg.get("ann") or "ANNOTATIONS.jsonl"
    parts = ["groundqa eval run", str(rep.get("bench") or cfg.get("bench") or "BENCH"), "--ann", _short(ann),
             "--out", _short(run_dir)]
    if cfg.get("videos"):
        parts += ["--videos", _short(cfg["videos"])]
    model = rep.get("model") or cfg.get("model")
    if model and model != "default":
        parts += ["--model", _short(model)]
    if rep.get("predictor") and rep["predictor"] != "grounder":
        parts += ["--predictor", str(rep["predictor"])]
    if rep.get("strategy") and rep["strategy"] != "coarse-to-fine":
        parts += ["--strategy", str(rep["strategy"])]
    subset = cfg.get("subset") or {}  # the rows the run covered (evals.runner.record_subset)
    for key in ("kind", "stride", "limit"):
        value = subset.get(key, cfg.get(key))
        if value is not None and not (key == "stride" and value == 1):
            parts += [f"--{key}", str(value)]
    budget = _budget_flags(cfg.get("budget"), cfg.get("budget_overrides"))
    parts += [f"--budget {b}" for b in budget]
    note = synth_note(ann) if (rep.get("bench") or cfg.get("bench")) == "synthetic" else None
    return ((note + "\n") if note else "") + " ".join(parts) + f"\ngroundqa eval report {_short(run_dir)} --json"


def _budget_flags(budget: Any, overrides: Any = None) -> list[str]:
    """KEY=VALUE for the run's `--budget` overrides (run.json's `budget_overrides`); run.json files
    written before it: the fields its `budget` changed from ScanBudget's class defaults."""
    if isinstance(overrides, dict):
        return [f"{k}={v}" for k, v in overrides.items()]
    if not isinstance(budget, dict):
        return []
    from dataclasses import asdict

    from grounder.scan import ScanBudget

    plain = asdict(ScanBudget())
    return [f"{k}={v}" for k, v in budget.items() if k in plain and plain[k] != v]


def _looks_text(views: list[dict[str, Any]]) -> str:
    """', on the scan's closer looks (...)' when the views are boundary looks (`trainer/looks.py`)."""
    looks = [v for v in views if ((v.get("window") or {}).get("place") == "boundary")]
    if not looks:
        return ""
    w, f = looks[0].get("window") or {}, looks[0].get("frames") or {}
    return (f", on the retrieve-then-ground scan's closer looks ({w.get('length', '?')} s at {f.get('fps', '?')} fps "
            "centred where a named object or a look-alike appears or disappears, `trainer/looks.py`)")


def _training_section(recipe: dict[str, Any], timings: dict[str, Any], command: str) -> list[str]:
    synth = recipe.get("synth") or {}
    sft_t = (recipe.get("sft") or {}).get("train") or {}
    vis, vt = recipe.get("vision") or {}, timings.get("vision") or {}
    grpo = recipe.get("grpo") or {}
    grpo_t, grpo_g = grpo.get("train") or {}, grpo.get("grpo") or {}
    out_dir = recipe.get("out_dir") or "runs/default"
    lines = [
        "## How it was trained",
        "",
        "From random weights, by groundqa's own trainer, in one seeded command on CPU:",
        "",
        "```bash",
        command,
        f"cp -r {out_dir}/model/. grounder/default_model/      # what ships with the package",
        f"groundqa eval card grounder/default_model --pipeline {out_dir} --reports RUN_DIR ...   # this card",
        "```",
        "",
        (f"- data: {synth.get('videos', '?')} synthetic videos of {synth.get('minutes', '?')} minutes, "
         f"seed {synth.get('seed', '?')} (evaluation worlds use other seeds)"),
        *([(f"- vision warm-up: {vis.get('steps', '?')} steps of {vis.get('batch_size', '?')} frame pairs, "
            f"learning rate {vis.get('learning_rate', '?')}; held-out clip presence AUC "
            f"{_fmt(vt.get('before_clip_auc'), 2)} -> {_fmt(vt.get('after_clip_auc'), 2)}")] if vis else []),
        (f"- SFT: {sft_t.get('steps', '?')} steps, batch {sft_t.get('batch_size', '?')}, learning rate "
         f"{sft_t.get('learning_rate', '?')}, vision tower "
         f"{'frozen' if sft_t.get('freeze_vision') else 'trained'}"
         + (f", query-binding loss weight {sft_t['binding']} read after the "
            f"{'middle LM layer' if sft_t.get('binding_layer') is None else 'LM layer ' + str(sft_t['binding_layer'])} "
            "(`trainer/binding.py`)" if sft_t.get("binding") else "")
         + (f", attention loss weight {sft_t['attend']} (the answer's decision position on the frames that show "
            "the named object)" if sft_t.get("attend") else "")
         + (f", span-attention loss weight {sft_t['attend_span']} (the positions writing the span's start and end "
            "on the frames whose times they write)" if sft_t.get("attend_span") else "")),
        (f"- difficulty filter: rows whose SFT mean IoU lies in {recipe.get('difficulty_range', '?')}"),
        (f"- GRPO: {grpo_t.get('steps', '?')} steps, batch {grpo_t.get('batch_size', '?')}, "
         f"{grpo_g.get('num_generations', '?')} generations per prompt, learning rate "
         f"{grpo_t.get('learning_rate', '?')}, beta {grpo_g.get('beta', '?')} (timestamp tokens "
         f"{grpo_g.get('beta_time', '?')}), rewards {json.dumps(grpo_g.get('rewards', {}))}"
         + _looks_text((grpo.get("data") or {}).get("views") or [])),
        "",
        "| stage | what | seconds | steps | last values |",
        "|---|---|---:|---:|---|",
    ]
    names = [s for s in STAGES if s in timings] + [
        s for s in timings if s not in STAGES and isinstance(timings[s], dict)]
    for s in names:
        t = timings[s]
        if not isinstance(t, dict):
            continue
        last = ", ".join(f"{k.removeprefix('last_')} {f'{v:.4g}' if isinstance(v, float) else v}"
                         for k, v in t.items() if k.startswith("last_"))
        lines.append(f"| {s} | {STAGE_TEXT.get(s, '')} | {_fmt(t.get('seconds'))} "
                     f"| {_fmt(t.get('steps'))} | {last or '-'} |")
    total = timings.get("total_seconds")
    if total is None:
        total = sum(float(v.get("seconds", 0)) for v in timings.values() if isinstance(v, dict))
    lines += ["", f"Total: {float(total):.0f} s ({float(total) / 60:.1f} min) of wall time.", "",
              "<details><summary>The whole recipe (pipeline.json)</summary>", "", "```yaml",
              _yaml(recipe).rstrip(), "```", "", "</details>", ""]
    return lines


def _yaml(obj: Any) -> str:
    try:
        import yaml

        return yaml.safe_dump(obj, sort_keys=False, default_flow_style=None, width=100)
    except ImportError:  # pragma: no cover - pyyaml is a dependency
        return json.dumps(obj, indent=1)


def _short(path: Any) -> str:
    """A path relative to the working folder when it lies inside it (commands to copy)."""
    p = Path(str(path))
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)


def synth_note(ann: Any) -> str | None:
    """'# ANN: N synthetic videos, seed S, A-B min' from the world's specs/ (synthetic runs)."""
    specs = sorted((Path(str(ann)).parent / "specs").glob("*.json"))
    seeds, durs = set(), []
    for sp in specs:
        try:
            d = json.loads(sp.read_text(encoding="utf-8"))
            seeds.add(int(d["seed"]))
            durs.append(float(d["duration"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
    if not durs:
        return None
    seed = ", ".join(str(s) for s in sorted(seeds))
    lo, hi = min(durs) / 60, max(durs) / 60
    minutes = f"{lo:g}-{hi:g}" if abs(hi - lo) < 1e-9 else "A-B"
    return (f"# {_short(ann)}: groundqa synth --out {_short(Path(str(ann)).parent)} --videos {len(durs)} "
            f"--seed {seed} --minutes {minutes}   # videos of {lo:.1f}-{hi:.1f} min")


def _world_facts() -> dict[str, Any]:
    from evals.synthetic.shapes import COLOR_NAMES, SCENES, SHAPES
    from evals.synthetic.world import WorldConfig

    w = WorldConfig()
    return {"width": w.width, "height": w.height, "fps": w.fps, "shapes": ", ".join(SHAPES),
            "colours": ", ".join(COLOR_NAMES), "scenes": ", ".join(SCENES)}


def _retriever_section(model_dir: Path) -> list[str]:
    """What the folder's `retriever/` is and its held-out figures (from its config.json)."""
    cfg_path = model_dir / "retriever" / "config.json"
    if not cfg_path.is_file():
        return []
    cfg = _read_json(cfg_path, "retriever config")
    fig = (cfg.get("training") or {}).get("heldout") or {}
    params = sum(safetensors_params(model_dir / "retriever" / "model.safetensors").values()) \
        if (model_dir / "retriever" / "model.safetensors").is_file() else 0
    lines = [
        "## Its retriever (`retriever/`)",
        "",
        (f"A clip-text dual encoder, {_params(params)} parameters (`grounder/dual_encoder.py`; its own "
         "model card is `retriever/README.md`): a small CNN over clips of "
         f"{len(cfg.get('clip_offsets', []))} frames ({cfg.get('clip_offsets')} s around each clip's time) and "
         "a 2-layer transformer over this model's tokenizer. Its \"what\" head (\"is the named object on "
         "screen\") is the per-video index that proposes the candidate windows, and, read location by "
         "location, says where the named thing is (`locate`): which side it crosses (the scan demotes a "
         "window where it crosses another side than the query names) and, clip by clip over the found "
         "moments, when things come and go (the timeline reader, `agent/timeline.py`, answers \"which "
         "side\" and \"what comes in right after\" questions); its \"moment\" head (\"does the clip "
         "show what the text says happens\") chooses among the VLM's looks and answers the other "
         "multiple-choice questions. Held-out figures of its training run (last videos of the training "
         "world):"),
        "",
        "| figure | value |",
        "|---|---:|",
        *[f"| {k} | {_fmt(v, 3) if isinstance(v, float) else v} |" for k, v in fig.items()],
        "",
    ]
    return lines


def render_card(model_dir: Path, recipe: dict[str, Any], timings: dict[str, Any],
                reports: Sequence[dict[str, Any]], command: str,
                scan: dict[str, Any], name: str = "groundqa embedded default grounder") -> str:
    m = model_facts(model_dir)
    w = _world_facts()
    tags = ["video-temporal-grounding", "video-question-answering", m["model_type"], "tiny",
            "synthetic-data", "grpo", "groundqa"]
    t, v, p = m["text"], m["vision"], m["params"]
    lines = [
        "---",
        "license: apache-2.0",
        "library_name: transformers",
        "pipeline_tag: video-text-to-text",
        "tags:",
        *[f"- {x}" for x in tags],
        "---",
        "",
        f"# {name}",
        "",
        ("The model that `groundqa` uses when no `--model` is given: a tiny "
         f"{m['family']} grounder trained from scratch on groundqa's synthetic long-video world. "
         "It exists so that a fresh install answers a question about a long video offline, in "
         "one command, and so that the whole ground-then-answer path can be tested on a CPU. "
         "**It is a demonstration model, not a general video model.**"),
        "",
        "## What it is",
        "",
        f"- architecture: `{m['architecture']}` (`model_type` `{m['model_type']}`), weights {m['dtype'] or '?'}",
        (f"- language model: {t['num_hidden_layers']} layers, hidden {t['hidden_size']}, MLP "
         f"{t['intermediate_size']}, {t['num_attention_heads']} heads ({t['num_key_value_heads']} KV), "
         f"vocabulary {t['vocab_size']} (a byte-level BPE trained on the synthetic world's words, "
         "digits one per token)"),
        (f"- vision tower: {v['depth']} layers, hidden {v['hidden_size']}, MLP {v['intermediate_size']}, "
         f"{v['num_heads']} heads, patch {v['patch_size']} x {v['patch_size']} x {v['temporal_patch_size']} frames"),
        (f"- parameters: {_params(p['total'])} ({_params(p['vision'])} vision, {_params(p['text'])} "
         "language)"),
        f"- size on disk: {_mb(m['bytes'])} ({len(m['files'])} files: {', '.join(m['files'])})",
        ("- it loads with plain transformers (`AutoModelForImageTextToText` / `AutoProcessor`), offline, "
        "no `trust_remote_code`"),
        "",
        "## What it knows, and what it does not",
        "",
        (f"It has only ever seen groundqa's synthetic world (`evals/synthetic`): {w['width']}x{w['height']} "
         f"videos at {w['fps']:g} fps in which coloured shapes ({w['shapes']}; {w['colours']}) enter and "
         "leave the frame from its four sides over backgrounds that change from scene to scene "
         f"({w['scenes']}), with look-alike distractors. It knows two kinds of text:"),
        "",
        ("- grounding queries such as *when does the green triangle enter from the left*: its "
         "retriever (`retriever/`) finds the few places in the hour where the named object appears, "
         "and the VLM writes `<think>...</think><answer>S to E</answer>` with window-relative seconds "
         "(or that the event is not in this clip) for an 8-s look at each;"),
        ("- multiple-choice questions whose answer needs the moment, such as *what colour is the shape "
         "that appears right after the blue circle leaves?*, answered from the grounded moments: each "
         "option, joined to the question, is matched against short clips of those moments by the "
         "retriever's moment head (`agent/retrieval_answerer.py`); the VLM answers open questions."),
        "",
        ("**On real videos, or on any other question, its answers are meaningless**: it has never seen "
         "a person, an object of the real world or a sentence outside those templates. Its folder "
         "declares the videos it knows (`domain.json`); on any other video groundqa says so once (a "
         "warning on stderr and in `warnings`) and the agent answers that it is not sure, with its "
         "guess. Use `--model` with a real Qwen2.5-VL / Qwen3-VL checkpoint (and `--retriever` with a "
         "CLIP / SigLIP one) for real videos."),
        "",
    ]
    lines += _retriever_section(model_dir)
    lines += _training_section(recipe, timings, command)
    lines += ["## The scan it expects", "",
              ("`scan_config.json` holds the scan budget it was trained for; `groundqa ground/ask` "
               "start from these values (`grounder.scan.read_scan_config`) and flags such as "
               "`--max-calls` override them:"), ""]
    if scan:
        lines += ["| setting | value |", "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in scan.items()]
    else:
        lines.append("(no scan_config.json in this folder: the scan's defaults apply)")
    lines += ["", "## Scores", "",
              ("Percent (R1@IoU: share of items whose top segment overlaps the truth by at least that "
               "IoU; mIoU: mean IoU of the top segment; QA accuracy over the multiple-choice rows). "
               "Cost is the mean per item. Rows are `groundqa eval report --json` outputs of "
               "held-out synthetic worlds (seeds the training never used) and the baselines run the "
               "same way; chance on the 4-option questions is 25 %."), ""]
    lines += scores_table(reports)
    lines += ["", "### Reproduce", "", "```bash"]
    seen: set[str] = set()
    for r in reports:
        cmds = [c for c in reproduce_commands(r).splitlines() if c not in seen]
        seen.update(c for c in cmds if c.startswith("#"))  # one note per evaluation world
        lines += [*cmds, ""]
    if lines[-1] == "":
        lines.pop()
    lines += ["```", "", "## Use", "", "```bash",
              "groundqa demo                     # a 60-minute synthetic video, one question, timeline.png",
              ("groundqa ask VIDEO.mp4 \"what colour is the shape that enters after the blue circle leaves?\" "
              "--option red --option green --option blue --option yellow"),
              "groundqa ground VIDEO.mp4 \"when does the green triangle enter from the left\" --json",
              "```", "", "```python", "import agent",
              ("a = agent.ask(\"VIDEO.mp4\", \"from which side does the red circle enter?\", "
              "options=[\"top\", \"left\", \"right\", \"bottom\"])"),
              "print(a.choice, a.answer, a.segments, a.cost)", "```", "",
              "## License", "", "Apache-2.0, like groundqa.", ""]
    return "\n".join(lines)


def write_card(model_dir: str | os.PathLike, pipeline_dir: str | os.PathLike,
               reports: Sequence[str | os.PathLike], command: str | None = None,
               recipe_path: str = DEFAULT_RECIPE) -> dict[str, Any]:
    """Write MODEL_DIR/README.md; returns {"card", "bytes", "reports", "command"}."""
    from grounder.files import write_text_atomic
    from grounder.scan import read_scan_config

    md = Path(model_dir)
    if not md.is_dir():
        raise InputError(f"model folder not found: {md}")
    recipe, timings = read_pipeline(Path(pipeline_dir))
    reps = load_reports(reports)
    cmd = command or pipeline_command(recipe, recipe_path)
    text = render_card(md, recipe, timings, reps, cmd, read_scan_config(md))
    if not os.access(md, os.W_OK):
        raise InputError(f"cannot write into the model folder {md}")
    write_text_atomic(md / CARD, text)
    return {"card": str(md / CARD), "bytes": len(text.encode()), "reports": len(reps), "command": cmd}
