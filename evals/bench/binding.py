"""Binding split: which objects does the model confuse with the one the query names?

Run: ``python -m evals.bench.binding --model MODEL`` (``--help``); about a minute on 2 CPU
cores for the embedded default's size.

A fresh linear head reads the model's hidden states after its middle LM layer (where the SFT's
binding loss reads them, `trainer.binding`), max over each frame group's video tokens, and is
trained for a few steps on coarse training windows to say "the named object is on screen in
this group". It is then scored on held-out coarse windows (the window probe's world), one AUC
per kind of negative group:

- same colour: another shape of the named colour is on screen ("green circle" for "green star");
- same shape: another colour of the named shape is;
- other objects: only objects sharing neither;
- empty: nothing on screen.

Pooled AUCs hide a model that binds only one attribute: the 2026-11-30 default reached 0.87
pooled and 0.55 against same-colour groups (BENCHMARKS.md, "The model is shape-blind").
"""

from __future__ import annotations

import argparse
import json
import random
from typing import Any

from trainer.binding import group_kind

KINDS = ("same colour", "same shape", "other objects", "empty")  # trainer.binding.group_kind's negatives


def run(model_path: str | None, train_ann: str, test_ann: str, steps: int = 150, batch_size: int = 8,
        windows: int = 200, seed: int = 0, layer: int | None = None) -> dict[str, Any]:
    import torch

    from evals.bench.windows import DEFAULT_VIEWS, auc
    from grounder.backends import DEFAULT_MODEL_DIR
    from trainer.binding import binding_loss, group_positions, group_times, named_target
    from trainer.data import (
        FrameConfig,
        GroundingDataset,
        View,
        WindowConfig,
        load_rows,
        make_sample,
    )
    from trainer.loop import load_model
    from trainer.sft import sft_batch

    torch.manual_seed(seed)
    model, proc = load_model(None, model_path or str(DEFAULT_MODEL_DIR))
    text = model.config.get_text_config()
    layer = text.num_hidden_layers // 2 if layer is None else layer
    vid = proc.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    merge = proc.video_processor.merge_size
    length, fps = DEFAULT_VIEWS[0]  # the scan's coarse view, as the window probe draws it
    frames = FrameConfig(fps, round(length * fps), 12544)
    ds = GroundingDataset(train_ann, views=[View(WindowConfig(length, True, 0.5), frames)], seed=seed,
                          trace="direct")
    head = torch.nn.Linear(text.hidden_size, 1)
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)

    def states(samples: list[Any]) -> tuple[Any, torch.Tensor]:
        batch = sft_batch(proc, samples)
        with torch.no_grad():
            out = model(**batch, output_hidden_states=True)
        return batch, out.hidden_states[layer]

    for step in range(steps):
        samples = [ds.sample((step * batch_size + j) % len(ds), (step * batch_size + j) // len(ds))
                   for j in range(batch_size)]
        batch, hidden = states(samples)
        loss = binding_loss(hidden, batch, samples, head, vid, merge)
        if loss is not None:
            opt.zero_grad()
            loss.backward()
            opt.step()

    rows = load_rows(test_ann, kinds=("grounding",))
    rng = random.Random(f"binding/{seed}")
    scores: dict[str, list[float]] = {"positive": [], **{k: [] for k in KINDS}}
    win_pos, win_neg = [], []
    for i in range(windows):
        row = rows[rng.randrange(len(rows))]
        negative = i % 2 == 1
        s = make_sample(row, frames, WindowConfig(length, True, 1.0 if negative else 0.0), rng,
                        trace="direct")
        named = named_target(s.video, s.extra)
        if named is None or (negative and s.span is not None):
            continue
        times = group_times(s.timestamps)
        batch, hidden = states([s])
        pos = group_positions(batch, 0, len(times), vid, merge)
        if pos is None:
            continue
        with torch.no_grad():
            g = head(hidden[0, pos]).squeeze(-1).max(dim=1).values.tolist()
        for score, ts in zip(g, times):
            scores[group_kind(named[0], named[1], ts)].append(score)
        (win_neg if negative else win_pos).append(max(g))

    return {
        "model": model_path or "embedded default", "layer": layer, "steps": steps,
        "groups": {k: len(v) for k, v in scores.items()},
        "auc_all": auc(scores["positive"], [x for k in KINDS for x in scores[k]]),
        "auc": {k: auc(scores["positive"], scores[k]) for k in KINDS},
        "window_auc_max": auc(win_pos, win_neg),  # windows ranked by their best group
    }


def main(argv: list[str] | None = None) -> None:
    from evals.bench.windows import world

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model folder (default: the embedded default model)")
    p.add_argument("--steps", type=int, default=150, help="head training steps (batch 8)")
    p.add_argument("--windows", type=int, default=200, help="held-out coarse windows (half with the event)")
    p.add_argument("--layer", type=int, default=None, help="LM layer whose output the head reads (default: middle)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    train = world(8, "3-6", 1000)  # the recipe's training seed: the head learns where the model learned
    test = world(3, "15-20", 9500)  # the window probe's held-out world
    print(json.dumps(run(a.model, str(train), str(test), a.steps, 8, a.windows, a.seed, a.layer), indent=1))


if __name__ == "__main__":
    main()
