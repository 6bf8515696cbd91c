"""The QA answer step through an OpenAI-compatible server (vLLM, ...): `qa_model="openai:MODEL"`.

    ask("talk.mp4", "what colour ...?", options=[...], qa_model="openai:Qwen/Qwen2.5-VL-7B-Instruct")
    groundqa ask talk.mp4 "what colour ...?" --option red --option blue --qa-model openai:MODEL

The server is reached as the grounder's `openai` backend reaches it (`grounder.openai_backend`):
base URL from $OPENAI_BASE_URL (default http://127.0.0.1:8000/v1), key from $OPENAI_API_KEY,
per-request timeout, bounded retries, and a one-line `ModelError` for what still fails. The
server is checked once when the answerer is built (`GET /models`), so a wrong URL or a server
that is down fails before any grounding work. `openai:` with no name uses the server's first model.

What one QA call sends: the frames the transformers answerer would see (`sample_plan`, same
settings), as one user turn of (time text, image) parts, each frame preceded by its ABSOLUTE
time in the video (`"<12.5 seconds>"`, `time_label`) and encoded as a `data:image/jpeg;base64`
URI (`frame_uri`), then the text of `qa_prompt` (options as letters "(A) ..."), under the system
turn `QA_SYSTEM`. Greedy decoding, `max_tokens = qa_max_new_tokens`, `logprobs=True,
top_logprobs=20` (unless the backend has `logprobs=False`).

Reading the reply: `parse_choice` (letter, "(B)", "answer: B", option text). When nothing
parses, the fallback is the option letter with the highest probability at the first generated
token: the first token that is not blank or a lone "(" (replies written "(B) ..." put the letter
second), its returned top alternatives restricted to the option letters (a token counts as a
letter when, stripped of blanks and a leading "(", it is exactly that uppercase letter) and
renormalised. When the server returns no logprobs (`transformers serve` ignores the field), or
none of the alternatives there is an option letter, there is no choice: `choice=None`, the
answer is the raw reply and the reason says why (the graph adds it to the warnings).

Confidence: that letter distribution's probability of the chosen letter; 0.0 when it is unknown
(no logprobs, or no option letter at the decision token), as the transformers answerer does
when option letters are not single tokens. Open questions: exp(mean log-prob of the reply's
tokens), 0.0 without logprobs.

Cost: model_calls 1, frames sent, visual_tokens as the grounder's openai backend estimates them
(`usage.prompt_tokens` minus a cached text-only probe; 0 when the server reports no usage or
`visual_tokens="off"`), seconds (wall time of the step, frame decoding included).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent.answerer import (
    LETTERS,
    QA_SYSTEM,
    QAResult,
    parse_choice,
    qa_frames,
    qa_prompt,
    settle_choice,
)
from grounder.errors import ModelError
from grounder.openai_backend import OpenAIBackend, frame_uri, load_openai, time_label
from grounder.openai_backend import get_field as _field
from grounder.scan import Cost

PREFIX = "openai:"


def letter_probs(content: Sequence[Any] | None, n: int) -> np.ndarray | None:
    """P(option letter) over the first n letters at the first decision token, or None.

    `content` is `choices[0].logprobs.content`. The decision token is the first one that is not
    blank or a lone "("; its `top_logprobs` (or the token itself when none are given) are
    restricted to tokens that read as an option letter and renormalised.
    """
    if not content:
        return None
    pos = 0
    while pos < len(content) and str(_field(content[pos], "token", "") or "").strip() in ("", "("):
        pos += 1
    if pos >= len(content):
        return None
    alts = _field(content[pos], "top_logprobs") or [content[pos]]
    probs = np.zeros(n)
    seen: set[str] = set()
    for alt in alts:
        tok = str(_field(alt, "token", "") or "")
        lp = _field(alt, "logprob")
        if tok in seen or lp is None or not math.isfinite(float(lp)):
            continue
        seen.add(tok)
        s = tok.strip().removeprefix("(").strip()
        if len(s) == 1 and s in LETTERS[:n]:
            probs[LETTERS.index(s)] += math.exp(float(lp))
    total = float(probs.sum())
    return probs / total if total > 1e-12 else None


class OpenAIAnswerer:
    """A QA answerer calling an OpenAI-compatible server: `__call__(reader, ...)` like `Answerer`."""

    def __init__(self, backend: OpenAIBackend) -> None:
        self.backend = backend
        self.name = f"{PREFIX}{backend.model}"

    @classmethod
    def from_spec(cls, spec: str, **options: Any) -> OpenAIAnswerer:
        """`openai:MODEL` (or just MODEL); `options` go to `load_openai` (base_url, timeout, ...)."""
        name = spec.removeprefix(PREFIX).strip() or None
        return cls(load_openai(name, **options))

    def messages(self, frames: Sequence[np.ndarray], stamps: Sequence[float], prompt: str) -> list[dict[str, Any]]:
        b = self.backend
        parts: list[dict[str, Any]] = []
        for frame, t in zip(frames, stamps, strict=True):
            parts.append({"type": "text", "text": time_label(t)})
            parts.append({"type": "image_url", "image_url": {"url": frame_uri(frame, b.image_format, b.jpeg_quality)}})
        parts.append({"type": "text", "text": prompt})
        return [{"role": "system", "content": QA_SYSTEM}, {"role": "user", "content": parts}]

    def __call__(self, reader: Any, question: str, options: Sequence[str] | None,
                 segments: Sequence[dict[str, float]], history: Sequence[dict[str, Any]],
                 ctx: Any) -> QAResult:
        t0 = time.perf_counter()
        frames, stamps, desc = qa_frames(reader, segments, ctx)
        frame_times = [float(t) for t in np.asarray(stamps).tolist()]
        prompt = qa_prompt(question, options, desc, history)
        messages = self.messages(list(frames), frame_times, prompt)
        reply = self.backend.create(messages, ctx.qa_max_new_tokens, self.backend.logprobs)
        choices = _field(reply, "choices") or []
        if not choices:
            raise ModelError(f"OpenAI-compatible server at {self.backend.base_url} returned no choices")
        text = str(_field(_field(choices[0], "message"), "content") or "").strip()
        content = _field(_field(choices[0], "logprobs"), "content")
        visual = self.backend.estimate_visual_tokens(
            messages, _field(_field(reply, "usage"), "prompt_tokens"), len(frame_times))
        cost = Cost(model_calls=1, frames=len(frame_times), visual_tokens=int(visual),
                    seconds=time.perf_counter() - t0).to_dict()
        if options:
            choice, reason = parse_choice(text, options)
            probs = letter_probs(content, len(options))
            choice, reason, conf = settle_choice(
                choice, reason, probs,
                "no option letter among the first token's logprobs" if content
                else "the server returned no logprobs")
            answer = options[choice] if choice is not None else text
            return QAResult(answer, choice, conf, text, reason, frame_times, cost, prompt,
                            None if probs is None else [round(float(x), 4) for x in probs])
        logps = [float(lp) for lp in (_field(t, "logprob") for t in (content or []))
                 if lp is not None and math.isfinite(float(lp))]
        conf = math.exp(sum(logps) / len(logps)) if logps else 0.0
        return QAResult(text, None, conf, text, "open question", frame_times, cost, prompt)
