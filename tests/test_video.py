"""grounder.video: exact frame times and pixels against a plain sequential PyAV decode,
keyframe seeking, the frame cache, and one-line errors for bad files."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from grounder.errors import GroundQAError, VideoError
from grounder.video import (
    DEFAULT_BACKEND,
    BadTimesError,
    FrameCache,
    clear_shared_readers,
    open_video,
    output_size,
    shared_reader,
    unusable_backends,
)

# Every backend is a test case; one that cannot decode on this machine is skipped with the reason
# (torchcodec without FFmpeg's shared libraries), so a run shows what it did not check.
_UNUSABLE = unusable_backends()
BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(b in _UNUSABLE, reason=f"{b} cannot decode here: "
                                                     f"{_UNUSABLE.get(b)}")) for b in ("pyav", "decord", "torchcodec")]
CLIPS = {  # name: (width, height, fps, num_frames, has_audio)
    "bigbuckbunny": (1280, 720, 25.0, 132, True),
    "bikes": (640, 272, 25.0, 250, False),
    "carphone_pristine": (176, 144, 30000 / 1001, 120, False),
    "carphone_distorted": (176, 144, 30000 / 1001, 120, False),
}


def _digest(rgb: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16).hexdigest()


_REFERENCE: dict[Path, tuple[np.ndarray, list[str]]] = {}


def reference(path: Path) -> tuple[np.ndarray, list[str]]:
    """Every frame's time (pts * time_base from the first frame) and RGB digest, from a
    plain sequential decode: no seeking, nothing of ours involved."""
    if path not in _REFERENCE:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            start = stream.start_time or 0
            rows = [
                (float((f.pts - start) * stream.time_base), _digest(f.to_ndarray(format="rgb24")))
                for f in container.decode(stream)
            ]
        rows.sort()
        _REFERENCE[path] = (np.array([r[0] for r in rows]), [r[1] for r in rows])
    return _REFERENCE[path]


def expected_index(ref_times: np.ndarray, times: np.ndarray, duration: float) -> np.ndarray:
    clipped = np.clip(times, 0.0, duration)
    return np.searchsorted(ref_times, clipped + 1e-9, side="right") - 1


def probe_times(
    ref_times: np.ndarray, duration: float, n_random: int, n_bounds: int = 40, seed: int = 0
) -> np.ndarray:
    """Times at, just before and just after frame boundaries, random times, and edges."""
    rng = np.random.default_rng(seed)
    picks = (
        ref_times if len(ref_times) <= n_bounds else rng.choice(ref_times, n_bounds, replace=False)
    )
    return np.concatenate(
        [
            picks,
            picks - 1e-4,
            picks + 1e-4,
            rng.uniform(0.0, duration, n_random),
            [0.0, duration, duration - 1e-3, -1.0, duration + 7.0],
        ]
    )


def write_h264(
    path: Path,
    pts: list[int],
    time_base: Fraction,
    size: tuple[int, int] = (96, 64),
    gop: int = 12,
    preset: str = "ultrafast",
) -> Path:
    """A small H.264 MP4 whose frames have the given pts (irregular pts make it VFR).

    Each frame shows its own index as a grey level plus a moving bar, so frames differ.
    """
    w, h = size
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.options = {
            "preset": preset,
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        for i, p in enumerate(pts):
            img = np.full((h, w, 3), (i * 37) % 256, np.uint8)
            img[:, (i * 5) % w] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = p, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def videos(shared_data: Path) -> Path:
    return shared_data / "videos"


# -- correctness on the real clips ------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CLIPS))
def test_frames_and_times_match_sequential_decode(videos: Path, name: str, backend: str) -> None:
    path = videos / f"{name}.mp4"
    width, height, fps, num_frames, has_audio = CLIPS[name]
    ref_times, ref_digests = reference(path)
    with open_video(path, backend=backend) as video:
        assert (video.width, video.height, video.num_frames) == (width, height, num_frames)
        assert video.fps == pytest.approx(fps, abs=1e-9)
        assert video.duration == pytest.approx(num_frames / fps, abs=1e-6)
        assert video.has_audio is has_audio
        assert video.path == path
        big = name == "bigbuckbunny"  # 720p in one GOP: fewer times keep the test quick
        times = probe_times(
            ref_times, video.duration, n_random=8 if big else 40, n_bounds=12 if big else 40
        )
        frames, stamps = video.sample(times)
    assert frames.dtype == np.uint8 and frames.shape == (len(times), height, width, 3)
    assert stamps.dtype == np.float64
    want = expected_index(ref_times, times, video.duration)
    np.testing.assert_array_equal(stamps, ref_times[want])  # exact, not approx
    assert [_digest(f) for f in frames] == [ref_digests[k] for k in want]


def test_ntsc_rate_timestamps_are_pts_times(videos: Path) -> None:
    with open_video(videos / "carphone_pristine.mp4") as video:
        _, stamps = video.sample([1001 / 30000 * 7, 1001 / 30000 * 7 - 1e-6, 4.0])
    assert stamps.tolist() == [7 * 1001 / 30000, 6 * 1001 / 30000, 119 * 1001 / 30000]


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate(tmp_path: Path, backend: str) -> None:
    pts = [0, 40, 50, 130, 400, 410, 1000, 1033, 1500, 1510, 1520, 2200, 2300, 3000]
    path = write_h264(tmp_path / "vfr.mp4", pts, Fraction(1, 1000), gop=4)
    ref_times, ref_digests = reference(path)
    np.testing.assert_array_equal(ref_times, np.array(pts) / 1000)
    with open_video(path, backend=backend) as video:
        times = probe_times(ref_times, video.duration, n_random=20)
        frames, stamps = video.sample(times)
    want = expected_index(ref_times, times, video.duration)
    np.testing.assert_array_equal(stamps, ref_times[want])
    assert [_digest(f) for f in frames] == [ref_digests[k] for k in want]


@pytest.mark.parametrize("backend", BACKENDS)
def test_b_frames_and_short_gops(tmp_path: Path, backend: str) -> None:
    """B-frames put a keyframe's decode time before its display time: seeking must still
    never return a frame from after t."""
    path = write_h264(tmp_path / "bf.mp4", list(range(90)), Fraction(1, 30), gop=10, preset="fast")
    ref_times, ref_digests = reference(path)
    with open_video(path, backend=backend) as video:
        times = probe_times(ref_times, video.duration, n_random=20, seed=3)
        frames, stamps = video.sample(times)
    want = expected_index(ref_times, times, video.duration)
    np.testing.assert_array_equal(stamps, ref_times[want])
    assert [_digest(f) for f in frames] == [ref_digests[k] for k in want]


# -- seeking, cache, sizes, ranges --------------------------------------------------------


def test_sparse_times_seek_instead_of_decoding_everything(tmp_path: Path) -> None:
    path = write_h264(tmp_path / "long.mp4", list(range(300)), Fraction(1, 30), gop=30)
    with open_video(path, workers=1) as video:
        video.sample([9.9])
        assert video.seeks == 1 and video.frames_decoded == 1
        video.sample([0.1, 0.2, 0.5, 0.9])  # one GOP: one seek, decode forward
        assert video.seeks == 2
        video.sample([1.1, 5.5, 7.2])  # three GOPs: three seeks
        assert video.seeks == 5


def test_parallel_decoders_split_by_gop(tmp_path: Path) -> None:
    path = write_h264(tmp_path / "long.mp4", list(range(300)), Fraction(1, 30), gop=30)
    ref_times, ref_digests = reference(path)
    times = np.linspace(0.0, 9.99, 57)
    with open_video(path, workers=2) as video:
        runs = video._split(times.tolist())
        assert [len(r) for r in runs] == [np.sum(times < 5.0), np.sum(times >= 5.0)]  # 5 GOPs each
        frames, stamps = video.sample(times)
        assert len(video._decoders) == 2 and video.seeks == 10
    want = expected_index(ref_times, times, 10.0)
    np.testing.assert_array_equal(stamps, ref_times[want])
    assert [_digest(f) for f in frames] == [ref_digests[k] for k in want]


def test_repeated_sample_decodes_nothing(videos: Path) -> None:
    with open_video(videos / "bikes.mp4") as video:
        times = [0.5, 3.3, 9.1, 3.3]
        f1, t1 = video.sample(times)
        decoded, seeks = video.frames_decoded, video.seeks
        assert decoded == 3
        f2, t2 = video.sample(times + [3.31])  # same frame as 3.3: a known span
        assert video.frames_decoded == decoded and video.seeks == seeks
        np.testing.assert_array_equal(f1, f2[:4])
        np.testing.assert_array_equal(t1, t2[:4])
        f2[0] = 0  # callers get copies, the cache is untouched
        np.testing.assert_array_equal(video.sample([0.5])[0][0], f1[0])


def test_cache_is_bounded_by_bytes(videos: Path) -> None:
    frame_bytes = 640 * 272 * 3
    with open_video(videos / "bikes.mp4", cache_bytes=3 * frame_bytes) as video:
        video.sample(np.arange(10) * 0.9)
        assert len(video.cache) == 3 and video.cache.nbytes <= 3 * frame_bytes


def test_frame_cache_lru() -> None:
    cache = FrameCache(max_bytes=300)
    for k in range(3):
        cache.put(k, np.zeros(100, np.uint8))
    assert cache.get(0) is not None  # 0 becomes most recent
    cache.put(3, np.zeros(100, np.uint8))
    assert cache.get(1) is None and cache.get(0) is not None and len(cache) == 3
    cache.put(4, np.zeros(301, np.uint8))  # larger than the budget: not stored
    assert cache.get(4) is None and cache.nbytes == 300


def test_max_pixels_keeps_aspect(videos: Path) -> None:
    assert output_size(1280, 720, None) == (1280, 720)
    assert output_size(1280, 720, 10**7) == (1280, 720)  # never upscales
    w, h = output_size(1280, 720, 448 * 448)
    assert w * h <= 448 * 448 and w % 2 == 0 and h % 2 == 0
    assert abs(w / h - 16 / 9) < 0.02
    with open_video(videos / "bigbuckbunny.mp4") as video:
        frames, stamps = video.sample([1.0, 2.0], max_pixels=448 * 448)
        full, _ = video.sample([1.0])
    assert frames.shape == (2, h, w, 3)
    assert stamps.tolist() == [1.0, 2.0]
    assert abs(float(frames[0].mean()) - float(full[0].mean())) < 2.0  # same picture, smaller


def test_sample_range_and_video_metadata(videos: Path) -> None:
    with open_video(videos / "bikes.mp4") as video:
        frames, stamps = video.sample_range(2.0, 6.0, fps=2.0)
        assert len(frames) == 8 and np.all((stamps >= 2.0) & (stamps <= 6.0))
        assert np.all(np.diff(stamps) > 0)
        frames, stamps = video.sample_range(0.0, 1e6, fps=1.0, max_frames=5)
        assert len(frames) == 5 and stamps[-1] < video.duration
        meta = video.video_metadata(stamps, sample_fps=5 / video.duration)
    assert {"total_num_frames", "fps", "width", "height", "duration", "frames_indices"} <= set(meta)
    assert meta["fps"] == 25.0 and (meta["width"], meta["height"]) == (640, 272)
    # Qwen2.5-VL reads its sampling rate as len(indices) / total_num_frames * fps
    assert len(meta["frames_indices"]) / meta["total_num_frames"] * meta["fps"] == pytest.approx(0.5)
    # transformers turns indices back into seconds as index / fps
    np.testing.assert_allclose(np.array(meta["frames_indices"]) / meta["fps"], stamps, atol=1e-9)
    with pytest.raises(BadTimesError):
        video.sample_range(5.0, 1.0)


def test_out_of_range_and_bad_times(videos: Path) -> None:
    with open_video(videos / "carphone_pristine.mp4") as video:
        _, stamps = video.sample([-5.0, 0.0, 1e9])
        assert stamps[0] == 0.0 and stamps[1] == 0.0
        assert stamps[2] == 119 * 1001 / 30000  # clipped: the last frame
        frames, stamps = video.sample([])
        assert frames.shape == (0, 144, 176, 3) and stamps.shape == (0,)
        frames, _ = video.sample(1.0)  # a scalar is one time
        assert frames.shape == (1, 144, 176, 3)
        for bad in ([float("nan")], [0.0, float("inf")], [[1.0]], ["x"]):
            with pytest.raises(BadTimesError) as err:
                video.sample(bad)
            assert isinstance(err.value, GroundQAError) and isinstance(err.value, ValueError)
    with pytest.raises(VideoError, match="closed"):
        video.sample([1.0])
    video.close()  # twice is fine


def test_shared_reader_reuses_open_reader(videos: Path) -> None:
    try:
        a = shared_reader(videos / "bikes.mp4")
        a.sample([1.0])
        b = shared_reader(str(videos / "bikes.mp4"))
        assert a is b and len(b.cache) == 1
    finally:
        clear_shared_readers()
    assert a.closed


def test_default_backend_is_exact(videos: Path) -> None:
    """The default must be an exact backend (decord is not: float32 frame times)."""
    with open_video(videos / "bikes.mp4") as video:
        assert video.backend == DEFAULT_BACKEND == "pyav" and video.exact
    if "decord" not in _UNUSABLE:
        with open_video(videos / "bikes.mp4", backend="decord") as video:
            assert not video.exact


def test_unknown_backend(videos: Path) -> None:
    with pytest.raises(VideoError, match="unknown video backend"):
        open_video(videos / "bikes.mp4", backend="opencv")


# -- bad files: one-line VideoError naming the file ----------------------------------------


def _assert_one_line_error(path: Path, match: str) -> None:
    with pytest.raises(VideoError, match=match) as err:
        open_video(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg, msg


def test_missing_file(tmp_path: Path) -> None:
    _assert_one_line_error(tmp_path / "nope.mp4", "not found")


def test_directory(tmp_path: Path) -> None:
    _assert_one_line_error(tmp_path, "directory")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    _assert_one_line_error(path, "empty")


def test_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    _assert_one_line_error(path, "cannot read video")


def test_truncated_file_without_moov(tmp_path: Path) -> None:
    whole = write_h264(tmp_path / "whole.mp4", list(range(60)), Fraction(1, 30))
    data = whole.read_bytes()
    assert data.rfind(b"moov") > len(data) // 2  # PyAV writes the moov atom at the end
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])
    _assert_one_line_error(half, "cannot read video")


def test_truncated_file_with_moov_in_front(tmp_path: Path) -> None:
    """The header survives, the data does not: early frames decode, late ones raise."""
    whole = write_h264(tmp_path / "whole.mp4", list(range(300)), Fraction(1, 30), gop=30)
    front = tmp_path / "front.mp4"
    with (
        av.open(str(whole)) as src,
        av.open(str(front), "w", options={"movflags": "faststart"}) as dst,
    ):
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    data = front.read_bytes()
    assert data.find(b"moov") < 100
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with open_video(cut) as video:
        assert video.sample([1.0])[1].tolist() == [1.0]
        with pytest.raises(VideoError) as err:
            video.sample([9.0])
    assert "\n" not in str(err.value) and str(cut) in str(err.value)


@pytest.mark.parametrize("codec,suffix", [("aac", ".m4a"), ("mp2", ".mp4")])
def test_audio_only_file(tmp_path: Path, codec: str, suffix: str) -> None:
    path = tmp_path / f"audio{suffix}"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=44100)
        samples = np.zeros((1, 44100), np.float32 if codec == "aac" else np.int16)
        fmt = "fltp" if codec == "aac" else "s16"
        frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="mono")
        frame.sample_rate = 44100
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    _assert_one_line_error(path, "no video stream")


def test_copied_real_clip_still_opens(videos: Path, tmp_path: Path) -> None:
    """Control for the error tests: a good file in tmp_path opens fine."""
    path = shutil.copy(videos / "carphone_distorted.mp4", tmp_path / "ok.mp4")
    with open_video(path) as video:
        assert video.num_frames == 120


def test_import_is_light() -> None:
    code = (
        "import sys, grounder.video; "
        "heavy = [m for m in ('torch', 'av', 'decord', 'torchcodec') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
