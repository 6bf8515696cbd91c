"""Statement matching: a dual encoder answers multiple-choice questions from the grounded moments
(agent.retrieval_answerer), with a VLM for open questions; which answerer goes with which grounder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.answerer import Answerer
from agent.context import Context
from agent.retrieval_answerer import RetrievalAnswerer, answerer_for, answers_questions
from grounder.embedders import DualEncoderEmbedder
from grounder.grounder import Grounder
from grounder.retrieval import sample_clips, statement_text
from grounder.video import shared_reader


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    import torch

    from grounder.dual_encoder import DualEncoder, DualEncoderConfig
    from trainer.embedder import default_tokenizer

    tok = default_tokenizer()
    torch.manual_seed(0)
    folder = DualEncoder(DualEncoderConfig(channels=[8, 8, 16, 16], embed_dim=16, text_hidden=16, text_layers=1,
                                           text_heads=2, vocab_size=tok.get_vocab_size(), answers=True),
                         tok).save_pretrained(tmp_path_factory.mktemp("answering_retriever"))
    return DualEncoderEmbedder.load(folder)


@pytest.fixture(scope="module")
def row_and_reader(synth_world):
    ann = synth_world(1, 2, 7)
    rows = [json.loads(line) for line in ann.read_text().splitlines()]
    row = next(r for r in rows if r["kind"] == "qa")
    return row, shared_reader(ann.parent / row["video"])


def test_options_are_ranked_by_their_best_matching_clip(embedder, row_and_reader):
    row, reader = row_and_reader
    s, e = row["spans"][0]
    ctx = Context(segment_margin=1.0)
    qa = RetrievalAnswerer(embedder)(reader, row["question"], row["options"],
                                     [{"start": s, "end": e, "score": 0.9}], [], ctx)
    claims = [statement_text(row["question"], o) for o in row["options"]]
    assert qa.prompt == " | ".join(claims)
    assert all(s - 1.0 <= t <= e + 1.0 for t in qa.frame_times)  # clips from the moment only
    clips, _ = sample_clips(reader, qa.frame_times, embedder.clip_offsets, None)
    best = embedder.moment(clips, claims).max(axis=1)  # what the answer must be: the best claim
    assert qa.choice == int(np.argmax(best)) and qa.answer == row["options"][qa.choice]
    assert 1 / len(row["options"]) <= qa.confidence <= 1.0
    assert qa.cost["model_calls"] == 0 and qa.cost["embedder_frames"] == len(qa.frame_times)
    assert "statement matching" in qa.reason


def test_open_questions_go_to_the_fallback(embedder, row_and_reader):
    _, reader = row_and_reader

    class Fallback:
        def __call__(self, *args):
            self.args = args
            return "vlm answer"

    fb = Fallback()
    assert RetrievalAnswerer(embedder, fallback=fb)(reader, "what happens?", None, [], [], Context()) == "vlm answer"
    alone = RetrievalAnswerer(embedder)(reader, "what happens?", None, [], [], Context())
    assert alone.choice is None and "needs options" in alone.reason


def test_the_grounder_decides_the_answerer(embedder):
    from grounder.backends import TransformersBackend
    from grounder.retrieval import Retriever
    from grounder.tiny import build_tiny

    model, processor = build_tiny("qwen3_vl", seed=0)
    backend = TransformersBackend(model, processor, "qwen3_vl")
    assert answers_questions(embedder)
    matcher = answerer_for(Grounder(backend, retriever=Retriever(embedder)))
    assert isinstance(matcher, RetrievalAnswerer) and isinstance(matcher.fallback, Answerer)
    assert isinstance(answerer_for(Grounder(backend)), Answerer)  # no retriever: the VLM answers
