"""The agent end to end: real tiny (untrained) models on real synthetic MP4s, the graph's
loop bound (a scripted grounder), sessions across processes, streaming, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.answerer import parse_choice, sample_plan
from agent.api import Agent, Answer
from agent.planner import Planner, parse_queries, rewrite
from evals.synthetic import generate_world
from grounder.scan import COST_KEYS, Cost, GroundingResult, ScanBudget, Segment
from grounder.video import shared_reader
from groundqa.cli import main

ROOT = Path(__file__).resolve().parents[1]
# Untrained tiny models never stop early: short generations, few frames, few calls.
SMALL = ScanBudget(max_new_tokens=16, max_calls=3, top_k=1, frames_per_call=8,
                   coarse_frames_per_window=8)
QA = {"qa_max_new_tokens": 6, "qa_max_frames": 8, "qa_global_frames": 2}
OPTIONS = ["left", "top", "right", "bottom"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("agent_world")
    rows = generate_world(out, n_videos=1, minutes=(1, 1), seed=11)
    qa = [r for r in rows if r.get("question")]
    return {"video": out / rows[0]["video"], "rows": qa, "dir": out}


@pytest.fixture(scope="module")
def agent():
    return Agent(budget=SMALL, max_rounds=2, **QA)


class ScriptedGrounder:
    """Returns one segment with a fixed score; records each call (query, budget)."""

    def __init__(self, score: float) -> None:
        self.score = score
        self.calls: list[tuple[str, ScanBudget]] = []

    def ground(self, video, query, strategy="coarse-to-fine", budget=None, proposals=None, on_step=None):
        self.calls.append((query, budget))
        return GroundingResult(query=query, strategy=strategy, duration=float(video.duration),
                               segments=[Segment(10.0, 14.0, self.score)],
                               cost=Cost(model_calls=1, frames=8, visual_tokens=32, seconds=0.01))


# -- pure pieces ------------------------------------------------------------------------
def test_rewrite_turns_questions_into_when_queries():
    q = "what colour is the shape that enters right after the orange triangle leaves?"
    assert rewrite(q) == ["when does the shape enter after the orange triangle leaves",
                          "when does the orange triangle leave",
                          "what colour is the shape that enters after the orange triangle leaves"]
    assert rewrite("From which side does the green triangle enter?")[0] == "when does the green triangle enter"
    assert rewrite("how many circles are on screen when the blue square enters?")[:2] == [
        "circles on screen when the blue square enters", "when does the blue square enter"]
    assert rewrite("who is speaking while the chart is shown?")[1] == "the chart is shown"


def test_llm_planner_hook_parses_lines_and_falls_back():
    p = Planner(lambda prompt: "1. When does the red circle leave?\n- the blue square enters\nok", name="fake")
    assert p("what enters after the red circle leaves?") == (
        ["When does the red circle leave", "the blue square enters"], "fake")

    def broken(prompt):
        raise ConnectionError("down")

    queries, note = Planner(broken, name="srv")("what enters after the red circle leaves?")
    assert queries == rewrite("what enters after the red circle leaves?") and "srv failed" in note
    assert parse_queries("") == []


@pytest.mark.parametrize("text,expected", [
    ("B", 1), ("(C) right", 2), ("The answer is D.", 3), ("answer: a", None), ("option A", 0),
    ("I think it enters from the right", 2), ("bottom", 3), ("<answer><answer>", None), ("", None),
    ("it stopped, then it was gone", None),  # "top" inside "stopped" names no option
    ("rightmost", None), ("from the top.", 1),
])
def test_parse_choice(text, expected):
    assert parse_choice(text, OPTIONS)[0] == expected


def test_sample_plan_segments_denser_plus_global():
    times, desc = sample_plan(60.0, [{"start": 10.0, "end": 14.0, "score": 0.9}], fps=2.0,
                              max_frames=32, global_frames=4, margin=1.0)
    inside = [t for t in times if 9.0 <= t <= 15.0]
    assert len(inside) >= 12 and len(times) % 2 == 0 and times == sorted(times)
    assert "9.0-15.0 s" in desc
    whole, _ = sample_plan(60.0, [], fps=2.0, max_frames=8, global_frames=2, margin=1.0)
    assert len(whole) == 8 and whole[0] < 5 and whole[-1] > 55


# -- the graph with real tiny models ------------------------------------------------------
def test_every_node_runs_and_events_stream_in_order(agent, world):
    events = list(agent.stream(world["video"], "from which side does the green triangle enter?", OPTIONS))
    types = [e["type"] for e in events]
    nodes = [e["node"] for e in events if e["type"] == "node"]
    assert nodes[0] == "plan" and nodes[-1] == "answer" and "ground" in nodes and "decide" in nodes
    assert types[0] == "plan" and types[-1] == "result"
    # plan < round < window... < candidates < decide ... < qa < answer
    assert types.index("plan") < types.index("round") < types.index("window") < types.index("candidates")
    assert types.index("candidates") < types.index("decide") < types.index("qa") < types.index("answer")
    rounds = [e["round"] for e in events if e["type"] in ("round", "window", "candidates", "decide")]
    assert rounds == sorted(rounds)
    answer = events[-1]["answer"]
    assert isinstance(answer, Answer)
    assert answer.choice in ("A", "B", "C", "D") and answer.answer == OPTIONS["ABCD".index(answer.choice)]
    windows = [e for e in events if e["type"] == "window"]
    qa_cost = answer.trace["qa"]["cost"]
    # the default answers multiple-choice questions by its retriever's statement matching: no VLM call
    assert qa_cost["model_calls"] == 0 and qa_cost["embedder_frames"] > 0
    assert answer.cost["model_calls"] == len(windows) == sum(r["cost"]["model_calls"] for r in answer.trace["rounds"])
    # frames: the grounding looks' and the QA clips' (each clip of the answerer is several frames)
    assert answer.cost["frames"] == sum(r["cost"]["frames"] for r in answer.trace["rounds"]) + qa_cost["frames"]
    assert qa_cost["frames"] >= len(answer.frame_times)
    assert answer.frame_times and answer.cost["visual_tokens"] > 0 and 0.0 <= answer.confidence <= 1.0
    d = answer.to_dict()
    assert set(d) >= {"answer", "choice", "segments", "confidence", "cost", "warnings"}
    assert set(d["cost"]) == set(COST_KEYS)
    assert not any("not trained" in w for w in answer.warnings)  # the shipped default is trained
    json.dumps(answer.to_dict(trace=True))


def test_second_question_reuses_the_frame_cache(agent, world):
    reader = shared_reader(world["video"])
    q = "when does the green triangle enter?"
    agent.ask(world["video"], q, strategy="uniform")
    before = reader.frames_decoded
    a = agent.ask(world["video"], q, strategy="uniform")
    assert reader.frames_decoded == before  # same frames: nothing decoded again
    assert a.choice is None and isinstance(a.answer, str)  # open question
    assert a.cost["model_calls"] == 1 and a.trace["rounds"][0]["cost"]["model_calls"] == 0


@pytest.mark.parametrize("max_rounds", [1, 3])
def test_low_confidence_regrounds_exactly_max_rounds(agent, world, max_rounds):
    scripted = ScriptedGrounder(score=0.1)
    a = Agent(grounder=scripted, answerer=agent.answerer, budget=SMALL, max_rounds=max_rounds, **QA)
    events = list(a.stream(world["video"], "what colour is the shape that enters after the red circle leaves?",
                           OPTIONS))
    answer = events[-1]["answer"]
    assert len(scripted.calls) == max_rounds == len(answer.trace["rounds"])
    assert [e["decision"] for e in events if e["type"] == "decide"] == ["ground"] * (max_rounds - 1) + ["answer"]
    queries = answer.trace["queries"]
    assert [q for q, _ in scripted.calls] == [queries[r % len(queries)] for r in range(max_rounds)]
    assert [b.top_k for _, b in scripted.calls] == [SMALL.top_k + r for r in range(max_rounds)]
    assert any("low grounding confidence" in w for w in answer.warnings)
    qa_calls = answer.trace["qa"]["cost"]["model_calls"]  # 0: the default answers by statement matching
    assert answer.segments[0].start == 10.0 and answer.cost["model_calls"] == max_rounds + qa_calls


def test_confident_grounding_answers_after_one_round(agent, world):
    scripted = ScriptedGrounder(score=0.9)
    a = Agent(grounder=scripted, answerer=agent.answerer, budget=SMALL, max_rounds=5, **QA)
    answer = a.ask(world["video"], "what colour is the shape that enters after the red circle leaves?", OPTIONS)
    assert len(scripted.calls) == 1 and not any("low grounding" in w for w in answer.warnings)
    assert all(9.0 <= t <= 15.0 or t in answer.frame_times for t in answer.frame_times)
    assert sum(9.0 <= t <= 15.0 for t in answer.frame_times) >= 4  # the segment, densely


def test_langgraph_json_points_at_the_compiled_graph():
    spec = json.loads((ROOT / "langgraph.json").read_text())
    module, name = spec["graphs"]["agent"].split(":")
    assert module.endswith("agent/graph.py") and name == "graph"
    from agent.graph import graph

    assert {"plan", "ground", "decide", "answer"} <= set(graph.get_graph().nodes)


# -- CLI --------------------------------------------------------------------------------
def test_cli_questions_file_one_result_per_line(world, tmp_path, capsys):
    rows = [{"question": r["question"], "options": r["options"]} for r in world["rows"][:2]]
    rows.append({"question": "what happens after the red circle leaves?"})
    f = tmp_path / "q.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    rc = main(["ask", str(world["video"]), "--questions", str(f), "--strategy", "uniform",
               "--qa-max-new-tokens", "4"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and len(out) == 3
    parsed = [json.loads(line) for line in out]
    assert [p["choice"] is None for p in parsed] == [False, False, True]
    # an open question gets a sentence back, never a bare letter
    assert len(parsed[2]["answer"].split()) >= 3 and parsed[2]["answer"].strip(" .()") not in "ABCD"


def test_open_answers_are_sentences_or_say_why_not():
    from agent.answerer import open_answer

    assert open_answer("The circle turns red.", []) == ("The circle turns red.", None)
    text, warn = open_answer(" B ", [{"start": 12.0, "end": 15.5, "score": 0.8}])
    assert text == "No usable answer: the QA model cannot answer this open question (it replied 'B'); " \
                   "the moment found for it is 12.0-15.5 s." and "open question" in warn
    assert open_answer("", [])[0].startswith("No usable answer") and "replied nothing" in open_answer("", [])[1]


def test_cli_plot(world, tmp_path, capsys):
    png = tmp_path / "t.png"
    rc = main(["ask", str(world["video"]), "when does the green triangle enter?", "--json",
               "--max-calls", "2", "--max-new-tokens", "12", "--max-rounds", "1",
               "--qa-max-new-tokens", "4", "--plot", str(png)])
    assert rc == 0 and png.stat().st_size > 0
    assert json.loads(capsys.readouterr().out)["cost"]["model_calls"] == 3


def _bad(args, capsys):
    rc = main(["ask", *args])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_cli_bad_inputs(world, tmp_path, capsys):
    v = str(world["video"])
    assert "not found" in _bad([str(tmp_path / "nope.mp4"), "q?"], capsys)
    corrupt = tmp_path / "bad.mp4"
    corrupt.write_bytes(b"\x00not a video" * 100)
    _bad([str(corrupt), "what?"], capsys)
    assert "empty" in _bad([v, "  "], capsys)
    assert "without a question" in _bad([v, "--option", "a", "--option", "b"], capsys)
    assert "session" in _bad([v, "what?", "--session", "bad name/../x"], capsys)
    assert "session" in _bad([v, "what?", "--session", "x" * 65], capsys)
    f = tmp_path / "bad.jsonl"
    f.write_text('{"question": "what?"}\n{"question": \n')
    assert "line 2" in _bad([v, "--questions", str(f)], capsys)
    f.write_text('{"question": "what?"}\n\n{"options": ["a", "b"]}\n')
    assert "line 3" in _bad([v, "--questions", str(f)], capsys)
    assert "strategy" in _bad([v, "what?", "--strategy", "random"], capsys)


def test_session_survives_a_process_restart(world, tmp_path):
    env = {**os.environ, "GROUNDQA_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    base = [sys.executable, "-m", "groundqa", "ask", str(world["video"])]
    flags = ["--session", "s1", "--json", "--strategy", "uniform", "--qa-max-new-tokens", "4"]
    first = subprocess.run([*base, "from which side does the green triangle enter?", *flags,
                            "--option", "left", "--option", "right"],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["session"]["history"] == []
    second = subprocess.run([*base, "and what colour is it?", *flags], capture_output=True,
                            text=True, env=env, cwd=ROOT, timeout=300, check=False)
    assert second.returncode == 0, second.stderr
    history = json.loads(second.stdout)["session"]["history"]
    assert [h["question"] for h in history] == ["from which side does the green triangle enter?"]
    assert (tmp_path / "home" / "sessions.sqlite").is_file()


def test_planner_with_a_real_causal_lm_folder(tmp_path, agent, world):
    """--planner-model with a transformers causal LM folder (tiny, untrained Qwen2): it runs,
    and what it writes becomes the queries, or the rewrite when no line is usable."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from grounder.tiny import build_tokenizer

    tok = build_tokenizer()
    config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1,
                         eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"))
    Qwen2ForCausalLM(config).save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    planner = Planner.from_spec(str(tmp_path / "lm"), max_new_tokens=12)
    q = "what colour is the shape that enters after the red circle leaves?"
    queries, note = planner(q)
    assert planner.calls == 1 and queries and all(isinstance(s, str) and s for s in queries)
    assert note == str(tmp_path / "lm") or (note.startswith("rewrite") and queries == rewrite(q))
    scripted = ScriptedGrounder(score=0.9)
    a = Agent(grounder=scripted, answerer=agent.answerer, planner=planner, budget=SMALL, **QA)
    answer = a.ask(world["video"], q, OPTIONS)
    assert scripted.calls[0][0] == answer.trace["queries"][0] and planner.calls == 2


def test_session_history_in_process_and_one_video_per_session(agent, world, tmp_path, monkeypatch):
    from grounder.errors import InputError

    monkeypatch.setenv("GROUNDQA_HOME", str(tmp_path / "home"))
    other = generate_world(tmp_path / "other", n_videos=1, minutes=(1, 1), seed=12)[0]["video"]
    a = Agent(grounder=ScriptedGrounder(score=0.9), answerer=agent.answerer, budget=SMALL, **QA)
    first = a.ask(world["video"], "from which side does the green triangle enter?", OPTIONS, session="t.1")
    second = a.ask(world["video"], "and then?", session="t.1")
    assert first.history == [] and [h["question"] for h in second.history] == [
        "from which side does the green triangle enter?"]
    assert "Earlier questions" in second.trace["qa"]["prompt"]
    assert len(a.history("t.1")) == 2 and a.history("fresh") == []
    with pytest.raises(InputError, match="another session name"):
        a.ask(tmp_path / "other" / other, "what?", session="t.1")


def test_a_follow_up_that_refers_back_grounds_the_earlier_moment_first(agent, world, tmp_path, monkeypatch):
    from agent.planner import Planner, follow_up, refers_back

    monkeypatch.setenv("GROUNDQA_HOME", str(tmp_path / "home"))
    grounder = ScriptedGrounder(score=0.9)
    a = Agent(grounder=grounder, answerer=agent.answerer, budget=SMALL, max_rounds=1, **QA)
    a.ask(world["video"], "from which side does the green triangle enter?", OPTIONS, session="f")
    first_query = grounder.calls[0][0]
    second = a.ask(world["video"], "and what colour is it?", session="f")
    assert grounder.calls[1][0] == first_query  # "it" is the green triangle: its moment is grounded
    assert second.trace["queries"][0] == first_query and "refers back" in second.trace["planner"]
    unrelated = a.ask(world["video"], "when does the red square leave?", session="f")
    assert unrelated.trace["queries"][0] != first_query  # a question that names its own subject
    assert follow_up(["q"], "what is it?", []) == (["q"], False)  # nothing to refer back to
    # "that" as a relative pronoun names its own subject; "that" after a preposition or verb points back
    assert not refers_back("what colour is the shape that enters right after the cyan cross leaves?")
    for q in ("and what happened after that?", "that circle, where does it go?", "is that the red one?"):
        assert refers_back(q), q
    seen: list[str] = []
    planner = Planner(generate=lambda prompt: seen.append(prompt) or "when does it happen")
    planner("and what colour is it?", [{"question": "which shape enters first?", "answer": "B. circle",
                                        "segments": [{"start": 1.0, "end": 4.0, "score": 0.9}]}])
    assert "Earlier question: which shape enters first? -> answer: B. circle (seen at 1.0-4.0 s)" in seen[0]


def test_two_processes_on_one_session_keep_every_turn(world, tmp_path):
    """20 questions each from two `groundqa ask --session` processes at once: 40 turns kept."""
    from agent.graph import build_graph
    from agent.sessions import open_saver

    home = tmp_path / "home"
    env = {**os.environ, "GROUNDQA_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    procs = []
    for name in ("a", "b"):
        f = tmp_path / f"{name}.jsonl"
        f.write_text("".join(json.dumps({"question": f"what happens {name}{i}?"}) + "\n" for i in range(20)))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "groundqa", "ask", str(world["video"]), "--questions", str(f), "--session", "shared",
             "--strategy", "uniform", "--max-calls", "1", "--max-new-tokens", "8", "--qa-max-new-tokens", "2"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-2000:]
        assert len(out.splitlines()) == 20
    graph = build_graph(checkpointer=open_saver(home / "sessions.sqlite"))
    history = graph.get_state({"configurable": {"thread_id": "shared"}}).values["history"]
    asked = sorted(h["question"] for h in history)
    assert asked == sorted(f"what happens {n}{i}?" for n in "ab" for i in range(20))
