"""The scan's budget (`ScanBudget`: frames, calls, tokens, retrieval settings) and where a model
folder keeps the values it was trained for (`scan_config.json`). Below the scan and the backends,
which both read it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grounder.errors import InputError
from grounder.windows import zoom_lengths


@dataclass(frozen=True)
class ScanBudget:
    """How much a `ground` call may look at. Defaults meet the cost targets (`grounder.scan`'s docstring)."""

    max_calls: int = 96
    """Model calls per query for coarse-to-fine (coarse + zoom); sliding ignores it."""
    frames_per_call: int = 32
    """Frames per zoom / sliding / uniform call."""
    coarse_frames_per_window: int = 32
    """Frames per coarse window."""
    coarse_window_s: float | None = None
    """Coarse window length; None = auto: coarse_frames_per_window / coarse_fps, widened only
    when the coarse pass would not fit in max_calls beside the zoom stage."""
    coarse_fps: float = 0.25
    """Coarse sampling rate for the auto window (a frame every 4 s)."""
    coarse_max_pixels: int = 56 * 56
    """Pixels per coarse frame: 4 visual tokens per pair of frames."""
    fine_max_pixels: int = 448 * 448
    """Pixels per zoom / sliding / uniform frame (the processor may cap it lower)."""
    target_fps: float = 2.0
    """Zooming stops at this frame rate; sliding runs at it."""
    top_k: int = 3
    """Coarse windows kept for zooming."""
    zoom_margin: float = 0.25
    """A zoom window is at least the span grown by this fraction of its length on each side."""
    max_new_tokens: int = 128
    """Generation budget per call (reasoning + answer)."""
    # -- retrieve, then ground (used when the grounder has a retriever; grounder.retrieval) --
    retrieval_fps: float = 0.5
    """Frames per second of video the retriever embeds (once per video; cached)."""
    retrieval_max_pixels: int = 224 * 224
    """Pixels per embedded frame."""
    retrieval_windows: int = 5
    """Candidate windows (score peaks) the VLM grounds inside: the k of Recall@k."""
    retrieval_margin: float = 8.0
    """Seconds added on each side of a peak's run of frames."""
    retrieval_min_window: float = 16.0
    """Shortest candidate window (s)."""
    retrieval_max_window: float = 64.0
    """Longest candidate window (s); the VLM's first look inside it sees frames_per_call frames."""
    retrieval_dense_fps: float = 2.0
    """Each candidate window is re-scored at this rate to find where the named thing appears and
    disappears (the VLM looks there); 0 = off (the VLM's first look is the whole window)."""
    retrieval_weight: float = 0.5
    """Segment score: the log-odds of VLM confidence and retrieval score, weighted 1 - w and w
    (0: the VLM alone ranks)."""
    retrieval_onset_shift: float = 0.0
    """Seconds added to where a sharpened run starts: a retriever sees a thing before it is half
    on screen (its clips reach ahead), so its runs start early by about this much, negated.
    Measured on the retriever's training world (`trainer.calibrate`); 0 for other retrievers."""
    retrieval_offset_shift: float = 0.0
    """Seconds added to where a sharpened run ends (likewise: runs end late, so this is < 0)."""
    retrieval_after_cut_s: float = 15.0
    """A query that places its moment right after a scene change ("... right after the scene turns
    grey") is anchored on the video's cuts (`grounder.cuts`): moments at most this many seconds
    after a cut keep their retrieval score; 0 = no anchoring."""
    retrieval_anchor_floor: float = 0.05
    """The share of its retrieval score a moment keeps when it is not right after a cut."""
    retrieval_cut_threshold: float = 10.0
    """A cut: the median pixel of a frame's grey thumbnail moved by at least this much (0..255)
    since the frame before (objects moving leave the median near 0)."""
    retrieval_side_floor: float = 0.05
    """A query that names the side a thing enters from or leaves through ("... enter from the
    left") keeps this share of its retrieval score in a window where the retriever sees the thing
    cross another side (`grounder.tracks`; retrievers that can locate things only); 1 = no check."""

    def __post_init__(self) -> None:
        for name in ("max_calls", "frames_per_call", "coarse_frames_per_window", "top_k",
                     "coarse_max_pixels", "fine_max_pixels"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"ScanBudget.{name} must be >= 1, got {getattr(self, name)}")
        if self.frames_per_call < 2 or self.coarse_frames_per_window < 2:
            raise InputError("ScanBudget: frames per call must be >= 2 (frames go in pairs)")
        for name in ("coarse_fps", "target_fps"):
            if not float(getattr(self, name)) > 0:
                raise InputError(f"ScanBudget.{name} must be > 0, got {getattr(self, name)}")
        if self.coarse_window_s is not None and not self.coarse_window_s > 0:
            raise InputError(f"ScanBudget.coarse_window_s must be > 0, got {self.coarse_window_s}")
        if self.zoom_margin < 0:
            raise InputError(f"ScanBudget.zoom_margin must be >= 0, got {self.zoom_margin}")
        if self.max_new_tokens < 8:
            raise InputError(f"ScanBudget.max_new_tokens must be >= 8, got {self.max_new_tokens}")
        if not self.retrieval_fps > 0 or self.retrieval_windows < 1 or self.retrieval_max_pixels < 1:
            raise InputError("ScanBudget: retrieval_fps must be > 0, retrieval_windows and "
                             "retrieval_max_pixels >= 1")
        if not 0 < self.retrieval_min_window <= self.retrieval_max_window or self.retrieval_margin < 0:
            raise InputError("ScanBudget: need 0 < retrieval_min_window <= retrieval_max_window and "
                             "retrieval_margin >= 0")
        if self.retrieval_dense_fps < 0:
            raise InputError(f"ScanBudget.retrieval_dense_fps must be >= 0, got {self.retrieval_dense_fps}")
        if self.retrieval_after_cut_s < 0 or not 0.0 < self.retrieval_anchor_floor <= 1.0:
            raise InputError("ScanBudget: need retrieval_after_cut_s >= 0 and 0 < retrieval_anchor_floor <= 1, got "
                             f"{self.retrieval_after_cut_s} and {self.retrieval_anchor_floor}")
        if not 0.0 < self.retrieval_side_floor <= 1.0:
            raise InputError(f"ScanBudget.retrieval_side_floor must be in (0, 1], got {self.retrieval_side_floor}")
        if not self.retrieval_cut_threshold > 0:
            raise InputError(f"ScanBudget.retrieval_cut_threshold must be > 0, got {self.retrieval_cut_threshold}")
        if not 0.0 <= self.retrieval_weight <= 1.0:
            raise InputError(f"ScanBudget.retrieval_weight must be in [0, 1], got {self.retrieval_weight}")

    @property
    def fine_length(self) -> float:
        """Seconds that frames_per_call frames cover at target_fps (the last zoom level)."""
        return self.frames_per_call / self.target_fps

    def zoom_calls(self, window_length: float) -> int:
        """Zoom calls of one chain below a coarse window of this length."""
        return len(zoom_lengths(window_length, self.fine_length))

    def coarse_window(self, duration: float) -> float:
        """Coarse window length for a video of `duration` s (see coarse_window_s)."""
        if self.coarse_window_s is not None:
            return float(self.coarse_window_s)
        w = self.coarse_frames_per_window / self.coarse_fps
        room = self.max_calls - self.top_k * self.zoom_calls(w)
        if room >= 1 and math.ceil(duration / w - 1e-9) > room:
            w = duration / room  # sparser than coarse_fps, so that the zoom stage still fits
        return w


SCAN_CONFIG = "scan_config.json"


def read_scan_config(folder: Any) -> dict[str, Any]:
    """A model folder's `scan_config.json`: the ScanBudget values it was trained for (e.g. the
    embedded default sees 16 frames a call). Missing file: {}; a bad one: a one-line error."""
    path = Path(folder) / SCAN_CONFIG
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ScanBudget(**data)  # validates names and values
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: bad scan config ({exc})") from None
    return dict(data)


def resolve_budget(budget: ScanBudget | None, model_defaults: dict[str, Any] | None) -> ScanBudget:
    """The budget a call runs with: the model's defaults, then every field the caller set to
    something other than ScanBudget's class default (so `ScanBudget(max_calls=40)` keeps the
    model's frames per call but uses 40 calls)."""
    base = ScanBudget(**(model_defaults or {}))
    if budget is None:
        return base
    plain = ScanBudget()
    changed = {k: v for k, v in asdict(budget).items() if v != getattr(plain, k)}
    return ScanBudget(**{**asdict(base), **changed})
