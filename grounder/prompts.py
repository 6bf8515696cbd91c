"""The one grounding prompt: what the grounder asks, what the trainer trains on.

Both model families get the same text; only the video part of the chat differs (Qwen2.5-VL
carries time in MRoPE positions, Qwen3-VL as `<t seconds>` text before each frame pair, both
relative to the window start, see `grounder.qwen`). Times in the prompt and in the answer are
*window-relative* seconds: the model never sees where the clip sits in the video, so one model
serves every window length and position. The scan maps answers back to absolute time
(`grounder.scan.to_absolute`).

The user turn is `query_lead(query)`, then the video, then `grounding_prompt(query, length)`.
The trainer must build its inputs with exactly `SYSTEM_PROMPT`, `query_lead` and
`grounding_prompt`: a model trained on other words would answer these less well.
"""

from __future__ import annotations

SYSTEM_PROMPT = "You are a helpful assistant that finds when events happen in a video clip."

# The answer a model gives when the event is not in the clip; `answer_format.parse_answer`
# reports it as `says_absent` and the scan's confidence reads its first token ("not").
ABSENT_ANSWER = "not in this clip"


def clean_query(query: str) -> str:
    """One line, single spaces, no trailing '?' or '.' (the prompt adds its own punctuation)."""
    return " ".join(str(query).split()).rstrip(" ?.")


def query_lead(query: str) -> str:
    """The text placed *before* the video: the query, so that the visual tokens, which only see
    what comes before them (causal attention), can already be matched against it. The full
    prompt after the video repeats it with the instructions."""
    return f"Query: {clean_query(query)}."


def grounding_prompt(query: str, window_length: float) -> str:
    """The user turn that follows the video: clip length, query, and the answer format."""
    length = f"{max(float(window_length), 0.0):.1f}"
    return (
        f"The clip is {length} seconds long; times in it run from 0.0 to {length} seconds. "
        f"Find the moment that matches the query: {clean_query(query)}. "
        "Think step by step inside <think> </think>, marking the moments you check as "
        "<timestamp>S to E</timestamp>. "
        "Then give the start and end time in seconds with one decimal inside <answer> </answer>, "
        "for example <answer>3.5 to 7.0</answer>. "
        f"If the event does not happen in this clip, answer <answer>{ABSENT_ANSWER}</answer>."
    )
