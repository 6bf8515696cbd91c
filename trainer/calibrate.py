"""How far a retriever's runs sit from where things are half on screen, measured on its training world.

The retrieve-then-ground scan centres the VLM's 8-s looks on the ends of the retriever's
sharpened runs (`grounder.retrieval.sharpen`): where the named thing appears and disappears.
The VLM is trained on looks centred where the thing is half on screen (`trainer.looks`). A
retriever that embeds short clips (frames 0.5 s before and after) sees a thing while it is
still mostly off screen, so its runs start early and end late. Measured on the embedded
default's training world (2026-12-07): starts 0.61 s early, ends 0.87 s late, quartiles within
0.4 s. Left alone, every look is off-centre by that much, which is a third of a 3-s event.

`measure_run_shift` runs the retriever as the scan does on "enters" / "leaves" rows of a
synthetic world (their span is the crossing, whose middle is the half-on-screen moment) and
returns the median error of the nearest run end, negated: the `retrieval_onset_shift` /
`retrieval_offset_shift` of `grounder.scan.ScanBudget` that cancel it (0 for a side on which no
run end came within `NEAR` seconds of the truth).
"""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path
from typing import Any

NEAR = 4.0  # s: a run end further than this from the truth belongs to another appearance


def nearest_error(ends: list[float], truth: float, near: float = NEAR) -> float | None:
    """The signed error (end - truth) of the run end closest to `truth`, None when none is within `near` (pure)."""
    errors = [e - truth for e in ends if abs(e - truth) <= near]
    return min(errors, key=abs) if errors else None


def measure_run_shift(retriever: Any, annotations: str | Path, budget: Any, limit: int = 80,
                      seed: int = 0) -> dict[str, Any]:
    """{"onset": s, "offset": s, "enter_rows": n, "leave_rows": n, ...}: the shifts that cancel the
    retriever's median bias on up to `limit` enter and `limit` leave rows (drawn with `seed`)."""
    from grounder.video import clear_shared_readers, shared_reader

    ann = Path(annotations)
    rows = [json.loads(x) for x in ann.read_text(encoding="utf-8").splitlines() if x.strip()]
    errors: dict[str, list[float]] = {"enter": [], "leave": []}
    for kind, found in errors.items():
        picked = [r for r in rows if r.get("qtype") == kind and r.get("spans")]
        random.Random(seed).shuffle(picked)
        for r in picked[:limit]:
            # rows share videos: one reader each (decoder, keyframe index, frame cache)
            got = retriever.retrieve(shared_reader(str(ann.parent / r["video"])), r["query"], budget)
            s, e = r["spans"][0]
            ends = [c.run[0] if kind == "enter" else c.run[1] for c in got.candidates]
            err = nearest_error(ends, (s + e) / 2)
            if err is not None:
                found.append(err)
    clear_shared_readers()
    # a side the retriever never found (an untrained one, a world without such rows) stays unshifted
    out: dict[str, Any] = {"onset": round(-statistics.median(errors["enter"]), 3) if errors["enter"] else 0.0,
                           "offset": round(-statistics.median(errors["leave"]), 3) if errors["leave"] else 0.0}
    for kind, errs in errors.items():
        q = statistics.quantiles(errs, n=4) if len(errs) > 1 else errs * 3
        out[f"{kind}_rows"] = len(errs)
        out[f"{kind}_quartiles"] = [round(q[0], 3), round(q[2], 3)] if errs else None
    return out
