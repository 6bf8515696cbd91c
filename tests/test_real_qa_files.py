"""The long-video QA loaders and scorers on the benchmarks' real annotation files (../shared/data/
benchmarks: MLVU dev, LongVideoBench val and test, EgoSchema's public subset), with the check
values their READMEs computed by each benchmark's official rule."""

from __future__ import annotations

import json
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
    # the needle rows without a true option are wrong whatever is answered
    needle = [r for r in rows if r["answer"] == "@"]
    wrong = score("mlvu", str(d), str(_answers(tmp_path / "n.jsonl", needle, "@")))
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
