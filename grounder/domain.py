"""What videos a model knows: a model folder's `domain.json`, and the warning for any other video.

The embedded default is trained on the synthetic world only (`groundqa synth`: 112x112 frames at
2 fps); on a real video its segments and answers mean nothing, and it must say so rather than
answer confidently. A model folder may declare its domain:

    {"description": "the groundqa synthetic world (groundqa synth)", "width": 112, "height": 112, "fps": 2.0}

Any field may be left out (null); a video that differs in a declared field is off the domain.
Folders without the file (real Qwen-VL checkpoints) know any video.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grounder.errors import ModelError

DOMAIN_FILE = "domain.json"


@dataclass(frozen=True)
class Domain:
    description: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None

    def mismatch(self, reader: Any) -> str | None:
        """One line saying why `reader`'s video is off this domain, or None when it fits."""
        got = []
        if self.width is not None and int(reader.width) != self.width or \
                self.height is not None and int(reader.height) != self.height:
            got.append(f"{reader.width}x{reader.height} frames (it knows {self.width}x{self.height})")
        if self.fps is not None and not math.isclose(float(reader.fps), self.fps, rel_tol=0.01):
            got.append(f"{float(reader.fps):g} fps (it knows {self.fps:g})")
        if not got:
            return None
        return (f"this video is not from {self.description} that the model knows ({', '.join(got)}): its "
                "segments and answers mean little here; pass --model with a real Qwen-VL model")


def read_domain(folder: str | Path | None) -> Domain | None:
    """A model folder's declared domain, None when it declares none; a bad file: a one-line error."""
    if folder is None:
        return None
    path = Path(folder) / DOMAIN_FILE
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return Domain(str(d["description"]), d.get("width"), d.get("height"),
                      None if d.get("fps") is None else float(d["fps"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: bad domain file ({exc})") from None
