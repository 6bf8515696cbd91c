"""Log-odds of probabilities (pure): how the scan mixes the VLM's confidence with a retrieval
score, and how the statement matcher turns per-option probabilities into a choice."""

from __future__ import annotations

from typing import Any

import numpy as np


def logit(p: Any, eps: float = 1e-6) -> Any:
    """log(p / (1 - p)), p clipped to [eps, 1 - eps]; a float for a float, an array for an array."""
    x = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    out = np.log(x) - np.log1p(-x)
    return float(out) if out.ndim == 0 else out
