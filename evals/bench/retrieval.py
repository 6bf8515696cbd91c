"""Retrieval bench: does the retriever find the moment in an hour, and what does it cost?

Run: ``python -m evals.bench.retrieval --ann runs/heldout-long/world/annotations.jsonl``
(``--help``); the held-out worlds come from ``groundqa synth --videos 6 --minutes 90-120 --seed
9200`` (seeds no training uses). About a minute per 10 hours of video with the embedded default.

Per video, the retriever embeds frames at the scan's `retrieval_fps` once (timed: decode + embed),
then for every grounding query (and, with ``--kind all``, every QA row's evidence query) scores all
frames and builds its candidate windows exactly as the scan does (`Retriever.retrieve`). Reported:

- window Recall@k: the share of queries whose true span lies (>= 90 %) inside one of the first k
  windows (k = 1, 3, 5, 10), overall and per query type;
- frame AUC by decoy kind: each grounding query's positive frames (the object it names has >= half
  its mask on screen, in the named scene if any) against its video's negative frames of each kind:
  another shape of the named colour on screen, another colour of the named shape, other objects
  only, nothing on screen (frames where the named object is only partly visible are left out);
- embedding throughput (frames / s, decode included) and seconds per hour of video.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("same_colour", "same_shape", "other", "empty")
KS = (1, 3, 5, 10)


def covers(window: tuple[float, float], span: tuple[float, float], share: float = 0.9) -> bool:
    inter = max(0.0, min(window[1], span[1]) - max(window[0], span[0]))
    return inter >= share * max(span[1] - span[0], 1e-9)


def auc(pos: list[float], neg: list[float]) -> float:
    """ROC AUC of positives against negatives (rank form, ties averaged)."""
    if not pos or not neg:
        return float("nan")
    s = np.asarray(pos + neg, dtype=np.float64)
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inv]
    n = len(pos)
    return float((ranks[:n].sum() - n * (n + 1) / 2) / (n * len(neg)))


def frame_truth(spec: Any, times: np.ndarray) -> list[tuple[str, list[tuple[str, str, float]]]]:
    """Per frame time: (scene, [(colour, shape, share of its mask on screen)])."""
    from evals.synthetic.shapes import shape_mask

    full: dict[tuple[str, int], int] = {}
    out = []
    for t in times:
        st = spec.state(float(t))
        objs = []
        for o in st.objects:
            key = (o.shape, o.size)
            if key not in full:
                full[key] = int(shape_mask(o.shape, o.size).sum())
            objs.append((o.color, o.shape, o.pixels / max(1, full[key])))
        out.append((st.scene, objs))
    return out


def named(event: dict[str, Any]) -> dict[str, str]:
    keys = ("color", "shape", "scene") if event.get("type") in ("enter_after_scene", "after_scene") else ("color", "shape")
    return {k: str(event[k]) for k in keys if event.get(k)}


def label(want: dict[str, str], scene: str, objs: list[tuple[str, str, float]], min_visible: float = 0.5):
    """1 / 0 / None (left out) and, for negatives, the decoy kinds the frame is."""
    if "scene" in want and scene != want["scene"]:
        return 0, {"other"} if objs else {"empty"}
    best = max((share for c, s, share in objs
                if ("color" not in want or c == want["color"]) and s == want["shape"]), default=0.0)
    if best >= min_visible:
        return 1, set()
    if best > 0:
        return None, set()
    if not objs:
        return 0, {"empty"}
    kinds = set()
    for c, s, _ in objs:
        if c == want.get("color") and s != want["shape"]:
            kinds.add("same_colour")
        if s == want["shape"] and "color" in want and c != want["color"]:
            kinds.add("same_shape")
    return 0, kinds or {"other"}


def run(ann: str, model: str | None = None, kind: str = "grounding", limit: int = 0,
        cache_dir: str | None = None) -> dict[str, Any]:
    from evals.synthetic import load_spec
    from grounder.backends import DEFAULT_MODEL_DIR
    from grounder.grounder import resolve_retriever
    from grounder.retrieval import Retriever, retrieval_text
    from grounder.scan import ScanBudget, read_scan_config
    from grounder.video import open_video

    folder = Path(model) if model else DEFAULT_MODEL_DIR
    retriever = resolve_retriever(None, folder) if (folder / "retriever").is_dir() else Retriever.load(folder)
    if retriever is None:
        raise SystemExit(f"no retriever in {folder}")
    retriever.cache_dir = cache_dir
    scan = read_scan_config(folder) if (folder / "scan_config.json").is_file() else {}
    budget = ScanBudget(**{**scan, "retrieval_windows": max(KS)})
    root = Path(ann).parent
    rows = [json.loads(line) for line in Path(ann).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if kind == "all" or r["kind"] == kind]
    by_video: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_video[r["video"]].append(r)
    hits: dict[str, list[int | None]] = defaultdict(list)  # qtype -> rank of the first covering window
    pos: list[float] = []
    neg: dict[str, list[float]] = {k: [] for k in (*KINDS, "all")}
    embed_s = 0.0
    frames = 0
    video_s = 0.0
    done = 0
    for video, vrows in sorted(by_video.items()):
        path = root / video
        spec = load_spec(root / "specs" / (Path(video).stem + ".json"))
        with open_video(path) as reader:
            t0 = time.perf_counter()
            index = retriever.index(reader, budget.retrieval_fps, budget.retrieval_max_pixels)
            embed_s += time.perf_counter() - t0
            frames += len(index)
            video_s += reader.duration
            truth = frame_truth(spec, index.times)
            for r in vrows:
                if limit and done >= limit:
                    break
                done += 1
                res = retriever.retrieve(reader, r["query"], budget)
                span = tuple(r["spans"][0])
                rank = next((i for i, c in enumerate(res.candidates) if covers((c.start, c.end), span)), None)
                hits[r["qtype"]].append(rank)
                if r["kind"] != "grounding":
                    continue
                cos = index.scores(retrieval_text(r["query"]))
                want = named(r["event"])
                for (scene, objs), s in zip(truth, cos):
                    lab, kinds = label(want, scene, objs)
                    if lab == 1:
                        pos.append(float(s))
                    elif lab == 0:
                        neg["all"].append(float(s))
                        for k in kinds:
                            neg[k].append(float(s))
    every = [h for v in hits.values() for h in v]
    recall = {f"R@{k}": 100.0 * float(np.mean([h is not None and h < k for h in every])) for k in KS}
    per_type = {q: {f"R@{k}": 100.0 * float(np.mean([h is not None and h < k for h in v])) for k in KS} | {"n": len(v)}
                for q, v in sorted(hits.items())}
    return {
        "ann": ann, "retriever": retriever.name, "queries": len(every), "videos": len(by_video),
        "video_hours": round(video_s / 3600, 2), "recall": recall, "per_type": per_type,
        "auc": {k: auc(pos, v) for k, v in neg.items()}, "positives": len(pos),
        "negatives": {k: len(v) for k, v in neg.items()},
        "fps": budget.retrieval_fps, "frames": frames,
        "embed_seconds": round(embed_s, 2), "frames_per_second": round(frames / max(embed_s, 1e-9), 1),
        "seconds_per_video_hour": round(embed_s / max(video_s / 3600, 1e-9), 2),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ann", required=True, help="annotations.jsonl of a held-out `groundqa synth` world")
    ap.add_argument("--model", default=None, help="model folder with retriever/ (default: the embedded "
                    "default), or a retriever folder")
    ap.add_argument("--kind", default="grounding", choices=("grounding", "qa", "all"))
    ap.add_argument("--limit", type=int, default=0, help="at most this many queries (0: all)")
    ap.add_argument("--cache-dir", default=None, help="frame-index cache (default: a temporary one)")
    args = ap.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = run(args.ann, args.model, args.kind, args.limit, args.cache_dir or tmp)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
