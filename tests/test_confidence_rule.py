"""The grounding confidence rule (pure; grounder.backends), one home for the local and server backends."""

from __future__ import annotations

import math

import pytest

from grounder.backends import combine_confidence, token_class
from grounder.openai_backend import logprob_confidence


def test_token_classes():
    assert token_class("3") == "time" and token_class(" 12.5") == "time"
    assert token_class("not") == "absent" and token_class(" no") == "absent"  # a prefix of "not in this clip"
    assert token_class("nothing") == "absent"
    assert token_class("the") is None and token_class(" ") is None and token_class("") is None


def test_combine():
    assert combine_confidence(0.6, 0.3) == pytest.approx(2 / 3)
    assert combine_confidence(0.6, 0.3, p_absent_early=0.25) == pytest.approx(2 / 3 * 0.75)
    assert combine_confidence(0.0, 0.0) == 0.0


def test_the_server_backend_follows_the_same_rule():
    tok = [{"token": t, "logprob": 0.0, "top_logprobs": []} for t in ("<think>", "ok", "</think>", "<answer>")]
    first = {"token": "3", "logprob": math.log(0.6),
             "top_logprobs": [{"token": "3", "logprob": math.log(0.6)}, {"token": "not", "logprob": math.log(0.3)},
                              {"token": "x", "logprob": math.log(0.1)}]}
    early = {"token": "ok", "logprob": math.log(0.8),
             "top_logprobs": [{"token": "ok", "logprob": math.log(0.8)}, {"token": "not", "logprob": math.log(0.2)}]}
    content = [tok[0], early, tok[2], tok[3], first]
    assert logprob_confidence(content) == pytest.approx(combine_confidence(0.6, 0.3, 0.2))
