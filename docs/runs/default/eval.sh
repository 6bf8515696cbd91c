#!/usr/bin/env bash
# Held-out evaluation of the embedded default model (issue #7). Run from the repo root:
#   bash docs/runs/default/eval.sh [RUN_DIR] [MODEL] [SFT_MODEL]
# RUN_DIR  where the held-out videos and run folders go (default runs/heldout-eval)
# MODEL    the model under test (default grounder/default_model, the shipped one)
# SFT_MODEL its SFT starting point (default runs/default/sft/model), for GRPO vs SFT
# SIZES    object sizes of the held-out worlds, e.g. SIZES=32,34,36,38,40 for a model trained on
#          such a world (`synth.sizes` in the recipe); unset = the default world (18-26 px)
# Two lanes run side by side (one thread each): about 30 min on 2 cores.
set -euo pipefail
R=${1:-runs/heldout-eval}
M=${2:-grounder/default_model}
S=${3:-runs/default/sft/model}
export OMP_NUM_THREADS=1
mkdir -p "$R"
SZ=()
[ -n "${SIZES:-}" ] && SZ=(--sizes "$SIZES")
# held-out worlds: seeds never used in training (training: 1000 + video index, 60 videos)
[ -f "$R/world/annotations.jsonl" ] || groundqa synth --out "$R/world" --videos 6 --minutes 15-120 --seed 9000 "${SZ[@]}"
[ -f "$R/world60/annotations.jsonl" ] || groundqa synth --out "$R/world60" --videos 1 --minutes 60-60 --seed 9100 "${SZ[@]}"
A="$R/world/annotations.jsonl"
A60="$R/world60/annotations.jsonl"
run() { groundqa eval run synthetic "$@" > /dev/null; }
(
  run --ann "$A" --kind grounding --stride 17 --out "$R/c2f" --model "$M"
  run --ann "$A" --kind grounding --stride 17 --out "$R/c2f-sft" --model "$S"
  run --ann "$A60" --kind grounding --stride 16 --out "$R/c2f60" --model "$M"
  run --ann "$A60" --kind grounding --stride 16 --out "$R/sliding60" --model "$M" --strategy sliding
) &
(
  run --ann "$A" --kind grounding --stride 17 --out "$R/random" --predictor random-span
  run --ann "$A" --stride 16 --out "$R/agent" --predictor agent --model "$M"
  run --ann "$A" --stride 16 --out "$R/qa-uniform" --predictor qa-uniform --model "$M"
  run --ann "$A" --stride 16 --out "$R/qa-text" --predictor qa-text --model "$M"
) &
wait
groundqa eval report "$R"/c2f "$R"/c2f-sft "$R"/random "$R"/c2f60 "$R"/sliding60 "$R"/agent "$R"/qa-uniform "$R"/qa-text \
  --out "$R/report" --json > "$R/report.json"
echo "report: $R/report/ ($R/report.json)"
