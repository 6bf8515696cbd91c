"""The OpenAI-compatible backend against the real `transformers serve` (issue #28).

The server is transformers' own (`transformers serve FOLDER`, offline, on loopback) serving a copy
of the embedded default model; the same folder runs locally beside it. The server decodes the
windows we send as clip files with torchcodec, so these tests need FFmpeg's libraries (CI
installs them; elsewhere they skip, saying so).
"""

from __future__ import annotations

import re
import shutil

import pytest

from evals.bench.serve import completions_logged, top_iou, transformers_serve
from evals.synthetic.generate import generate_world
from grounder.backends import DEFAULT_MODEL_DIR
from grounder.budget import read_scan_config
from grounder.grounder import Grounder


def _decodes_video() -> bool:
    from transformers.utils.import_utils import is_torchcodec_usable

    return bool(is_torchcodec_usable(decode="video"))


pytestmark = pytest.mark.skipif(not _decodes_video(), reason="transformers serve decodes clips with torchcodec, "
                                "which needs FFmpeg's libraries (apt install libavcodec59 ...; .ci/run does)")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("transformers_serve")
    model = shutil.copytree(DEFAULT_MODEL_DIR, tmp / "grounder")
    rows = generate_world(tmp / "world", 1, minutes=(3, 3), seed=5)
    video = tmp / "world" / rows[0]["video"]
    queries = [r["query"] for r in rows if r.get("query")][:2]
    log = tmp / "serve.log"
    with transformers_serve(model, log) as base_url:
        yield {"model": model, "url": base_url, "log": log, "video": video, "queries": queries}


def test_same_weights_give_the_same_segments_through_the_server(served):
    local = Grounder.from_pretrained(served["model"])
    remote = Grounder.from_pretrained(served["model"], backend="openai", base_url=served["url"])
    assert remote.backend.form == "file"  # picked from transformers serve's model listing, on loopback
    # the model folder's scan defaults, as locally (16 frames a call, not ScanBudget's 32)
    assert remote.backend.scan_defaults == read_scan_config(served["model"]) != {}
    for query in served["queries"]:
        a = local.ground(served["video"], query)
        before = completions_logged(served["log"])
        b = remote.ground(served["video"], query)
        requests = completions_logged(served["log"]) - before
        assert a.segments and top_iou(a, b) >= 0.9, (a.segments[:1], b.segments[:1])
        assert [s.text for s in b.trace] == [s.text for s in a.trace]  # every window read alike
        assert {len(s.frame_times) for s in b.trace} == {16}
        assert requests == len(b.trace)  # no side requests (visual tokens counted here)
        assert [s.visual_tokens for s in b.trace] == [s.visual_tokens for s in a.trace]
        # transformers serve gives no logprobs: the result says its scores are the fallback's
        assert {s.score_from for s in b.trace} == {"fallback"}
        assert any("no token logprobs" in w for w in b.warnings)
        assert {s.score_from for s in a.trace} == {"model"}


def test_a_wrong_model_name_is_one_line_before_any_decoding(served, capsys, monkeypatch):
    from groundqa.cli import main

    monkeypatch.setenv("OPENAI_BASE_URL", served["url"])
    before = completions_logged(served["log"])
    code = main(["ground", str(served["video"]), "the green star", "--backend", "openai", "--model", "no-such-model"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "does not serve 'no-such-model'" in err and str(served["model"]) in err
    assert completions_logged(served["log"]) == before  # nothing was sent


@pytest.mark.parametrize("family, name", [("qwen2_5_vl", "Qwen2.5-VL-7B-Instruct"), ("qwen3_vl", "Qwen3-VL-4B-Instruct")])
def test_a_window_reads_the_same_from_its_clip_file(family, name, shared_data, tmp_path):
    """What the local backend builds for a window (`clip_metadata`) equals what the real processor
    builds from the clip file we send a server (every frame, `do_sample_frames=False`): the same
    token ids (Qwen3-VL's `<t seconds>` included), grid, time scale and pixels."""
    import numpy as np
    import torch
    from transformers import AutoProcessor

    from grounder.openai_backend import write_clip
    from grounder.qwen import build_video_inputs
    from grounder.video import open_video
    from grounder.windows import Window

    processor = AutoProcessor.from_pretrained(shared_data / "models" / name)
    reader = open_video(shared_data / "videos" / "carphone_pristine.mp4")  # 29.97 fps
    window = Window(0.5, 3.5, 6)  # 2 fps, inside the 4-s clip
    frames, stamps = reader.sample(window.times(), max_pixels=200 * 200)
    ours = build_video_inputs(processor, frames, stamps, fps=reader.fps, prompt="When?", origin=window.start,
                              sample_fps=window.fps, clip=True)
    clip = write_clip(frames, window.fps, tmp_path / "window.mov")
    messages = [{"role": "user", "content": [{"type": "video", "path": str(clip)}, {"type": "text", "text": "When?"}]}]
    ref = processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt",
                                        add_generation_prompt=True, do_sample_frames=False)
    assert ours["input_ids"].tolist() == ref["input_ids"].tolist()
    assert torch.equal(ours["video_grid_thw"], ref["video_grid_thw"])
    if "second_per_grid_ts" in ref:
        assert ours["second_per_grid_ts"].tolist() == pytest.approx(ref["second_per_grid_ts"].tolist(), abs=1e-9)
    assert torch.allclose(ours["pixel_values_videos"], ref["pixel_values_videos"], atol=1e-6)
    if family == "qwen3_vl":  # frame pair k written at its time, k x 2 / fps + half a frame
        text = processor.tokenizer.decode(ours["input_ids"][0])
        assert re.findall(r"<([0-9.]+) seconds>", text) == ["0.2", "1.2", "2.2"]  # 0.25, 1.25, 2.25
    assert np.allclose(window.times(), stamps, atol=1 / reader.fps)  # the frame on screen at each time
