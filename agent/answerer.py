"""answer: a Qwen-VL model looks at frames from the selected segments and answers.

What the QA model sees (`qa_frame_times`): inside each of the best `qa_segments` segments
(grown by `segment_margin`), frames at `qa_fps` (denser than the grounder's coarse pass;
the rate drops so that all segments together give at most `qa_max_frames`), plus
`qa_global_frames` spread over the whole video for context. They are shown in time order as
one clip; the prompt names the moments they come from in absolute seconds, because the frames
are not evenly spaced (Qwen2.5-VL's MRoPE time assumes one sampling rate; Qwen3-VL writes each
pair's time into the prompt). Without segments (nothing found, or `strategy="uniform"`, the
no-grounding baseline) the frames are spread evenly over the whole video.

Multiple choice: options are listed as letters "(A) ...". The reply is parsed by
`parse_choice`: a letter on its own or in "(B)", "B.", "B)", "answer: B", "option B", else an
option's text quoted in the reply (longest match). When nothing parses, the documented
fallback is the letter with the highest probability at the first generated token (the same
`generate` call's logits, restricted to the option letters; no extra model call), and the
reason is recorded. The answer's confidence is that letter distribution's probability of the
chosen letter. Open questions: the reply text, confidence exp(mean log-prob of its tokens).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grounder.qa_inputs import LETTERS, QA_SYSTEM, qa_lead, qa_prompt, sample_plan
from grounder.scan import Cost


@dataclass
class QAResult:
    answer: str  # the option's text (multiple choice) or the reply
    choice: int | None  # 0-based option index, None for open questions / no choice
    confidence: float
    text: str  # raw model reply
    reason: str  # how the choice was read ("letter", "option text", "fallback: ...")
    frame_times: list[float]
    cost: dict[str, Any] = field(default_factory=dict)  # model_calls, frames, visual_tokens, seconds
    prompt: str = ""
    # multiple choice: the model's probability of each option (sums to 1), when it gives them
    option_scores: list[float] | None = None


def open_answer(text: str, segments: Sequence[dict[str, float]]) -> tuple[str, str | None]:
    """(answer, warning): an open question's reply as the answer when it says something (two
    words or more with letters); else a sentence that says the model gave no usable answer and
    where the found moment is, with a warning (a tiny model trained on multiple choice replies
    to an open question with a bare letter). Pure."""
    reply = " ".join(str(text).split())
    if len(re.findall(r"[A-Za-z]{2,}", reply)) >= 2:
        return reply, None
    where = (f"; the moment found for it is {segments[0]['start']:.1f}-{segments[0]['end']:.1f} s"
             if segments else "")
    said = f"it replied {reply!r}" if reply else "it replied nothing"
    return (f"No usable answer: the QA model cannot answer this open question ({said}){where}.",
            f"the QA model gave no usable answer to an open question ({said})")


def parse_choice(text: str, options: Sequence[str]) -> tuple[int | None, str]:
    """(0-based option index or None, how it was read). Never raises."""
    n = len(options)
    letters = LETTERS[:n]
    t = str(text).strip()
    pats = [
        rf"^\(?([{letters}])\)?(?:[\s.:,)]|$)",  # "B", "(B)", "B.", "B) circle"
        rf"(?:answer|option|choice)\s*(?:is|:)?\s*\(?([{letters}])\)?(?![A-Za-z])",
        rf"\(([{letters}])\)",
        rf"(?<![A-Za-z])([{letters}])(?![A-Za-z])",
    ]
    for k, pat in enumerate(pats):
        m = re.search(pat, t)
        if m:
            return letters.index(m.group(1)), "letter" if k < 3 else "lone letter"
    low = t.lower()
    # an option's text as whole words ("top" is not in "stopped"); the longest wins ("dark blue" over "blue")
    hits = [(len(o), i) for i, o in enumerate(options) if str(o).strip() and re.search(
        rf"(?<![0-9a-z]){re.escape(' '.join(str(o).lower().split()))}(?![0-9a-z])", low)]
    if hits:
        return max(hits)[1], "option text"
    return None, "no option letter or text in the reply"


def settle_choice(choice: int | None, reason: str, probs: Any, why_no_probs: str) -> tuple[int | None, str, float]:
    """The documented fallback shared by every answerer: when the reply names no option, take the
    most likely option letter at the first generated token (`probs`, one per option), else none.

    Returns (choice, reason, confidence = the chosen letter's probability, 0.0 when unknown).
    """
    if choice is None:
        if probs is not None:
            choice = int(np.argmax(probs))
            reason = f"fallback: most likely option letter at the first token ({reason})"
        else:
            reason = f"no choice: {reason}, and {why_no_probs}"
    conf = float(probs[choice]) if (probs is not None and choice is not None) else 0.0
    return choice, reason, conf


def qa_frames(reader: Any, segments: Sequence[dict[str, float]], ctx: Any) -> tuple[Any, Any, str]:
    """Decode the frames the QA model sees (see `sample_plan`): (frames, their times, where from)."""
    times, desc = sample_plan(float(reader.duration), segments, fps=ctx.qa_fps,
                              max_frames=ctx.qa_max_frames, global_frames=ctx.qa_global_frames,
                              margin=ctx.segment_margin)
    frames, stamps = reader.sample(times, max_pixels=ctx.qa_max_pixels)
    return frames, stamps, desc


class Answerer:
    """A Qwen-VL model (transformers) answering from frames: `__call__(reader, ...)`."""

    def __init__(self, model: Any, processor: Any, name: str = "model", device: str = "cpu") -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.name = name
        self.device = device
        self.video_token_id = int(model.config.video_token_id)
        self.domain: Any = None  # grounder.domain.Domain: the videos it knows (None: any)

    @classmethod
    def from_backend(cls, backend: Any) -> Answerer:
        """Share a grounder backend's model and processor (one copy in memory)."""
        return cls(backend.model, backend.processor, getattr(backend, "name", "model"),
                   getattr(backend, "device", "cpu"))

    def letter_ids(self, n: int) -> list[int] | None:
        ids = []
        for c in LETTERS[:n]:
            enc = self.tokenizer.encode(c, add_special_tokens=False)
            if not enc:
                return None
            ids.append(enc[0])
        return ids if len(set(ids)) == n else None

    def __call__(self, reader: Any, question: str, options: Sequence[str] | None,
                 segments: Sequence[dict[str, float]], history: Sequence[dict[str, Any]],
                 ctx: Any) -> QAResult:
        from grounder.qwen import build_video_inputs

        t0 = time.perf_counter()
        frames, stamps, desc = qa_frames(reader, segments, ctx)
        prompt = qa_prompt(question, options, desc, history)
        inputs = build_video_inputs(self.processor, frames, stamps, fps=float(reader.fps),
                                    prompt=prompt, system=QA_SYSTEM, lead=qa_lead(question))
        frame_times = [float(t) for t in np.asarray(stamps).tolist()]
        return self.reply(inputs, options, ctx.qa_max_new_tokens, prompt, frame_times, t0)

    def reply(self, inputs: Any, options: Sequence[str] | None, max_new_tokens: int, prompt: str,
              frame_times: Sequence[float], t0: float) -> QAResult:
        """Greedy generate on processor `inputs` (with or without a video), then read the choice
        (`parse_choice`, else the first token's letter distribution: `settle_choice`)."""
        import torch

        from grounder.qwen import to_model

        inputs = to_model(inputs, self.model, self.device)
        ids = inputs["input_ids"]
        prompt_len = int(ids.shape[1])
        visual = int((ids == self.video_token_id).sum())
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                      output_logits=True, return_dict_in_generate=True)
        gen = out.sequences[0, prompt_len:].tolist()
        text = self.tokenizer.decode(gen, skip_special_tokens=True).strip()
        cost = Cost(model_calls=1, frames=len(frame_times), visual_tokens=int(visual),
                    seconds=time.perf_counter() - t0).to_dict()
        frame_times = list(frame_times)
        if options:
            choice, reason = parse_choice(text, options)
            probs = None
            letter_ids = self.letter_ids(len(options))
            if letter_ids is not None and out.logits:
                p = torch.softmax(out.logits[0][0].float(), dim=-1)[letter_ids]
                probs = (p / p.sum()).cpu().numpy() if float(p.sum()) > 0 else None
            choice, reason, conf = settle_choice(choice, reason, probs,
                                                 "option letters are not single tokens")
            answer = options[choice] if choice is not None else text
            return QAResult(answer, choice, conf, text, reason, frame_times, cost, prompt,
                            None if probs is None else [round(float(x), 4) for x in probs])
        logps = [float(torch.log_softmax(lg[0].float(), -1)[tok]) for lg, tok in zip(out.logits, gen)]
        conf = math.exp(sum(logps) / len(logps)) if logps else 0.0
        return QAResult(text, None, conf, text, "open question", frame_times, cost, prompt)
