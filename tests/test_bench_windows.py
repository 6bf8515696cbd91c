"""The window probe (evals/bench/windows.py): its AUC and its positive/negative windows."""

from __future__ import annotations

import pytest

from evals.bench.windows import auc, probe_view


def test_auc_counts_pairs_and_ties():
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auc([0.1], [0.9, 0.8]) == 0.0
    assert auc([0.5, 0.5], [0.5]) == 0.5  # a constant score is blind
    assert auc([0.9, 0.3], [0.5]) == 0.5
    assert auc([], [0.1]) is None


@pytest.fixture(scope="module")
def rows(synth_world):
    from trainer.data import load_rows

    return load_rows(synth_world(1, 3, 77), kinds=("grounding",))


def test_probe_view_alternates_windows_with_and_without_the_event(rows):
    from grounder.backends import load_default

    backend = load_default()[0]
    res = probe_view(backend, rows, 16.0, 1.0, n=6, seed=0, max_pixels=12544, max_new_tokens=24)
    assert res["windows"] == 6 and res["positive"] == 3
    assert res["presence_auc"] is not None and 0.0 <= res["presence_auc"] <= 1.0
    assert 0.0 <= res["miou"] <= 100.0 and res["random_miou"] is not None
    # the labels are right: windows with the event show the named object more than those without
    assert res["visibility_auc"] is not None and res["visibility_auc"] > 0.5
    lo, hi = res["confidence_range"]
    assert 0.0 <= lo <= hi <= 1.0


def test_a_decoy_is_another_shape_of_the_named_colour_on_screen(rows):
    import json

    from evals.bench.windows import shows_decoy
    from trainer.vision_pretrain import spec_path

    checked = 0
    for row in rows:
        event = row.extra["event"]
        if event["type"].startswith("after_"):
            assert shows_decoy(row, [0.0]) is None  # the query names no object
            continue
        objects = json.loads(spec_path(row.video).read_text())["objects"]
        named = objects[event["target"]]
        same = [o for o in objects if o["color"] == named["color"] and o["shape"] != named["shape"]]
        # inside its path (after entering, before leaving) an object is on screen
        on = [(o["times"][1] + o["times"][-2]) / 2 for o in same]
        off = [t for t in range(int(row.duration))
               if not any(o["times"][0] - 1 <= t <= o["times"][-1] + 1 for o in same)]
        if on and off:
            assert shows_decoy(row, [on[0]]) is True
            assert shows_decoy(row, [off[0], off[-1]]) is False
            checked += 1
    assert checked >= 1
