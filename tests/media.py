"""Small media files the tests make themselves (real encoders, PyAV)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def audio_only(path: Path) -> Path:
    """An MP4 holding one second of silent AAC audio and no video stream."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 44100), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44100
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
