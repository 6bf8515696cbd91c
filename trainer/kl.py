"""Token-aware KL (LongVTG-R1): relax the KL penalty on the tokens that write timestamps.

The reference model is a poor judge of *numbers*: holding the policy close to it on digit
tokens slows down learning where the reward lives. So each completion token gets a KL weight:
`beta_time` on timestamp tokens and `beta` elsewhere.

A timestamp token is one whose text (stripped of whitespace) is only digits, '.' or ':' and
that lies inside an `<answer>` or `<timestamp>` tag; a '.' or ':' without digits counts only
between two such tokens with digits (the point of "12.5", the colon of "00:12"; not the full stop
after "30.0."). The tags are found in the text and
tokens are matched by their character offsets, so this works for any fast tokenizer.
With `scope="anywhere"` every such numeric token counts, tags or not.
"""

from __future__ import annotations

import re
from typing import Literal

_TIME_CHARS = set("0123456789.:")
# An unclosed tag (truncated generation) runs to the end of the text.
_TAG_BODY = re.compile(r"<(answer|timestamp)>(.*?)(?:</\1>|$)", re.DOTALL)

Scope = Literal["tags", "anywhere"]


def _is_time_text(piece: str) -> bool:
    piece = piece.strip()
    return bool(piece) and set(piece) <= _TIME_CHARS


def tag_regions(text: str) -> list[tuple[int, int]]:
    """Character ranges of the bodies of `<answer>` and `<timestamp>` tags."""
    return [(m.start(2), m.end(2)) for m in _TAG_BODY.finditer(text)]


def _mask(text: str, spans: list[tuple[int, int]], scope: Scope) -> list[bool]:
    """The rule of the module docstring over tokens at character `spans` of `text`."""
    regions = tag_regions(text) if scope == "tags" else [(0, len(text))]
    timely = [any(rs <= a and b <= re_ for rs, re_ in regions) and b > a and _is_time_text(text[a:b])
              for a, b in spans]
    digits = [t and any(c.isdigit() for c in text[a:b]) for t, (a, b) in zip(timely, spans)]
    return [d or (t and 0 < i < len(spans) - 1 and digits[i - 1] and digits[i + 1])
            for i, (t, d) in enumerate(zip(timely, digits))]


def timestamp_token_mask(tokenizer, text: str, scope: Scope = "tags") -> list[bool]:
    """One bool per token of `tokenizer(text, add_special_tokens=False)`: True on timestamp tokens."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return _mask(text, [(int(a), int(b)) for a, b in enc["offset_mapping"]], scope)


def kl_weights(mask: list[bool], beta: float, beta_time: float = 0.0) -> list[float]:
    """Per-token KL coefficient: `beta_time` where the mask is True, `beta` elsewhere."""
    return [beta_time if m else beta for m in mask]


def timestamp_token_mask_ids(tokenizer, ids, scope: Scope = "tags") -> list[bool]:
    """`timestamp_token_mask` for token ids as generated (no re-tokenisation of the text).

    Each token is decoded on its own and the pieces are concatenated, so the character offsets
    are those of the generated tokens; the tag and digit rules are the same as for text.
    """
    pieces = [tokenizer.decode([int(i)], skip_special_tokens=False) for i in ids]
    spans, pos = [], 0
    for piece in pieces:
        spans.append((pos, pos + len(piece)))
        pos += len(piece)
    return _mask("".join(pieces), spans, scope)
