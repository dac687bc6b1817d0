#!/usr/bin/env bash
# Time to the dashboard's first frame in a real pseudo-terminal: a detached tmux session of
# 120x40 (a terminal that never answers the image-capability query, as tmux without a client,
# or a slow SSH link). Two clocks per run:
#   inside  - from process start to the end of the first draw (OSTEOAI_STATS_FILE, written on exit)
#   outside - from `tmux new-session` until capture-pane shows the frame (includes tmux's
#             own start and the 2 ms polling; an upper bound of what a person sees)
# Then one key, sent right after the frame appears, must act (the help opens).
#
# usage: scripts/bench-first-frame.sh [BIN] [DIR] [RUNS]
#   BIN  default target/debug/osteoai (build with `cargo build`)
#   DIR  default fixtures/demo
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/debug/osteoai}")
DIR=$(realpath "${2:-fixtures/demo}")
RUNS=${3:-10}
command -v tmux >/dev/null || { echo "tmux is required (scripts/setup.sh installs it)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"; tmux kill-session -t osteoai-ff 2>/dev/null || true' EXIT
now_ms() { date +%s%3N; }
inside=(); outside=(); lost=0
for i in $(seq 1 "$RUNS"); do
  rm -f "$work/stats.json"
  t0=$(now_ms)
  tmux new-session -d -s osteoai-ff -x 120 -y 40 \
    "XDG_CACHE_HOME=$work/cache NO_COLOR=1 OSTEOAI_STATS_FILE=$work/stats.json $BIN $DIR --device cpu"
  until tmux capture-pane -p -t osteoai-ff 2>/dev/null | grep -q "NOT FOR CLINICAL USE"; do
    sleep 0.002
    (( $(now_ms) - t0 < 30000 )) || { echo "no frame within 30 s"; exit 1; }
  done
  outside+=($(( $(now_ms) - t0 )))
  tmux send-keys -t osteoai-ff '?'
  acted=0
  for _ in $(seq 1 300); do
    if tmux capture-pane -p -t osteoai-ff | grep -q "classify the whole folder"; then acted=1; break; fi
    sleep 0.01
  done
  (( acted )) || lost=$((lost + 1))
  tmux send-keys -t osteoai-ff Escape; sleep 0.1; tmux send-keys -t osteoai-ff q
  for _ in $(seq 1 500); do tmux has-session -t osteoai-ff 2>/dev/null || break; sleep 0.01; done
  tmux kill-session -t osteoai-ff 2>/dev/null || true
  if [[ -f $work/stats.json ]]; then
    inside+=($(sed -E 's/.*"first_frame_ms":([0-9.-]+).*/\1/' "$work/stats.json"))
  fi
done
stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "median %.1f ms, max %.1f ms (n=%d)", a[int((NR+1)/2)], a[NR], NR}'; }
echo "binary: $BIN"
echo "folder: $DIR ($RUNS runs, tmux 120x40, query unanswered)"
if (( ${#inside[@]} )); then echo "first frame, inside:  $(stats "${inside[@]}")"; else echo "first frame, inside:  not reported by this binary"; fi
echo "first frame, outside: $(stats "${outside[@]}")"
echo "first key after the frame lost: $lost of $RUNS"
