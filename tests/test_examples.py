"""The example scripts a user copies from must keep running."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_synthetic_world_then_sample_frames(tmp_path):
    text = _run("examples/synthetic_world.py", str(tmp_path))
    assert "rows; e.g." in text
    video = tmp_path / "videos" / "v0000.mp4"
    text = _run("examples/sample_frames.py", str(video), "5.2", "61")
    assert "asked     5.200 s -> frame at     5.000 s" in text  # 2 fps: the frame on screen
    assert "asked    61.000 s -> frame at    61.000 s" in text


def test_the_newcomer_walkthrough_passes(tmp_path, shared_data):
    """examples/walkthrough.sh: demo, a real clip, two session turns at once, a bad training
    config, two same-named clips, Ctrl-C during eval run and its resume command (issue #23)."""
    import os

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run(["bash", "examples/walkthrough.sh", str(tmp_path / "w"), str(shared_data)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=900, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "walk-through: 0 failed step(s)" in out.stdout and out.stdout.count("   ok: ") == 8
