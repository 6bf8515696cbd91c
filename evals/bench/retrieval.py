"""Retrieval bench: does the retriever find the moment in an hour, and what does it cost?

Run: ``python -m evals.bench.retrieval --ann runs/heldout-long/world/annotations.jsonl``
(``--help``); the held-out worlds come from ``groundqa synth --videos 6 --minutes 90-120 --seed
9200`` (seeds no training uses). About a minute per 10 hours of video with the embedded default.

Per video, the retriever embeds frames at the scan's `retrieval_fps` once (timed: decode + embed),
then for every grounding query (and, with ``--kind all``, every QA row's evidence query) scores all
frames and builds its candidate windows exactly as the scan does (`Retriever.retrieve`). Reported:

- window Recall@k: the share of queries whose true span lies (>= 90 %) inside one of the first k
  windows (k = 1, 3, 5, 10), overall and per query type;
- clip AUC by decoy kind of the "what" head: each grounding query's positive clips (the object it
  names is on screen, by the labels the retriever was trained on: `trainer.clip_labels`) against
  its video's negative clips of each kind: another shape of the named colour on screen, another
  colour of the named shape, other objects only, nothing on screen;
- and of the "moment" head (when the retriever has one), on the clips within a minute of the true
  span and 100 more drawn at random (it scores clips on demand, not through the index): the clips
  that show what the query says happens against the named object at another moment (inside, or
  crossing another side or the other way: does the retriever know *which moment* the query
  means?) and against same-colour look-alikes;
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
MOMENT_KINDS = ("moment", "same_colour")
KS = (1, 3, 5, 10)


def run(ann: str, model: str | None = None, kind: str = "grounding", limit: int = 0,
        cache_dir: str | None = None, stride: int = 1) -> dict[str, Any]:
    from grounder.backends import DEFAULT_MODEL_DIR
    from grounder.grounder import resolve_retriever
    from grounder.retrieval import Retriever, retrieval_text, sample_clips
    from grounder.scan import ScanBudget, read_scan_config
    from grounder.video import open_video
    from trainer.clip_labels import (
        clip_objects,
        clip_scenes,
        decoy_kind,
        named_attributes,
        pair_label,
    )
    from trainer.embedder import auc, covers, what_of
    from trainer.vision_pretrain import read_timeline

    folder = Path(model) if model else DEFAULT_MODEL_DIR
    retriever = resolve_retriever(None, folder) if (folder / "retriever").is_dir() else Retriever.load(folder)
    if retriever is None:
        raise SystemExit(f"no retriever in {folder}")
    retriever.cache_dir = cache_dir
    scan = read_scan_config(folder) if (folder / "scan_config.json").is_file() else {}
    budget = ScanBudget(**{**scan, "retrieval_windows": max(KS)})
    root = Path(ann).parent
    rows = [json.loads(line) for line in Path(ann).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if kind == "all" or r["kind"] == kind][::stride]
    by_video: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_video[r["video"]].append(r)
    hits: dict[str, list[int | None]] = defaultdict(list)  # qtype -> rank of the first covering window
    has_moment = "moment" in getattr(retriever.embedder, "heads", ("what",))
    pos: dict[str, list[float]] = {"what": [], "moment": []}
    neg: dict[str, dict[str, list[float]]] = {"what": {k: [] for k in (*KINDS, "all")},
                                              "moment": {k: [] for k in (*MOMENT_KINDS, "all")}}
    embed_s = 0.0
    frames = 0
    video_s = 0.0
    done = 0
    for video, vrows in sorted(by_video.items()):
        path = root / video
        tl = read_timeline(root / "specs" / (Path(video).stem + ".json"))
        with open_video(path) as reader:
            t0 = time.perf_counter()
            index = retriever.index(reader, budget.retrieval_fps, budget.retrieval_max_pixels)
            embed_s += time.perf_counter() - t0
            frames += len(index)
            video_s += reader.duration
            offsets = tuple(retriever.embedder.clip_offsets)
            truth = [(clip_objects(tl, float(t), offsets), *clip_scenes(tl, float(t), offsets)) for t in index.times]
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
                named = named_attributes(r["event"])
                text = retrieval_text(r["query"])
                for head, want, kinds in (("what", what_of(named), KINDS), ("moment", named, MOMENT_KINDS)):
                    if head == "moment" and not has_moment:
                        continue
                    if head == "what":
                        cos, near = index.scores(text), truth
                    else:
                        rng = np.random.default_rng(done)
                        times = np.r_[np.arange(max(0.5, span[0] - 60), min(reader.duration - 0.5, span[1] + 60), 2.0),
                                      rng.uniform(0.5, reader.duration - 0.5, 100)]
                        clips, _ = sample_clips(reader, times, offsets, budget.retrieval_max_pixels)
                        cos = retriever.embedder.moment(clips, [text])[0]
                        near = [(clip_objects(tl, float(t), offsets), *clip_scenes(tl, float(t), offsets)) for t in times]
                    for (objs, scene, before), x in zip(near, cos):
                        lab = pair_label(want, objs, scene, 0.5, 0.0, before)
                        if lab == 1.0:
                            pos[head].append(float(x))
                        elif lab == 0.0:
                            neg[head]["all"].append(float(x))
                            for k in decoy_kind(want, objs) & set(kinds):
                                neg[head][k].append(float(x))
    every = [h for v in hits.values() for h in v]
    recall = {f"R@{k}": 100.0 * float(np.mean([h is not None and h < k for h in every])) for k in KS}
    per_type = {q: {f"R@{k}": 100.0 * float(np.mean([h is not None and h < k for h in v])) for k in KS} | {"n": len(v)}
                for q, v in sorted(hits.items())}
    return {
        "ann": ann, "stride": stride, "retriever": retriever.name, "queries": len(every), "videos": len(by_video),
        "video_hours": round(video_s / 3600, 2), "recall": recall, "per_type": per_type,
        "auc": {k: _auc(auc, pos["what"], v) for k, v in neg["what"].items()},
        "moment_auc": {k: _auc(auc, pos["moment"], v) for k, v in neg["moment"].items()} if has_moment else None,
        "positives": len(pos["what"]), "negatives": {k: len(v) for k, v in neg["what"].items()},
        "fps": budget.retrieval_fps, "frames": frames,
        "embed_seconds": round(embed_s, 2), "frames_per_second": round(frames / max(embed_s, 1e-9), 1),
        "seconds_per_video_hour": round(embed_s / max(video_s / 3600, 1e-9), 2),
    }


def _auc(auc: Any, pos: list[float], neg: list[float]) -> float:
    return auc(np.asarray(pos + neg), np.r_[np.ones(len(pos)), np.zeros(len(neg))])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ann", required=True, help="annotations.jsonl of a held-out `groundqa synth` world")
    ap.add_argument("--model", default=None, help="model folder with retriever/ (default: the embedded "
                    "default), or a retriever folder")
    ap.add_argument("--kind", default="grounding", choices=("grounding", "qa", "all"))
    ap.add_argument("--limit", type=int, default=0, help="at most this many queries (0: all)")
    ap.add_argument("--stride", type=int, default=1, help="every k-th query (as `groundqa eval run --stride`)")
    ap.add_argument("--cache-dir", default=None, help="frame-index cache (default: a temporary one)")
    args = ap.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = run(args.ann, args.model, args.kind, args.limit, args.cache_dir or tmp, args.stride)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
