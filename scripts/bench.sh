#!/usr/bin/env bash
# Side-by-side throughput, one run on one machine: osteoai (burn-flex) and the same
# EfficientNet-Lite0 weights in PyTorch and onnxruntime (../shared/bench/peer_effnet.py) on the
# same images. Needs the peer's venv (.peer, see peer_effnet.py) and OSTEOAI_DATA.
#   scripts/bench.sh [LIMIT] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-128}
batch=${2:-16}
dir="${OSTEOAI_DATA:?set OSTEOAI_DATA}/test"
peer=../shared/bench/peer_effnet.py
nproc
cargo run -q -- bench "$dir" --limit "$limit" --batch-sizes 1,8,"$batch" --repeat 3 --device cpu --json
.peer/bin/python "$peer" "$dir" --limit "$limit" --batch "$batch" --threads "$(nproc)" --repeat 3 --engine torch
.peer/bin/python "$peer" "$dir" --limit "$limit" --batch "$batch" --threads "$(nproc)" --repeat 3 --engine onnx
