"""The synthetic long-video world: real H.264 files, determinism, exact ground truth, and
hardness (uniform frames, option priors and question text alone answer at chance)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import av
import numpy as np
import pytest

from evals.synthetic import generate_world, load_spec, parse_text, resolve, world_specs
from evals.synthetic.cli import synth_command
from evals.synthetic.oracles import answer_from_times, evidence_times, uniform_times
from evals.synthetic.questions import make_rows, vocabulary
from evals.synthetic.render import draw_indices, encode_video, label_map
from evals.synthetic.shapes import COLOR_NAMES, COLORS, PALETTE_RGB
from evals.synthetic.world import WorldConfig, make_video_spec
from grounder.errors import InputError

SEED = 3
MINUTES = (2.0, 4.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("world")
    rows = generate_world(out, 2, MINUTES, SEED)
    return out, rows


@pytest.fixture(scope="module")
def long_qa() -> list[tuple[object, dict]]:
    """QA rows of 12 state-only videos of 30-60 min (no pixels: fast)."""
    out = []
    for spec in world_specs(12, (30.0, 60.0), seed=11):
        out += [(spec, r) for r in make_rows(spec, f"videos/{spec.video_id}.mp4") if r["kind"] == "qa"]
    return out


def decode_all(path: Path) -> tuple[np.ndarray, list[float], av.video.stream.VideoStream]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames, times = [], []
        for f in c.decode(s):
            frames.append(f.to_ndarray(format="rgb24"))
            times.append(float(f.time))
        return np.stack(frames), times, s


def within_chance(correct: int, n: int, p: float, z: float = 3.0) -> bool:
    return abs(correct / n - p) <= z * math.sqrt(p * (1 - p) / n)


# ---- files ---------------------------------------------------------------------------

def test_annotations_format(world):
    out, rows = world
    lines = (out / "annotations.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == rows
    kinds = Counter(r["kind"] for r in rows)
    assert kinds["grounding"] > 0 and kinds["qa"] > 0
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert (out / r["video"]).is_file()
        assert r["query"] and r["spans"] and all(0 <= s < e <= r["duration"] for s, e in r["spans"])
        if r["kind"] == "qa":
            assert len(r["options"]) == 4 and len(set(r["options"])) == 4
            assert isinstance(r["answer"], int) and 0 <= r["answer"] < 4
    assert not list(out.rglob(".*.tmp"))


def test_mp4_is_real_h264(world):
    out, rows = world
    cfg = WorldConfig()
    for vid in sorted({r["video"] for r in rows}):
        spec = load_spec(out / "specs" / (Path(vid).stem + ".json"))
        duration = next(r["duration"] for r in rows if r["video"] == vid)
        with av.open(str(out / vid)) as c:
            s = c.streams.video[0]
            assert s.codec_context.name == "h264" and s.pix_fmt == "yuv420p"
            assert (s.width, s.height) == (cfg.width, cfg.height)
            assert float(s.average_rate) == cfg.fps
            assert abs(float(s.duration * s.time_base) - duration) <= 1 / cfg.fps
            keys = [i for i, p in enumerate(c.demux(s)) if p.size and p.is_keyframe]
        assert len(keys) >= spec.n_frames // int(cfg.keyframe_s * cfg.fps)
        assert max(np.diff(keys)) <= cfg.keyframe_s * cfg.fps  # a keyframe every 2 s
        frames, times, _ = decode_all(out / vid)
        assert frames.shape == (spec.n_frames, cfg.height, cfg.width, 3)
        assert times == pytest.approx(list(spec.frame_times()))


def test_same_seed_same_world_other_seed_other_world(world, tmp_path):
    out, rows = world
    again = tmp_path / "again"
    generate_world(again, 2, MINUTES, SEED)
    assert (again / "annotations.jsonl").read_bytes() == (out / "annotations.jsonl").read_bytes()
    a, _, _ = decode_all(out / "videos" / "v0000.mp4")
    b, _, _ = decode_all(again / "videos" / "v0000.mp4")
    assert np.array_equal(a, b)
    assert (again / "videos" / "v0001.mp4").read_bytes() == (out / "videos" / "v0001.mp4").read_bytes()
    other = world_specs(2, MINUTES, SEED + 1)
    other_rows = [r for s in other for r in make_rows(s, f"videos/{s.video_id}.mp4")]
    assert other_rows != rows


def test_spec_round_trip_and_state(world):
    out, _ = world
    spec = make_video_spec(SEED, 0, MINUTES)
    assert load_spec(out / "specs" / "v0000.json").to_dict() == spec.to_dict()
    o = spec.objects[len(spec.objects) // 2]
    mid = (o.t_inside + o.t_out) / 2
    st = spec.state(mid)
    assert o.id in [x.id for x in st.objects] and st.scene == spec.scene_at(mid).name
    assert o.id not in [x.id for x in spec.state(o.t_in - 0.01).objects]
    assert o.id not in [x.id for x in spec.state(o.t_gone + 0.01).objects]
    # never more than max_on_screen objects at once, so a 112 px frame stays readable
    ev = sorted([(x.t_in, 1) for x in spec.objects] + [(x.t_gone, -1) for x in spec.objects])
    assert max(np.cumsum([k for _, k in ev])) <= spec.config.max_on_screen


# ---- exact ground truth --------------------------------------------------------------

def _erode(m: np.ndarray) -> np.ndarray:
    """Interior of a mask (4-neighbourhood): 4:2:0 chroma blurs the one-pixel rim."""
    e = m.copy()
    e[1:] &= m[:-1]
    e[:-1] &= m[1:]
    e[:, 1:] &= m[:, :-1]
    e[:, :-1] &= m[:, 1:]
    return e


def _colour_pixels(frame: np.ndarray, color: str, tol: float = 40.0) -> np.ndarray:
    return np.linalg.norm(frame.astype(np.float32) - np.array(COLORS[color], np.float32), axis=-1) < tol


def test_decoded_frames_show_exactly_the_state(world):
    """Every colour the state puts on screen is in the decoded frame where the label map
    says, and colours the state does not show are absent; the background is the scene's."""
    out, _ = world
    spec = load_spec(out / "specs" / "v0000.json")
    frames, times, _ = decode_all(out / "videos" / "v0000.mp4")
    idx, labels = draw_indices(spec, times, labels=True)
    assert labels is not None
    colour_of = {o.id: o.color for o in spec.objects}
    checked = 0
    for f in range(0, len(times), 2):
        lab = labels[f]
        for color in COLOR_NAMES:
            ids = [i for i in np.unique(lab) if i >= 0 and colour_of[int(i)] == color]
            expected = np.isin(lab, ids)
            core = _erode(expected)
            got = _colour_pixels(frames[f], color)
            if core.sum() >= 20:
                assert (got & core).sum() >= 0.9 * core.sum(), (f, color)
                checked += 1
            elif expected.sum() == 0:
                assert got.sum() <= 8, (f, color, int(got.sum()))
        bg = lab < 0
        exact = PALETTE_RGB[idx[f]].astype(np.int16)
        assert np.median(np.abs(frames[f].astype(np.int16) - exact)[bg]) <= 6
    assert checked > 50


def test_grounding_spans_are_exact(world):
    """Inside a span the described object is where the state says in the decoded frame
    (colour pixels at its unoccluded mask); before/after an on-screen span it is nowhere."""
    out, rows = world
    spec = load_spec(out / "specs" / "v0000.json")
    frames, times, _ = decode_all(out / "videos" / "v0000.mp4")
    fps = spec.config.fps
    n_checked = 0
    for r in rows:
        if r["video"] != "videos/v0000.mp4" or r["kind"] != "grounding":
            continue
        target = r["event"]["target"]
        o = spec.objects[target]
        assert (o.color, o.shape) == (r["event"]["color"], r["event"]["shape"])
        s, e = r["spans"][0]
        inside = [i for i, t in enumerate(times) if s < t < e]
        assert inside, r["id"]
        for i in inside:
            st = {x.id: x for x in spec.state(times[i]).objects}
            lab = label_map(spec, times[i])
            own = lab == target
            core = _erode(own)
            if own.any():
                assert target in st
                x0, y0, x1, y1 = st[target].bbox
                assert own[y0:y1, x0:x1].sum() == own.sum()  # the label map agrees with the state
            if core.sum() < 20:
                continue  # just a sliver at the frame edge
            assert (_colour_pixels(frames[i], o.color) & core).sum() >= 0.9 * core.sum(), (r["id"], i)
            n_checked += 1
        if r["qtype"] == "visible":
            for i, t in enumerate(times):
                if t < s - 1 / fps or t > e + 1 / fps:
                    assert target not in {x.id for x in spec.state(t).objects}
                    assert not (label_map(spec, t) == target).any()
    assert n_checked > 10


def test_queries_are_unique_parseable_and_short(world, long_qa):
    _, rows = world
    specs = {s.video_id: s for s in world_specs(2, MINUTES, SEED)}
    for r in rows:
        spec = specs[Path(r["video"]).stem]
        event = {k: v for k, v in r["event"].items() if k != "target"}
        matches = resolve(spec, event)
        assert len(matches) == 1 and list(matches[0].span) == r["spans"][0]
        assert matches[0].target == r["event"]["target"]
        text = r["question"] if r["kind"] == "qa" else r["query"]
        assert parse_text(text) == event
        words = " ".join([r["query"], r.get("question", "")] + r.get("options", [])).replace("?", "")
        assert set(words.split()) <= set(vocabulary())
        if r["kind"] == "qa":
            assert r["options"][r["answer"]] == matches[0].answer
            ev = parse_text(r["query"])
            assert ev is not None and ev["type"] == event["type"]
    ratios = [(e - s) / r["duration"] for r in rows for s, e in r["spans"]]
    assert np.median(ratios) < 0.05
    long_ratios = [(r["spans"][0][1] - r["spans"][0][0]) / r["duration"] for _, r in long_qa]
    assert np.median(long_ratios) < 0.005 and max(long_ratios) < 0.05
    assert all(r["spans"][0][1] - r["spans"][0][0] <= 60 for _, r in long_qa)


def test_look_alikes_exist():
    """A query is unique only with all its attributes: other objects share the colour,
    others the shape, and pairs share colour+shape but enter/leave through other sides."""
    for spec in world_specs(3, (20.0, 30.0), seed=5):
        objs = spec.objects
        for r in make_rows(spec, "v.mp4"):
            ev = r["event"]
            if r["kind"] != "grounding" or ev["type"] == "enter_after_scene":
                continue
            o = objs[ev["target"]]
            assert any(x.color == o.color and x.shape != o.shape for x in objs)
            assert any(x.shape == o.shape and x.color != o.color for x in objs)
        pairs = [r for r in make_rows(spec, "v.mp4") if r["qtype"] == "enter"
                 and sum((x.color, x.shape) == (r["event"]["color"], r["event"]["shape"]) for x in objs) == 2]
        assert pairs  # same object entering from another side at another time


# ---- hardness: long videos are hard in the right way -----------------------------------

def test_evidence_moment_answers_everything(long_qa):
    rng = np.random.default_rng(0)
    correct = sum(answer_from_times(s, r, evidence_times(r["spans"][0], s.config.fps), rng) == r["answer"]
                  for s, r in long_qa)
    assert correct / len(long_qa) >= 0.98


def test_sixteen_uniform_frames_are_at_chance(long_qa):
    rng = np.random.default_rng(0)
    n = len(long_qa)
    assert n >= 300
    correct = sum(answer_from_times(s, r, uniform_times(s.duration, 16), rng) == r["answer"]
                  for s, r in long_qa)
    print(f"16 uniform frames: {correct}/{n} = {correct / n:.3f} (chance 0.25)")
    assert within_chance(correct, n, 0.25)


def _split(long_qa):
    rows = [r for _, r in long_qa]
    vids = sorted({r["video"] for r in rows})
    test_vids = set(vids[: len(vids) // 2])
    return [r for r in rows if r["video"] not in test_vids], [r for r in rows if r["video"] in test_vids]


def test_option_priors_are_at_chance(long_qa):
    train, test = _split(long_qa)
    letter = Counter(r["answer"] for r in train).most_common(1)[0][0]
    hits = sum(r["answer"] == letter for r in test)
    print(f"letter prior {'ABCD'[letter]}: {hits}/{len(test)}")
    assert within_chance(hits, len(test), 0.25)
    # most frequent correct option text per question type, picked whenever it is offered
    by_type: dict[str, Counter] = defaultdict(Counter)
    for r in train:
        by_type[r["qtype"]][r["options"][r["answer"]]] += 1
    rng = np.random.default_rng(1)
    hits = 0
    for r in test:
        ranked = [v for v, _ in by_type[r["qtype"]].most_common()]
        pick = next((r["options"].index(v) for v in ranked if v in r["options"]), int(rng.integers(4)))
        hits += pick == r["answer"]
    print(f"option-text prior: {hits}/{len(test)}")
    assert within_chance(hits, len(test), 0.25)


def test_question_text_alone_is_at_chance(long_qa):
    """Naive Bayes from question words to the correct option text, trained on a split."""
    train, test = _split(long_qa)
    words = lambda r: r["question"].rstrip("?").split()
    counts: dict[str, Counter] = defaultdict(Counter)
    prior: Counter = Counter()
    vocab: set[str] = set()
    for r in train:
        ans = r["options"][r["answer"]]
        prior[ans] += 1
        counts[ans].update(words(r))
        vocab.update(words(r))
    def score(opt: str, ws: list[str]) -> float:
        total = sum(counts[opt].values())
        return math.log(prior[opt] + 1) + sum(math.log((counts[opt][w] + 1) / (total + len(vocab))) for w in ws)

    hits = 0
    for r in test:
        hits += int(np.argmax([score(o, words(r)) for o in r["options"]])) == r["answer"]
    print(f"question-text-only: {hits}/{len(test)}")
    assert within_chance(hits, len(test), 0.25)


def test_answers_are_balanced(long_qa):
    rows = [r for _, r in long_qa]
    letters = Counter(r["answer"] for r in rows)
    assert all(within_chance(letters[k], len(rows), 0.25, z=4) for k in range(4))
    colours = Counter(r["options"][r["answer"]] for r in rows if r["qtype"].endswith("_color"))
    n = sum(colours.values())
    assert len(colours) == len(COLOR_NAMES)
    assert all(within_chance(colours[c], n, 1 / len(COLOR_NAMES), z=4) for c in COLOR_NAMES)


# ---- CLI and arguments -----------------------------------------------------------------

@pytest.mark.parametrize("minutes", ["0-0", "3-1", "abc", "-1-2", "1-2-3"])
def test_bad_minutes(tmp_path, minutes):
    with pytest.raises(InputError):
        synth_command(str(tmp_path), 1, minutes, 0, True)


def test_bad_videos_and_unwritable_out(tmp_path):
    with pytest.raises(InputError):
        synth_command(str(tmp_path), 0, "1-2", 0, True)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError):
        synth_command(str(blocker / "sub"), 1, "1-2", 0, True)


def test_cli_json_and_one_line_error(tmp_path):
    exe = [sys.executable, "-m", "groundqa"]
    ok = subprocess.run(exe + ["synth", "--out", str(tmp_path / "w"), "--videos", "1", "--minutes",
                               "1-1", "--seed", "0", "--json"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert summary["videos"] == 1 and summary["rows"] > 0
    assert (tmp_path / "w" / "annotations.jsonl").is_file()
    bad = subprocess.run(exe + ["synth", "--out", str(tmp_path / "b"), "--minutes", "0-0"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_an_hour_of_video_in_ten_seconds(tmp_path):
    spec = make_video_spec(0, 0, (20.0, 20.0))
    t0 = time.perf_counter()
    encode_video(spec, tmp_path / "v.mp4")
    per_hour = (time.perf_counter() - t0) * 3600 / spec.duration
    print(f"{per_hour:.1f} s per hour of video")
    assert per_hour <= 10.0


def test_sizes_set_the_objects_sizes_and_bad_sizes_are_one_line_errors(tmp_path):
    synth_command(str(tmp_path / "big"), 1, "1-1", 3, True, sizes="32,40")
    spec = json.loads((tmp_path / "big" / "specs" / "v0000.json").read_text())
    assert {o["size"] for o in spec["objects"]} == {32, 40}
    for bad in ("3", "80", "32,x", "32;40"):
        with pytest.raises(InputError, match="--sizes"):
            synth_command(str(tmp_path / "bad"), 1, "1-1", 3, True, sizes=bad)
