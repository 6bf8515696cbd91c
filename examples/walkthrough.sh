#!/usr/bin/env bash
# A newcomer's first hour, as commands (issue #23): run from a clone after README's install
# command (`groundqa` on PATH). Every step prints what a user sees and checks it; the script
# exits non-zero at the first step that does not behave. About 3 minutes on 2 cores.
#   bash examples/walkthrough.sh [WORK_DIR] [SHARED_DATA]
# WORK_DIR     scratch folder (default: a new temp folder)
# SHARED_DATA  the real clips (default: ../shared/data beside the clone)
set -uo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
W=${1:-$(mktemp -d)}
DATA=${2:-$HERE/../shared/data}
CLIP="$DATA/videos/bikes.mp4"
export GROUNDQA_HOME="$W/home" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$W"
fails=0
step() { printf '\n== %s\n' "$1"; }
check() {  # check DESCRIPTION CONDITION...
  local what=$1; shift
  if "$@"; then echo "   ok: $what"; else echo "   FAILED: $what"; fails=$((fails + 1)); fi
}
one_line() { [ "$(grep -c . "$1")" -eq 1 ]; }

step "the demo (README command 1, after the install)"
groundqa demo --out "$W/demo" > "$W/demo.out" 2> "$W/demo.err"; rc=$?
tail -n 4 "$W/demo.out"
check "demo exits 0 and writes its timeline" test $rc -eq 0 -a -s "$W/demo/timeline.png"

step "ask about a real clip (the default model knows only the synthetic world)"
[ -f "$CLIP" ] || { echo "no real clip at $CLIP (give SHARED_DATA)"; exit 2; }
groundqa ask "$CLIP" "what is the person riding?" --option bike --option horse --json \
  > "$W/ask.json" 2> "$W/ask.err"; rc=$?
grep -h "warning" "$W/ask.err" | head -n 2
python3 -c "import json,sys; a=json.load(open(sys.argv[1])); print('   answer:', a['answer'])" "$W/ask.json"
check "exit 0, says it is off its domain, and is not sure" \
  bash -c "[ $rc -eq 0 ] && grep -q 'not from' '$W/ask.err' && grep -q 'not sure' '$W/ask.json'"

step "two 'ask --session' processes at once on one session"
V="$W/world/videos/v0000.mp4"
groundqa synth --out "$W/world" --videos 1 --minutes 1-1 --seed 5 > /dev/null
for n in 1 2; do
  groundqa ask "$V" "what happens in turn $n?" --session talk --strategy uniform --json \
    > "$W/turn$n.json" 2> "$W/turn$n.err" &
done
wait
python3 - "$GROUNDQA_HOME/sessions.sqlite" <<'EOF' > "$W/turns.txt"
import sys
from agent.graph import build_graph
from agent.sessions import open_saver
g = build_graph(checkpointer=open_saver(sys.argv[1]))
print(len(g.get_state({"configurable": {"thread_id": "talk"}}).values["history"]))
EOF
echo "   turns kept: $(cat "$W/turns.txt")"
check "both turns are kept" test "$(cat "$W/turns.txt")" = 2

step "train with a bad config (a negative learning rate)"
groundqa train sft "$HERE/trainer/recipes/sft.yaml" "data.train=$W/world/annotations.jsonl" \
  "train.out_dir=$W/badrun" train.learning_rate=-1 > /dev/null 2> "$W/train.err"; rc=$?
cat "$W/train.err"
check "exit 2, one line, no output folder" bash -c "[ $rc -eq 2 ] && [ ! -e '$W/badrun' ]" && check "one line" one_line "$W/train.err"

step "data scenes on two clips with one file name"
mkdir -p "$W/a" "$W/b" && cp "$CLIP" "$W/a/clip.mp4" && cp "$CLIP" "$W/b/clip.mp4"
groundqa data scenes "$W/a/clip.mp4" "$W/b/clip.mp4" --out "$W/scenes" > /dev/null 2> "$W/scenes.err"; rc=$?
cat "$W/scenes.err"
check "exit 2, one line, nothing written" bash -c "[ $rc -eq 2 ] && [ ! -e '$W/scenes/clip.scenes.json' ]"

step "Ctrl-C during eval run, then the command it prints"
set -m  # job control: a script's background job would otherwise ignore SIGINT, as POSIX says
groundqa eval run synthetic --ann "$W/world/annotations.jsonl" --out "$W/eval" --strategy uniform \
  --budget frames_per_call=4 --budget max_new_tokens=8 > /dev/null 2> "$W/eval.err" &
pid=$!
for _ in $(seq 1 600); do
  [ -s "$W/eval/predictions.jsonl" ] && break
  sleep 0.1
done
kill -INT $pid; wait $pid; rc=$?
set +m
tail -n 1 "$W/eval.err"
check "exit 130 and a command to go on" bash -c "[ $rc -eq 130 ] && grep -q 'this goes on from there: groundqa eval run' '$W/eval.err'"
resume=$(tail -n 1 "$W/eval.err" | sed 's/.*this goes on from there: //')
eval "$resume" > "$W/resume.out" 2> "$W/resume.err"; rc=$?
cat "$W/resume.out"
check "the printed command finishes the run" bash -c "[ $rc -eq 0 ] && grep -q 'already done' '$W/resume.out'"

printf '\nwalk-through: %s failed step(s) (work folder %s)\n' "$fails" "$W"
[ "$fails" -eq 0 ]
