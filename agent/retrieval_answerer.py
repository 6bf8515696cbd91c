"""answer by matching: a clip-text dual encoder answers multiple-choice questions from the grounded moments.

Zero-shot multiple-choice video QA the way video-text models are evaluated (VideoCLIP, InternVideo):
each option is joined to the question as one claim (`grounder.retrieval.statement_text`: "what colour
is the shape that enters right after the red cross leaves blue"), every claim is scored against short
clips from the selected segments (grown by `segment_margin`, at `qa_fps`, at most `qa_max_frames`
clips), and the option whose claim some clip matches best wins. Its confidence is that option's
share of a softmax over the options' best log-odds. Without segments (the uniform baseline) the
clips are spread over the whole video, as the VLM answerer's frames would be.

Before matching, questions of the three forms a timeline reader handles ("from which side does X
enter", "what colour / shape enters right after X leaves", "... right after the scene turns Z";
`agent.question_forms`) are read clip by clip off the segments (`agent.timeline`), when the
retriever can locate things (ours); matching is the fallback when the reading finds nothing.

The embedded default answers this way with its retriever, whose "moment" head was trained on such
claims about the synthetic world (`trainer.embedder`, `answers: true` in its config.json); the tiny
VLM could not learn to answer within a CPU budget (BENCHMARKS.md). Open questions go to `fallback`
(a VLM `agent.answerer.Answerer`), and so does a text-only question (a matcher has nothing to match
without clips).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent.answerer import QAResult
from agent.question_forms import parse
from agent.timeline import TimelineReader
from grounder.odds import logit
from grounder.qa_inputs import sample_plan
from grounder.retrieval import DEFAULT_MAX_PIXELS, sample_clips, statement_text
from grounder.scan import Cost


class RetrievalAnswerer:
    """`__call__(reader, question, options, segments, history, ctx) -> QAResult`, like `Answerer`."""

    def __init__(self, embedder: Any, fallback: Any = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.embedder = embedder
        self.fallback = fallback
        # the "moment" head judges what happens (ours); a CLIP / SigLIP matches its one embedding
        self.moment = "moment" in getattr(embedder, "heads", ())
        self.max_pixels = max_pixels
        self.name = f"{getattr(embedder, 'name', 'retriever')} (statement matching)"
        self.domain: Any = None  # grounder.domain.Domain: the videos it knows (None: any)
        # reads "which side" / "what comes in right after" questions off the segments when it can
        self.timeline = TimelineReader(embedder, max_pixels=max_pixels) if TimelineReader.usable(embedder) else None
        self.reads_segments = self.timeline is not None  # the graph hands it `read_segments` of them

    def __call__(self, reader: Any, question: str, options: Sequence[str] | None,
                 segments: Sequence[dict[str, float]], history: Sequence[dict[str, Any]],
                 ctx: Any) -> QAResult:
        if not options:
            if self.fallback is None:
                return QAResult("", None, 0.0, "", "open question: a matcher needs options", [])
            return self.fallback(reader, question, options, segments, history, ctx)
        t0 = time.perf_counter()
        form = parse(question) if self.timeline is not None else None
        read_clips = 0  # a reading that finds nothing still cost its clips: they count below
        if form is not None and segments:
            handed = list(segments)[: max(1, int(getattr(ctx, "read_segments", len(segments))))]
            reading, read_clips = self.timeline.read(reader, form, options, handed)
            if reading is not None:
                seconds = time.perf_counter() - t0
                cost = Cost(frames=read_clips * len(self.embedder.clip_offsets), seconds=seconds,
                            embedder_frames=read_clips, embedder_seconds=seconds).to_dict()
                return QAResult(options[reading.choice], reading.choice, float(reading.strength), reading.note,
                                f"timeline reading of {len(handed)} segment(s): {reading.note}",
                                reading.frame_times, cost, prompt=question)
        segments = list(segments)[: max(0, int(getattr(ctx, "qa_segments", len(segments))))]
        times, desc = sample_plan(float(reader.duration), segments, fps=ctx.qa_fps,
                                  max_frames=ctx.qa_max_frames, global_frames=0,
                                  margin=ctx.segment_margin)
        clips, stamps = sample_clips(reader, times, self.embedder.clip_offsets, self.max_pixels)
        claims = [statement_text(question, o) for o in options]
        if self.moment:
            scores = self.embedder.moment(clips, claims)  # [options, clips], probabilities
            prob = best = scores.max(axis=1)
        else:
            scores = self.embedder.embed_text(claims) @ self.embedder.embed_frames(clips).T
            best = scores.max(axis=1)
            prob = self.embedder.presence(best)
        logits = logit(prob, eps=1e-9) if prob is not None else best * 100.0  # CLIP's usual temperature
        p = np.exp(logits - logits.max())
        p /= p.sum()
        choice = int(np.argmax(p))
        where = [float(stamps[int(np.argmax(row))]) for row in scores]
        text = "; ".join(f"({chr(65 + i)}) {float(prob[i] if prob is not None else best[i]):.3f} at {w:.1f} s"
                         for i, w in enumerate(where))
        clips_total = len(times) + read_clips
        seconds = time.perf_counter() - t0  # all of it is the embedder's
        cost = Cost(frames=clips_total * len(self.embedder.clip_offsets), seconds=seconds,
                    embedder_frames=clips_total, embedder_seconds=seconds).to_dict()
        return QAResult(options[choice], choice, float(p[choice]), text,
                        f"statement matching over {len(times)} clips from {desc}",
                        [float(t) for t in stamps], cost,
                        prompt=" | ".join(claims), option_scores=[round(float(x), 4) for x in p])


def answers_questions(embedder: Any) -> bool:
    """Was this retriever trained to answer multiple-choice claims (our dual encoder's `answers`)?"""
    model = getattr(embedder, "model", None)
    return bool(getattr(getattr(model, "cfg", None), "answers", False))


def answerer_for(grounder: Any) -> Any:
    """The QA model that goes with a grounder: its retriever's statement matching when that was
    trained to answer (the embedded default), with the grounder's VLM for open questions; else the
    VLM (`Answerer`). Either says so when a video is off what the grounder's model knows."""
    from agent.answerer import Answerer

    vlm = Answerer.from_backend(grounder.backend)
    retriever = getattr(grounder, "retriever", None)
    out: Any = vlm
    if retriever is not None and answers_questions(retriever.embedder):
        out = RetrievalAnswerer(retriever.embedder, fallback=vlm)
    out.domain = vlm.domain = getattr(grounder, "domain", None)
    return out


def load_answerer(qa_model: str, device: str = "cpu") -> Any:
    """The QA model a user names (`--qa-model`): "openai:NAME" (an OpenAI-compatible server,
    `agent.openai_answerer`), else a Qwen-VL folder or name, answered as `answerer_for` says (its
    own VLM; the embedded default's folder answers by timeline reading, then statement matching)."""
    if qa_model.startswith("openai:"):
        from agent.openai_answerer import OpenAIAnswerer

        return OpenAIAnswerer.from_spec(qa_model)  # a server that is down fails here
    from grounder.grounder import Grounder

    return answerer_for(Grounder.from_pretrained(qa_model, device=device, retriever="none"))
