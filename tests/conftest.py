"""Shared test fixtures. Tests run offline: no hub downloads, tiny models from configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real clips and benchmark annotations); tests skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside this checkout (real clips and annotations)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def synth_world(tmp_path_factory):
    """`synth_world(videos, minutes, seed)` -> annotations.jsonl of a synthetic world of that shape,
    generated once per session (tests that only read a world share it)."""
    made: dict[tuple[int, float, int], Path] = {}

    def make(videos: int, minutes: float, seed: int) -> Path:
        key = (videos, minutes, seed)
        if key not in made:
            from evals.synthetic.generate import generate_world

            out = tmp_path_factory.mktemp(f"world_{videos}x{minutes:g}min_seed{seed}")
            generate_world(out, n_videos=videos, minutes=(minutes, minutes), seed=seed)
            made[key] = out / "annotations.jsonl"
        return made[key]

    return make
