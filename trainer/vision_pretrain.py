"""Vision warm-up: teach the tiny vision tower what is where before the language model learns to ground.

The grounding SFT alone asks a randomly initialised 2-layer vision tower and the language model
to discover colours, shapes and their binding from a few tokens of answer loss per window, and
on 2 CPU cores that never got past chance (a window probe's presence AUC of 0.48-0.70 after
2300 steps; BENCHMARKS.md). This stage gives the tower a dense signal instead: every visual
token (one 2x2 merge of patches over a temporal pair of frames, the unit the language model sees)
is trained to say which colour+shape objects overlap its region and which background is on
screen, through small linear heads on the merger's output and on each deepstack output. The
heads are thrown away; the tower's weights are what the SFT stage starts from.

Labels come from the synthetic world's timelines (`DIR/specs/*.json`, written by
`groundqa synth`; the trainer reads files, it does not import evals): an object's centre is
linear between its knots, its box is the centre +- size / 2 rounded like the renderer's, so a
label is "this box meets this token's part of the frame" (occlusion ignored). Frames are decoded
from the MP4s by the same reader and the same processor as every other stage.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grounder.errors import ConfigError, InputError
from grounder.synthetic_words import COLORS, SCENES, SHAPES

# The synthetic world's vocabulary (grounder.synthetic_words); label k = colour * 5 + shape.
N_COMBOS = len(COLORS) * len(SHAPES)


def colour_of(combo: int) -> int:
    """Index into COLORS of a combo (combo = colour * len(SHAPES) + shape)."""
    return combo // len(SHAPES)


def shape_of(combo: int) -> int:
    """Index into SHAPES of a combo."""
    return combo % len(SHAPES)


@dataclass
class ClipView:
    """Frame pairs as one scan level sees them: `fps` spacing, frames resized to `max_pixels`."""

    fps: float = 0.25
    max_pixels: int = 3136
    weight: float = 1.0


@dataclass
class VisionConfig:
    """`groundqa train pipeline`'s vision stage (None in a recipe: skipped)."""

    steps: int = 400
    batch_size: int = 32  # frame pairs per step
    learning_rate: float = 3e-3
    views: list[ClipView] = field(default_factory=lambda: [
        ClipView(0.25, 3136), ClipView(0.5, 12544), ClipView(1.0, 12544), ClipView(2.0, 12544)])
    object_prob: float = 0.8  # a pair is centred on some object's life (else anywhere)
    holdout_videos: int = 4  # the last N videos are only measured on
    eval_pairs: int = 256
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("vision.steps and vision.batch_size must be >= 1")
        if not self.views:
            raise ConfigError("vision.views must not be empty")


# -- labels (pure) ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Track:
    combo: int
    size: int
    times: tuple[float, ...]
    xs: tuple[float, ...]
    ys: tuple[float, ...]


@dataclass(frozen=True)
class Timeline:
    """What `DIR/specs/vNNNN.json` says about where things are (the part this stage needs)."""

    width: int
    height: int
    duration: float
    scenes: tuple[tuple[float, int], ...]  # (start, scene index), by start
    tracks: tuple[Track, ...]


def read_timeline(path: str | Path) -> Timeline:
    try:
        d = json.loads(Path(path).read_text())
        cfg = d["config"]
        tracks = tuple(
            Track(COLORS.index(o["color"]) * len(SHAPES) + SHAPES.index(o["shape"]), int(o["size"]),
                  tuple(o["times"]), tuple(o["xs"]), tuple(o["ys"]))
            for o in d["objects"])
        scenes = tuple(sorted((float(s["start"]), SCENES.index(s["name"])) for s in d["scenes"]))
        return Timeline(int(cfg["width"]), int(cfg["height"]), float(d["duration"]), scenes, tracks)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a synthetic-world spec ({e})") from None


def track_box(tr: Track, t: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The track's box at `t` clipped to the frame (x1, y1 exclusive), or None when off screen."""
    if not tr.times[0] <= t <= tr.times[-1]:
        return None
    cx, cy = float(np.interp(t, tr.times, tr.xs)), float(np.interp(t, tr.times, tr.ys))
    x0 = math.floor(cx - tr.size / 2 + 0.5)
    y0 = math.floor(cy - tr.size / 2 + 0.5)
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + tr.size, width), min(y0 + tr.size, height)
    return (xa, ya, xb, yb) if xa < xb and ya < yb else None


def boxes_at(tl: Timeline, t: float) -> list[tuple[int, int, int, int, int]]:
    """(combo, x0, y0, x1, y1) of every object with a box on screen at `t` (x1, y1 exclusive)."""
    out = []
    for tr in tl.tracks:
        box = track_box(tr, t, tl.width, tl.height)
        if box is not None:
            out.append((tr.combo, *box))
    return out


def on_screen(tl: Timeline, times: Any) -> set[int]:
    """The combos with a box on screen at any of `times`."""
    return {c for t in times for c, *_ in boxes_at(tl, float(t))}


def scene_at(tl: Timeline, t: float) -> int:
    idx = 0
    for start, s in tl.scenes:
        if start <= t:
            idx = s
    return idx


def token_labels(tl: Timeline, times: list[float], grid_h: int, grid_w: int) -> np.ndarray:
    """[grid_h * grid_w, N_COMBOS] 0/1: combo k's box meets token (i, j)'s part of the frame in
    any of `times` (the frames a token spans). Tokens tile the whole frame in row-major order."""
    lab = np.zeros((grid_h, grid_w, N_COMBOS), dtype=np.float32)
    ch, cw = tl.height / grid_h, tl.width / grid_w
    for t in times:
        for combo, x0, y0, x1, y1 in boxes_at(tl, t):
            i0, i1 = int(y0 // ch), math.ceil(y1 / ch)
            j0, j1 = int(x0 // cw), math.ceil(x1 / cw)
            lab[i0:i1, j0:j1, combo] = 1.0
    return lab.reshape(grid_h * grid_w, N_COMBOS)


# -- sampling -----------------------------------------------------------------------------------

@dataclass
class Clip:
    frames: np.ndarray  # uint8 [2, H, W, 3]
    times: list[float]
    labels: np.ndarray | None = None  # filled once the processor's grid is known
    scene: int = 0
    timeline: Timeline | None = None


def spec_path(video: str | Path) -> Path:
    """`groundqa synth` layout: DIR/videos/vNNNN.mp4 -> DIR/specs/vNNNN.json."""
    video = Path(video)
    return video.parent.parent / "specs" / (video.stem + ".json")


def synth_videos(annotations: str | Path) -> list[tuple[Path, Path]]:
    """(video, spec) pairs of a `groundqa synth` folder, given its annotations.jsonl."""
    root = Path(annotations).parent
    pairs = [(v, spec_path(v)) for v in sorted((root / "videos").glob("*.mp4"))]
    pairs = [(v, s) for v, s in pairs if s.is_file()]
    if not pairs:
        raise InputError(f"{root}: no videos/*.mp4 with specs/*.json beside {Path(annotations).name}")
    return pairs


def sample_clip(video: Path, tl: Timeline, view: ClipView, rng: random.Random, object_prob: float) -> Clip:
    from grounder.video import shared_reader

    gap = 1.0 / view.fps
    if tl.tracks and rng.random() < object_prob:
        tr = tl.tracks[rng.randrange(len(tl.tracks))]
        t = rng.uniform(tr.times[0], tr.times[-1]) - rng.uniform(0, gap)
    else:
        t = rng.uniform(0, tl.duration)
    t = min(max(t, 0.0), max(0.0, tl.duration - 2 * gap))
    reader = shared_reader(video)
    frames, stamps = reader.sample_range(t, t + 2 * gap, fps=view.fps, max_frames=2, max_pixels=view.max_pixels)
    if len(frames) == 1:
        frames, stamps = np.concatenate([frames, frames]), np.concatenate([stamps, stamps])
    times = [float(x) for x in stamps[:2]]
    return Clip(frames[:2], times, scene=scene_at(tl, times[0]), timeline=tl)


def clip_batch(processor: Any, clips: list[Clip]) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """(video processor outputs, token labels [T, N_COMBOS], token scenes [T]) for `clips`."""
    vp = processor.video_processor
    out = vp(videos=[c.frames for c in clips], return_tensors="pt", do_sample_frames=False)
    merge = vp.merge_size
    labels, scenes = [], []
    for c, (gt, gh, gw) in zip(clips, out["video_grid_thw"].tolist()):
        assert gt == 1 and c.timeline is not None
        lab = token_labels(c.timeline, c.times, gh // merge, gw // merge)
        labels.append(torch.from_numpy(lab))
        scenes.append(torch.full((len(lab),), c.scene, dtype=torch.long))
    return out, torch.cat(labels), torch.cat(scenes)


# -- training -----------------------------------------------------------------------------------

class Heads(torch.nn.Module):
    """One read-out (combos + scene) per visual feature map the language model receives."""

    def __init__(self, hidden: int, n_maps: int) -> None:
        super().__init__()
        self.combo = torch.nn.ModuleList(torch.nn.Linear(hidden, N_COMBOS) for _ in range(n_maps))
        self.scene = torch.nn.ModuleList(torch.nn.Linear(hidden, len(SCENES)) for _ in range(n_maps))


def visual_maps(model: Any, batch: Any) -> list[torch.Tensor]:
    """[merged output, deepstack outputs...] of the vision tower, each [tokens, hidden]."""
    inner = model.model if hasattr(model, "model") else model
    pixels = batch["pixel_values_videos"].type(inner.visual.dtype)
    out = inner.visual(pixels, grid_thw=batch["video_grid_thw"], return_dict=True)
    return [out.pooler_output, *list(getattr(out, "deepstack_features", None) or [])]


def losses(maps: list[torch.Tensor], heads: Heads, labels: torch.Tensor, scenes: torch.Tensor) -> torch.Tensor:
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    ce = torch.nn.functional.cross_entropy
    total = torch.zeros(())
    for k, feat in enumerate(maps):
        total = total + bce(heads.combo[k](feat), labels) * N_COMBOS / 4 + ce(heads.scene[k](feat), scenes)
    return total / len(maps)


def presence_auc(scores: np.ndarray, present: np.ndarray) -> float:
    """ROC AUC of `scores` for binary `present` (rank form, ties averaged)."""
    pos, neg = scores[present > 0], scores[present == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    allv = np.concatenate([pos, neg])
    for v in np.unique(allv):  # average ranks of ties
        m = allv == v
        if m.sum() > 1:
            ranks[m] = ranks[m].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def same_colour_auc(clip_scores: np.ndarray, clip_truth: np.ndarray) -> float:
    """Clip presence AUC of each combo's positives against only the clips that show another shape
    of the same colour (and not the combo): can the read-out tell shapes apart? [clips, N_COMBOS]."""
    colour = clip_truth.reshape(len(clip_truth), len(COLORS), len(SHAPES)).max(-1)  # [clips, colours]
    hard = (clip_truth == 0) & (np.repeat(colour, len(SHAPES), axis=1) > 0)
    pos, neg = clip_scores[clip_truth > 0], clip_scores[hard]
    return presence_auc(np.concatenate([pos, neg]), np.r_[np.ones(len(pos)), np.zeros(len(neg))])


@torch.no_grad()
def evaluate(model: Any, processor: Any, heads: Heads, clips: list[Clip]) -> dict[str, float]:
    """Clip-level presence AUC of each combo (max over the clip's tokens of the merged map's head),
    the same against same-colour other-shape clips only, token-level AUC, and scene accuracy, on
    held-out clips."""
    clip_scores, clip_truth, tok_scores, tok_truth, scene_ok, n_tok = [], [], [], [], 0, 0
    for i in range(0, len(clips), 32):
        part = clips[i: i + 32]
        batch, labels, scenes = clip_batch(processor, part)
        maps = visual_maps(model, batch)
        logits = heads.combo[0](maps[0])
        scene_ok += int((heads.scene[0](maps[0]).argmax(-1) == scenes).sum())
        n_tok += len(scenes)
        tok_scores.append(logits.flatten().numpy())
        tok_truth.append(labels.flatten().numpy())
        sizes = (batch["video_grid_thw"].prod(-1) // processor.video_processor.merge_size ** 2).tolist()
        for lg, lb in zip(torch.split(logits, sizes), torch.split(labels, sizes)):
            clip_scores.append(lg.max(0).values.numpy())
            clip_truth.append(lb.max(0).values.numpy())
    cs, ct = np.stack(clip_scores), np.stack(clip_truth)
    return {
        "clip_auc": presence_auc(cs.flatten(), ct.flatten()),
        "clip_auc_same_colour": same_colour_auc(cs, ct),
        "token_auc": presence_auc(np.concatenate(tok_scores), np.concatenate(tok_truth)),
        "scene_acc": scene_ok / max(1, n_tok),
    }


def run_vision(cfg: VisionConfig, model: Any, processor: Any, annotations: str | Path, out_dir: str | Path,
               progress: bool = True) -> dict[str, Any]:
    """Train `model`'s vision tower in place; writes out_dir/metrics.jsonl and returns a summary."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = synth_videos(annotations)
    timelines = [read_timeline(s) for _, s in pairs]
    n_train = max(1, len(pairs) - cfg.holdout_videos)
    rng = random.Random(f"vision/{cfg.seed}")
    weights = [v.weight for v in cfg.views]

    def draw(idx: range, r: random.Random) -> Clip:
        i = r.choice(idx)
        return sample_clip(pairs[i][0], timelines[i], r.choices(cfg.views, weights)[0], r, cfg.object_prob)

    held = range(n_train, len(pairs)) if len(pairs) > n_train else range(n_train)
    r_eval = random.Random(f"vision-eval/{cfg.seed}")
    eval_clips = [draw(held, r_eval) for _ in range(cfg.eval_pairs)]

    inner = model.model if hasattr(model, "model") else model
    hidden = inner.visual.merger.linear_fc2.out_features
    n_maps = 1 + len(getattr(inner.visual, "deepstack_merger_list", []))
    torch.manual_seed(cfg.seed)
    heads = Heads(hidden, n_maps)
    params = [p for p in inner.visual.parameters()] + list(heads.parameters())
    for p in inner.visual.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / cfg.steps))))
    before = evaluate(model, processor, heads, eval_clips)
    t0 = time.time()
    log = (out / "metrics.jsonl").open("w")
    last = 0.0
    for step in range(cfg.steps):
        clips = [draw(range(n_train), rng) for _ in range(cfg.batch_size)]
        batch, labels, scenes = clip_batch(processor, clips)
        inner.visual.train()
        loss = losses(visual_maps(model, batch), heads, labels, scenes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        last = float(loss.detach())
        log.write(json.dumps({"step": step, "loss": last, "seconds": round(time.time() - t0, 2)}) + "\n")
        if progress and (step + 1) % 25 == 0:
            print(f"[vision] step {step + 1}/{cfg.steps} loss={last:.4f}", file=sys.stderr, flush=True)
    log.close()
    inner.visual.eval()
    model.eval()
    after = evaluate(model, processor, heads, eval_clips)
    summary = {"steps": cfg.steps, "last_loss": last, "seconds_train": round(time.time() - t0, 1),
               **{f"before_{k}": v for k, v in before.items()}, **{f"after_{k}": v for k, v in after.items()}}
    from trainer.curves import plot_curves

    png = plot_curves(out / "metrics.jsonl", out / "curves.png")
    summary["curves"] = str(png) if png else None
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
