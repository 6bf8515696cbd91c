"""`groundqa data traces`: cold-start reasoning traces from a teacher, filtered the TAR-TVG way.

    groundqa data traces dataset.jsonl --teacher GROUNDER_DIR --out traces.jsonl [--k 4] [--min-iou 0.5]

For each grounding row, one window of the video is drawn exactly as the training dataset draws
it (`trainer.data.make_sample`, seed/epoch 0, never a negative window) and the teacher (a
grounder checkpoint folder, Qwen2.5-VL / Qwen3-VL) samples `k` completions through VideoGRPO's
own generation (`trainer.difficulty.make_sampler` + `estimate`: the same prompt, video
metadata and sampling path as GRPO rollouts). A completion is kept when
`trainer.difficulty.is_distilled_trace` accepts it: its `<timestamp>` anchors get more accurate
step by step (`anchor_reward == 1.0`) and its answer's IoU with the truth is >= `min_iou`.

Each kept completion becomes one SFT row: the dataset row (its `video` made relative to the
output file) + `"trace"` (the completion, which `trainer.data.make_sample` uses as the target
instead of `reference_trace`) + `"window": [start, end]` (absolute seconds; `make_sample` shows
exactly that window again) + `"spans"` reduced to the one span the trace answers. The file is
written at the end, temp file + rename. The summary reports the keep rate (kept / sampled) and
the rows with at least one kept trace.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path
from typing import Any

from grounder.errors import InputError


def keep_traces(texts: list[str], span: tuple[float, float] | None, length: float,
                min_iou: float) -> list[str]:
    """The completions `is_distilled_trace` accepts (anchors improve, answer IoU >= min_iou)."""
    from trainer.difficulty import is_distilled_trace

    return [t for t in texts if is_distilled_trace(t, span, length, min_iou)]


def trace_row(raw: dict[str, Any], text: str, start: float, end: float,
              span: tuple[float, float]) -> dict[str, Any]:
    """An SFT row: the dataset row + the trace + its window + the span it answers (absolute)."""
    drop = ("difficulty", "trace", "window")
    return {**{k: v for k, v in raw.items() if k not in drop}, "trace": text,
            "window": [round(start, 3), round(end, 3)],
            "spans": [[round(start + span[0], 3), round(start + span[1], 3)]]}


def run_traces(dataset: str | Path, teacher: str | Path, out: str | Path, k: int = 4,
               min_iou: float = 0.5, max_new_tokens: int = 128, temperature: float = 1.0,
               frames: Any = None, window: Any = None, seed: int = 0, limit: int | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Sample, filter, write; returns the summary (see the module docstring)."""
    import torch

    from grounder.backends import load_transformers
    from grounder.cliutil import progress as progress_bar
    from grounder.files import write_text_atomic
    from trainer.data import FrameConfig, GroundingDataset, WindowConfig, make_sample
    from trainer.difficulty import (
        _raw_rows,
        _video_for,
        check_output_holds_videos,
        estimate,
        make_sampler,
    )

    if k < 1:
        raise InputError(f"--k must be >= 1, got {k}")
    if not 0.0 <= min_iou <= 1.0:
        raise InputError(f"--min-iou must be in [0, 1], got {min_iou}")
    src, dst = Path(dataset), Path(out)
    t0 = time.time()
    ds = GroundingDataset(src, frames or FrameConfig(), window or WindowConfig(), seed=seed, limit=limit)
    check_output_holds_videos(dst, ds.all_rows, "--out", escape="")
    raws = [r for r in _raw_rows(src) if r.get("kind", "grounding") == "grounding"]
    backend = load_transformers(str(teacher))  # one-line ModelError for a bad folder
    grpo = make_sampler(backend.model, backend.processor, k, max_new_tokens, temperature)
    torch.manual_seed(seed)
    win = dataclasses.replace(ds.window, negative_prob=0.0)
    kept_rows: list[dict[str, Any]] = []
    sampled = rows_with = 0
    with progress_bar("traces", len(ds.all_rows), enabled=progress) as advance:
        for i, row in enumerate(ds.all_rows):
            sample = make_sample(row, ds.frames, win, random.Random(f"{seed}/0/{i}"))
            _, rollout = estimate(grpo, sample)
            sampled += len(rollout.texts)
            good = keep_traces(rollout.texts, sample.span, sample.length, min_iou)
            rows_with += bool(good)
            for text in good:
                r = trace_row(raws[i], text, sample.start, sample.end, sample.span)
                r["video"] = _video_for(r["video"], src, dst)
                kept_rows.append(r)
            advance()
    write_text_atomic(dst, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept_rows))
    n = len(ds.all_rows)
    return {"rows": n, "k": k, "sampled": sampled, "kept": len(kept_rows),
            "keep_rate": round(len(kept_rows) / sampled, 4) if sampled else 0.0,
            "rows_with_trace": rows_with, "rows_with_trace_rate": round(rows_with / n, 4) if n else 0.0,
            "min_iou": min_iou, "out": str(dst), "seconds": round(time.time() - t0, 1)}
