"""The shipped default model (grounder/default_model/): what `ask`, `ground` and `demo` load."""

from __future__ import annotations

import json

from grounder.backends import DEFAULT_MODEL_DIR, load_default
from grounder.scan import ScanBudget, read_scan_config

LIMIT = 20 * 1024 * 1024


def test_folder_is_small_safe_and_complete():
    files = {p.name: p for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file()}
    assert "model.safetensors" in files and "config.json" in files
    assert not any(n.endswith((".bin", ".pt", ".pkl", ".pth")) for n in files)  # no pickle
    assert sum(p.stat().st_size for p in files.values()) <= LIMIT
    config = json.loads(files["config.json"].read_text())
    assert config["model_type"] == "qwen3_vl"
    card = files["README.md"].read_text()
    assert "synthetic" in card and "groundqa train pipeline" in card


def test_loads_without_warning_with_its_scan_budget():
    backend, warnings = load_default()
    assert warnings == []
    budget = ScanBudget(**read_scan_config(DEFAULT_MODEL_DIR))
    assert backend.scan_defaults == read_scan_config(DEFAULT_MODEL_DIR)
    assert budget.frames_per_call == 16 and budget.coarse_frames_per_window == 16


def test_answers_in_the_trained_format(tmp_path):
    """One zoom-level call on a synthetic video: a parseable answer (a span or "absent")."""
    from evals.synthetic.generate import generate_world
    from grounder.answer_format import parse_answer
    from grounder.backends import ModelRequest
    from grounder.video import shared_reader

    rows = generate_world(tmp_path, n_videos=1, minutes=(1, 1), seed=77)
    row = next(r for r in rows if r["kind"] == "grounding")
    reader = shared_reader(tmp_path / row["video"])
    s = row["spans"][0][0]
    start = max(0.0, min(s - 2.0, reader.duration - 8.0))
    frames, stamps = reader.sample_range(start, start + 8.0, fps=2.0, max_frames=16, max_pixels=112 * 112)
    backend, _ = load_default()
    reply = backend(ModelRequest(frames, stamps, reader.fps, start, start + 8.0, row["query"], 48))
    parsed = parse_answer(reply.text, window=8.0)
    assert parsed.span is not None or parsed.says_absent, reply.text
    assert 0.0 <= reply.confidence <= 1.0
