"""The long-video QA loaders and scorers on the benchmarks' real annotation files (../shared/data/
benchmarks: MLVU dev, LongVideoBench val and test, EgoSchema's public subset), with the check
values their READMEs computed by each benchmark's official rule."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from evals.loaders import load_benchmark
from evals.score import score


def _answers(path, rows, value, key="answer"):
    path.write_text("".join(json.dumps({"id": r["id"], key: value}) + "\n" for r in rows))
    return path


def test_mlvu_dev_is_read_and_scored_as_the_official_template_does(shared_data, tmp_path):
    d = shared_data / "benchmarks" / "mlvu"
    rows = load_benchmark("mlvu", d)
    assert len(rows) == 2175  # the 7 multiple-choice tasks; the 2 generation tasks are left out
    assert Counter(r["qtype"] for r in rows) == {"plotQA": 539, "findNeedle": 355, "ego": 352, "topic_reasoning": 264,
                                                 "order": 259, "count": 206, "anomaly_reco": 200}
    def of(video):
        return [r for r in rows if r["video"].rsplit("/", 1)[-1] == video]

    # the answer is none of the options in two needle rows: "@", which no prediction matches
    assert sorted(r["video"].rsplit("/", 1)[-1] for r in rows if r["answer"] == "@") == ["needle_4.mp4", "needle_5.mp4"]
    # a repeated option equal to the answer: the last one's letter
    r21 = next(r for r in of("movie101_21.mp4") if r["options"] == ["Six", "Three", "Three", "Eight"])
    assert r21["answer"] == "C"
    # four empty options and an empty answer: the last empty one
    assert next(r for r in of("movie101_89.mp4") if r["options"] == [""] * 4)["answer"] == "D"
    got = score("mlvu", str(d), str(_answers(tmp_path / "a.jsonl", rows, "A")))
    assert got["M-Avg"] == pytest.approx(25.0386, abs=0.0001)  # the README's check value
    assert got["accuracy"] == pytest.approx(25.0115, abs=0.0001) and "M-Avg" in got["headline"]
    assert got["per_category"]["plotQA"] == pytest.approx(100 * 134 / 539)
    assert got["scored"] == "scored 2175 of 2175 rows (0 missing, 0 unparsed)"
    # the needle rows without a true option: MLVU's check_ans compares "@" with "@" and counts it
    # right, so `official` does too; our own protocol never counts such a row right
    needle = [r for r in rows if r["answer"] == "@"]
    at = _answers(tmp_path / "n.jsonl", needle, "@")
    assert score("mlvu", str(d), str(at))["accuracy"] == 100.0
    wrong = score("mlvu", str(d), str(at), protocol="groundqa")
    assert wrong["missing"] == 2173 and wrong["accuracy"] == 0.0


def test_longvideobench_val_json_and_parquet_agree_and_score_by_index(shared_data, tmp_path):
    d = shared_data / "benchmarks" / "longvideobench"
    js = load_benchmark("longvideobench", d / "lvb_val.json")
    pq = load_benchmark("longvideobench", d / "validation-00000-of-00001.parquet")
    assert len(js) == len(pq) == 1337
    assert all(a["id"] == b["id"] and a["options"] == b["options"] and a["answer"] == b["answer"]
               and a["video"] == b["video"] for a, b in zip(js, pq))
    assert Counter(len(r["options"]) for r in js) == {5: 983, 4: 353, 3: 1}  # "N/A" padding dropped
    # the video is video_path, not video_id (135 rows differ)
    odd = [r for r in js if r["id"].startswith("@")]
    assert len(odd) == 135 and all(not r["video"].rsplit("/", 1)[-1].startswith("@") for r in odd)
    # repeated options are kept: letters stay the index's
    assert sum(len(set(r["options"])) < len(r["options"]) for r in js) == 8
    test = load_benchmark("longvideobench", d / "test-00000-of-00001.parquet")
    assert len(test) == 5341 and {r["answer"] for r in test} == {None}  # answers withheld
    got = score("longvideobench", str(d / "lvb_val.json"), str(_answers(tmp_path / "a.jsonl", js, "A", "choice")))
    assert got["accuracy"] == pytest.approx(100 * 291 / 1337)  # 21.765, the README's check value


def test_egoschema_subset_scores_the_official_submission_form(shared_data, tmp_path):
    d = shared_data / "benchmarks" / "egoschema"
    rows = load_benchmark("egoschema", d)
    assert len(rows) == 500 and Counter(r["answer"] for r in rows) == {"A": 101, "B": 108, "C": 91, "D": 83, "E": 117}
    # the 20 preview questions are none of the 500: no question text, five option slots
    assert not any(r["question"] for r in rows) and all(len(r["options"]) == 5 for r in rows)
    answers = json.loads((d / "subset_answers.json").read_text())
    sub = tmp_path / "submission.json"
    sub.write_text(json.dumps({uid: 0 for uid in answers}))  # {q_uid: index}, as the authors' server takes
    got = score("egoschema", str(d), str(sub))
    assert got["accuracy"] == pytest.approx(20.2) and got["scored"] == "scored 500 of 500 rows (0 missing, 0 unparsed)"
    sub.write_text(json.dumps(answers))
    assert score("egoschema", str(d), str(sub))["accuracy"] == 100.0


def test_other_systems_prediction_files_are_scored_as_they_are(shared_data, tmp_path):
    """ReXTime's submission keys (qid, pred_relevant_windows, ans) and lmms-eval's sample logs (the
    row under `doc`, the reply in `filtered_resps`) score like our own rows."""
    d = shared_data / "benchmarks" / "longvideobench" / "lvb_val.json"
    rows = load_benchmark("longvideobench", d)[:20]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(json.loads(d.read_text())[:20]))
    logs = tmp_path / "samples.jsonl"
    logs.write_text("".join(json.dumps({"doc_id": i, "doc": {"id": r["id"]}, "resps": [[f"{r['answer']}."]],
                                        "filtered_resps": [f"{r['answer']}."]}) + "\n" for i, r in enumerate(rows)))
    assert score("longvideobench", str(gt), str(logs))["accuracy"] == 100.0  # "B." is a lone letter
    rex = tmp_path / "rextime_sub.jsonl"
    rex.write_text("".join(json.dumps({"qid": r["id"], "pred_relevant_windows": [[0.0, 1.0, 0.9]], "ans": "A"}) + "\n"
                           for r in rows))
    got = score("longvideobench", str(gt), str(rex))
    assert got["missing"] == 0 and got["accuracy"] == 100.0 * sum(r["answer"] == "A" for r in rows) / 20


def test_a_rextime_submission_on_the_real_val_file(shared_data, tmp_path):
    gt = shared_data / "benchmarks" / "rextime" / "rextime_val.jsonl"
    rows = [json.loads(line) for line in gt.read_text().splitlines()]
    sub = tmp_path / "sub.jsonl"  # its own keys: qid, pred_relevant_windows [[s, e, score]], ans
    sub.write_text("".join(json.dumps({"qid": r["qid"], "pred_relevant_windows": [[*r["relevant_windows"][0], 1.0]],
                                       "ans": r["ans"]}) + "\n" for r in rows))
    got = score("rextime", str(gt), str(sub))
    assert got["n"] == 921 and got["missing"] == 0 and got["unparsed"] == 0 and got["Acc"] == 100.0
    assert got["R1@0.5"] > 99.0  # the truth's first window as the prediction (a few rows have several)
    sub.write_text("".join(json.dumps({"qid": r["qid"], "pred_relevant_windows": [[r["relevant_windows"][0][1],
                                                                                    r["relevant_windows"][0][0], 1.0]],
                                       "ans": "Z"}) + "\n" for r in rows))
    reversed_ = score("rextime", str(gt), str(sub))
    assert reversed_["R1@0.3"] == 0.0 and reversed_["Acc"] == 0.0  # a reversed window scores IoU 0


def test_mlvu_official_reads_replies_as_its_check_ans(shared_data, tmp_path):
    """Free-text replies on the real MLVU dev files, scored under `official` and by our transcription
    of MLVU's choice_bench.py: the character before the first ")" against the letter, as is."""
    from tests.official_mlvu import choice_bench

    d = shared_data / "benchmarks" / "mlvu"
    rows = load_benchmark("mlvu", d)
    rng = random.Random(13)
    lines, run = [], []
    for r in rows:
        if rng.random() < 0.1:
            continue  # never run: not in its per-task counts
        letter = r["answer"] if rng.random() < 0.5 else "ABCD"[rng.randrange(4)]
        reply = rng.choice([f"({letter}) {r['options'][0] if r['options'] else ''}", f"{letter}) it is", letter,
                            letter.lower(), f"{letter}.", f"The answer is ({letter})", "", ")", "(@)",
                            f"Best Option: ({letter})"])
        lines.append({"id": r["id"], "answer": reply})
        run.append((r["qtype"], r["answer"], reply))
    pred = tmp_path / "replies.jsonl"
    pred.write_text("".join(json.dumps(x) + "\n" for x in lines))
    ours = score("mlvu", str(d), str(pred))
    theirs = choice_bench(run)
    assert ours["protocol"] == "mlvu" and ours["missing"] == len(rows) - len(lines)
    assert ours["M-Avg"] == pytest.approx(theirs["Avg"], abs=0.01)
    for task, v in ours["per_category"].items():
        assert v == pytest.approx(theirs[task], abs=0.01), task
    # our normalising reader counts "b" and "B." right: the two protocols really differ here
    assert score("mlvu", str(d), str(pred), protocol="groundqa", extract="lmms-eval")["accuracy"] > ours["accuracy"]


def test_longvideobench_official_reads_replies_as_its_parser(shared_data, tmp_path):
    """Free-text replies on the real val file, scored under `official` and by our transcription of
    the authors' parser in lmms-eval. Where it finds no letter it draws a random one; the transcription
    takes a guess that is always wrong, which is what counting such a reply unparsed means."""
    from tests.official_longvideobench import aggregate

    d = shared_data / "benchmarks" / "longvideobench"
    rows = load_benchmark("longvideobench", d / "lvb_val.json")
    rng = random.Random(19)
    lines, run = [], []
    for r in rows:
        letter = r["answer"] if rng.random() < 0.5 else "ABCDE"[rng.randrange(len(r["options"]))]
        reply = rng.choice([letter, f"({letter})", f"The answer is {letter}.", f"Best option: {letter}",
                            f"{letter}. {r['options'][0]}", "I would say it is the third one here.",
                            "no idea", "E", "Based on the video", f"{letter.lower()}"])
        lines.append({"id": r["id"], "answer": reply})
        run.append((reply, len(r["options"]), r["answer"], r["duration_group"], r["qtype"]))
    pred = tmp_path / "replies.jsonl"
    pred.write_text("".join(json.dumps(x) + "\n" for x in lines))
    ours = score("longvideobench", str(d / "lvb_val.json"), str(pred))
    theirs = aggregate(run, guess=lambda choices: "never")
    assert ours["protocol"] == "longvideobench" and ours["unparsed"] > 0
    assert ours["accuracy"] == pytest.approx(theirs["Overall"], abs=0.01)
    for cat, v in ours["per_category"].items():
        assert v == pytest.approx(theirs[f"cat:{cat}"], abs=0.01), cat
    for dur, v in ours["per_duration_group"].items():
        assert v == pytest.approx(theirs[f"dur:{dur}"], abs=0.01), dur
