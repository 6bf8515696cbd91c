"""`groundqa eval card`: the model folder's README.md from the training run and eval reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from evals.model_card import load_reports, model_facts, pipeline_command, write_card
from evals.synthetic import generate_world
from grounder.errors import InputError
from grounder.tiny import folder_size, save_tiny
from groundqa.cli import main

ROOT_RECIPE = "trainer/recipes/default.yaml"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny model folder, a pipeline run folder and two report folders (random-span runs)."""
    root = tmp_path_factory.mktemp("card")
    model = save_tiny(root / "model", "qwen3_vl")
    (model / "scan_config.json").write_text(json.dumps({"max_calls": 24, "frames_per_call": 16}))
    run = root / "runs" / "default"
    run.mkdir(parents=True)
    recipe = yaml.safe_load((Path(__file__).parents[1] / ROOT_RECIPE).read_text())
    recipe["out_dir"] = "runs/d2"
    recipe["sft"]["train"]["steps"] = 700
    recipe["sft"]["train"]["binding"] = 1.5
    recipe["sft"]["train"]["attend"] = 0.5
    recipe["sft"]["train"]["attend_span"] = 0.0
    (run / "pipeline.json").write_text(json.dumps(recipe, indent=1))
    (run / "timings.json").write_text(json.dumps({
        "synth": {"seconds": 31.2, "videos": 60, "rows": 900},
        "sft": {"seconds": 1520.4, "steps": 700, "last_loss": 0.4123},
        "difficulty": {"seconds": 210.0},
        "grpo": {"seconds": 980.5, "steps": 60, "last_reward": 1.25},
        "after": {"seconds": 200.1},
        "model": {"seconds": 0.1, "path": "runs/d2/model"},
        "total_seconds": 2942.3}))
    world = root / "heldout"
    generate_world(world, n_videos=1, minutes=(1, 1), seed=9000)
    reps = []
    for strategy in ("coarse-to-fine", "uniform"):
        out = root / f"run-{strategy}"
        subset = ["--kind", "grounding", "--stride", "2"] if strategy == "uniform" else []
        assert main(["eval", "run", "synthetic", "--ann", str(world / "annotations.jsonl"), "--out", str(out),
                     "--predictor", "random-span", "--strategy", strategy, *subset, "--json"]) == 0
        assert main(["eval", "report", str(out), "--json"]) == 0
        reps.append(out)
    return {"root": root, "model": model, "run": run, "reports": reps}


def test_model_facts_from_config_and_safetensors_headers(inputs):
    import torch
    from transformers import AutoModelForImageTextToText

    m = model_facts(inputs["model"])
    assert m["architecture"] == "Qwen3VLForConditionalGeneration" and m["family"] == "Qwen3-VL"
    net = AutoModelForImageTextToText.from_pretrained(inputs["model"], dtype=torch.float32)
    stored = {id(p): p.numel() for p in net.parameters()}  # tied weights once, as in safetensors
    assert m["params"]["total"] == sum(stored.values())
    assert 0 < m["params"]["vision"] < m["params"]["total"]
    assert m["bytes"] == folder_size(inputs["model"]) - sum(
        p.stat().st_size for p in inputs["model"].glob("README.md"))


def test_card_cli_writes_a_hugging_face_card(inputs, capsys, monkeypatch):
    monkeypatch.chdir(inputs["root"])
    r1, r2 = (str(p) for p in inputs["reports"])
    code = main(["eval", "card", str(inputs["model"]), "--pipeline", str(inputs["run"]),
                 "--reports", r1, r2, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    res = json.loads(out)
    assert res["reports"] == 2
    text = (inputs["model"] / "README.md").read_text()
    assert res["card"] == str(inputs["model"] / "README.md")
    # front matter
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "apache-2.0" and front["library_name"] == "transformers"
    assert front["pipeline_tag"] == "video-text-to-text" and "qwen3_vl" in front["tags"]
    # what it is / knows
    assert "Qwen3VLForConditionalGeneration" in text and "size on disk" in text
    assert "synthetic world" in text and "meaningless" in text and "112x112" in text
    # how it was trained: the command, with the overrides that differ from the recipe file
    assert "groundqa train pipeline trainer/recipes/default.yaml out_dir=runs/d2 sft.train.steps=700" in text
    assert "query-binding loss weight 1.5 read after the middle LM layer" in text
    assert "attention loss weight 0.5" in text and "span-attention" not in text  # only the losses it trained
    assert "| sft |" in text and "1520.4" in text and "loss 0.4123" in text and "49.0 min" in text
    # scan budget
    assert "| `max_calls` | 24 |" in text and "| `frames_per_call` | 16 |" in text
    # scores: one row per report, values from report.json
    rep = json.loads((inputs["reports"][0] / "report.json").read_text())
    rows = [ln for ln in text.splitlines() if ln.startswith("| synthetic | random-span |")]
    assert len(rows) == 2 and "| coarse-to-fine |" in rows[0] and "| uniform |" in rows[1]
    assert f"| {rep['grounding']['mIoU']:.1f} |" in rows[0]
    # reproduce: the world's synth command once, eval run + report per row, relative paths
    assert text.count("groundqa synth --out heldout --videos 1 --seed 9000 --minutes 1-1") == 1
    assert "groundqa eval run synthetic --ann heldout/annotations.jsonl --out run-uniform " \
           "--predictor random-span --strategy uniform --kind grounding --stride 2\n" in text
    assert "--out run-coarse-to-fine --predictor random-span\n" in text  # all rows: no subset flags
    assert "groundqa eval report run-coarse-to-fine --json" in text
    assert not [p for p in inputs["model"].iterdir() if p.name.startswith(".")]  # atomic, no temp left


def test_reports_from_saved_json_lines_and_report_files(inputs, tmp_path):
    lines = tmp_path / "reports.jsonl"
    lines.write_text("".join((d / "report.json").read_text().replace("\n", " ") + "\n"
                             for d in inputs["reports"]))
    reps = load_reports([lines, inputs["reports"][0] / "report.json"])
    assert [r["strategy"] for r in reps] == ["coarse-to-fine", "uniform", "coarse-to-fine"]


def test_command_recorded_in_pipeline_json_wins():
    assert pipeline_command({"command": "groundqa train pipeline x.yaml"}) == "groundqa train pipeline x.yaml"
    assert pipeline_command({"out_dir": "runs/default"}) == f"groundqa train pipeline {ROOT_RECIPE}"


@pytest.mark.parametrize("case, msg", [
    ("no-model", "model folder not found"),
    ("no-pipeline", "run folder not found"),
    ("no-timings", "timings.json"),
    ("bad-report", "not a `groundqa eval report --json` report"),
    ("no-reports", "no report found"),
])
def test_bad_input_is_one_line_and_writes_nothing(inputs, tmp_path, capsys, case, msg):
    model, run, reports = str(inputs["model"]), str(inputs["run"]), [str(inputs["reports"][0])]
    if case == "no-model":
        model = str(tmp_path / "nope")
    elif case == "no-pipeline":
        run = str(tmp_path / "nope")
    elif case == "no-timings":
        (tmp_path / "pipeline.json").write_text("{}")
        run = str(tmp_path)
    elif case == "bad-report":
        (tmp_path / "r.json").write_text('{"hello": 1}')
        reports = [str(tmp_path / "r.json")]
    elif case == "no-reports":
        reports = []
    card = inputs["model"] / "README.md"
    before = card.read_text() if card.exists() else None
    args = ["eval", "card", model, "--pipeline", run] + (["--reports", *reports] if reports else [])
    code = main(args)
    out, err = capsys.readouterr()
    assert code != 0 and out == "" and err.count("\n") == 1 and msg in err, err
    assert (card.read_text() if card.exists() else None) == before


def test_write_card_python_api(inputs):
    res = write_card(inputs["model"], inputs["run"], inputs["reports"][:1], command="groundqa train pipeline X")
    assert "groundqa train pipeline X" in (inputs["model"] / "README.md").read_text()
    assert res["reports"] == 1
    with pytest.raises(InputError):
        write_card(inputs["model"], inputs["run"], [inputs["root"] / "missing"])


@pytest.mark.slow
def test_wheel_ships_the_default_model_folder(inputs, tmp_path):
    """A non-editable install carries grounder/default_model/* (here a placeholder copy: the
    checkout is copied, the tiny model + its card put in, a wheel built without network)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[1]
    files = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=False).stdout
    if not files:
        pytest.skip("not a git checkout")
    src = tmp_path / "src"
    for rel in files.decode().split("\0"):
        if rel and (root / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, src / rel)
    shutil.rmtree(src / "grounder" / "default_model", ignore_errors=True)
    write_card(inputs["model"], inputs["run"], inputs["reports"])
    shutil.copytree(inputs["model"], src / "grounder" / "default_model")
    shipped = src / "grounder" / "default_model"
    (shipped / "merges.txt").write_text("#version: 0.2\n")
    import torch

    from grounder.dual_encoder import DualEncoder, DualEncoderConfig
    from trainer.embedder import default_tokenizer

    tok = default_tokenizer()
    torch.manual_seed(0)
    DualEncoder(DualEncoderConfig(channels=[8, 8, 16, 16], embed_dim=16, text_hidden=16, text_layers=1,
                                  text_heads=2, vocab_size=tok.get_vocab_size()), tok).save_pretrained(shipped / "retriever")
    (shipped / "retriever" / "README.md").write_text("# retriever\n")
    want = sorted(p.relative_to(shipped).as_posix() for p in shipped.rglob("*") if p.is_file())
    assert {"README.md", "scan_config.json", "model.safetensors", "chat_template.jinja",
            "retriever/model.safetensors", "retriever/config.json", "retriever/tokenizer.json"} <= set(want)
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "-q", ".", "-w", str(tmp_path / "whl")], cwd=src, capture_output=True,
                         text=True, check=False)
    if res.returncode != 0 and "No module named" in res.stderr:
        pytest.skip(f"cannot build a wheel here: {res.stderr.strip().splitlines()[-1]}")
    assert res.returncode == 0, res.stderr
    (wheel,) = (tmp_path / "whl").glob("groundqa-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    got = sorted(n.removeprefix("grounder/default_model/") for n in names if n.startswith("grounder/default_model/"))
    assert got == want
