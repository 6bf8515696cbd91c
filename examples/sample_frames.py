"""Sample frames from a long video without decoding it whole.

    python examples/sample_frames.py VIDEO [SECONDS ...]

Each frame is the one on screen at the asked time; its own timestamp comes back with it.
Asking again for the same times is served from the reader's frame cache.
"""

import sys
import time

from grounder.video import open_video

path = sys.argv[1]
times = [float(t) for t in sys.argv[2:]] or None

with open_video(path) as video:
    print(video)
    if times is None:  # 16 frames spread over the whole video
        times = [video.duration * (i + 0.5) / 16 for i in range(16)]
    t0 = time.perf_counter()
    frames, stamps = video.sample(times, max_pixels=448 * 448)
    t1 = time.perf_counter()
    video.sample(times, max_pixels=448 * 448)
    t2 = time.perf_counter()
    print(f"{len(frames)} frames {frames.shape[1:]} in {t1 - t0:.3f} s (again, cached: {t2 - t1:.4f} s)")
    for want, got in zip(times, stamps):
        print(f"  asked {want:9.3f} s -> frame at {got:9.3f} s")
