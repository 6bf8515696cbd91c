"""Metrics: hand-computed cases, and the official QVHighlights numbers reproduced exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evals.metrics import (
    grounding_metrics,
    iop,
    iou,
    nextgqa_metrics,
    normalize_choice,
    qa_accuracy,
    recall_at_k,
    rextime_metrics,
)
from evals.metrics.qvhighlights import (
    detection_ap,
    eval_highlight,
    eval_submission,
    filter_by_length,
    gt_clip_scores,
    interpolated_ap,
    mr_r1,
    ranking_ap,
)
from evals.score import score
from grounder.errors import InputError
from groundqa.cli import main

# ----------------------------------------------------------------------------- grounding

def test_iou_basic_cases():
    assert iou([0, 10], [5, 15]) == pytest.approx(5 / 15)
    assert iou([0, 10], [10, 20]) == 0.0  # touching is no overlap
    assert iou([10, 0], [0, 10]) == 0.0  # a reversed prediction scores 0, as every official scorer has it
    assert iou(None, [0, 1]) == 0.0
    assert iou([3, 3], [3, 3]) == 0.0  # empty union
    assert iop([4, 6], [0, 10]) == 1.0 and iop([8, 12], [0, 10]) == 0.5
    assert iop([6, 4], [0, 10]) == 0.0  # reversed: covers nothing


def test_grounding_metrics_hand_computed():
    preds = [[0, 10], None, [5, 15], [2, 8]]
    gts = [[[0, 10]], [[1, 2]], [[0, 10], [10, 20]], [[0, 10]]]
    # IoUs: 1, 0 (None), max(5/15, 5/15) = 1/3, 6/10
    m = grounding_metrics(preds, gts)
    assert set(m) == {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU"}
    assert m["R1@0.3"] == pytest.approx(75.0)
    assert m["R1@0.5"] == pytest.approx(50.0)
    assert m["R1@0.7"] == pytest.approx(25.0)
    assert m["mIoU"] == pytest.approx(100 * (1 + 0 + 1 / 3 + 0.6) / 4)


def test_grounding_metrics_threshold_inclusive_and_empty():
    assert grounding_metrics([[0, 5]], [[[0, 10]]])["R1@0.5"] == 100.0  # IoU exactly 0.5
    assert grounding_metrics([], []) == {"R1@0.3": 0.0, "R1@0.5": 0.0, "R1@0.7": 0.0, "mIoU": 0.0}
    with pytest.raises(ValueError):
        grounding_metrics([[0, 1]], [])


def test_recall_at_k():
    ranked = [[[50, 60], [0, 9]], [[0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [0, 10]], None]
    gts = [[[0, 10]], [[0, 10]], [[0, 10]]]
    # q1: 2nd guess IoU .9; q2: 5th guess IoU .5, 6th (outside top 5) 1.0; q3: none
    r5 = recall_at_k(ranked, gts, k=5)
    assert r5 == pytest.approx({"R5@0.3": 200 / 3, "R5@0.5": 200 / 3, "R5@0.7": 100 / 3})
    r1 = recall_at_k(ranked, gts, k=1, thresholds=(0.2,))  # q2 top-1 has IoU .1
    assert r1 == {"R1@0.2": 0.0}


# ----------------------------------------------------------------------------- QA

def test_normalize_choice_forms():
    assert {normalize_choice(x) for x in ["B", "b", "(B)", "B.", " B ", 1]} == {"B"}
    assert normalize_choice(None) is None and normalize_choice("") is None
    assert normalize_choice("Lay On Floor ") == "lay on floor"


def test_qa_accuracy_overall_and_per_category():
    m = qa_accuracy(["A", "b", None, 1], ["A", "B", "C", "B"], ["x", "y", "x", None])
    assert m["accuracy"] == 75.0 and m["n"] == 4
    assert m["per_category"] == {"x": 50.0, "y": 100.0}
    assert m["per_category_n"] == {"x": 2, "y": 1}


def test_nextgqa_metrics_hand_computed():
    gts = [[[0, 10]], [[0, 10], [20, 30]], [[0, 10]], [[0, 10]]]
    preds = [
        [5, 15],   # IoU 5/15, IoP 0.5
        [8, 22],   # vs gt1: IoU 2/22, IoP 2/14; vs gt2: IoU 2/22... max each separately
        [4, 4],    # point inside: IoU 0, IoP 1
        None,      # nothing predicted
    ]
    correct = [True, True, True, False]
    m = nextgqa_metrics(preds, gts, correct)
    iops = [0.5, 2 / 14, 1.0, 0.0]
    ious = [5 / 15, 2 / 22, 0.0, 0.0]
    assert m["mIoP"] == pytest.approx(100 * sum(iops) / 4)
    assert m["mIoU"] == pytest.approx(100 * sum(ious) / 4)
    assert m["IoP@0.3"] == 50.0 and m["IoP@0.5"] == 50.0
    assert m["IoU@0.3"] == 25.0 and m["IoU@0.5"] == 0.0
    assert m["Acc@QA"] == 75.0
    assert m["Acc@GQA"] == 50.0  # right AND IoP >= .5: questions 1 and 3, over all 4


def test_rextime_metrics_hand_computed():
    m = rextime_metrics([[0, 10], [0, 4], None], [[[0, 10]], [[0, 10]], [[0, 10]]],
                        [False, True, True])
    assert m["mIoU"] == pytest.approx(100 * 1.4 / 3)
    assert m["R1@0.3"] == pytest.approx(200 / 3) and m["R1@0.5"] == pytest.approx(100 / 3)
    assert m["Acc"] == pytest.approx(200 / 3)
    assert m["Acc@IoU>=0.5"] == 0.0  # the only well-grounded answer is wrong


# ----------------------------------------------------------------------------- QVHighlights

def test_interpolated_ap_voc_style():
    # precision made monotone from the right, summed over recall steps; recall padded to 1
    assert interpolated_ap(np.array([1.0, 0.5, 2 / 3]), np.array([0.5, 0.5, 1.0])) \
        == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert interpolated_ap(np.array([1.0]), np.array([0.5])) == pytest.approx(0.5)


def test_detection_ap_each_gt_matched_once():
    gts = [[0, 10], [20, 30]]
    preds = [[0, 10, 0.9], [0, 10, 0.8], [20, 30, 0.5]]
    # t=.5: TP, FP (its best gt is taken, the other below threshold), TP -> AP = .5 + .5 * 2/3
    ap = detection_ap(gts, preds, thresholds=(0.5,))
    assert ap[0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # sorting by score, not by submitted order
    ap2 = detection_ap(gts, [[20, 30, 0.5], [0, 10, 0.8], [0, 10, 0.9]], thresholds=(0.5,))
    assert ap2[0] == pytest.approx(ap[0])
    assert detection_ap(gts, [], thresholds=(0.5, 0.7)).tolist() == [0.0, 0.0]


def test_mr_r1_uses_best_overlapping_gt_and_rounds():
    preds = {1: [[20, 30, 0.9], [0, 10, 0.1]], 2: [[0, 4, 0.5]], 3: []}
    gts = {1: [[0, 10], [21, 30]], 2: [[0, 10]], 3: [[0, 10]]}
    r = mr_r1(preds, gts, thresholds=(0.3, 0.9))
    assert r == {"0.3": 66.67, "0.9": 33.33}  # IoUs .9, .4, 0 (no window = miss)


def test_length_buckets_count_a_query_in_each_of_its_buckets():
    gt = [{"qid": 1, "relevant_windows": [[0, 8], [20, 60]]}, {"qid": 2, "relevant_windows": [[0, 20]]}]
    sub = [{"qid": 1}, {"qid": 2}]
    s, g = filter_by_length(sub, gt, (0, 10))
    assert [d["qid"] for d in s] == [1] and g[0]["relevant_windows"] == [[0, 8]]
    s, g = filter_by_length(sub, gt, (10, 30))
    assert [d["qid"] for d in g] == [2]
    s, g = filter_by_length(sub, gt, (30, 150))
    assert g == [{"qid": 1, "relevant_windows": [[20, 60]]}]
    assert filter_by_length(sub, gt, (0, 150)) == (sub, gt)
    assert gt[0]["relevant_windows"] == [[0, 8], [20, 60]]  # input untouched


def test_ranking_ap_video2gif_style():
    # ranks: +, -, +, -  -> precision at the hits 1 and 2/3, mean .8333
    assert ranking_ap([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx((1 + 2 / 3) / 2)
    assert ranking_ap([1, 0], [0.5, 0.5]) == pytest.approx(0.5)  # ties form one threshold
    assert ranking_ap([0, 0], [1, 2]) == 0.0 and ranking_ap([1, 1], [1, 2]) == 1.0


def test_highlight_hit1_and_clip_grid():
    gt = {"qid": 7, "duration": 9, "relevant_clip_ids": [1, 3],
          "saliency_scores": [[4, 0, 0], [2, 2, 2]]}
    assert gt_clip_scores(gt).shape == (4, 3)  # int(9 / 2) clips of 2 s
    sub = [{"qid": 7, "pred_saliency_scores": [0.1, 0.9, 0.2]}]  # padded with a 0 clip
    hl = eval_highlight(sub, [gt])
    assert hl["HL-min-VeryGood"]["HL-Hit1"] == 100.0  # one annotator gave clip 1 a 4
    assert hl["HL-min-Fair"]["HL-Hit1"] == 100.0
    # Fair: annotator 0 positives {1,3}, 1 and 2 positives {3}; ranking 1, 2, 0|3 (tie at 0)
    ap0 = ranking_ap([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.0])
    ap12 = ranking_ap([0, 0, 0, 1], [0.1, 0.9, 0.2, 0.0])
    assert hl["HL-min-Fair"]["HL-mAP"] == round(100 * (ap0 + 2 * ap12) / 3, 2)


def test_eval_submission_requires_matching_qids():
    gt = [{"qid": 1, "duration": 10, "relevant_windows": [[0, 4]]}]
    with pytest.raises(ValueError, match="qids differ"):
        eval_submission([{"qid": 2, "pred_relevant_windows": [[0, 4, 1]]}], gt)


def _flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[prefix + k] = v
    return out


def test_qvhighlights_reproduces_official_metrics(shared_data, capsys):
    """`groundqa eval score --bench qvhighlights ... --json` gives every number of moment_detr's
    sample_val_preds_metrics_raw.json, under the same keys and nesting."""
    d = shared_data / "benchmarks" / "qvhighlights"
    rc = main(["eval", "score", "--bench", "qvhighlights", "--gt", str(d / "highlight_val_release.jsonl"),
               "--pred", str(d / "sample_val_preds.jsonl"), "--json"])
    assert rc == 0
    ours = json.loads(capsys.readouterr().out)
    target = json.loads((d / "sample_val_preds_metrics_raw.json").read_text())
    assert list(ours) == list(target) and list(ours["brief"]) == list(target["brief"])
    flat_ours, flat_target = _flatten(ours), _flatten(target)
    assert set(flat_ours) == set(flat_target) and len(flat_target) == 104
    diffs = {k: (flat_ours[k], v) for k, v in flat_target.items() if abs(flat_ours[k] - v) > 1e-9}
    assert not diffs


# ----------------------------------------------------------------------------- eval score

def _jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_score_generic_grounding_and_qa(tmp_path):
    gt = _jsonl(tmp_path / "gt.jsonl", [
        {"id": "a", "video": "a.mp4", "duration": 60, "query": "q", "spans": [[0, 10]],
         "question": "q?", "options": ["red", "blue"], "answer": "B", "qtype": "colour"},
        {"id": "b", "video": "b.mp4", "duration": 60, "query": "q", "spans": [[20, 30]],
         "question": "q?", "options": ["red", "blue"], "answer": "A", "qtype": "count"},
        {"id": "c", "video": "c.mp4", "duration": 60, "query": "q", "spans": [[40, 50]],
         "question": "q?", "options": ["red", "blue"], "answer": "A", "qtype": "count"},
        {"id": "d", "video": "c.mp4", "duration": 60, "query": "q", "spans": [[40, 50]]}])
    pred = _jsonl(tmp_path / "pred.jsonl", [
        {"id": "b", "segments": [{"start": 0, "end": 5, "score": 0.9},
                                 {"start": 20, "end": 30, "score": 0.5}], "answer": "red"},
        {"id": "a", "segments": [{"start": 0, "end": 5, "score": 0.8}], "choice": "B"}])
    r = score("charades", gt, pred, protocol="groundqa")  # c and d have no prediction: misses
    assert (r["n"], r["missing"]) == (4, 2)
    assert r["R1@0.3"] == 25.0 and r["R1@0.5"] == 25.0
    assert r["R1@0.7"] == 0.0 and r["mIoU"] == pytest.approx(100 * 0.5 / 4)
    assert r["R5@0.7"] == 25.0  # b's 2nd segment is exact
    assert r["accuracy"] == pytest.approx(200 / 3)  # "red" is option A; d asks nothing
    assert r["per_category"] == {"colour": 100.0, "count": 50.0}


def test_score_nextgqa_on_the_official_files(shared_data, tmp_path):
    d = shared_data / "benchmarks" / "nextgqa"
    pred = _jsonl(tmp_path / "p.jsonl", [
        {"id": "2574374895_8", "spans": [[23.0, 25.0]], "choice": "C"},  # inside, right
        {"id": "3083302557_3", "pred": [0, 1], "choice": "A"}])
    # official (its eval_ground): the unpredicted questions are left out of the means
    r = score("nextgqa", str(d / "test.csv"), pred)
    assert r["protocol"] == "nextgqa" and r["n"] == 2 and r["missing"] == 5551
    assert r["scored"] == "scored 2 of 5553 rows (5551 missing, 0 unparsed)"
    assert r["Acc@GQA"] == pytest.approx(50.0) and r["IoP@0.5"] == pytest.approx(50.0)
    # groundqa: every question counts, an unpredicted one as a miss
    g = score("nextgqa", str(d / "test.csv"), pred, protocol="groundqa")
    assert g["n"] == 5553 and g["missing"] == 5551 and g["Acc@GQA"] == pytest.approx(100 / 5553)


def test_score_cli_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    rc = main(["eval", "score", "--bench", "qvhighlights", "--gt", str(bad), "--pred", str(bad), "--json"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "not valid JSON" in err
    ok = _jsonl(tmp_path / "gt.jsonl", [{"qid": 1, "duration": 10, "relevant_windows": [[0, 2]]}])
    for preds, msg in [([{"qid": 1}], "pred_relevant_windows"),
                       ([{"qid": 1, "pred_relevant_windows": [[0, 2]]}], "start, end, score"),
                       ([{"qid": 2, "pred_relevant_windows": [[0, 2, 1]]}], "qids differ")]:
        with pytest.raises(InputError, match=msg):
            score("qvhighlights", ok, _jsonl(tmp_path / "p.jsonl", preds))
    with pytest.raises(InputError, match="predictions for"):
        score("synthetic", _jsonl(tmp_path / "g.jsonl", [{"video": "v", "duration": 1, "query": "q",
                                                          "spans": [[0, 1]]}]),
              _jsonl(tmp_path / "p.jsonl", []))
