"""`groundqa train embedder`: the clip-text dual encoder that retrieves candidate windows.

    groundqa train embedder trainer/recipes/embedder.yaml data=runs/default/synth/annotations.jsonl

What it learns: "does this short clip show what this text says". A clip is two frames 1 s apart
(`grounder.dual_encoder`'s `clip_offsets`), so "enters from the bottom" and "leaves through the
bottom" differ by the way the object moves, and a twice-seen object's two visits by the side it
comes in through. Texts are the synthetic world's own queries and questions (`annotations.jsonl`:
every row's `query` and `question`, through `grounder.retrieval.retrieval_text` as at use time)
turned into templates whose colour, shape, scene and side words are slots (`text_templates`),
refilled per clip. The label of a (text, clip) pair comes from the world's timeline
(`DIR/specs/*.json`; `trainer.clip_labels` says exactly what counts; the trainer reads files, it
does not import evals).

Every step draws `batch_size` clips (half of them with something crossing a frame edge), one text
naming something each clip shows and `hard_negatives` texts naming a look-alike of it (same colour
other shape, same shape other colour: the decoys the generative VLM could not tell apart), and
scores every text against every clip with a pairwise sigmoid loss (SigLIP): all the other clips and
texts of the batch are negatives too. Written to `out_dir/model` (`grounder.dual_encoder` folder,
model card included), `metrics.jsonl`, `curves.png` and `summary.json` with the held-out figures:
clip AUC by decoy kind (same colour / same shape / other objects / empty / the named object at
another moment) and window Recall@k on the last `holdout_videos` videos.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from grounder.dual_encoder import DualEncoder, DualEncoderConfig, count_parameters
from grounder.errors import ConfigError, InputError
from grounder.retrieval import candidate_windows, retrieval_text
from grounder.synthetic_words import COLORS, SCENES, SHAPES, SIDES
from trainer.clip_labels import (
    ClipObject,
    clip_objects,
    clip_scenes,
    decoy_kind,
    named_attributes,
    pair_label,
)
from trainer.vision_pretrain import read_timeline, synth_videos

DECOY_KINDS = ("same_colour", "same_shape", "moment", "other", "empty")


@dataclass
class EmbedderConfig:
    """A `groundqa train embedder` recipe (also the `embedder:` block of the pipeline recipe)."""

    data: str = ""  # annotations.jsonl of a `groundqa synth` folder (videos/ and specs/ beside it)
    out_dir: str = "runs/embedder"
    steps: int = 1500
    batch_size: int = 64  # clips per step
    hard_negatives: int = 1  # look-alike texts per clip
    learning_rate: float = 0.002
    weight_decay: float = 0.01
    warmup_steps: int = 50
    frames_fps: float = 1.0  # the clip bank: clips of every training video at this rate
    crossing_share: float = 0.5  # share of each batch drawn from clips where something crosses an edge
    # share of clips that get a true and a false answer to a multiple-choice question as texts, so
    # the moment head also answers questions by ranking "QUESTION OPTION" statements (agent.retrieval_answerer)
    statement_share: float = 0.25
    min_visible: float = 0.5  # share of an object's box in the frame for "on screen"
    # target for a text with a verb ("enters from the bottom") when its object is on screen doing
    # something else: the right object at the wrong moment (trainer.clip_labels)
    elsewhere: float = 0.0
    holdout_videos: int = 4  # the last N videos are only measured on
    eval_fps: float = 0.5  # held-out frames per second (the scan's retrieval_fps)
    eval_k: int = 5  # Recall@k of the held-out windows
    seed: int = 0
    threads: int = 0  # torch threads (0: torch's default)
    model: DualEncoderConfig = field(default_factory=DualEncoderConfig)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2:
            raise ConfigError("embedder: steps must be >= 1 and batch_size >= 2")
        if not self.learning_rate > 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError("embedder: learning_rate must be > 0, weight_decay and warmup_steps >= 0")
        if not 0 <= self.statement_share <= 1 or not 0 <= self.crossing_share <= 1:
            raise ConfigError("embedder: statement_share and crossing_share must be in [0, 1]")
        if not 0 <= self.elsewhere <= 1:
            raise ConfigError(f"embedder: elsewhere must be in [0, 1], got {self.elsewhere}")
        if not 0 < self.min_visible <= 1 or not self.frames_fps > 0 or not self.eval_fps > 0:
            raise ConfigError("embedder: need 0 < min_visible <= 1, frames_fps > 0 and eval_fps > 0")
        if self.hard_negatives < 0 or self.holdout_videos < 0 or self.eval_k < 1:
            raise ConfigError("embedder: hard_negatives and holdout_videos must be >= 0, eval_k >= 1")


# -- what a text names (pure) --------------------------------------------------------------------

SLOTS = ("color", "shape", "scene", "side")


@dataclass(frozen=True)
class Template:
    """A text with `{color}`, `{shape}`, `{scene}`, `{side}` slots; `keys` says which it has, `verb`
    what the named object does in it ("enter", "leave" or "")."""

    text: str
    keys: tuple[str, ...]
    verb: str = ""

    def fill(self, color: str = "", shape: str = "", scene: str = "", side: str = "") -> str:
        return self.text.format(color=color, shape=shape, scene=scene, side=side)


def to_template(text: str, attrs: dict[str, str]) -> Template | None:
    """Replace the first whole-word occurrence of each named value by its slot; None when a value
    is not in the text (a row this trainer cannot read)."""
    out = retrieval_text(text).lower().replace("{", "(").replace("}", ")")
    for key in SLOTS:
        if key not in attrs:
            continue
        new, n = re.subn(rf"\b{re.escape(attrs[key])}\b", "{" + key + "}", out, count=1)
        if n == 0:
            return None
        out = new
    return Template(out, tuple(k for k in SLOTS if k in attrs), attrs.get("verb", ""))


@dataclass(frozen=True)
class Statement:
    """A multiple-choice question made a claim: `statement_text(question, "{answer}")` with the
    question's named words as slots; `kind` / `ask` say what an answer claims
    (`trainer.clip_labels.answer_statement`)."""

    text: str
    keys: tuple[str, ...]
    kind: str
    ask: str


def statement_templates(rows: list[dict[str, Any]]) -> list[Statement]:
    """Distinct statement templates of every multiple-choice row, in a stable order."""
    from grounder.retrieval import statement_text

    seen: dict[Statement, None] = {}
    for r in rows:
        ev = r.get("event") or {}
        if r.get("kind") != "qa" or not r.get("question") or ev.get("type") not in (
                "after_leave", "after_scene", "enter_side", "exit_side"):
            continue
        attrs = {k: v for k, v in named_attributes(ev).items() if k in SLOTS}
        t = to_template(str(r["question"]), attrs)
        if t is not None:
            seen.setdefault(Statement(statement_text(t.text, "{answer}"), t.keys, ev["type"], str(ev.get("ask"))), None)
    return list(seen)


def text_templates(rows: list[dict[str, Any]]) -> list[Template]:
    """Distinct templates of every row's query and question, in a stable order."""
    seen: dict[Template, None] = {}
    for r in rows:
        attrs = named_attributes(r.get("event") or {})
        if "shape" not in attrs:
            continue
        for text in (r.get("query"), r.get("question")):
            if text:
                t = to_template(str(text), attrs)
                if t is not None:
                    seen.setdefault(t, None)
    return list(seen)


# -- clips ---------------------------------------------------------------------------------------

@dataclass
class ClipBank:
    """Decoded clips with what every object does in each (from the timelines)."""

    frames: np.ndarray  # uint8 [N, K, H, W, 3]
    video: np.ndarray  # int [N] index into the videos
    times: np.ndarray  # float [N] each clip's time
    objects: list[list[ClipObject]]
    scenes: np.ndarray  # int [N]
    scenes_before: np.ndarray  # int [N]: the scene in the clip's context frame, -1 without one

    def before(self, i: int) -> int | None:
        return None if self.scenes_before[i] < 0 else int(self.scenes_before[i])

    @property
    def crossing(self) -> np.ndarray:
        """Indices of the clips in which some object crosses a frame edge."""
        return np.asarray([i for i, objs in enumerate(self.objects) if any(o.edges for o in objs)], dtype=np.int64)


def clip_bank(pairs: list[tuple[Path, Path]], indices: range, fps: float, offsets: tuple[float, ...],
              max_pixels: int) -> ClipBank:
    from grounder.retrieval import sample_clips, sample_times
    from grounder.video import open_video

    frames, vids, times, objects, scenes, before = [], [], [], [], [], []
    for i in indices:
        video, spec = pairs[i]
        tl = read_timeline(spec)
        with open_video(video) as reader:
            f, ts = sample_clips(reader, sample_times(reader.duration, fps), offsets, max_pixels)
        frames.append(f if f.ndim == 5 else f[:, None])
        vids.append(np.full(len(ts), i))
        times.append(ts)
        for t in ts:
            objects.append(clip_objects(tl, float(t), offsets))
            now, prev = clip_scenes(tl, float(t), offsets)
            scenes.append(now)
            before.append(-1 if prev is None else prev)
    return ClipBank(np.concatenate(frames), np.concatenate(vids), np.concatenate(times), objects,
                    np.asarray(scenes, dtype=np.int64), np.asarray(before, dtype=np.int64))


# -- batches -------------------------------------------------------------------------------------

def look_alike(combo: int, rng: random.Random) -> int:
    """Another combo sharing the colour or the shape (each half the time)."""
    c, s = divmod(combo, len(SHAPES))
    if rng.random() < 0.5:
        return c * len(SHAPES) + rng.choice([x for x in range(len(SHAPES)) if x != s])
    return rng.choice([x for x in range(len(COLORS)) if x != c]) * len(SHAPES) + s


def fill(template: Template, combo: int, scene: int, side: str) -> tuple[str, dict[str, str]]:
    c, s = COLORS[combo // len(SHAPES)], SHAPES[combo % len(SHAPES)]
    named = {"color": c, "shape": s, "scene": SCENES[scene], "side": side}
    named = {k: v for k, v in named.items() if k in template.keys}
    if template.verb:
        named["verb"] = template.verb
    return template.fill(**{k: v for k, v in named.items() if k in SLOTS}), named


def fill_statement(st: Statement, o: ClipObject | None, scene: int, rng: random.Random,
                   truthful: bool) -> tuple[str, dict[str, str]]:
    """A statement about the clip's moving object `o` (its answered attribute when `truthful`,
    another value otherwise), with the question's own slots filled around it."""
    from trainer.clip_labels import answer_statement

    combo = o.combo if o is not None else rng.randrange(len(COLORS) * len(SHAPES))
    c, s = COLORS[combo // len(SHAPES)], SHAPES[combo % len(SHAPES)]
    edges = sorted(o.edges) if o is not None and o.edges else list(SIDES)
    if st.kind in ("enter_side", "exit_side"):
        true_value, values = rng.choice(edges), SIDES
        slots = {"color": c, "shape": s}
    elif st.kind == "after_scene":
        true_value, values = c, COLORS
        slots = {"shape": s, "scene": SCENES[scene]}
    else:  # after_leave: the anchor in the question is any object; the claim is about the one entering
        true_value, values = (c, COLORS) if st.ask == "color" else (s, SHAPES)
        other = rng.randrange(len(COLORS) * len(SHAPES))
        slots = {"color": COLORS[other // len(SHAPES)], "shape": SHAPES[other % len(SHAPES)],
                 "side": rng.choice(SIDES)}
    answer = true_value if truthful else rng.choice([v for v in values if v != true_value])
    event = {"type": st.kind, "ask": st.ask, **{k: v for k, v in slots.items() if k in ("color", "shape", "scene")}}
    text = st.text.format(answer=answer, **{k: slots.get(k, "") for k in SLOTS})
    return text, {**answer_statement(event, answer), "statement": "1"}


def make_texts(bank: ClipBank, picks: list[int], templates: list[Template], hard: int, min_visible: float,
               rng: random.Random, statements: list[Statement] | None = None,
               statement_share: float = 0.0) -> list[tuple[str, dict[str, str]]]:
    """Per picked clip: one text about an object it shows (with the verb and side of what that
    object does, when it crosses an edge), `hard` naming a look-alike of it; or, `statement_share`
    of the time, a true and a false answer to a multiple-choice question about its moving object."""
    by_verb: dict[str, list[Template]] = {}
    for t in templates:
        by_verb.setdefault(t.verb, []).append(t)
    texts = []
    for i in picks:
        if statements and rng.random() < statement_share:
            moving = [o for o in bank.objects[i] if o.edges and abs(o.last - o.first) > 0.02]
            st = rng.choice(statements)
            o = rng.choice(moving) if moving else None
            scene = int(bank.scenes[i])
            texts.append(fill_statement(st, o, scene, rng, truthful=True))
            texts.append(fill_statement(st, o, scene, rng, truthful=False))
            continue
        shown = [o for o in bank.objects[i] if o.share >= min_visible or o.edges]
        o = rng.choice(shown) if shown else None
        combo = o.combo if o else rng.randrange(len(COLORS) * len(SHAPES))
        verb = ""
        if o is not None and o.edges and abs(o.last - o.first) > 0.02:
            verb = "enter" if o.last > o.first else "leave"
        pool = by_verb.get(verb) if verb and rng.random() < 0.8 else None
        template = rng.choice(pool or templates)
        scene = int(bank.scenes[i]) if rng.random() < 0.8 else rng.randrange(len(SCENES))
        side = rng.choice(sorted(o.edges)) if o is not None and o.edges and rng.random() < 0.8 else rng.choice(SIDES)
        texts.append(fill(template, combo, scene, side))
        for k in range(hard):
            if k == 0 and verb:
                # the same object at another moment: the other side, or the other way
                other_verb = {"enter": "leave", "leave": "enter"}[verb]
                if "side" in template.keys and rng.random() < 0.5:
                    texts.append(fill(template, combo, scene, rng.choice([x for x in SIDES if x != side])))
                else:
                    texts.append(fill(rng.choice(by_verb.get(other_verb) or templates), combo, scene, side))
                continue
            texts.append(fill(rng.choice(templates), look_alike(combo, rng), scene, side))
    return texts


def what_of(named: dict[str, str]) -> dict[str, str]:
    """What the "what" head is asked: the named object (and scene), not what it does."""
    return {k: v for k, v in named.items() if k not in ("verb", "side", "change")}


def label_matrix(texts: list[tuple[str, dict[str, str]]], bank: ClipBank, picks: list[int],
                 min_visible: float, elsewhere: float = 0.0, head: str = "moment") -> torch.Tensor:
    """[texts, clips] of targets in [0, 1] or nan (left out), as `head` is trained: "what" = is
    the named object on screen, "moment" = does the clip show what the text says it does."""
    lab = torch.empty((len(texts), len(picks)))
    for a, (_, named) in enumerate(texts):
        if "statement" in named:  # answers are the moment head's business only
            lab[a] = float("nan") if head == "what" else torch.tensor(
                [pair_label({k: v for k, v in named.items() if k != "statement"}, bank.objects[i],
                            int(bank.scenes[i]), min_visible, elsewhere, bank.before(i)) for i in picks])
            continue
        want = what_of(named) if head == "what" else named
        for b, i in enumerate(picks):
            lab[a, b] = pair_label(want, bank.objects[i], int(bank.scenes[i]), min_visible, elsewhere, bank.before(i))
    return lab


def sigmoid_loss(model: DualEncoder, frames: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                 labels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per head, the mean pairwise BCE over the (text, clip) pairs not left out (SigLIP's loss)."""
    img = model.clip_features(frames)
    txt = model.text_features(ids, mask)
    out = {}
    for head, lab in labels.items():
        logits = model.logits(model.match(txt[head], img[head]), head)
        keep = ~torch.isnan(lab)
        out[head] = F.binary_cross_entropy_with_logits(logits[keep], lab[keep])
    return out


# -- measures ------------------------------------------------------------------------------------

def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """ROC AUC (rank form, ties averaged); nan without both classes."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(truth) > 0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inv]  # 1-based, ties get their average
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def decoy_aucs(scores: np.ndarray, texts: list[dict[str, str]], bank: ClipBank, min_visible: float,
               rows_video: list[int], kinds: tuple[str, ...] = DECOY_KINDS) -> dict[str, float]:
    """Clip AUC of each text's positives against each kind of negative clip of its own video
    (`trainer.clip_labels.decoy_kind`), pooled over texts; `all` pools every negative. A clip
    counts once per kind it is. [texts, clips] scores."""
    pos_s: list[float] = []
    neg: dict[str, list[float]] = {k: [] for k in (*kinds, "all")}
    for a, named in enumerate(texts):
        for b in np.nonzero(bank.video == rows_video[a])[0]:
            lab = pair_label(named, bank.objects[b], int(bank.scenes[b]), min_visible, 0.0, bank.before(b))
            if lab == 1.0:
                pos_s.append(float(scores[a, b]))
            elif lab == 0.0:
                neg["all"].append(float(scores[a, b]))
                for k in decoy_kind(named, bank.objects[b]) & set(kinds):
                    neg[k].append(float(scores[a, b]))
    out: dict[str, Any] = {}
    for k, ns in neg.items():
        out[k] = auc(np.asarray(pos_s + ns), np.r_[np.ones(len(pos_s)), np.zeros(len(ns))]) if ns and pos_s else float("nan")
    out["positives"] = len(pos_s)
    return out


def covers(window: tuple[float, float], span: tuple[float, float], share: float = 0.9) -> bool:
    """Does `window` hold at least `share` of `span`?"""
    inter = max(0.0, min(window[1], span[1]) - max(window[0], span[0]))
    return inter >= share * max(span[1] - span[0], 1e-9)


@torch.no_grad()
def evaluate(model: DualEncoder, bank: ClipBank, rows: list[dict[str, Any]], video_ids: dict[str, int],
             cfg: EmbedderConfig, durations: dict[int, float]) -> dict[str, Any]:
    """Held-out figures: clip AUC by decoy kind of the "what" head (is the named object there) and
    of the "moment" head (against the named object at another moment), window Recall@k of the
    grounding rows."""
    model.eval()
    frames = model.embed_frames(bank.frames)
    use = [r for r in rows if r.get("kind") == "grounding" and str(r["video"]) in video_ids]
    if not use:
        return {}
    texts = [retrieval_text(r["query"]) for r in use]
    named = [named_attributes(r["event"]) for r in use]
    cos = model.embed_text(texts) @ frames.T
    prob = model.presence(cos)
    vids = [video_ids[str(r["video"])] for r in use]
    what = decoy_aucs(cos, [what_of(n) for n in named], bank, cfg.min_visible, vids,
                      ("same_colour", "same_shape", "other", "empty"))
    out: dict[str, Any] = {f"auc_{k}": v for k, v in what.items()}
    if "moment" in model.heads:
        mprob = model.moment(bank.frames, texts)
        moment = decoy_aucs(mprob, named, bank, cfg.min_visible, vids, ("moment", "same_colour"))
        out.update({f"moment_auc_{k}": v for k, v in moment.items() if k != "positives"})
    hits = []
    for a, r in enumerate(use):
        sel = np.nonzero(bank.video == vids[a])[0]
        cands = candidate_windows(bank.times[sel], prob[a, sel], cfg.eval_k, duration=durations[vids[a]])
        span = tuple(r["spans"][0])
        hits.append(any(covers((c.start, c.end), span) for c in cands))
    out[f"recall@{cfg.eval_k}"] = float(np.mean(hits))
    out["rows"] = len(use)
    if model.cfg.answers:
        out.update(statement_accuracy(model, bank, rows, video_ids))
    return out


def statement_accuracy(model: DualEncoder, bank: ClipBank, rows: list[dict[str, Any]],
                       video_ids: dict[str, int]) -> dict[str, Any]:
    """Multiple-choice accuracy of ranking "QUESTION OPTION" statements against the held-out clips
    inside each question's true evidence span (what the agent does on the moments it grounds)."""
    from grounder.retrieval import statement_text

    qa = [r for r in rows if r.get("kind") == "qa" and r.get("options") and str(r["video"]) in video_ids]
    right = n = 0
    for r in qa:
        s, e = r["spans"][0]
        sel = np.nonzero((bank.video == video_ids[str(r["video"])]) & (bank.times >= s - 1) & (bank.times <= e + 1))[0]
        if not len(sel):
            continue
        texts = [statement_text(r["question"], o) for o in r["options"]]
        scores = model.moment(bank.frames[sel], texts)
        right += int(int(np.argmax(scores.max(axis=1))) == int(r["answer"]))
        n += 1
    return {"qa_accuracy_on_evidence": right / n if n else float("nan"), "qa_questions": n}


# -- the run -------------------------------------------------------------------------------------

def read_rows(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"embedder data not found: {path}")
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise InputError(f"{path}:{n}: not a JSON line") from None
    return rows


def default_tokenizer() -> Any:
    """The embedded default's tokenizer (a `tokenizers.Tokenizer`): the same words as the VLM."""
    from grounder.tiny import build_tokenizer

    return build_tokenizer().backend_tokenizer


def run_embedder(cfg: EmbedderConfig, progress: bool = True) -> dict[str, Any]:
    """Train, evaluate on the held-out videos, write out_dir/model (+ metrics, curves, summary)."""
    from trainer.curves import plot_curves

    if not cfg.data:
        raise ConfigError("embedder: data (an annotations.jsonl of `groundqa synth`) is required")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_rows(cfg.data)
    templates = text_templates(rows)
    statements = statement_templates(rows)
    if not templates:
        raise InputError(f"{cfg.data}: no rows whose query names a colour and shape (not a synthetic world?)")
    pairs = synth_videos(cfg.data)
    n_train = max(1, len(pairs) - cfg.holdout_videos)
    t0 = time.time()
    max_pixels = cfg.model.image_size * cfg.model.image_size
    offsets = tuple(float(o) for o in cfg.model.clip_offsets)
    train = clip_bank(pairs, range(n_train), cfg.frames_fps, offsets, max_pixels)
    held = (clip_bank(pairs, range(n_train, len(pairs)), cfg.eval_fps, offsets, max_pixels)
            if len(pairs) > n_train else None)
    crossing = train.crossing
    decode_s = time.time() - t0
    if progress:
        print(f"[embedder] {len(train.frames)} training clips ({len(crossing)} with an edge crossing), "
              f"{len(templates)} text templates ({decode_s:.0f} s to decode)", file=sys.stderr, flush=True)

    tokenizer = default_tokenizer()
    pad = tokenizer.token_to_id("<|endoftext|>")
    mcfg = DualEncoderConfig(**{**cfg.model.__dict__, "vocab_size": tokenizer.get_vocab_size(),
                                "pad_token_id": int(pad if pad is not None else 0),
                                "answers": bool(statements and cfg.statement_share > 0 and "moment" in cfg.model.heads),
                                "slots": {"color": list(COLORS), "shape": list(SHAPES), "scene": list(SCENES),
                                          "side": list(SIDES)}})  # grounder.synthetic_words
    torch.manual_seed(cfg.seed)
    model = DualEncoder(mcfg, tokenizer)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.learning_rate)
    warm = max(1, cfg.warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / cfg.steps))))
    rng = random.Random(f"embedder/{cfg.seed}")
    log = (out / "metrics.jsonl").open("w")
    t1 = time.time()
    last = float("nan")
    for step in range(cfg.steps):
        model.train()
        picks = [int(crossing[rng.randrange(len(crossing))]) if len(crossing) and rng.random() < cfg.crossing_share
                 else rng.randrange(len(train.frames)) for _ in range(cfg.batch_size)]
        texts = make_texts(train, picks, templates, cfg.hard_negatives, cfg.min_visible, rng, statements,
                           cfg.statement_share if "moment" in model.heads else 0.0)
        labels = {h: label_matrix(texts, train, picks, cfg.min_visible, cfg.elsewhere, h) for h in model.heads}
        ids, mask = model.token_ids([t for t, _ in texts])
        losses = sigmoid_loss(model, model.pixels(train.frames[picks]), ids, mask, labels)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        last = float(loss.detach())
        log.write(json.dumps({"step": step, "loss": last, **{f"loss_{h}": float(v.detach()) for h, v in losses.items()},
                              "positives": float(torch.nansum(labels["what"])),
                              "seconds": round(time.time() - t1, 2)}) + "\n")
        if progress and (step + 1) % 100 == 0:
            print(f"[embedder] step {step + 1}/{cfg.steps} loss={last:.4f} ({time.time() - t1:.0f} s)",
                  file=sys.stderr, flush=True)
    log.close()
    train_s = time.time() - t1
    model.eval()
    figures: dict[str, Any] = {}
    if held is not None:
        names = {str(Path(v).relative_to(Path(cfg.data).parent)): i for i, (v, _) in enumerate(pairs)}
        durations = {i: read_timeline(s).duration for i, (_, s) in enumerate(pairs)}
        figures = evaluate(model, held, rows, {k: v for k, v in names.items() if v >= n_train}, cfg, durations)
    summary = {"steps": cfg.steps, "last_loss": last, "seconds_decode": round(decode_s, 1),
               "seconds_train": round(train_s, 1), "parameters": count_parameters(model),
               "train_clips": len(train.frames), "templates": len(templates),
               **{f"heldout_{k}": v for k, v in figures.items()}}
    tmp = out / ".model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, extra={"data": str(cfg.data), "steps": cfg.steps, "seed": cfg.seed,
                                      "heldout": figures})
    (tmp / "README.md").write_text(model_card(summary, cfg))
    final = out / "model"
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    png = plot_curves(out / "metrics.jsonl", out / "curves.png")
    summary["curves"] = str(png) if png else None
    summary["model"] = str(final)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def model_card(summary: dict[str, Any], cfg: EmbedderConfig) -> str:
    """The retriever folder's README.md: what it is, what it knows, how it was trained, its figures."""
    fig = {k.removeprefix("heldout_"): v for k, v in summary.items() if k.startswith("heldout_")}
    rows = "\n".join(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in fig.items())
    return f"""---
license: apache-2.0
library_name: groundqa
tags: [retrieval, video, temporal-grounding, synthetic]
---
# groundqa embedded retriever (clip-text dual encoder)

The coarse pass of the embedded default grounder: it scores short clips sampled over the whole video
against a query ("the red cross enter from the bottom") and proposes the few windows the VLM then
grounds inside (`grounder.retrieval`, `grounder.scan`). {summary['parameters']:,} parameters: a small
CNN over clips of {len(cfg.model.clip_offsets)} frames (offsets {list(cfg.model.clip_offsets)} s, stacked as channels,
{cfg.model.image_size}x{cfg.model.image_size}; per-location features, max-pooled per channel) and a
2-layer transformer over the default model's tokenizer; `presence(cos)` is a calibrated probability
that the clip shows what the text says (sigmoid loss).

**It knows the synthetic world only** (`groundqa synth`: coloured shapes on four backgrounds). On
any other video its scores mean nothing; real use passes `--retriever` with a CLIP / SigLIP model.

## Training

`groundqa train embedder` (trainer/embedder.py): {cfg.steps} steps of {cfg.batch_size} clips (a
share {cfg.crossing_share} with something crossing a frame edge), one text about something each clip
shows and {cfg.hard_negatives} naming a look-alike (same colour or same shape), pairwise sigmoid loss
over the batch; lr {cfg.learning_rate}, seed {cfg.seed}; {summary['train_clips']} training clips at
{cfg.frames_fps} per second of video, {summary['templates']} text templates from the world's queries
and questions; labels from the world's timelines (`trainer/clip_labels.py`);
{summary['seconds_train']:.0f} s on the CPU.

## Held-out figures (last {cfg.holdout_videos} videos of the training world)

Clip AUC of each grounding query's positives against negative clips of each kind (showing another
shape of the named colour, another colour of the named shape, the named object at another moment,
other objects only, nothing), and Recall@{cfg.eval_k}: the share of queries whose true span lies in
one of the top {cfg.eval_k} windows.

| figure | value |
|---|---:|
{rows}
"""
