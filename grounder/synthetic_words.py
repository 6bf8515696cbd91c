"""The synthetic world's words: one home for every layer that names its things.

The world draws them (`evals.synthetic`: colour k of the palette is COLORS[k]), the trainer labels
clips with them (`trainer.vision_pretrain`: label = colour * len(SHAPES) + shape; `trainer.clip_labels`),
and the embedded default's retriever records them as its `slots`, which the timeline reader probes
(`agent.timeline`). SIDES are the frame's edges (`grounder.tracks`), which things enter and leave by.
"""

from __future__ import annotations

from grounder.tracks import SIDES

COLORS: tuple[str, ...] = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "white")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
SCENES: tuple[str, ...] = ("dark", "grey", "striped", "checkered")

__all__ = ["COLORS", "SCENES", "SHAPES", "SIDES"]
