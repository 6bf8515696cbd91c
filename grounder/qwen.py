"""Model inputs for Qwen-VL processors (Qwen2.5-VL, Qwen3-VL; real or tiny) from decoded frames.

The grounder, the QA answerer and the trainer all turn "frames + their times + a prompt" into
model inputs the same way, here:

    inputs = build_video_inputs(processor, frames, timestamps, fps=reader.fps, prompt=text,
                                origin=window_start, sample_fps=n / window_length)
    model.generate(**inputs)          # or model(**inputs): pass every key, mm_token_type_ids too

What goes to the processor (transformers 5.25) and why:

- `do_sample_frames=False`: our frames are already sampled (Qwen3-VL's processor resamples at
  2 fps by default, Qwen2.5-VL's keeps them).
- `video_metadata`, one dict per video (see `video_metadata`): without it both processors assume
  24 fps. `fps` is the source frame rate; `frames_indices = round((t - origin) * fps)` so that
  `index / fps` gives back the frame's time relative to `origin` (Qwen3-VL writes these times
  into the prompt as `<t seconds>` per pair of frames); `total_num_frames = N * fps / sample_fps`
  because Qwen2.5-VL takes its sampling rate as `N / total_num_frames * fps` and sets
  `second_per_grid_ts = temporal_patch_size / sample_fps` (MRoPE's absolute time). It is a float
  on purpose: rounding it would shift the truncated temporal positions by one.

Times shown to the model are relative to `origin` (the window start), like the grounder's answers.

A scan window's frames (evenly spaced, frame i at start + i / sample_fps) are described with
`clip=True` instead (`clip_metadata`): as the clip of those n frames at `sample_fps` frames per
second that a server's video processor decodes from a file (`grounder.openai_backend`,
`video="file"`), frame i at exactly i / sample_fps. The same token ids locally and through
`transformers serve`; from `video_metadata` it differs only by where the source's frame grid
snaps each frame (under half a source frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def video_metadata(
    timestamps: Sequence[float] | np.ndarray,
    fps: float,
    sample_fps: float | None = None,
    origin: float = 0.0,
) -> dict[str, Any]:
    """transformers `VideoMetadata` fields for frames taken at `timestamps` from an `fps` video.

    `sample_fps` is the rate the frames were sampled at (frames per second of window); by default
    it is estimated from the timestamps' spacing. Pass it when known (n / window length): frame
    times are snapped to the source's frames, so the estimate is slightly off.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    if ts.ndim != 1 or len(ts) == 0:
        raise ValueError("timestamps must be a non-empty 1-D sequence")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    n = len(ts)
    if sample_fps is None:
        span = float(ts[-1] - ts[0])
        sample_fps = (n - 1) / span if n > 1 and span > 0 else float(fps)
    if not sample_fps > 0:
        raise ValueError(f"sample_fps must be > 0, got {sample_fps}")
    indices = np.maximum(np.rint((ts - origin) * fps), 0).astype(np.int64)
    return {
        "fps": float(fps),
        "frames_indices": indices.tolist(),
        "total_num_frames": n * float(fps) / float(sample_fps),
        "duration": n / float(sample_fps),
    }


def clip_metadata(num_frames: int, sample_fps: float) -> dict[str, Any]:
    """transformers `VideoMetadata` fields of a clip of `num_frames` frames at `sample_fps` (what a
    video processor reads from such a file): frame i at i / sample_fps."""
    if num_frames < 1 or not sample_fps > 0:
        raise ValueError(f"a clip needs >= 1 frame and a rate > 0, got {num_frames} at {sample_fps}")
    return {
        "fps": float(sample_fps),
        "frames_indices": list(range(num_frames)),
        "total_num_frames": num_frames,
        "duration": num_frames / float(sample_fps),
    }


def video_messages(prompt: str, system: str | None = None,
                   lead: str | None = None) -> list[dict[str, Any]]:
    """Chat messages: optional system turn, then a user turn holding the optional `lead` text,
    the video and the prompt."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    content: list[dict[str, Any]] = [{"type": "text", "text": lead}] if lead else []
    content += [{"type": "video"}, {"type": "text", "text": prompt}]
    messages.append({"role": "user", "content": content})
    return messages


@dataclass
class VideoSample:
    """One prompt over one clip. `completion` (if any) is appended after the generation prompt."""

    frames: np.ndarray  # uint8 [N, H, W, 3]
    timestamps: Sequence[float] | np.ndarray  # seconds, one per frame (the frame's own time)
    fps: float  # source video frame rate
    prompt: str
    system: str | None = None
    origin: float = 0.0  # times shown to the model are t - origin
    sample_fps: float | None = None  # frames per second of window; None: from the timestamps
    completion: str | None = None
    lead: str | None = None  # text before the video (grounding: `prompts.query_lead`)
    # a scan window's evenly spaced frames: describe them as the clip a file of them would be
    # (`clip_metadata`); needs `sample_fps`
    clip: bool = False


def build_video_batch(
    processor: Any, samples: Sequence[VideoSample], return_tensors: str = "pt"
) -> Any:
    """Processor outputs (BatchFeature) for a batch of video prompts, padded per the tokenizer."""
    texts, videos, metadata = [], [], []
    for s in samples:
        frames = np.asarray(s.frames)
        if (
            frames.dtype != np.uint8
            or frames.ndim != 4
            or frames.shape[-1] != 3
            or len(frames) == 0
        ):
            raise ValueError(
                f"frames must be uint8 [N, H, W, 3] with N >= 1, got {frames.dtype} {frames.shape}"
            )
        ts = np.asarray(s.timestamps, dtype=np.float64)
        if len(ts) != len(frames):
            raise ValueError(f"{len(frames)} frames but {len(ts)} timestamps")
        if len(frames) == 1:  # Qwen3-VL's resize needs >= temporal_patch_size frames
            frames, ts = np.concatenate([frames, frames]), np.concatenate([ts, ts])
        text = processor.apply_chat_template(
            video_messages(s.prompt, s.system, s.lead), add_generation_prompt=True, tokenize=False
        )
        texts.append(text + (s.completion or ""))
        videos.append(frames)
        if s.clip and s.sample_fps:
            metadata.append(clip_metadata(len(frames), s.sample_fps))
        else:
            metadata.append(video_metadata(ts, s.fps, s.sample_fps, s.origin))
    return processor(
        text=texts,
        videos=videos,
        video_metadata=metadata,
        do_sample_frames=False,
        padding=True,
        return_tensors=return_tensors,
    )


def build_video_inputs(
    processor: Any,
    frames: np.ndarray,
    timestamps: Sequence[float] | np.ndarray,
    fps: float,
    prompt: str,
    *,
    system: str | None = None,
    origin: float = 0.0,
    sample_fps: float | None = None,
    completion: str | None = None,
    lead: str | None = None,
    clip: bool = False,
    return_tensors: str = "pt",
) -> Any:
    """Processor outputs for one chat-formatted prompt over one clip (see the module docstring)."""
    sample = VideoSample(frames, timestamps, fps, prompt, system, origin, sample_fps, completion, lead, clip)
    return build_video_batch(processor, [sample], return_tensors=return_tensors)


def to_model(inputs: Any, model: Any, device: Any) -> Any:
    """Move processor outputs to `device` and cast the video pixels to the model's dtype.

    (Integer tensors keep their dtype; a bf16/fp16 model would reject fp32 pixels.)
    """
    inputs = inputs.to(device)
    dtype = getattr(model, "dtype", None)
    if dtype is not None and "pixel_values_videos" in inputs:
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(dtype)
    return inputs
