"""Model backends: one call = one clip + one query -> the model's text and its confidence.

A backend is any callable `backend(request: ModelRequest) -> ModelReply`. The scan
(`grounder.scan`) only talks to that interface, so other backends (an OpenAI-compatible
server, vLLM) plug in beside `TransformersBackend`, and tests can script replies.

`TransformersBackend` runs a Qwen2.5-VL / Qwen3-VL model (real or tiny) with greedy decoding,
and reads the answer's confidence from the same `generate` call (see `answer_confidence`):

    confidence = P(time) / (P(time) + P(absent))

at the first answer token after `<answer>`, where P(time) is the probability mass on tokens
that start with a digit and P(absent) on tokens that begin "not in this clip", times
(1 - P(absent)) at the first token of the reasoning after `<think>`: a model trained on short
traces ("<think>Not here.</think>..." vs "<think>It is at ...") decides there, and by
`<answer>` the decision is made, so the answer token alone is ~0 or ~1 and cannot rank
windows; for a model whose reasoning never opens with "not" the factor is ~1. Why this
signal (and not sample agreement or the answer's likelihood) is explained in
`grounder.scan`. To make sure that position exists, a logits processor (`ForceAnswer`) keeps
the model from stopping before it has written `<answer>` and, when the reasoning runs into
`max_new_tokens`, closes it with `</think><answer>` early enough to leave room for the answer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from grounder.budget import read_scan_config
from grounder.devices import check_device
from grounder.errors import InputError, ModelError, one_line
from grounder.prompts import ABSENT_ANSWER, SYSTEM_PROMPT, grounding_prompt, query_lead

# transformers' config.model_type -> our family name (the time encoding the inputs need).
FAMILY_OF_MODEL_TYPE = {"qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl"}
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
UNTRAINED_WARNING = (
    "the embedded default model is not trained yet (no grounder/default_model): it is a tiny "
    "random Qwen2.5-VL, so segments are arbitrary; pass --model for real use"
)
# Tokens left for "12.5 to 17.0</answer>" (digits are one token each in Qwen) after forcing.
ANSWER_ROOM = 16


@dataclass
class ModelRequest:
    """One model call: frames of one window, the query, and how to place them in time."""

    frames: np.ndarray  # uint8 [N, H, W, 3]
    timestamps: np.ndarray  # absolute seconds, each frame's own time
    video_fps: float  # the file's frame rate (Qwen2.5-VL's MRoPE time needs it)
    window_start: float  # absolute seconds; the model sees times relative to this
    window_end: float
    query: str
    max_new_tokens: int = 128
    level: int = 0  # the scan's level of this window: 0 coarse / sliding / uniform, 1.. zoom (reports)

    @property
    def window_length(self) -> float:
        return self.window_end - self.window_start


@dataclass
class ModelReply:
    """What the model wrote, how sure it was that the event is in the window, and its cost."""

    text: str
    # P(time)/(P(time)+P(absent)) at the first answer token; None when the backend cannot tell
    # (the scan then scores a span 0.5 and anything else 0).
    confidence: float | None = None
    visual_tokens: int = 0  # video pad tokens fed to the model
    # why the backend could not measure a confidence it would have (e.g. a server that returns no
    # token logprobs); None when it measured one or had nothing to measure (no answer written)
    unmeasured: str | None = None
    # all prompt tokens as the server counted them (`usage.prompt_tokens`); None when not reported
    prompt_tokens: int | None = None


def window_inputs(processor: Any, request: ModelRequest) -> Any:
    """Processor outputs of one grounding call: the window as a clip (`grounder.qwen`), the query
    before it, the grounding prompt after it. The local backend feeds them to the model; the
    OpenAI-compatible one counts their visual tokens."""
    from grounder.qwen import build_video_inputs

    n = len(request.frames)
    length = request.window_length
    return build_video_inputs(
        processor, request.frames, request.timestamps, fps=request.video_fps,
        prompt=grounding_prompt(request.query, length), system=SYSTEM_PROMPT,
        lead=query_lead(request.query), origin=request.window_start,
        sample_fps=n / length if length > 0 else None, clip=length > 0,
    )


class Backend(Protocol):
    name: str

    def __call__(self, request: ModelRequest) -> ModelReply: ...




def token_class(text: str) -> str | None:
    """The confidence rule's classes of one token's text (module docstring): "time" when it starts
    with a digit, "absent" when it begins "not in this clip" (a prefix of it, or "not..."), else None."""
    t = str(text).strip().lower()
    if not t:
        return None
    if t[0].isdigit():
        return "time"
    if ABSENT_ANSWER.startswith(t) or t.startswith("not"):
        return "absent"
    return None


def combine_confidence(p_time: float, p_absent: float, p_absent_early: float | None = None) -> float:
    """The confidence rule (module docstring): P(time) / (P(time) + P(absent)) at the answer's first
    token, times 1 - P(absent) at the reasoning's first token when there is one; 0 when neither
    class has any mass. One home for every backend (`TransformersBackend`, the OpenAI one)."""
    if p_time + p_absent <= 1e-12:
        return 0.0
    conf = p_time / (p_time + p_absent)
    if p_absent_early is not None:
        conf *= 1.0 - p_absent_early
    return conf


ANSWER_TAG = "<answer>"
_TAG_TOKENS = 8  # "<answer>" spans at most this many tokens in any tokenizer we meet


THINK_TAG = "<think>"


def answer_position(tokenizer: Any, gen: list[int], tag: str = ANSWER_TAG) -> int:
    """Index of the first generated token after `tag` (`<answer>`), or -1 if it was not written.

    Found on the decoded text, not on token ids: in context a tokenizer may split the tag
    differently from `encode("<answer>")` (e.g. "><" merged with the tag before it).
    """
    for k in range(len(gen)):
        if tag in tokenizer.decode(gen[max(0, k - _TAG_TOKENS + 1) : k + 1]):
            return k + 1
    return -1


class ForceAnswer:
    """A logits processor that makes sure a generation reaches `<answer>` (batch of one).

    Before `<answer>` appears, end-of-sequence tokens are banned; from step `force_at` on, the
    tokens of `</think><answer>` are forced one by one. Afterwards it does nothing. Greedy
    outputs of a model that answers within its budget are unchanged. One instance per call
    (it keeps state across the steps of that generation).
    """

    def __init__(self, tokenizer: Any, prompt_len: int, force_ids: list[int],
                 eos_ids: list[int], force_at: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.force_ids = force_ids
        self.eos_ids = eos_ids
        self.force_at = max(0, force_at)
        self.answered = False
        self.forced = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self.answered:
            tail = input_ids[0, self.prompt_len :][-_TAG_TOKENS:].tolist()
            self.answered = ANSWER_TAG in self.tokenizer.decode(tail)
        if self.answered or self.forced >= len(self.force_ids):
            return scores
        scores = scores.clone()
        if input_ids.shape[1] - self.prompt_len < self.force_at:
            scores[:, self.eos_ids] = float("-inf")
            return scores
        scores[:] = float("-inf")
        scores[:, self.force_ids[self.forced]] = 0.0
        self.forced += 1
        return scores


class TransformersBackend:
    """A Qwen-VL model through transformers: `generate` (greedy) on `grounding_prompt`."""

    def __init__(self, model: Any, processor: Any, family: str, name: str = "model",
                 device: str = "cpu") -> None:
        if family not in FAMILY_OF_MODEL_TYPE.values():
            raise ModelError(f"unsupported model family {family!r} (expected qwen2_5_vl or qwen3_vl)")
        self.model = model
        self.processor = processor
        self.family = family
        self.name = name
        self.device = device
        self.tokenizer = processor.tokenizer
        self.video_token_id = int(model.config.video_token_id)
        self._classes: tuple[np.ndarray, np.ndarray] | None = None
        # ScanBudget values the model was trained for (its folder's scan_config.json)
        self.scan_defaults: dict[str, Any] = {}
        self._tokens_per_shape: dict[tuple[int, int, int], int] = {}

    # -- one call -------------------------------------------------------------------
    def inputs(self, request: ModelRequest) -> Any:
        return window_inputs(self.processor, request)

    def __call__(self, request: ModelRequest) -> ModelReply:
        import torch
        from transformers import LogitsProcessorList

        from grounder.qwen import to_model

        inputs = to_model(self.inputs(request), self.model, self.device)
        ids = inputs["input_ids"]
        prompt_len = int(ids.shape[1])
        visual = int((ids == self.video_token_id).sum())
        force_ids = self.tokenizer.encode("</think>" + ANSWER_TAG, add_special_tokens=False)
        eos = self.model.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        force = ForceAnswer(self.tokenizer, prompt_len, force_ids, eos_ids,
                            request.max_new_tokens - len(force_ids) - ANSWER_ROOM)
        with torch.inference_mode():
            out = self.model.generate(
                **inputs, max_new_tokens=request.max_new_tokens, do_sample=False,
                logits_processor=LogitsProcessorList([force]),
                output_logits=True, return_dict_in_generate=True,
            )
        gen = out.sequences[0, prompt_len:].tolist()
        text = self.tokenizer.decode(gen, skip_special_tokens=True)
        confidence = self.answer_confidence(gen, out.logits)
        return ModelReply(text=text, confidence=confidence, visual_tokens=visual)

    # -- confidence -----------------------------------------------------------------
    def token_classes(self, vocab: int) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks over the vocabulary: tokens that start a time / an absent answer."""
        if self._classes is None or len(self._classes[0]) != vocab:
            n = min(vocab, len(self.tokenizer))
            texts = self.tokenizer.batch_decode([[i] for i in range(n)])
            time_mask = np.zeros(vocab, bool)
            absent_mask = np.zeros(vocab, bool)
            for i, t in enumerate(texts):
                kind = token_class(t)
                time_mask[i] = kind == "time"
                absent_mask[i] = kind == "absent"
            self._classes = (time_mask, absent_mask)
        return self._classes

    def _first_word(self, gen: list[int], pos: int) -> int:
        while pos < len(gen) and not self.tokenizer.decode([gen[pos]]).strip():
            pos += 1  # a blank token (" ") after the tag: the decision comes next
        return pos

    def answer_confidence(self, gen: list[int], logits: Any) -> float | None:
        """P(time)/(P(time)+P(absent)) at the first non-blank token after `<answer>`, times
        1 - P(absent) at the first non-blank token after `<think>` (when it comes before)."""
        import torch

        pos = answer_position(self.tokenizer, gen)
        if pos < 0:
            return None
        pos = self._first_word(gen, pos)
        if pos >= len(logits):
            return None
        probs = torch.softmax(logits[pos][0].float(), dim=-1).cpu().numpy()
        time_mask, absent_mask = self.token_classes(len(probs))
        p_time, p_absent = float(probs[time_mask].sum()), float(probs[absent_mask].sum())
        early_absent = None
        think = answer_position(self.tokenizer, gen[:pos], THINK_TAG)
        if think >= 0:
            think = self._first_word(gen, think)
            if think < pos:
                early = torch.softmax(logits[think][0].float(), dim=-1).cpu().numpy()
                early_absent = float(early[absent_mask].sum())
        return combine_confidence(p_time, p_absent, early_absent)

    # -- cost without running ---------------------------------------------------------
    def visual_tokens_for(self, num_frames: int, height: int, width: int) -> int:
        """Video pad tokens a call with frames of this shape feeds (runs the processor only)."""
        key = (num_frames, height, width)
        if key not in self._tokens_per_shape:
            frames = np.zeros((num_frames, height, width, 3), np.uint8)
            times = np.arange(num_frames, dtype=np.float64)
            req = ModelRequest(frames, times, 1.0, 0.0, float(num_frames), "x")
            ids = self.inputs(req)["input_ids"]
            self._tokens_per_shape[key] = int((ids == self.video_token_id).sum())
        return self._tokens_per_shape[key]


# -- loading ------------------------------------------------------------------------------
def torch_dtype(dtype: Any) -> Any:
    """None -> None (the checkpoint's own / float32 on CPU); 'bfloat16' or torch.bfloat16 -> it."""
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype):
        raise InputError(f"unknown dtype {dtype!r} (e.g. float32, bfloat16, float16)")
    return value


def missing_model_files(folder: Path) -> list[str]:
    """What a Qwen-VL folder lacks to be loaded (besides config.json): a tokenizer (tokenizer.json,
    or vocab.json + merges.txt) and the image processor's settings. Without them transformers may
    still build *a* processor, one that fails on the first video, or worse, tokenizes differently."""
    names = {p.name for p in folder.iterdir()}
    missing = []
    if "tokenizer.json" not in names and not {"vocab.json", "merges.txt"} <= names:
        missing.append("tokenizer.json (or vocab.json + merges.txt)")
    if not names & {"preprocessor_config.json", "processor_config.json"}:
        missing.append("preprocessor_config.json")
    return missing


def load_transformers(path_or_name: str | os.PathLike[str], device: str = "cpu",
                      dtype: Any = None, family: str | None = None) -> TransformersBackend:
    """A model folder (or hub name when online) through the Auto classes, no remote code."""
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    device = check_device(device)
    dt = torch_dtype(dtype)
    where = str(path_or_name)
    local = Path(where).expanduser()
    if local.exists() and not (local / "config.json").is_file():
        raise ModelError(f"cannot load model {where!r}: no config.json in that folder")
    if local.is_dir() and (missing := missing_model_files(local)):
        raise ModelError(f"cannot load model {where!r}: no {' or '.join(missing)} in that folder")
    if local.is_dir() and family is None:  # the folder's own word on what it is, before transformers guesses
        try:
            declared = json.loads((local / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError) as exc:
            raise ModelError(f"cannot load model {where!r}: config.json is not a JSON object ({one_line(exc)})") from None
        if str(declared) not in FAMILY_OF_MODEL_TYPE:
            raise ModelError(f"cannot use model {where!r}: model_type {declared!r} in config.json is not "
                             "Qwen2.5-VL or Qwen3-VL")
    if not local.exists() and (os.sep in where.strip("/") or where.startswith((".", "/", "~"))):
        raise ModelError(f"cannot load model {where!r}: no such folder")
    try:
        config = AutoConfig.from_pretrained(where, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - missing folder, bad config, offline hub name
        raise ModelError(f"cannot load model {where!r}: {one_line(exc)}") from None
    model_type = getattr(config, "model_type", None)
    fam = family or FAMILY_OF_MODEL_TYPE.get(str(model_type))
    if fam not in FAMILY_OF_MODEL_TYPE.values():
        raise ModelError(
            f"cannot use model {where!r}: model_type {model_type!r} is not Qwen2.5-VL or Qwen3-VL"
        )
    try:
        model = AutoModelForImageTextToText.from_pretrained(where, dtype=dt, trust_remote_code=False)
        processor = AutoProcessor.from_pretrained(where, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - broken weights or processor files: bad input
        raise ModelError(f"cannot load model {where!r}: {one_line(exc)}") from None
    model.to(device).eval()
    backend = TransformersBackend(model, processor, fam, name=where, device=device)
    if local.is_dir():
        backend.scan_defaults = read_scan_config(local)
    return backend


def load_default(device: str = "cpu", dtype: Any = None) -> tuple[TransformersBackend, list[str]]:
    """The embedded default: grounder/default_model/ when shipped, else the tiny untrained model."""
    if (DEFAULT_MODEL_DIR / "config.json").is_file():
        return load_transformers(DEFAULT_MODEL_DIR, device, dtype), []
    from grounder.tiny import build_tiny

    model, processor = build_tiny("qwen2_5_vl", seed=0)
    dt = torch_dtype(dtype)
    if dt is not None:
        model.to(dt)
    model.to(device)
    backend = TransformersBackend(model, processor, "qwen2_5_vl", name="tiny-untrained", device=device)
    return backend, [UNTRAINED_WARNING]
