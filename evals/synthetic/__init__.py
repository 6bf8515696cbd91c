"""The synthetic long-video world: exact ground truth for grounding and QA.

    from evals.synthetic import generate_world, make_video_spec
    rows = generate_world("out/", n_videos=2, minutes=(5, 10), seed=0)
    spec = make_video_spec(seed=0, index=0, minutes=(5, 10))   # the timeline of video 0
    spec.state(123.5)                                          # scene + objects on screen
"""

from evals.synthetic.generate import generate_world, load_spec, world_rows, world_specs
from evals.synthetic.questions import parse_text, render_text, resolve, vocabulary
from evals.synthetic.world import (
    FrameState,
    ObjectState,
    ObjectTrack,
    VideoSpec,
    WorldConfig,
    make_video_spec,
)

__all__ = [
    "FrameState", "ObjectState", "ObjectTrack", "VideoSpec", "WorldConfig", "generate_world",
    "load_spec", "make_video_spec", "parse_text", "render_text", "resolve", "vocabulary", "world_rows",
    "world_specs",
]
