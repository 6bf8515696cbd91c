"""Query binding: a dense auxiliary SFT loss that asks the language model *which frames show the
object the query names*.

The answer loss gives one decision per window ("It is at ..." vs "Not here."), and a tiny model
trained on it learns the format and the window-position prior long before it learns to look for
the named object (BENCHMARKS.md: flat coarse confidences, the same windows chosen for every
query). Here every temporal group of frames (the unit with one timestamp in Qwen3-VL's prompt)
gets a label, "the named object is on screen in these frames", read by a linear head from the
language model's last hidden states at that group's video tokens (max over the group). The
query comes before the video (`grounder.prompts.query_lead`), so those states can see it.

Labels come from the synthetic world's timelines (`specs/*.json` beside the videos, read with
`trainer.vision_pretrain.read_timeline`) and the row's `event.target`; rows whose query does not
name the target object (`after_*` events: "the next shape ...") and rows of other datasets get
no label and no binding loss.

`attention_loss` supervises the next hop: the position that decides the answer's first word
("<think>Not here." vs "<think>It is at ...") should attend, in the layer after the one the
binding head reads, to the frame groups that show the named object. Without it the per-group
head learned to bind while the answer did not follow (BENCHMARKS.md, "Embedded default model").

`span_attention_loss` does the same for the two positions that write the span's numbers (the
"<timestamp>" token before the start, the space before the end): each attends, in that layer, to
the frame group of the first (last) frame inside the target span, the one whose time it writes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from grounder.errors import InputError
from trainer.attention_rows import rows_of
from trainer.vision_pretrain import (
    Timeline,
    colour_of,
    on_screen,
    read_timeline,
    shape_of,
    spec_path,
    track_box,
)


@lru_cache(maxsize=256)
def timeline_of(spec: str) -> Timeline | None:
    """The world timeline in a spec file, cached; None when there is none (another dataset)."""
    try:
        return read_timeline(spec)
    except InputError:  # no spec (another dataset): the sample simply has no binding loss
        return None


def visible(tl: Timeline, target: int, t: float) -> bool:
    """Whether object `target`'s box meets the frame at `t` (the renderer's rounding)."""
    return track_box(tl.tracks[target], t, tl.width, tl.height) is not None


def named_target(video: Any, extra: dict[str, Any] | None) -> tuple[Timeline, int] | None:
    """(timeline, index of the object the query names) for a synthetic-world row; None when the
    row names no object (`after_*` events, other datasets) or its video has no timeline."""
    event = (extra or {}).get("event")
    if not isinstance(event, dict) or str(event.get("type", "")).startswith("after_"):
        return None
    target = event.get("target")
    tl = timeline_of(str(spec_path(video)))
    if tl is None or not isinstance(target, int) or not 0 <= target < len(tl.tracks):
        return None
    return tl, target


def group_times(timestamps: Any, temporal_patch: int = 2) -> list[list[float]]:
    """The frame times of each temporal group, padded as the processor pads: a single frame is
    doubled, and the last frame repeats to fill the last group."""
    ts = [float(t) for t in timestamps]
    if len(ts) == 1:
        ts = ts * 2
    if len(ts) % temporal_patch:
        ts = ts + [ts[-1]] * (temporal_patch - len(ts) % temporal_patch)
    return [ts[g: g + temporal_patch] for g in range(0, len(ts), temporal_patch)]


def group_labels(sample: Any, temporal_patch: int = 2) -> list[float] | None:
    """Per temporal group of `sample.timestamps`: 1.0 when the named object is visible in any of
    its frames. None when the sample has no usable target (see the module docstring)."""
    named = named_target(sample.video, getattr(sample, "extra", None))
    if named is None:
        return None
    tl, target = named
    return [float(any(visible(tl, target, t) for t in group)) for group in group_times(sample.timestamps, temporal_patch)]


def group_kind(tl: Timeline, target: int, times: list[float]) -> str:
    """'positive' when an object of the named one's colour+shape is on screen at one of `times`,
    else the kind of negative: 'same colour' (another shape of its colour), 'same shape', 'other
    objects', 'empty'."""
    combo = tl.tracks[target].combo
    seen = on_screen(tl, times)
    if combo in seen:
        return "positive"
    if any(colour_of(c) == colour_of(combo) for c in seen):
        return "same colour"
    if any(shape_of(c) == shape_of(combo) for c in seen):
        return "same shape"
    return "other objects" if seen else "empty"


def group_positions(batch: Any, i: int, groups: int, video_token_id: int, merge: int = 2) -> torch.Tensor | None:
    """Row `i`'s video token positions as [groups, tokens per group]; None when the batch's layout
    is not that one (then no label rather than a wrong one)."""
    gt, gh, gw = batch["video_grid_thw"][i].tolist()
    per = gh * gw // (merge * merge)
    pos = (batch["input_ids"][i] == video_token_id).nonzero().squeeze(1)
    if gt != groups or len(pos) != gt * per:
        return None
    return pos.view(gt, per)


def binding_loss(hidden: torch.Tensor, batch: Any, samples: list[Any], head: torch.nn.Module,
                 video_token_id: int, merge: int = 2) -> torch.Tensor | None:
    """BCE of `head` (max over each group's video tokens) against `group_labels`, the mean over the
    batch's labelled groups; None when no sample in the batch has labels.
    `hidden`: [B, T, H] last hidden states."""
    logits, labels = [], []
    for i, s in enumerate(samples):
        lab = group_labels(s)
        pos = None if lab is None else group_positions(batch, i, len(lab), video_token_id, merge)
        if pos is None:
            continue
        scores = head(hidden[i, pos]).squeeze(-1).max(dim=1).values  # [groups]
        logits.append(scores)
        labels.append(torch.tensor(lab, dtype=scores.dtype))
    if not logits:
        return None
    return torch.nn.functional.binary_cross_entropy_with_logits(torch.cat(logits), torch.cat(labels))


def attention_loss(attn: Any, batch: Any, samples: list[Any], video_token_id: int,
                   merge: int = 2) -> torch.Tensor | None:
    """-log of the attention mass (mean over heads) that the answer's decision position puts on
    the frame groups showing the named object, averaged over the windows that hold the event and
    show it; None when the batch has none. The decision position is the first target token
    ("<think>"), whose logits give the first word after it. `attn`: one layer's eager weights
    [B, heads, T, T] or trainer.attention_rows.AttentionRows."""
    rows = rows_of(attn)
    terms = []
    for i, s in enumerate(samples):
        lab = group_labels(s)
        if lab is None or getattr(s, "span", None) is None or not any(lab):
            continue
        pos = group_positions(batch, i, len(lab), video_token_id, merge)
        targets = (batch["labels"][i] != -100).nonzero().squeeze(1)
        if pos is None or len(targets) == 0:
            continue
        mass = rows(i, int(targets[0]))[:, pos].sum(-1)  # [heads, groups]
        on = mass[:, torch.tensor(lab, device=mass.device) > 0].sum(-1).mean()
        terms.append(-torch.log(on + 1e-6))
    return torch.stack(terms).mean() if terms else None


def span_groups(sample: Any, temporal_patch: int = 2) -> tuple[int, int] | None:
    """(group of the first frame inside the window-relative target span, group of the last one);
    None when the window holds no span or no frame falls inside it."""
    if getattr(sample, "span", None) is None:
        return None
    s, e = sample.span
    inside = [k for k, t in enumerate(sample.timestamps) if s <= float(t) - sample.start <= e]
    if not inside:
        return None
    return inside[0] // temporal_patch, inside[-1] // temporal_patch


def number_positions(ids: list[int], first: int, digits: set[int], continues: set[int]) -> list[int]:
    """Positions from `first` on whose next token starts a number: the next token is a digit and
    this one is not part of a number (not in `continues`: digits and the decimal point)."""
    return [p for p in range(first, len(ids) - 1) if ids[p + 1] in digits and ids[p] not in continues]


def span_attention_loss(attn: Any, batch: Any, samples: list[Any], video_token_id: int,
                        open_id: int, digits: set[int], continues: set[int], merge: int = 2) -> torch.Tensor | None:
    """-log of the attention mass (mean over heads) that the position writing the span's start puts
    on the group of the span's first frame, and the one writing its end on the group of its last
    frame; averaged over the windows that hold the span; None when the batch has none. The writing
    positions are the first two number starts after the first `open_id` ("<timestamp>") among the
    target tokens. `attn`: as for attention_loss."""
    rows = rows_of(attn)
    terms = []
    for i, s in enumerate(samples):
        groups = span_groups(s)
        targets = (batch["labels"][i] != -100).nonzero().squeeze(1)
        if groups is None or len(targets) == 0:
            continue
        ids = batch["input_ids"][i].tolist()
        opens = [p for p in targets.tolist() if ids[p] == open_id]
        writers = number_positions(ids, opens[0], digits, continues)[:2] if opens else []
        pos = group_positions(batch, i, len(group_times(s.timestamps)), video_token_id, merge)
        if pos is None or len(writers) < 2:
            continue
        for p, g in zip(writers, groups):
            on = rows(i, p)[:, pos[g]].sum(-1).mean()
            terms.append(-torch.log(on + 1e-6))
    return torch.stack(terms).mean() if terms else None
