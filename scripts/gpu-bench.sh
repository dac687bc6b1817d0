#!/usr/bin/env bash
# GPU throughput for docs/benchmarks.md: `osteoai bench` on the GPU at batch 1, 32 and 128 (backbone per
# batch size, decode, head, end to end), then the same on this machine's CPU cores for contrast;
# then training steps (forward + backward + AdamW, every layer trained, 224 px) at batch 32 and 64
# on the GPU, and what an epoch of the reference train split (2,687 images after
# `osteoai split --seed 0`) takes at that pace.
# One short run for a lent GPU machine (issue 8); prints the card and both tables.
#   scripts/gpu-bench.sh [DIR]    DIR: images (default $OSTEOAI_DATA/test, else 256 copies of
#                                 fixtures/demo in a temporary folder)
#   BIN=path/to/osteoai           default target/release/osteoai, else target/debug/osteoai
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-}
[ -n "$bin" ] || for b in target/release/osteoai target/debug/osteoai; do [ -x "$b" ] && bin=$b && break; done
[ -x "${bin:-}" ] || { echo "gpu-bench: build osteoai first (cargo build --release)"; exit 1; }
dir=${1:-}
if [ -z "$dir" ] && [ -n "${OSTEOAI_DATA:-}" ] && [ -d "$OSTEOAI_DATA/test" ]; then dir=$OSTEOAI_DATA/test; fi
if [ -z "$dir" ]; then
  dir=$(mktemp -d)
  for i in $(seq -w 0 15); do
    for f in fixtures/demo/*/*/*.jpg; do
      lab=$(basename "$(dirname "$f")"); mkdir -p "$dir/$lab"; cp "$f" "$dir/$lab/${i}_$(basename "$f")"
    done
  done
fi
echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
echo "CPUs: $(nproc)"
devices=$("$bin" devices); echo "$devices"
if echo "$devices" | grep -q "^0 hardware GPU"; then
  echo "== GPU: no hardware GPU adapter here (a software one takes minutes per image): skipped"
else
  echo "== GPU (--device gpu)"
  "$bin" bench "$dir" --device gpu --batch-sizes 1,32,128 --limit 256 --repeat 3 --json
  echo "== GPU training (--device gpu --train, every layer)"
  line=$("$bin" bench "$dir" --device gpu --train --batch-sizes 32,64 --frozen-blocks 0 --steps 10 --limit 128 --json | tail -1)
  echo "$line"
  python3 - "$line" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
for k, v in sorted(j.items()):
    if k.startswith("train_img_s_"):
        print(f"batch {k.rsplit('_', 1)[1]}: {v:.1f} img/s, an epoch of 2,687 images in {2687 / v:.0f} s")
PY
fi
echo "== CPU (--device cpu, $(nproc) threads)"
"$bin" bench "$dir" --device cpu --batch-sizes 1,32,128 --limit 256 --repeat 3 --json
