"""The binding split (evals/bench/binding.py): kinds of negative frame groups, and a short run."""

from __future__ import annotations

import json

import pytest

from evals.bench.binding import KINDS, group_kind, run


@pytest.fixture(scope="module")
def world(synth_world):
    return synth_world(1, 3, 77)


def test_group_kinds_follow_what_the_world_shows(synth_world):
    from trainer.binding import named_target
    from trainer.data import load_rows
    from trainer.vision_pretrain import spec_path

    rows = load_rows(synth_world(3, 8, 79), kinds=("grounding",))  # big enough to hold every kind
    checked = set()
    for row in rows:
        named = named_target(row.video, row.extra)
        if named is None:
            continue
        tl, target = named
        objects = json.loads(spec_path(row.video).read_text())["objects"]
        me = objects[target]

        def mid(o):  # inside its path (after entering, before leaving) an object is on screen
            return (o["times"][1] + o["times"][-2]) / 2

        def around(o, t):
            return o["times"][0] - 1 <= t <= o["times"][-1] + 1

        assert group_kind(tl, target, [mid(me)]) == "positive"
        for o in objects:
            t = mid(o)
            if around(me, t) or any(around(x, t) for x in objects if x is not o):
                continue  # only times when o is alone on screen
            want = ("same colour" if o["color"] == me["color"] else
                    "same shape" if o["shape"] == me["shape"] else "other objects")
            assert group_kind(tl, target, [t]) == want
            checked.add(want)
    assert checked == {"same colour", "same shape", "other objects"}


def test_a_short_run_reports_an_auc_per_kind_of_negative(world):
    res = run(None, str(world), str(world), steps=2, windows=6)
    assert res["layer"] == 2 and sum(res["groups"].values()) > 0
    assert set(res["auc"]) == set(KINDS)
    for v in [res["auc_all"], *res["auc"].values()]:
        assert v is None or 0.0 <= v <= 1.0
