"""The `groundqa` command line: its commands exist, and bad input ends in one line, exit != 0."""

import json
import subprocess
import sys

import pytest

from groundqa.cli import main
from tests.media import audio_only


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_commands(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    for name in ("ask", "ground", "synth", "train", "eval", "demo", "info"):
        assert f"  {name} " in out


@pytest.mark.parametrize("command", [["train", "sft"], ["train", "grpo"], ["train", "difficulty"], ["train", "pipeline"],
                                     ["train", "embedder"], ["ground"], ["ask"], ["eval", "run"], ["synth"]])
def test_help_shows_only_real_options(capsys, command):
    """No helper argument leaks into the options (a `---stage` once did), no Python type names."""
    code, out, _ = _run(capsys, *command, "--help")
    assert code == 0 and "Usage: groundqa " + " ".join(command) in out
    assert " ---" not in out and "<class" not in out


def test_info_json_on_a_real_clip(capsys, shared_data):
    code, out, err = _run(capsys, "info", str(shared_data / "videos" / "carphone_pristine.mp4"), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["fps"] == pytest.approx(30000 / 1001) and info["num_frames"] == 120
    assert (info["width"], info["height"], info["has_audio"]) == (176, 144, False)


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "audio", "directory"])
def test_bad_video_is_one_line_and_nonzero(capsys, tmp_path, kind):
    path = tmp_path / "v.mp4"
    if kind == "empty":
        path.touch()
    elif kind == "text":
        path.write_text("not a video\n" * 10)
    elif kind == "audio":
        audio_only(path)
    elif kind == "directory":
        path.mkdir()
    code, out, err = _run(capsys, "info", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("groundqa: error: ") and "Traceback" not in err


def test_console_script_entry_point_exits_nonzero_without_traceback(tmp_path):
    # Through a real process, as a user runs it.
    out = subprocess.run([sys.executable, "-m", "groundqa", "info", str(tmp_path / "nope.mp4")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("groundqa: error: video not found") and "Traceback" not in out.stderr


def test_unknown_option_is_a_usage_error(capsys):
    code, _, err = _run(capsys, "info", "--no-such-flag")
    assert code == 2 and "Traceback" not in err


def test_version(capsys):
    from groundqa import __version__

    code, out, _ = _run(capsys, "--version")
    assert code == 0 and out.strip() == __version__
