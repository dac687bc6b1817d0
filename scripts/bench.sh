#!/usr/bin/env bash
# Side-by-side throughput, one run on one machine: osteoai (its CPU kernels, and burn-flex for
# contrast) and the same EfficientNet-Lite0 weights in PyTorch and onnxruntime
# (../shared/bench/peer_effnet.py) on the same images, at batch 8 and 16, with as many threads
# as CPUs; then the ratios. Needs the peer's venv (.peer, see peer_effnet.py) and OSTEOAI_DATA.
# Run it on a quiet machine: PyTorch with 2 threads loses most of its speed when a core is busy.
#   scripts/bench.sh [LIMIT]
#   OSTEOAI_BEFORE=/path/to/an/older/osteoai scripts/bench.sh   # adds that build as "before"
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-128}
dir="${OSTEOAI_DATA:?set OSTEOAI_DATA}/test"
peer=../shared/bench/peer_effnet.py
out=$(mktemp -d)
cargo build -q
bin="${CARGO_TARGET_DIR:-target}/debug/osteoai"
threads=$(nproc)
echo "bench: $threads CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $limit images of $dir"
last_json() { grep '^{' | tail -n 1; }
"$bin" bench "$dir" --limit "$limit" --batch-sizes 1,8,16 --repeat 3 --device cpu --json | last_json > "$out/osteoai.json"
"$bin" bench "$dir" --limit "$limit" --batch-sizes 8,16 --repeat 3 --device flex --json | last_json > "$out/flex.json"
if [ -n "${OSTEOAI_BEFORE:-}" ]; then
  "$OSTEOAI_BEFORE" bench "$dir" --limit "$limit" --batch-sizes 8,16 --repeat 3 --device cpu --json | last_json > "$out/before.json"
fi
for b in 8 16; do
  for engine in torch onnx; do
    .peer/bin/python -W ignore "$peer" "$dir" --limit "$limit" --batch "$b" --threads "$threads" \
      --repeat 3 --engine "$engine" 2>/dev/null | last_json > "$out/$engine-$b.json"
  done
done
echo "bench: load average after $(cut -d' ' -f1-3 /proc/loadavg)"
python3 scripts/bench_report.py "$out"
