"""The binding split (evals/bench/binding.py): kinds of negative frame groups, and a short run."""

from __future__ import annotations

import pytest

from evals.bench.binding import KINDS, group_kind, run


@pytest.fixture(scope="module")
def world(synth_world):
    return synth_world(1, 3, 77)


def test_group_kinds_follow_what_the_world_shows(lone_sightings):
    from trainer.binding import named_target

    checked = set()
    for x in lone_sightings:
        tl, target = named_target(x["row"].video, x["row"].extra)
        me, o = x["me"], x["o"]
        assert group_kind(tl, target, [x["t_me"]]) == "positive"
        want = ("same colour" if o["color"] == me["color"] else
                "same shape" if o["shape"] == me["shape"] else "other objects")
        assert group_kind(tl, target, [x["t"]]) == want
        checked.add(want)
    assert checked == {"same colour", "same shape", "other objects"}


def test_a_short_run_reports_an_auc_per_kind_of_negative(world):
    res = run(None, str(world), str(world), steps=2, windows=6)
    assert res["layer"] == 2 and sum(res["groups"].values()) > 0
    assert set(res["auc"]) == set(KINDS)
    for v in [res["auc_all"], *res["auc"].values()]:
        assert v is None or 0.0 <= v <= 1.0
