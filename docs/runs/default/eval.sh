#!/usr/bin/env bash
# Held-out evaluation of the embedded default model (issue #19). Run from the repo root:
#   bash docs/runs/default/eval.sh [RUN_DIR] [MODEL]
# RUN_DIR  where the held-out videos and run folders go (default runs/heldout-long)
# MODEL    the model under test (default grounder/default_model, the shipped one)
# STRIDE_G / STRIDE_Q  every k-th grounding / QA row (default 4 / 4: 104 and 75 items)
# Held-out worlds: 6 videos of 90-120 min, seed 9200 (training uses 1000 + index; tests use < 100;
# the earlier held-out sets 9000, 9100, 9500). About 30 min on 2 cores, one lane after another.
set -euo pipefail
R=${1:-runs/heldout-long}
M=${2:-grounder/default_model}
SG=${STRIDE_G:-4}
SQ=${STRIDE_Q:-4}
mkdir -p "$R"
[ -f "$R/world/annotations.jsonl" ] || groundqa synth --out "$R/world" --videos 6 --minutes 90-120 --seed 9200
A="$R/world/annotations.jsonl"
run() { groundqa eval run synthetic "$@" > /dev/null; }
# grounding: retrieve-then-ground (the default), the VLM's own coarse-to-fine scan, a random span
run --ann "$A" --kind grounding --stride "$SG" --out "$R/rtg" --model "$M"
run --ann "$A" --kind grounding --stride $((SG * 4)) --out "$R/c2f" --model "$M" --retriever none
run --ann "$A" --kind grounding --stride "$SG" --out "$R/random" --predictor random-span
# QA on the same questions: ground then answer, the same QA model on uniform frames, on the text alone
run --ann "$A" --kind qa --stride "$SQ" --out "$R/agent" --predictor agent --model "$M"
run --ann "$A" --kind qa --stride "$SQ" --out "$R/qa-uniform" --predictor qa-uniform --model "$M"
run --ann "$A" --kind qa --stride "$SQ" --out "$R/qa-text" --predictor qa-text --model "$M"
groundqa eval report "$R"/rtg "$R"/c2f "$R"/random "$R"/agent "$R"/qa-uniform "$R"/qa-text \
  --out "$R/report" --json > "$R/report.json"
echo "report: $R/report/ ($R/report.json)"
