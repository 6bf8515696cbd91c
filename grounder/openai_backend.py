"""The `openai` backend: any OpenAI-compatible chat-completions server (vLLM, transformers serve, ...).

This is how vLLM is used: vLLM pins its own torch / transformers, so it runs in its own
environment (`vllm serve Qwen/Qwen2.5-VL-7B-Instruct ...`, see README "Serving with vLLM or transformers serve") and
groundqa talks to it over HTTP:

    g = Grounder.from_pretrained("Qwen/Qwen2.5-VL-7B-Instruct", backend="openai",
                                 base_url="http://127.0.0.1:8000/v1")   # or $OPENAI_BASE_URL
    g.ground("talk.mp4", "when does the speaker show the chart")

What one call sends (`OpenAIBackend.messages`): the system turn `SYSTEM_PROMPT`, then one user
turn whose content is, for each frame, a text part with the frame's time relative to the window
start (`"<3.5 seconds>"`, the same window-relative times as the transformers backend) followed by
an `image_url` part holding the frame as a `data:image/jpeg;base64,...` URI (PNG with
`image_format="png"`), and last the text of `grounding_prompt(query, window_length)`. That form
(`video="images"`) is portable: every server that accepts images accepts it. Two video forms send
the window as one video, as the local backend does, so that the same weights give the same answer:

- `video="file"` (transformers serve): the window's frames are written, losslessly (PNG in a
  .mov), as a clip of n frames at n / window-length frames per second, and the request names its
  path (a server on this machine or on a shared folder reads it) with
  `chat_template_kwargs={"do_sample_frames": false}`: the server's processor then takes every
  frame, at i / rate seconds, which is how the local backend describes a window
  (`grounder.qwen.clip_metadata`). Tested against `transformers serve` on loopback.
- `video="vllm"`: one `video_url` part (`data:video/jpeg;base64,<jpeg>,<jpeg>,...`) with the
  sampling rate in `mm_processor_kwargs` (vLLM's dialect; not exercised by our tests).

`video="auto"` (the default) picks from the model listing: vLLM's (`owned_by: vllm`) -> "vllm";
transformers serve's (entries with a `status`) on a loopback address -> "file"; else "images".

Decoding is greedy (`temperature=0`), `max_tokens = request.max_new_tokens`.

Confidence: the request asks for `logprobs=True, top_logprobs=20`. When the reply carries them,
the confidence is the transformers backend's P(time) / (P(time) + P(absent)) at the first
non-blank token after `<answer>`, times 1 - P(absent) at the first non-blank token after
`<think>` (as there), computed over the returned top-20 alternatives (mass outside the top 20
is unknown and left out). When the server returns no logprobs (transformers serve
ignores the field), when `<answer>` was not written, or when the tag and the answer share one
token, the confidence is None and the scan's documented fallback applies (`scan.step_score`:
0.5 for a parsed span, 0 for "not in this clip" or unusable text); a reply without logprobs is
marked (`ModelReply.unmeasured`), and the result then says so (a warning, and each step's
`score_from` is "fallback"). A server cannot force the
answer the way `ForceAnswer` does, so a reasoning that runs past `max_tokens` gives no span.

Visual tokens (`visual_tokens="auto"`, the default): where the model's processor files are
here (the model is named by its folder, or it is in the Hugging Face cache), the video pad tokens
of the same inputs counted by that processor, exactly as the local backend counts them: no extra
request, and `usage.prompt_tokens` is kept beside them (`ModelReply.prompt_tokens`). Otherwise
(`"probe"`): `usage.prompt_tokens` minus the prompt tokens of the same request without its
images, measured once per distinct text with a one-token text-only request and cached, minus the
two vision start/end markers per image; approximate (without the images the text parts tokenize
differently at their joins, about one token per image with Qwen tokenizers), and it costs those
extra requests. `visual_tokens="off"` (or a server that reports no usage) gives 0.

Errors: each request has a timeout (`timeout`, seconds) and the openai client retries
connection errors, 408/409/429 and 5xx a bounded number of times (`max_retries`). What still
fails becomes a one-line `ModelError` (server unreachable, HTTP error with the server's message,
empty reply). `from_pretrained` checks the server once (`GET /models`) so a wrong URL or a model
name the server does not list fails at load time; with no model name the server's first model is
used.

Reasoning: a server with a reasoning parser returns the `<think>` part as `reasoning_content`;
`reply_text` puts it back in front of `content`, so its timestamp anchors still aim the zooms.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
import tempfile
import uuid
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from grounder.backends import (
    ANSWER_TAG,
    THINK_TAG,
    ModelReply,
    ModelRequest,
    combine_confidence,
    token_class,
    window_inputs,
)
from grounder.budget import read_scan_config
from grounder.errors import InputError, ModelError, one_line
from grounder.prompts import SYSTEM_PROMPT, grounding_prompt, query_lead

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
TOP_LOGPROBS = 20
# Tokens a Qwen-VL chat template adds per image besides its pad tokens (vision start / end).
MARKERS_PER_IMAGE = 2




def _status_message(exc: Any) -> str:
    """The server's own error message (OpenAI / vLLM / FastAPI bodies), on one line."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        for key in ("message", "detail"):
            if inner.get(key):
                return one_line(Exception(str(inner[key])))
    return one_line(exc)


def frame_uri(frame: np.ndarray, image_format: str = "jpeg", quality: int = 90) -> str:
    """A uint8 [H, W, 3] frame as a `data:image/...;base64,` URI."""
    from PIL import Image

    buf = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
    if image_format == "png":
        image.save(buf, format="PNG")
    else:
        image.save(buf, format="JPEG", quality=quality)
    return f"data:image/{image_format};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


VIDEO_FORMS = ("auto", "images", "file", "vllm")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
SILENCE_RATE = 8000  # Hz of a clip's silent audio track (see write_clip)


def write_clip(frames: np.ndarray, rate: float, path: Path) -> Path:
    """The frames as a lossless clip (PNG frames in a .mov) at `rate` frames per second, frame i
    at i / rate: what a server's video processor decodes back to the same pixels and times.
    It carries a silent audio track: transformers serve (5.25) loads the audio of every video
    sent to a model it files as multimodal, Qwen-VL among them, and answers HTTP 400 for a
    clip without one. Written beside its final name, then renamed (a reader never sees half a
    file)."""
    import av

    frames = np.asarray(frames, dtype=np.uint8)
    if len(frames) == 1:  # Qwen3-VL needs a pair of frames (as grounder.qwen does locally)
        frames = np.concatenate([frames, frames])
    part = path.with_name(path.stem + ".part.mov")
    with av.open(str(part), "w", format="mov") as container:
        stream = container.add_stream("png", rate=Fraction(rate).limit_denominator(1_000_000))
        stream.height, stream.width = int(frames.shape[1]), int(frames.shape[2])
        stream.pix_fmt = "rgb24"
        sound = container.add_stream("pcm_s16le", rate=SILENCE_RATE)
        sound.layout = "mono"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        silence = av.AudioFrame.from_ndarray(
            np.zeros((1, max(1, round(len(frames) / rate * SILENCE_RATE))), np.int16), format="s16", layout="mono")
        silence.sample_rate = SILENCE_RATE
        for packet in [*sound.encode(silence), *sound.encode()]:
            container.mux(packet)
    part.replace(path)
    return path


def time_label(seconds: float) -> str:
    """The text part before a frame: its window-relative time, e.g. '<3.5 seconds>'."""
    return f"<{max(float(seconds), 0.0):.1f} seconds>"


def reply_text(content: Any, reasoning: Any) -> str:
    """The reply as the model wrote it. A server with a reasoning parser (vLLM's
    `--reasoning-parser`, and servers that copy it) moves the `<think>...</think>` part out of
    `content` into `reasoning_content`; the timestamp anchors there aim the scan's zooms, so it is
    put back in front, as the model wrote it."""
    text = str(content or "")
    if reasoning and THINK_TAG not in text:
        text = f"{THINK_TAG}{reasoning}</think>{text}"
    return text


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


get_field = _field  # public: agent.openai_answerer reads replies with it


def logprob_confidence(content: Sequence[Any] | None) -> float | None:
    """P(time) / (P(time) + P(absent)) at the first non-blank token after `<answer>`.

    `content` is `choices[0].logprobs.content`: per generated token its `token` text and
    `top_logprobs` (list of `{token, logprob}`). Time tokens start with a digit; absent tokens
    are prefixes of "not in this clip" or start with "not" (as in `TransformersBackend`).
    None when there are no logprobs, no `<answer>`, or the tag and the answer share a token.
    """
    if not content:
        return None
    tokens = [str(_field(t, "token", "") or "") for t in content]
    text = ""
    pos = -1
    for k, tok in enumerate(tokens):
        text += tok
        at = text.find(ANSWER_TAG)
        if at >= 0:
            if text[at + len(ANSWER_TAG):].strip():
                # The answer's first characters share the tag's token: no clean decision point.
                return None
            pos = k + 1
            break
    if pos < 0:
        return None
    while pos < len(tokens) and not tokens[pos].strip():
        pos += 1  # a blank token before the answer: the decision comes next
    if pos >= len(tokens):
        return None
    p_time, p_absent = _class_mass(content[pos])
    text, think = "", -1
    for k, tok in enumerate(tokens[:pos]):
        text += tok
        at = text.find(THINK_TAG)
        if at >= 0:
            think = k + 1 if not text[at + len(THINK_TAG):].strip() else -1
            break
    while 0 <= think < pos and not tokens[think].strip():
        think += 1
    early_absent = _class_mass(content[think])[1] if 0 <= think < pos else None
    return combine_confidence(p_time, p_absent, early_absent)


def _class_mass(entry: Any) -> tuple[float, float]:
    """(P(time), P(absent)) over one generated token's returned alternatives."""
    alts = _field(entry, "top_logprobs") or []
    if not alts:  # no alternatives returned: only the chosen token is known
        alts = [entry]
    p_time = p_absent = 0.0
    seen: set[str] = set()
    for alt in alts:
        tok = str(_field(alt, "token", "") or "")
        if tok in seen:
            continue
        seen.add(tok)
        lp = _field(alt, "logprob")
        if lp is None or not math.isfinite(float(lp)):
            continue
        kind = token_class(tok)
        if kind == "time":
            p_time += math.exp(float(lp))
        elif kind == "absent":
            p_absent += math.exp(float(lp))
    return p_time, min(p_absent, 1.0)


class OpenAIBackend:
    """A grounder backend that calls an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, max_retries: int = 2, video: str | bool = "auto",
                 image_format: str = "jpeg", jpeg_quality: int = 90, logprobs: bool = True,
                 visual_tokens: str = "auto", clip_dir: str | os.PathLike[str] | None = None,
                 client: Any = None) -> None:
        if image_format not in ("jpeg", "png"):
            raise InputError(f"image_format must be 'jpeg' or 'png', got {image_format!r}")
        video = {True: "vllm", False: "images"}.get(video, video) if isinstance(video, bool) else video
        if video not in VIDEO_FORMS:
            raise InputError(f"video must be one of {', '.join(VIDEO_FORMS)}, got {video!r}")
        if visual_tokens not in ("auto", "probe", "off"):
            raise InputError(f"visual_tokens must be 'auto', 'probe' or 'off', got {visual_tokens!r}")
        if not timeout > 0 or int(max_retries) < 0:
            raise InputError("timeout must be > 0 and max_retries >= 0")
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.video = video  # "auto" is settled by load_openai from the server's model listing
        self.image_format = image_format
        self.jpeg_quality = int(jpeg_quality)
        self.logprobs = bool(logprobs)
        self.visual_tokens_mode = visual_tokens
        self.clip_dir = Path(clip_dir) if clip_dir is not None else None
        self.processor: Any = None  # the model's processor when its files are here (visual tokens)
        self.scan_defaults: dict[str, Any] = {}  # the model folder's scan_config.json, when found
        self._text_tokens: dict[str, int | None] = {}
        if client is None:
            try:
                import openai
            except ImportError:  # the serve extra brings it
                raise ModelError("the openai backend needs the openai package: pip install 'groundqa[serve]'") from None
            client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key,
                                   timeout=self.timeout, max_retries=self.max_retries)
        self.client = client
        self.model = model
        self.name = model

    @property
    def form(self) -> str:
        """The form windows are sent in ("auto" before the server was asked means images)."""
        return "images" if self.video == "auto" else self.video

    # -- the request ----------------------------------------------------------------
    def content(self, request: ModelRequest, clip: str | None = None) -> list[dict[str, Any]]:
        """The user turn's content parts: the query, the window (as `form` says), the prompt.
        `clip`: the path of the window's clip file (`video="file"`)."""
        rel = np.asarray(request.timestamps, dtype=np.float64) - request.window_start
        parts: list[dict[str, Any]] = [{"type": "text", "text": query_lead(request.query)}]
        if self.form == "file":
            if clip is None:
                raise ValueError("the file form needs the window's clip path")
            parts.append({"type": "video_url", "video_url": {"url": clip}})
        elif self.form == "vllm":
            jpegs = [frame_uri(f, "jpeg", self.jpeg_quality).split(",", 1)[1] for f in request.frames]
            parts.append({"type": "video_url",
                          "video_url": {"url": "data:video/jpeg;base64," + ",".join(jpegs)}})
        else:
            for frame, t in zip(request.frames, rel, strict=True):
                parts.append({"type": "text", "text": time_label(t)})
                parts.append({"type": "image_url", "image_url": {
                    "url": frame_uri(frame, self.image_format, self.jpeg_quality)}})
        parts.append({"type": "text", "text": grounding_prompt(request.query, request.window_length)})
        return parts

    def messages(self, request: ModelRequest, clip: str | None = None) -> list[dict[str, Any]]:
        return [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": self.content(request, clip)}]

    def _create(self, messages: list[dict[str, Any]], max_tokens: int, logprobs: bool,
                extra_body: dict[str, Any] | None = None) -> Any:
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "messages": messages,
                                  "max_tokens": int(max_tokens), "temperature": 0.0}
        if logprobs:
            kwargs.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        if extra_body:
            kwargs["extra_body"] = extra_body
        try:
            return self.client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            message = _status_message(exc)
            raise ModelError(f"OpenAI-compatible server at {self.base_url} returned HTTP "
                             f"{exc.status_code} for model {self.model!r}: {message}") from None
        except openai.APITimeoutError:
            raise ModelError(f"OpenAI-compatible server at {self.base_url} did not answer within "
                             f"{self.timeout:g} s ({self.max_retries} retries)") from None
        except openai.APIConnectionError as exc:
            raise ModelError(f"cannot reach the OpenAI-compatible server at {self.base_url}: "
                             f"{one_line(exc.__cause__ or exc)}") from None
        except openai.OpenAIError as exc:
            raise ModelError(f"OpenAI-compatible server at {self.base_url}: {one_line(exc)}") from None

    create = _create  # public: agent.openai_answerer sends its QA requests through it

    def _clip_path(self) -> Path:
        if self.clip_dir is None:  # our own temp folder, removed with the backend (or at exit)
            self._clip_tmp = tempfile.TemporaryDirectory(prefix="groundqa-clips-")
            self.clip_dir = Path(self._clip_tmp.name)
        self.clip_dir.mkdir(parents=True, exist_ok=True)
        return self.clip_dir / f"{uuid.uuid4().hex}.mov"

    def __call__(self, request: ModelRequest) -> ModelReply:
        length = request.window_length
        clip = None
        extra: dict[str, Any] | None = None
        if self.form == "file":
            if not length > 0:
                raise ModelError("a window of zero length cannot be sent as a clip")
            clip = write_clip(request.frames, len(request.frames) / length, self._clip_path())
            # every frame of the clip, at i / rate: the local backend's description of a window
            extra = {"chat_template_kwargs": {"do_sample_frames": False}}
        elif self.form == "vllm" and len(request.timestamps) and length > 0:
            extra = {"mm_processor_kwargs": {"fps": len(request.timestamps) / length}}
        messages = self.messages(request, None if clip is None else str(clip))
        try:
            reply = self._create(messages, request.max_new_tokens, self.logprobs, extra)
        finally:
            if clip is not None:
                clip.unlink(missing_ok=True)
        choices = _field(reply, "choices") or []
        if not choices:
            raise ModelError(f"OpenAI-compatible server at {self.base_url} returned no choices")
        choice = choices[0]
        message = _field(choice, "message")
        text = reply_text(_field(message, "content"),
                          _field(message, "reasoning_content") or _field(message, "reasoning"))
        logprobs = _field(choice, "logprobs")
        content = _field(logprobs, "content") if logprobs else None
        confidence = logprob_confidence(content) if content else None
        # asked for logprobs, got none (transformers serve ignores the field): say so, do not pretend
        unmeasured = "the server returned no token logprobs" if self.logprobs and not content else None
        prompt_tokens = _field(_field(reply, "usage"), "prompt_tokens")
        return ModelReply(text=str(text), confidence=confidence,
                          visual_tokens=self._visual_tokens(messages, prompt_tokens, len(request.frames), request),
                          unmeasured=unmeasured,
                          prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else None)

    # -- cost ---------------------------------------------------------------------------
    def _visual_tokens(self, messages: list[dict[str, Any]], prompt_tokens: Any, n_images: int,
                       request: ModelRequest | None = None) -> int:
        if self.visual_tokens_mode == "off":
            return 0
        if (self.visual_tokens_mode == "auto" and self.processor is not None and request is not None
                and self.form != "images"):
            return self._counted_visual_tokens(request)
        if not isinstance(prompt_tokens, int):
            return 0
        text_only = [
            {"role": m["role"], "content": m["content"] if isinstance(m["content"], str) else
             "".join(p["text"] for p in m["content"] if p.get("type") == "text")}
            for m in messages
        ]
        key = repr(text_only)
        if key not in self._text_tokens:
            try:
                probe = self._create(text_only, 1, logprobs=False)
                n = _field(_field(probe, "usage"), "prompt_tokens")
                self._text_tokens[key] = n if isinstance(n, int) else None
            except ModelError:
                self._text_tokens[key] = None
        text_tokens = self._text_tokens[key]
        if text_tokens is None:
            return 0
        markers = 0 if self.form != "images" else MARKERS_PER_IMAGE * n_images
        return max(0, prompt_tokens - text_tokens - markers)

    def _counted_visual_tokens(self, request: ModelRequest) -> int:
        """The video pad tokens of this window's inputs, counted by the model's own processor as
        the local backend counts them (no request)."""
        inputs = window_inputs(self.processor, request)
        pad = self.processor.tokenizer.convert_tokens_to_ids(self.processor.video_token)
        return int((inputs["input_ids"] == pad).sum())

    estimate_visual_tokens = _visual_tokens  # public: agent.openai_answerer's cost

    # -- loading ------------------------------------------------------------------------
    def served_models(self) -> list[str]:
        """Model ids the server lists (`GET /models`); ModelError when it cannot be reached."""
        return [str(_field(m, "id")) for m in self.model_listing()]

    def model_listing(self) -> list[Any]:
        """The server's model entries (`GET /models`) as it gives them; ModelError when it
        cannot be reached or answers with an HTTP error."""
        import openai

        try:
            return list(self.client.models.list())
        except openai.APIStatusError as exc:
            err = ModelError(f"OpenAI-compatible server at {self.base_url} returned HTTP "
                             f"{exc.status_code} listing models: {_status_message(exc)}")
            err.http_status = exc.status_code  # it answered: load_openai may go on with a named model
            raise err from None
        except openai.APIConnectionError as exc:
            raise ModelError(f"cannot reach the OpenAI-compatible server at {self.base_url}: "
                             f"{one_line(exc.__cause__ or exc)}") from None


def dialect_form(entries: Sequence[Any], base_url: str) -> str:
    """The video form a server takes, from its model listing (see the module docstring)."""
    def extra(entry: Any, name: str) -> Any:
        value = _field(entry, name)
        if value is None and getattr(entry, "model_extra", None):
            value = entry.model_extra.get(name)
        return value

    if any(str(extra(e, "owned_by") or "").lower() == "vllm" for e in entries):
        return "vllm"
    host = (urlparse(base_url).hostname or "").lower()
    if any(extra(e, "status") is not None for e in entries) and host in LOOPBACK:
        return "file"  # transformers serve, on this machine: it can read our clip files
    return "images"


def model_files(name: str) -> Path | None:
    """The folder holding the served model's files here: the name itself when it is a folder,
    else its snapshot in the Hugging Face cache (never downloaded)."""
    local = Path(name).expanduser()
    if local.is_dir():
        return local
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(name, "config.json")
    except (ImportError, ValueError, OSError):  # not a repo id, no cache: nothing here
        return None
    return Path(hit).parent if isinstance(hit, str) else None


def load_openai(path_or_name: str | os.PathLike[str] | None = None, device: str = "cpu",
                dtype: Any = None, family: str | None = None, *, base_url: str | None = None,
                api_key: str | None = None, check: bool = True, **options: Any) -> OpenAIBackend:
    """`BACKENDS["openai"]`: the served model `path_or_name` (None: the server's first model).

    `device`, `dtype` and `family` belong to the server and are ignored here. `options`:
    `timeout`, `max_retries`, `video`, `image_format`, `jpeg_quality`, `logprobs`,
    `visual_tokens`, `clip_dir` (see `OpenAIBackend`). `check=True` lists the server's models
    once, so an unreachable server, or a model name it does not list, fails here with a one-line
    `ModelError`, before any video is decoded (a server that answers the listing with an HTTP
    error gets a warning: it may still serve the named model). The listing also settles
    `video="auto"`. Where the model's files are here (its folder, or the Hugging Face cache), its
    `scan_config.json` gives the scan's defaults, as with the local backend, and its processor
    counts visual tokens.
    """
    del device, dtype, family
    name = None if path_or_name is None else str(path_or_name)
    backend = OpenAIBackend(name or "", base_url=base_url, api_key=api_key, **options)
    if check or name is None:
        try:
            entries = backend.model_listing()
        except ModelError as exc:
            # a server that cannot list its models (transformers serve without a hub cache answers
            # 500) can still serve the one named: go on, the first request will tell. Unreachable
            # servers, and servers that cannot say which model to use, stay fatal.
            if name is None or getattr(exc, "http_status", None) is None:
                raise
            log.warning("%s; going on with the model named, %s", exc, name)
            entries = None
        if entries is not None:
            served = [str(_field(e, "id")) for e in entries]
            if name is None:
                if not served:
                    raise ModelError(f"OpenAI-compatible server at {backend.base_url} lists no models; pass --model")
                backend.model = backend.name = served[0]
            elif name not in served:
                listed = ", ".join(served[:10]) + (" ..." if len(served) > 10 else "")
                raise ModelError(f"OpenAI-compatible server at {backend.base_url} does not serve {name!r} "
                                 f"(it lists: {listed or 'nothing'})")
            if backend.video == "auto":
                backend.video = dialect_form(entries, backend.base_url)
    files = model_files(backend.model) if backend.model else None
    if files is not None:
        backend.scan_defaults = read_scan_config(files)
        if backend.visual_tokens_mode == "auto" and backend.form != "images":
            backend.processor = _processor(files)
    return backend


def _processor(folder: Path) -> Any:
    """The model's processor from its folder, or None (then visual tokens are probed)."""
    try:
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(folder)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # no processor files: count another way
        log.info("no processor in %s (%s): visual tokens from the server's usage", folder, one_line(exc))
        return None
