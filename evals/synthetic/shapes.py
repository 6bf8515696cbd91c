"""Palette, shape masks and scene backgrounds of the synthetic world.

Everything is drawn as *palette indices* (one uint8 per pixel): object colours and
background tones are entries of one small palette, so a frame converts to RGB or to
YUV 4:2:0 with table lookups (fast and bit-exact on every machine).
"""

from __future__ import annotations

from functools import cache

import numpy as np

import grounder.synthetic_words as WORDS

# Saturated, mutually distant colours (min RGB distance ~88, orange vs yellow) so a
# ~112 px vision model can tell them apart after H.264 4:2:0 compression; in the order of the
# world's words (grounder.synthetic_words), which is also the palette's.
COLORS: dict[str, tuple[int, int, int]] = dict(zip(WORDS.COLORS, (
    (230, 30, 40),  # red
    (255, 140, 0),  # orange
    (250, 225, 20),  # yellow
    (40, 200, 60),  # green
    (0, 215, 230),  # cyan
    (40, 90, 255),  # blue
    (165, 60, 230),  # purple
    (245, 245, 245),  # white
), strict=True))
COLOR_NAMES: tuple[str, ...] = WORDS.COLORS
SHAPES: tuple[str, ...] = WORDS.SHAPES

# Scene backgrounds: unsaturated tones, >=100 away from every object colour. Each scene
# is a list of (palette tone) and a pattern; names are what queries say ("turns dark").
_BG_TONES: dict[str, tuple[int, int, int]] = {
    "dark": (18, 20, 28),
    "grey": (105, 105, 110),
    "stripe_a": (40, 40, 48),
    "stripe_b": (80, 80, 90),
    "check_a": (30, 48, 36),
    "check_b": (66, 88, 72),
}
SCENES: tuple[str, ...] = WORDS.SCENES

# Palette: object colours first (index = position in COLOR_NAMES), then background tones.
PALETTE_NAMES: tuple[str, ...] = COLOR_NAMES + tuple(_BG_TONES)
PALETTE_RGB: np.ndarray = np.array(
    [COLORS[n] for n in COLOR_NAMES] + [_BG_TONES[n] for n in _BG_TONES], dtype=np.uint8
)
COLOR_INDEX: dict[str, int] = {n: i for i, n in enumerate(COLOR_NAMES)}


def _palette_yuv() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited-range YUV of each palette entry (integer maths, as libswscale)."""
    rgb = PALETTE_RGB.astype(np.int32)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128
    v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128
    return y.astype(np.uint8), u.astype(np.uint16), v.astype(np.uint16)


PALETTE_Y, PALETTE_U, PALETTE_V = _palette_yuv()


def _inside_polygon(x: np.ndarray, y: np.ndarray, poly: list[tuple[float, float]]) -> np.ndarray:
    """Even-odd rule, vectorised over points; works for the non-convex star."""
    inside = np.zeros(x.shape, dtype=bool)
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_at)
    return inside


def _unit_shape(shape: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Membership in the shape on the unit box [-0.5, 0.5]^2 (y grows downwards)."""
    if shape == "circle":
        return x * x + y * y <= 0.49 * 0.49
    if shape == "square":
        return (np.abs(x) <= 0.43) & (np.abs(y) <= 0.43)
    if shape == "triangle":
        return _inside_polygon(x, y, [(0.0, -0.49), (0.49, 0.43), (-0.49, 0.43)])
    if shape == "star":
        pts = []
        for k in range(10):
            r = 0.52 if k % 2 == 0 else 0.23
            a = -np.pi / 2 + k * np.pi / 5
            pts.append((r * np.cos(a), r * np.sin(a) + 0.04))
        return _inside_polygon(x, y, pts)
    if shape == "cross":
        w = 0.17
        return ((np.abs(x) <= w) & (np.abs(y) <= 0.49)) | ((np.abs(y) <= w) & (np.abs(x) <= 0.49))
    raise ValueError(f"unknown shape {shape!r}")


@cache
def shape_mask(shape: str, size: int) -> np.ndarray:
    """Binary [size, size] mask, 4x supersampled then thresholded (clean edges, no blending)."""
    ss = 4
    c = (np.arange(size * ss) + 0.5) / (size * ss) - 0.5
    xx, yy = np.meshgrid(c, c)
    cover = _unit_shape(shape, xx, yy).reshape(size, ss, size, ss).mean(axis=(1, 3))
    mask = cover >= 0.5
    mask.setflags(write=False)
    return mask


@cache
def background(scene: str, height: int, width: int) -> np.ndarray:
    """Palette-index image [H, W] of a scene background."""
    idx = {n: len(COLOR_NAMES) + i for i, n in enumerate(_BG_TONES)}
    yy, xx = np.mgrid[0:height, 0:width]
    if scene == "dark":
        img = np.full((height, width), idx["dark"])
    elif scene == "grey":
        img = np.full((height, width), idx["grey"])
    elif scene == "striped":
        img = np.where((yy // 8) % 2 == 0, idx["stripe_a"], idx["stripe_b"])
    elif scene == "checkered":
        img = np.where(((yy // 16) + (xx // 16)) % 2 == 0, idx["check_a"], idx["check_b"])
    else:
        raise ValueError(f"unknown scene {scene!r}")
    img = img.astype(np.uint8)
    img.setflags(write=False)
    return img
