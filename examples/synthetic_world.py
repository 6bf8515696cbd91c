"""Make a small synthetic long-video world and look at one grounding row and one QA row.

    python examples/synthetic_world.py OUT_DIR

The same as `groundqa synth --out OUT_DIR --videos 2 --minutes 10-20 --seed 0`.
"""

import sys

from evals.synthetic import generate_world

rows = generate_world(sys.argv[1], n_videos=2, minutes=(10, 20), seed=0)
grounding = next(r for r in rows if r["kind"] == "grounding")
qa = next(r for r in rows if r["kind"] == "qa")
print(f"{len(rows)} rows; e.g.\n  {grounding['query']} -> {grounding['spans']}")
print(f"  {qa['question']} {qa['options']} -> {qa['options'][qa['answer']]} (evidence {qa['spans']})")
