"""Drawing frames from a VideoSpec and encoding them as H.264 MP4.

Frames are drawn as palette-index images (vectorised numpy: background lookup + one
boolean-mask paste per visible object per frame), converted to YUV 4:2:0 by table lookup,
and fed to libx264 directly, so no RGB->YUV colour conversion runs per frame.
The encoder is deterministic: one thread, fixed GOP, no scene-cut keyframes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from evals.synthetic.shapes import (
    COLOR_INDEX,
    PALETTE_RGB,
    PALETTE_U,
    PALETTE_V,
    PALETTE_Y,
    background,
    shape_mask,
)
from evals.synthetic.world import VideoSpec

CRF = 18


def draw_indices(spec: VideoSpec, times: Sequence[float] | np.ndarray,
                 labels: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Palette-index frames [N, H, W] at `times` (+ object-id label maps, -1 = background)."""
    cfg = spec.config
    h, w = cfg.height, cfg.width
    times = np.asarray(times, dtype=np.float64)
    starts = np.array([s.start for s in spec.scenes])
    scene_of = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(spec.scenes) - 1)
    bgs = np.stack([background(s.name, h, w) for s in spec.scenes])
    out = bgs[scene_of]  # fancy indexing copies
    lab = np.full(out.shape, -1, dtype=np.int32) if labels else None
    if len(times) == 0:
        return out, lab
    # objects in id order: later entries are drawn on top
    for oid in spec.active_ids(float(times.min()), float(times.max())):
        o = spec.objects[int(oid)]
        sel = np.nonzero((times >= o.t_in) & (times <= o.t_gone))[0]
        if sel.size == 0:
            continue
        x0s, y0s = o.top_lefts(times[sel])
        mask = shape_mask(o.shape, o.size)
        color = COLOR_INDEX[o.color]
        s = o.size
        for f, x0, y0 in zip(sel.tolist(), x0s.tolist(), y0s.tolist()):
            xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + s, w), min(y0 + s, h)
            if xa >= xb or ya >= yb:
                continue
            m = mask[ya - y0 : yb - y0, xa - x0 : xb - x0]
            out[f, ya:yb, xa:xb][m] = color
            if lab is not None:
                lab[f, ya:yb, xa:xb][m] = o.id
    return out, lab


def render_rgb(spec: VideoSpec, times: Sequence[float] | np.ndarray) -> np.ndarray:
    """Exact (pre-compression) RGB frames [N, H, W, 3] at `times`."""
    idx, _ = draw_indices(spec, times)
    return PALETTE_RGB[idx]


def label_map(spec: VideoSpec, t: float) -> np.ndarray:
    """[H, W] id of the object whose pixel is on top (-1 background), occlusion included."""
    _, lab = draw_indices(spec, [t], labels=True)
    assert lab is not None
    return lab[0]


def indices_to_yuv420(idx: np.ndarray) -> np.ndarray:
    """Palette-index frames [N, H, W] -> planar yuv420p [N, H*3/2, W] (chroma: 2x2 mean)."""
    n, h, w = idx.shape
    y = PALETTE_Y[idx]
    u, v = PALETTE_U[idx], PALETTE_V[idx]
    u2 = (u[:, 0::2, 0::2] + u[:, 1::2, 0::2] + u[:, 0::2, 1::2] + u[:, 1::2, 1::2] + 2) >> 2
    v2 = (v[:, 0::2, 0::2] + v[:, 1::2, 0::2] + v[:, 0::2, 1::2] + v[:, 1::2, 1::2] + 2) >> 2
    out = np.empty((n, h * w * 3 // 2), dtype=np.uint8)
    out[:, : h * w] = y.reshape(n, -1)
    out[:, h * w : h * w * 5 // 4] = u2.reshape(n, -1)
    out[:, h * w * 5 // 4 :] = v2.reshape(n, -1)
    return out.reshape(n, h * 3 // 2, w)


def encode_video(spec: VideoSpec, path: str | os.PathLike[str],
                 advance: Callable[[int], None] | None = None, chunk: int = 240) -> None:
    """Write the video as H.264 yuv420p MP4, atomically (temp file, then rename)."""
    cfg = spec.config
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    rate = Fraction(cfg.fps).limit_denominator(1000)
    keyint = max(1, round(cfg.keyframe_s * cfg.fps))
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = cfg.width, cfg.height, "yuv420p"
            stream.codec_context.thread_count = 1  # one thread: bit-identical output every run
            stream.options = {
                "preset": "ultrafast", "crf": str(CRF),
                "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:threads=1",
            }
            tb = 1 / rate
            for i0 in range(0, spec.n_frames, chunk):
                i1 = min(spec.n_frames, i0 + chunk)
                idx, _ = draw_indices(spec, np.arange(i0, i1, dtype=np.float64) / cfg.fps)
                yuv = indices_to_yuv420(idx)
                for k in range(i1 - i0):
                    frame = av.VideoFrame.from_ndarray(yuv[k], format="yuv420p")
                    frame.pts = i0 + k
                    frame.time_base = tb
                    for packet in stream.encode(frame):
                        container.mux(packet)
                if advance is not None:
                    advance(i1 - i0)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
