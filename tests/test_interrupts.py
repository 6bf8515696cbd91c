"""What a user meets when a long command is stopped or told to use what is not there: Ctrl-C
during `eval run`, `train` and `ask --questions` says what was kept and the command that goes on
(exit 130); `--device cuda` on a machine without a GPU and a questions file that is not UTF-8
are one-line errors before any model loads. Real subprocesses, real SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from evals.synthetic import generate_world

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "trainer" / "recipes"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("interrupt_world")
    rows = generate_world(out, n_videos=1, minutes=(1, 1), seed=21)
    return {"dir": out, "ann": out / "annotations.jsonl", "rows": rows, "video": out / rows[0]["video"]}


def _env(home: Path) -> dict[str, str]:
    e = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GROUNDQA_HOME=str(home))
    e.pop("GROUNDQA_PROGRESS", None)
    return e


def _start(args: list[str], home: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "groundqa", *args], cwd=ROOT, env=_env(home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _interrupt_when(proc: subprocess.Popen, ready, what: str, timeout: float = 240) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"ended before {what}: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return out, err


def _last_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    return lines[-1] if lines else ""


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "groundqa", *args], cwd=ROOT, env=_env(home),
                          capture_output=True, text=True, timeout=600, check=False)


def test_ctrl_c_during_eval_run_says_what_is_kept_and_goes_on(world, tmp_path):
    out = tmp_path / "run"
    args = ["eval", "run", "synthetic", "--ann", str(world["ann"]), "--out", str(out), "--strategy", "uniform",
            "--budget", "frames_per_call=4", "--budget", "max_new_tokens=8", "--limit", "12"]
    pred = out / "predictions.jsonl"
    proc = _start(args, tmp_path)
    _, err = _interrupt_when(proc, lambda: pred.is_file() and pred.read_bytes().count(b"\n") >= 1, "prediction")
    assert proc.returncode == 130, err[-2000:]
    line = _last_line(err)
    assert line.startswith("groundqa: interrupted: ") and "finished item(s) are kept in" in line, err[-2000:]
    assert "Traceback" not in err
    kept = pred.read_bytes().count(b"\n")
    assert kept >= 1
    command = line.split("this goes on from there: ", 1)[1]
    assert command.startswith("groundqa eval run synthetic")
    resumed = _run(command.split()[1:], tmp_path)  # the printed command, as the user would paste it
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{kept} already done" in resumed.stdout  # nothing redone, nothing lost
    assert pred.read_bytes().count(b"\n") > kept


def test_ctrl_c_during_training_points_at_the_checkpoint(world, tmp_path):
    out = tmp_path / "sft"
    args = ["train", "sft", str(RECIPES / "sft.yaml"), f"data.train={world['ann']}", f"train.out_dir={out}",
            "train.steps=400", "train.batch_size=1", "train.save_every=1", "data.frames.max_frames=4",
            "data.frames.max_pixels=4096", "data.limit=4"]
    proc = _start(args, tmp_path)
    _, err = _interrupt_when(proc, lambda: (out / "checkpoint").is_dir(), "checkpoint")
    assert proc.returncode == 130, err[-2000:]
    line = _last_line(err)
    assert f"the last checkpoint ({out / 'checkpoint'}) is kept; this resumes from it: groundqa train sft" in line
    assert "Traceback" not in err


def test_ctrl_c_during_ask_questions_gives_the_command_for_the_rest(world, tmp_path):
    qs = [r for r in world["rows"] if r.get("question")][:3]
    f = tmp_path / "q.jsonl"
    f.write_text("".join(json.dumps({"question": r["question"], "options": r["options"]}) + "\n" for r in qs))
    args = ["ask", str(world["video"]), "--questions", str(f), "--strategy", "uniform", "--max-calls", "2",
            "--max-new-tokens", "12", "--qa-max-new-tokens", "4"]
    proc = _start(args, tmp_path)
    answers: list[str] = []
    os.set_blocking(proc.stdout.fileno(), False)

    def one_answer() -> bool:
        try:  # the fd itself, not the file object: communicate() below reads the fd and would
            chunk = os.read(proc.stdout.fileno(), 65536).decode()  # miss what the object buffered
        except BlockingIOError:
            chunk = ""
        if chunk:
            answers.append(chunk)
        return "".join(answers).endswith("\n")

    def interrupt_after_one() -> bool:
        if one_answer():
            os.set_blocking(proc.stdout.fileno(), True)  # so that what is printed after is read whole
            return True
        return False

    out, err = _interrupt_when(proc, interrupt_after_one, "answer")
    answers = [x for x in ("".join(answers) + (out or "")).splitlines() if x.strip()]  # whole lines only
    assert proc.returncode == 130, err[-2000:]
    line = _last_line(err)
    done = len(answers)  # a second answer may have come before the signal landed
    assert done >= 1 and f"{done} of 3 questions answered" in line, (line, answers)
    command = line.split("the rest: ", 1)[1]
    assert command.endswith(f"--skip {done}")
    if done < 3:
        rest = _run(command.split()[1:], tmp_path)
        assert rest.returncode == 0, rest.stderr[-2000:]
        got = [json.loads(x)["question"] for x in rest.stdout.splitlines() if x.strip()]
        assert got == [q["question"] for q in qs[done:]]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_missing_gpu_is_one_line_before_any_model_or_folder(world, tmp_path):
    from grounder.devices import check_device
    from grounder.errors import InputError

    assert check_device("auto") == "cpu" and check_device("CPU") == "cpu"
    with pytest.raises(InputError, match="not a torch device"):
        check_device("gpu0")
    for args in (["ground", str(world["video"]), "the red circle", "--device", "cuda"],
                 ["eval", "run", "synthetic", "--ann", str(world["ann"]), "--out", str(tmp_path / "e"),
                  "--device", "cuda:1"]):
        p = _run(args, tmp_path)
        lines = [x for x in p.stderr.splitlines() if x.strip()]
        assert p.returncode == 2 and len(lines) == 1 and "torch sees no CUDA GPU" in lines[0], p.stderr
    assert not (tmp_path / "e").exists()


def test_a_questions_file_that_is_not_utf8_is_one_line(world, tmp_path):
    f = tmp_path / "latin1.jsonl"
    f.write_bytes('{"question": "qu\u00e9 color tiene?"}\n'.encode("latin-1"))
    p = _run(["ask", str(world["video"]), "--questions", str(f)], tmp_path)
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert p.returncode == 2 and len(lines) == 1 and "is not UTF-8 text" in lines[0], p.stderr
