"""The graph's typed state. Everything in it is plain data (checkpointed by SQLite sessions).

Per-question fields are reset by `plan` (the first node of every question); `history` accumulates
over the questions of a session (reducer: list concatenation).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

# typing_extensions' TypedDict: pydantic (the LangGraph server's schemas) cannot read typing's on 3.11
from typing_extensions import TypedDict


class Turn(TypedDict):
    """One earlier question of the conversation and what was answered."""

    question: str
    options: list[str] | None
    answer: str
    choice: str | None
    segments: list[dict[str, float]]
    video: str
    queries: NotRequired[list[str]]  # the grounding queries it tried (a follow-up reuses the first)


class InputState(TypedDict):
    """One question: what a client sends."""

    video: str  # path of the video file (resolved by `plan`)
    question: str
    options: NotRequired[list[str] | None]  # multiple choice (>= 2), or none: an open question


class State(InputState, total=False):
    queries: list[str]  # grounding queries from `plan`, tried in order
    planner: str  # "rewrite" or the planner model's name (and why it fell back)
    rounds: list[dict[str, Any]]  # one per grounding round: query, budget, segments, cost, trace
    confidence: float  # best segment score so far (what `decide` compares)
    decision: str  # "answer" | "ground" (the last decision) and why, in `decision_reason`
    decision_reason: str
    result: dict[str, Any]  # the answer node's output (Answer fields, plain data)
    warnings: list[str]
    history: Annotated[list[Turn], operator.add]  # earlier questions in this session

