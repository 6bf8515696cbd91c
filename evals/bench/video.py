"""Frame access benchmark: sparse frames from a 1-hour video.

Run: ``python -m evals.bench.video`` (``--help`` for options). The first run writes the test
video to ``.bench_cache/`` (gitignored, several minutes on 2 cores); later runs reuse it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".bench_cache"

WIDTH, HEIGHT, FPS, GOP = 640, 360, 30, 120

# 7-segment layout: (row0, row1, col0, col1) of each segment in a 40x24 digit cell.
_SEGMENTS = {
    "a": (0, 4, 2, 22),
    "b": (2, 20, 20, 24),
    "c": (20, 38, 20, 24),
    "d": (36, 40, 2, 22),
    "e": (20, 38, 0, 4),
    "f": (2, 20, 0, 4),
    "g": (18, 22, 2, 22),
}
_DIGIT_SEGMENTS = [
    "abcdef",
    "bc",
    "abged",
    "abgcd",
    "fgbc",
    "afgcd",
    "afgedc",
    "abc",
    "abcdefg",
    "abcdfg",
]


def _digit_cells() -> np.ndarray:
    """Bitmaps [10, 40, 24] of the digits, to stamp the frame number into each frame."""
    cells = np.zeros((10, 40, 24), dtype=bool)
    for digit, segments in enumerate(_DIGIT_SEGMENTS):
        for name in segments:
            r0, r1, c0, c1 = _SEGMENTS[name]
            cells[digit, r0:r1, c0:c1] = True
    return cells


def write_test_video(path: Path, seconds: float, seed: int = 0) -> Path:
    """Write a WIDTHxHEIGHT FPS H.264 file with a keyframe every GOP frames.

    Every frame differs (scrolling texture, a small block of fresh noise, the frame number in
    big digits, drifting chroma) yet the file stays compressible enough for x264 ultrafast to
    encode an hour in a few minutes. Written to a temp file and renamed, so an interrupted run
    leaves nothing half-written behind.
    """
    import av

    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 60, size=(HEIGHT, WIDTH + 512), dtype=np.uint8)
    ramp = (np.arange(WIDTH + 512) % 256).astype(np.uint8) // 2
    base = texture + ramp[None, :]
    shade = (np.arange(HEIGHT)[:, None] * 160 // HEIGHT).astype(np.uint8)
    digits = _digit_cells()
    n_frames = int(round(seconds * FPS))

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {
            "preset": "ultrafast",
            "crf": "30",
            "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0",
        }
        buf = np.empty((HEIGHT * 3 // 2, WIDTH), dtype=np.uint8)  # yuv420p planes stacked
        luma = buf[:HEIGHT]
        for i in range(n_frames):
            offset = (3 * i) % 512
            np.add(base[:, offset : offset + WIDTH], shade, out=luma)
            luma[100:124, 200:224] = rng.integers(0, 256, (24, 24), dtype=np.uint8)
            for k, ch in enumerate(f"{i:06d}"):
                cell = luma[300:340, 40 + 30 * k : 64 + 30 * k]
                cell[...] = np.where(digits[int(ch)], 250, 10)
            buf[HEIGHT : HEIGHT + HEIGHT // 4] = (i // 30) % 200 + 20
            buf[HEIGHT + HEIGHT // 4 :] = (i * 7) % 200 + 20
            frame = __import__("av").VideoFrame.from_ndarray(buf, format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    os.replace(tmp, path)
    return path


def test_video(seconds: float = 3600.0) -> Path:
    """The cached benchmark video, written on first use."""
    path = CACHE / f"bench_{WIDTH}x{HEIGHT}_{FPS}fps_gop{GOP}_{int(seconds)}s.mp4"
    if not path.exists():
        print(f"writing {path} ({seconds:.0f} s of video, once) ...", flush=True)
        write_test_video(path, seconds)
    return path
