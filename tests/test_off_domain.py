"""The embedded default knows the synthetic world only, and says so on any other video instead of
answering confidently (grounder.domain, the agent's answer node, the CLI, the demo's diagnosis)."""

from __future__ import annotations

import json

import pytest

from agent.api import Agent
from evals.demo import diagnose
from grounder.domain import Domain, read_domain
from grounder.errors import ModelError
from grounder.grounder import Grounder
from grounder.scan import ScanBudget
from groundqa.cli import main

SMALL = ScanBudget(max_new_tokens=16, max_calls=2, retrieval_windows=1)
QA = {"qa_max_new_tokens": 6, "qa_max_frames": 8, "qa_global_frames": 2}


@pytest.fixture(scope="module")
def real_video(shared_data):
    return shared_data / "videos" / "bikes.mp4"  # 640x272 at 25 fps: a real clip


def test_the_default_declares_the_synthetic_world_and_a_real_clip_is_off_it(real_video, synth_world):
    g = Grounder.from_pretrained(None)
    assert g.domain == Domain("the groundqa synthetic world (groundqa synth)", 112, 112, 2.0)
    warning = g.domain_warning(real_video)
    assert "not from the groundqa synthetic world" in warning and "640x272" in warning and "25 fps" in warning
    ann = synth_world(1, 1, 5)
    video = ann.parent / json.loads(ann.read_text().splitlines()[0])["video"]
    assert g.domain_warning(video) is None
    result = g.ground(real_video, "the rider jumps", budget=SMALL)
    assert result.warnings.count(warning) == 1 and result.warnings[0] == warning


def test_the_agent_is_not_sure_about_a_real_video(real_video):
    answer = Agent(budget=SMALL, max_rounds=1, **QA).ask(real_video, "what colour is the bike?",
                                                         options=["red", "blue", "green", "white"])
    assert answer.choice is None and answer.confidence == 0.0
    assert answer.answer.startswith("not sure: this video is outside what the model knows (its guess: (")
    assert sum("not from the groundqa synthetic world" in w for w in answer.warnings) == 1


def test_the_cli_warns_once_on_stderr_and_in_the_json(real_video, capsys):
    rc = main(["ask", str(real_video), "what colour is the bike?", "--option", "red", "--option", "blue",
               "--json", "--max-calls", "2", "--max-new-tokens", "16"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert rc == 0 and out["choice"] is None and out["answer"].startswith("not sure")
    assert sum("not from the groundqa synthetic world" in w for w in out["warnings"]) == 1
    assert captured.err.count("not from the groundqa synthetic world") == 1


def test_a_folder_declares_its_domain_or_none(tmp_path):
    assert read_domain(tmp_path) is None  # a real checkpoint: any video
    (tmp_path / "domain.json").write_text(json.dumps({"description": "dashcams", "fps": 30}))
    d = read_domain(tmp_path)
    assert d == Domain("dashcams", None, None, 30.0)
    (tmp_path / "domain.json").write_text("{broken")
    with pytest.raises(ModelError) as err:
        read_domain(tmp_path)
    assert len(str(err.value).splitlines()) == 1


def test_the_demo_says_which_segment_it_chose_against_the_truth():
    truth = [[100.0, 104.0]]
    assert diagnose(True, [], truth, "red") == ""
    assert "no segment was found" in diagnose(False, [], truth, "red")
    hit = diagnose(False, [{"start": 100.5, "end": 104.0, "score": 0.9}], truth, "red")
    assert "found the evidence" in hit and "QA model read the wrong answer" in hit
    miss = diagnose(False, [{"start": 500.0, "end": 503.0, "score": 0.9},
                            {"start": 99.0, "end": 103.0, "score": 0.4}], truth, "red")
    assert "top segment (500.0-503.0 s) is not the evidence (100.0-104.0 s)" in miss
    assert "segment #2 (99.0-103.0 s) overlaps it but ranked lower" in miss


def test_the_agent_grounds_by_retrieval_with_the_default(synth_world):
    """The agent's rounds keep the grounder's retriever: the whole video is embedded once for the
    coarse pass (0.5 fps), not only the QA clips, and the VLM takes a few short looks."""
    ann = synth_world(1, 1, 5)
    row = next(json.loads(x) for x in ann.read_text().splitlines() if json.loads(x)["kind"] == "qa")
    answer = Agent(budget=SMALL, max_rounds=1, **QA).ask(ann.parent / row["video"], row["question"],
                                                         options=row["options"])
    assert answer.cost["embedder_frames"] >= 0.5 * row["duration"] * 0.9
    assert 0 < answer.cost["model_calls"] <= 2 * 3  # at most max_calls per grounding query
