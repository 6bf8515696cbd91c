"""`groundqa eval score --protocol` agrees with the scorers papers publish, on the real annotation
files: seeded predictions on Charades-STA and ActivityNet Captions (TimeZero's scorer is their
official one here) and TVGBench (Time-R1's), with the edge cases that move numbers (reversed, zero-length and
out-of-range predictions, IoU exactly at 0.3 / 0.5 / 0.7, missing and unparsed rows), scored by
`evals.score` and by our transcriptions of the two scorers (tests/official_grounding.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from evals.score import score
from tests.official_grounding import time_r1_scores, timezero_scores

METRICS = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")


def _timestamps_json(path: Path) -> tuple[Path, list[tuple[str, list[float], float]]]:
    """TimeZero's layout, {video: {duration, timestamps: [[s, e], ...]}}: rows `video#i` as our loader names them."""
    data = json.loads(path.read_text())
    rows = [(f"{vid}#{i}", [float(ts[0]), float(ts[1])], float(ann["duration"]))
            for vid, ann in data.items() for i, ts in enumerate(ann["timestamps"])]
    return path, rows


def _charades(shared: Path) -> tuple[Path, list[tuple[str, list[float], float]]]:
    return _timestamps_json(shared / "benchmarks" / "charades_sta" / "charades_test.json")


def _activitynet(shared: Path) -> tuple[Path, list[tuple[str, list[float], float]]]:
    return _timestamps_json(shared / "benchmarks" / "activitynet_captions" / "val_2.json")


def _tvgbench(shared: Path) -> tuple[Path, list[tuple[str, list[float], float]]]:
    path = shared / "benchmarks" / "tvgbench" / "tvgbench.json"
    data = json.loads(path.read_text())
    rows = []
    for i, d in enumerate(data):
        a, b = d["answer"].split("-")  # Time-R1's loader splits the answer on "-"
        rows.append((f"tvgbench_{i}", [float(a), float(b)], float(d["duration"])))
    return path, rows


def _at(gt: list[float], t: float) -> list[float] | None:
    """A prediction whose IoU with `gt` is exactly `t` in floating point, if this one is."""
    gs, ge = gt
    if ge <= gs:
        return None
    pred = [gs, gs + (ge - gs) * t]
    inter = max(0.0, min(pred[1], ge) - max(pred[0], gs))
    return pred if inter / (max(pred[1], ge) - min(pred[0], gs)) == t else None


def _predictions(rows, seed: int):
    """(prediction file rows, the rows a scorer sees: (pred or None, gt)), with edge cases."""
    rng = random.Random(seed)
    lines, seen, kinds = [], [], {"exact": 0}
    for rid, (gs, ge), duration in rows:
        r = rng.random()
        if r < 0.10:
            continue  # never predicted
        if r < 0.18:
            pred = None  # unparsed
        elif r < 0.23:
            pred = [ge, gs]  # reversed
        elif r < 0.28:
            pred = [(gs + ge) / 2] * 2  # zero length, inside the truth
        elif r < 0.33:
            pred = [duration - 1.0, duration + 5.0]  # past the end of the video
        elif r < 0.53 and (pred := _at([gs, ge], rng.choice((0.3, 0.5, 0.7)))) is not None:
            kinds["exact"] += 1
        else:
            pred = [gs + rng.gauss(0, 3), ge + rng.gauss(0, 3)]
        lines.append({"id": rid, "pred": pred if pred is not None else [None, None]})
        seen.append((pred, [gs, ge]))
    return lines, seen, kinds


@pytest.mark.parametrize("bench, load, transcription", [
    ("charades", _charades, timezero_scores),
    ("activitynet", _activitynet, timezero_scores),
    ("tvgbench", _tvgbench, time_r1_scores),
])
def test_official_protocol_agrees_with_the_papers_scorer(bench, load, transcription, shared_data, tmp_path):
    ann, rows = load(shared_data)
    lines, seen, kinds = _predictions(rows, seed=7)
    assert kinds["exact"] > 20  # enough rows land exactly on a threshold for >= vs > to matter
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(x) + "\n" for x in lines))
    ours = score(bench, str(ann), str(pred), protocol="official")
    theirs = transcription(seen)
    for m in METRICS:  # TVGBench has 11 zero-length truths: a point prediction on one makes
        # Time-R1's mIoU NaN (numpy's 0/0), and so ours under its protocol
        assert ours[m] == pytest.approx(theirs[m], abs=0.01, nan_ok=True), (m, ours[m], theirs[m])
    point = [i for i, (p, gt) in enumerate(seen) if p is not None and max(p[1], gt[1]) - min(p[0], gt[0]) <= 0]
    if point:  # and without those rows, the means themselves agree
        keep = [x for i, x in enumerate(lines) if i not in set(point)]
        pred.write_text("".join(json.dumps(x) + "\n" for x in keep))
        ours = score(bench, str(ann), str(pred), protocol="official")
        theirs = transcription([x for i, x in enumerate(seen) if i not in set(point)])
        assert all(ours[m] == pytest.approx(theirs[m], abs=0.01) for m in METRICS), (ours, theirs)
        clean_miou = ours["mIoU"]
        pred.write_text("".join(json.dumps(x) + "\n" for x in lines))
        ours = score(bench, str(ann), str(pred), protocol="official")
    else:
        clean_miou = ours["mIoU"]
    missing, unparsed = len(rows) - len(lines), sum(p is None for p, _ in seen)
    assert (ours["missing"], ours["unparsed"], ours["n"]) == (missing, unparsed, len(lines))
    assert ours["scored"] == f"scored {len(lines)} of {len(rows)} rows ({missing} missing, {unparsed} unparsed)"
    # every ground-truth row counts under ours: the same predictions score lower
    mine = score(bench, str(ann), str(pred), protocol="groundqa")
    assert mine["n"] == len(rows) and mine["mIoU"] < clean_miou


def test_strict_and_inclusive_thresholds_differ_on_exact_hits(shared_data, tmp_path):
    ann, rows = _tvgbench(shared_data)
    exact = [(rid, p) for rid, gt, _ in rows if (p := _at(gt, 0.5)) is not None]
    assert len(exact) > 50
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps({"id": rid, "pred": p}) + "\n" for rid, p in exact))
    strict = score("tvgbench", str(ann), str(pred), protocol="time-r1")
    inclusive = score("tvgbench", str(ann), str(pred), protocol="timezero")
    assert strict["R1@0.5"] == 0.0 and inclusive["R1@0.5"] == 100.0 and strict["protocol"] == "time-r1"


def test_a_bad_protocol_is_one_line(shared_data, tmp_path, capsys):
    from groundqa.cli import main

    ann, _ = _tvgbench(shared_data)
    pred = tmp_path / "pred.jsonl"
    pred.write_text(json.dumps({"id": "tvgbench_0", "pred": [1.0, 2.0]}) + "\n")
    assert main(["eval", "score", "--bench", "tvgbench", "--gt", str(ann), "--pred", str(pred),
                 "--protocol", "lenient"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown protocol 'lenient'" in err


def test_nextgqa_official_agrees_with_its_eval_ground(shared_data, tmp_path):
    """The real gsub_test.json + test.csv, seeded predictions with the edge cases (points inside
    and outside, reversed, disjoint, exact, a truth starting at -0.1 s, unpredicted questions,
    right and wrong answers), against our transcription of eval_ground (tests/official_nextgqa.py)."""
    import random

    from official_nextgqa import eval_ground

    from evals.loaders import load_benchmark
    from evals.score import score

    d = shared_data / "benchmarks" / "nextgqa"
    gsub = json.loads((d / "gsub_test.json").read_text())
    rows = load_benchmark("nextgqa", d / "test.csv")
    rng = random.Random(7)
    preds, pred_ground, pred_qa = [], {}, {}
    negative = 0
    for i, r in enumerate(rows):
        if i % 9 == 4:
            continue  # never predicted
        raw = r.get("spans_raw") or [[0.0, 10.0]]
        s, e = raw[0]
        negative += s < 0
        kind = i % 7
        span = {0: [s, e], 1: [s + 0.5 * (e - s), e + 3.0], 2: [(s + e) / 2] * 2, 3: [e + 5.0, e + 5.0],
                4: [e, s], 5: [e + 1.0, e + 9.0], 6: [round(s - rng.random() * 3, 1), round(e, 1)]}[kind]
        letter = r["answer"] if i % 3 else "ABCDE"[("ABCDE".index(r["answer"]) + 1) % len(r["options"])]
        preds.append({"id": r["id"], "pred": span, "answer": letter})
        pred_ground[r["id"]] = span
        pred_qa[r["id"]] = {"answer": r["answer"], "prediction": letter}
    assert negative > 0  # the truths published with a start of -0.1 s are scored as published
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(p) + "\n" for p in preds))
    ours = score("nextgqa", str(d / "test.csv"), str(pred))
    theirs = eval_ground(gsub, pred_ground, pred_qa)
    assert ours["protocol"] == "nextgqa"
    for k, v in theirs.items():
        assert ours[k] == pytest.approx(v, abs=0.01), k


def test_rextime_official_agrees_with_its_scorer(shared_data, tmp_path):
    """The real val file (one truth window per row), seeded predictions with the edge cases (reversed
    and point windows, disjoint ones, answers in other spellings, which its raw string comparison
    counts wrong), against our transcription of rextime_eval (tests/official_rextime.py)."""
    from official_rextime import rextime_scores

    from evals.score import score

    gt_path = shared_data / "benchmarks" / "rextime" / "rextime_val.jsonl"
    gt = [json.loads(line) for line in gt_path.read_text().splitlines()]
    sub = []
    for i, d in enumerate(gt):
        s, e = d["relevant_windows"][-1]
        window = {0: [s, e], 1: [s + 0.4 * (e - s), e + 2.0], 2: [e, s], 3: [s, s], 4: [e + 3.0, e + 9.0],
                  5: [max(0.0, s - 1.0), e - 0.3 * (e - s)]}[i % 6]
        ans = {0: d["ans"], 1: d["ans"].lower(), 2: f"({d['ans']})", 3: "ABCD"[("ABCD".index(d["ans"]) + 1) % 4]}[i % 4]
        sub.append({"qid": d["qid"], "pred_relevant_windows": [[*window, 0.9], [0.0, 1.0, 0.1]], "ans": ans})
    pred = tmp_path / "sub.jsonl"
    pred.write_text("".join(json.dumps(x) + "\n" for x in sub))
    ours = score("rextime", str(gt_path), str(pred))
    theirs = rextime_scores(sub, gt)
    assert ours["protocol"] == "rextime"
    for k, v in theirs.items():
        assert ours[k] == pytest.approx(v, abs=0.01), k
    assert ours["Acc"] == pytest.approx(25.0, abs=0.2)  # only the exact letter counts


def _lvbench_rows() -> list[dict]:
    """Rows written by hand in LVBench's own layout (no official file is available here: its
    folder README gives the format), with multi-category questions."""
    kinds = ["key information retrieval", "event understanding", "summarization", "entity recognition",
             "reasoning", "temporal grounding"]
    rng = random.Random(3)
    videos = []
    for v in range(6):
        qa = []
        for q in range(8):
            uid = v * 100 + q
            cats = rng.sample(kinds, rng.choice((1, 1, 2, 3)))
            qa.append({"uid": uid, "question": f"What happens {q}?\n(A) one\n(B) two\n(C) three\n(D) four",
                       "answer": "ABCD"[rng.randrange(4)], "question_type": cats,
                       "time_reference": f"00:{10 + q:02d}-00:{20 + q:02d}"})
        videos.append({"key": f"vid{v}", "type": "documentary", "video_info": {"duration_minutes": 60.0},
                       "qa": qa})
    return videos


def test_lvbench_official_agrees_with_its_scorer(tmp_path):
    from tests.official_lvbench import compute_accuracy

    videos = _lvbench_rows()
    ann = tmp_path / "video_info.meta.jsonl"
    ann.write_text("".join(json.dumps(v) + "\n" for v in videos))
    rng = random.Random(5)
    answers = {}
    for v in videos:
        for qa in v["qa"]:
            r = rng.random()
            if r < 0.15:
                continue  # unanswered: left out
            letter = qa["answer"] if r < 0.6 else "ABCD"[rng.randrange(4)]
            answers[str(qa["uid"])] = rng.choice([letter, f"({letter}) the option", f"{letter}. the option",
                                                  f" ({letter})", letter.lower()])  # lower case: wrong
    sub = tmp_path / "answers.json"
    sub.write_text(json.dumps(answers))  # its submission form, {uid: reply}
    ours = score("lvbench", str(ann), str(sub))
    theirs = compute_accuracy(answers, videos)
    assert ours["protocol"] == "lvbench" and ours["missing"] > 0
    assert ours["accuracy"] == pytest.approx(theirs["acc"], abs=0.01)
    assert set(ours["per_category"]) == set(theirs) - {"acc"}
    for c, v in ours["per_category"].items():
        assert v == pytest.approx(theirs[c], abs=0.01), c


def test_eval_report_scores_a_run_folder_under_the_benchmark_protocol(tmp_path):
    """A Charades-STA run folder: `official` is TimeZero's scorer (a failed item left out, an
    unusable answer IoU 0, IoU >= t), and the report says so; `groundqa` counts every item."""
    from evals.report import summarize

    d = tmp_path / "run"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"bench": "charades"}))
    recs, seen = [], []
    rng = random.Random(11)
    for i in range(40):
        gt = [float(i), float(i) + 10.0]
        rec = {"id": f"v{i}#0", "index": i, "gt": [gt], "strategy": "coarse-to-fine", "cost": {}}
        r = rng.random()
        if r < 0.1:
            rec.update(error="cannot read video", top1=None)  # never predicted: left out by TimeZero
        elif r < 0.2:
            rec["top1"] = None  # the model gave no usable span: IoU 0
            seen.append((None, gt))
        else:
            pred = _at(gt, 0.5) if r < 0.35 else [gt[0] + rng.gauss(0, 3), gt[1] + rng.gauss(0, 3)]
            rec["top1"] = pred
            seen.append((pred, gt))
        recs.append(rec)
    (d / "predictions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in recs))
    rep = summarize(d)
    theirs = timezero_scores(seen)
    assert rep["protocol"] == "timezero"
    for m in METRICS:
        assert rep["grounding"][m] == pytest.approx(theirs[m], abs=0.01), m
    errors = sum(1 for x in recs if x.get("error"))
    assert rep["scored"] == f"scored {40 - errors} of 40 rows ({errors} missing, {len(seen) - sum(p is not None for p, _ in seen)} unparsed)"
    every = summarize(d, "groundqa")
    assert every["protocol"] == "groundqa" and every["grounding"]["mIoU"] < rep["grounding"]["mIoU"]


def _videomme_results(seed: int) -> tuple[list[dict], list[dict]]:
    """Annotation rows in Video-MME's own layout (written by hand: its licence forbids a copy here)
    and a results file in the layout its scorer reads (videos with their questions and replies)."""
    rng = random.Random(seed)
    tasks = ["Temporal Perception", "Counting Problem", "OCR Problems", "Action Reasoning", "Information Synopsis"]
    ann, results = [], []
    for v in range(30):
        dur = ("short", "medium", "long")[v % 3]
        questions = []
        for q in range(3):
            qid = f"{v:03d}-{q + 1}"
            answer = "ABCD"[rng.randrange(4)]
            row = {"video_id": f"{v:03d}", "duration": dur, "domain": "Knowledge", "sub_category": "Astronomy",
                   "videoID": f"vid{v:03d}", "question_id": qid, "task_type": rng.choice(tasks),
                   "question": f"What is shown {q}?", "options": ["A. one", "B. two", "C. three", "D. four"],
                   "answer": answer}
            ann.append(row)
            letter = answer if rng.random() < 0.5 else "ABCD"[rng.randrange(4)]
            reply = rng.choice([letter, f"({letter})", f"The answer is {letter}.", f"Answer: {letter}",
                                f"Based on the video, {letter}", "I cannot tell from this video at all, sorry about that",
                                "", letter.lower(), f"The correct option {letter}"])
            questions.append({"question_id": qid, "task_type": row["task_type"], "answer": answer,
                              "response": reply})
        results.append({"video_id": f"{v:03d}", "duration": dur, "domain": "Knowledge",
                        "sub_category": "Astronomy", "questions": questions})
    return ann, results


def test_videomme_official_agrees_with_its_scorer_on_its_results_file(tmp_path):
    from tests.official_videomme import eval_results

    ann, results = _videomme_results(seed=21)
    gt = tmp_path / "videomme.json"
    gt.write_text(json.dumps(ann))
    sub = tmp_path / "results.json"
    sub.write_text(json.dumps(results))  # the layout eval_your_results.py reads, scored as it is
    ours = score("videomme", str(gt), str(sub))
    theirs = eval_results(results)
    assert ours["protocol"] == "videomme"
    assert ours["accuracy"] == pytest.approx(theirs["Overall"], abs=0.01)
    for dur in ("short", "medium", "long"):
        assert ours["per_duration_group"][dur] == pytest.approx(theirs[dur], abs=0.01), dur
    for task, v in ours["per_category"].items():
        assert v == pytest.approx(theirs[f"task:{task}"], abs=0.01), task
    # a reply it reads as nothing leaves the denominator: fewer answered than replied
    assert 0 < ours["answered"] < len(ann) and ours["unparsed"] == len(ann) - ours["answered"]
    # "Based on ..." reads as B there (the first of A-D anywhere); lmms-eval's 2026 reader differs
    assert score("videomme", str(gt), str(sub), protocol="groundqa", extract="lmms-eval")["accuracy"] \
        != pytest.approx(ours["accuracy"], abs=0.01)


@pytest.mark.parametrize("bench, load, name", [
    ("charades", _charades, "charades"), ("activitynet", _activitynet, "activitynet"), ("tvgbench", _tvgbench, None),
])
def test_time_r1_result_files_score_as_they_are(bench, load, name, shared_data, tmp_path):
    """A Time-R1 result file (`{qid, pred, target, duration, output_text}` per line, qids as its
    data_loader numbers them, [None, None] for an answer it could not parse) on the real files,
    scored by `eval score` and by our transcription of its eval_all.py."""
    ann, rows = load(shared_data)
    lines, seen, _ = _predictions(rows, seed=17)
    if name is None:  # TVGBench: the source file's stem, a counter over the whole list
        data = json.loads(ann.read_text())
        prefix = {i: Path(d["source"]).stem.replace(".", "_").replace("-", "_") for i, d in enumerate(data)}
        qid = {rid: f"{prefix[i]}_{i}" for i, (rid, _, _) in enumerate(rows)}
    else:  # the captions layout: one counter over the sentences in file order
        qid = {rid: f"{name}_{i}" for i, (rid, _, _) in enumerate(rows)}
    truth = {rid: gt for rid, gt, _ in rows}
    out = [{"qid": qid[x["id"]], "pred": x["pred"], "target": truth[x["id"]], "duration": None,
            "output_text": "<answer>...</answer>"} for x in lines]
    pred = tmp_path / "tvg_0_1.jsonl"
    pred.write_text("".join(json.dumps(x) + "\n" for x in out))
    ours = score(bench, str(ann), str(pred), protocol="time-r1")
    theirs = time_r1_scores(seen)
    for m in METRICS:
        assert ours[m] == pytest.approx(theirs[m], abs=0.01, nan_ok=True), m
    assert ours["missing"] == len(rows) - len(lines)
