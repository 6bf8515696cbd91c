"""What the page takes in: the video (upload, server path, example), the options box, the examples.

All checks here are cheap and run before the agent does any work; each failure is one line
(`InputError` / `VideoError`) that the page shows in its `message` element.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.loaders.common import read_jsonl
from grounder.errors import InputError
from grounder.files import inside
from grounder.qa_inputs import LETTERS

EXAMPLE_SEED = 4242  # the demo's seed: not a training (1000..) or held-out (9000..) world
EXAMPLE_MINUTES = 10.0
EXAMPLE_QUESTIONS = 3


def parse_options(text: str | None) -> list[str] | None:
    """The options box: one option per line, blank lines ignored; None when empty. A leading
    "(A)" / "A." / "A)" is the user's own lettering and is dropped (the page letters them)."""
    lines = [" ".join(line.split()) for line in (text or "").splitlines()]
    opts = [re.sub(r"^\(?[A-Z][).:]\s+", "", line) for line in lines if line]
    return opts or None


def resolve_path(text: str, allow_dirs: list[Path]) -> Path:
    """A path typed on the page -> the file, resolved (symlinks too), inside an allowed folder."""
    raw = text.strip().strip('"').strip("'")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        if not allow_dirs:
            raise InputError("this page takes no server paths (start it with --allow-dir FOLDER)")
        path = allow_dirs[0] / path
    path = path.resolve()
    if not any(inside(path, d) for d in allow_dirs):  # `path` is resolved: a link out is out
        where = ", ".join(str(d) for d in allow_dirs) or "none (start the page with --allow-dir FOLDER)"
        raise InputError(f"{raw}: outside the folders this page may read ({where})")
    if not path.exists():
        raise InputError(f"{raw}: no such file")
    if not path.is_file():
        raise InputError(f"{raw}: not a file")
    return path


def pick_video(upload: str | None, path_text: str | None, allow_dirs: list[Path]) -> Path:
    """The video to ask about: a typed server path wins over an upload (it is what the player
    shows once typed); one of them is required."""
    if path_text and path_text.strip():
        return resolve_path(path_text, allow_dirs)
    if upload:
        return Path(upload)
    raise InputError("no video: upload one, pick an example, or type a path on the server")


# -- examples ----------------------------------------------------------------------------------------
@dataclass
class Example:
    label: str
    video: Path
    question: str
    options: list[str] = field(default_factory=list)

    def options_text(self) -> str:
        return "\n".join(self.options)


def synthetic_examples(folder: Path, minutes: float = EXAMPLE_MINUTES, seed: int = EXAMPLE_SEED,
                       questions: int = EXAMPLE_QUESTIONS) -> list[Example]:
    """A synthetic video with exact ground truth and a few of its multiple-choice questions, made
    once into `folder` (written into a temp folder, then renamed: an interrupted start leaves
    nothing half made)."""
    from evals.synthetic import generate_world

    if not (folder / "annotations.jsonl").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".making-", dir=folder.parent))
        try:
            generate_world(tmp, n_videos=1, minutes=(minutes, minutes), seed=seed)
            if folder.exists():  # another process made it meanwhile
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    rows = read_jsonl(folder / "annotations.jsonl")
    qa = [r for r in rows if r.get("kind") == "qa" and r.get("options") and r.get("spans")]
    qa.sort(key=lambda r: r["id"])
    # different kinds of question first, so that the few examples show different things
    picked: list[dict[str, Any]] = []
    for r in qa:
        if len(picked) < questions and r.get("qtype") not in {p.get("qtype") for p in picked}:
            picked.append(r)
    picked += [r for r in qa if r not in picked][: questions - len(picked)]
    # their truth is read back from annotations.jsonl when asked (`truth_from_annotations`)
    return [Example(f"synthetic {minutes:g} min · {r['question']}", (folder / r["video"]).resolve(), r["question"],
                    list(r["options"])) for r in picked]


def truth_from_annotations(video: Path, question: str) -> dict[str, Any] | None:
    """The true answer and span of `question` about `video` when the video lies in a dataset folder
    (its `annotations.jsonl` beside it or one folder up, as `groundqa synth` writes them), else None."""
    want = " ".join(question.split())
    for folder in (video.parent, video.parent.parent):
        ann = folder / "annotations.jsonl"
        if not ann.is_file():
            continue
        try:
            rel = video.resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            continue
        try:
            rows = read_jsonl(ann)
        except InputError:  # a broken annotations file beside the video: no truth, the answer stands
            return None
        for row in rows:
            if row.get("video") == rel and " ".join(str(row.get("question", "")).split()) == want and row.get("spans"):
                truth: dict[str, Any] = {"spans": row["spans"], "choice": None}
                if row.get("options") and isinstance(row.get("answer"), int):
                    truth.update(choice=LETTERS[row["answer"]],
                                 answer=row["options"][row["answer"]])
                return truth
    return None


REAL_CLIP_QUESTIONS = {
    "bigbuckbunny.mp4": ("when does the rabbit stand up and stretch?", []),
    "bikes.mp4": ("when do cars drive past?", []),
}


def clip_examples(folder: Path | None) -> list[Example]:
    """The real clips the project's tests use (../shared/data/videos in a checkout), when present."""
    if folder is None or not folder.is_dir():
        return []
    out = []
    for name, (question, options) in REAL_CLIP_QUESTIONS.items():
        if (folder / name).is_file():
            out.append(Example(f"real clip {name} · {question}", (folder / name).resolve(), question, list(options)))
    return out


def shipped_clips_dir() -> Path | None:
    """../shared/data/videos beside a source checkout (where the tests find the real clips)."""
    here = Path(__file__).resolve().parents[2]
    for cand in (here.parent / "shared" / "data" / "videos", here / "shared" / "data" / "videos"):
        if cand.is_dir():
            return cand
    return None
