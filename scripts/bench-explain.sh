#!/usr/bin/env bash
# Where the model looks, checked against annotations: for a folder and a CSV of boxes
# (`path,x,y,w,h` in pixels, several rows per image allowed; paths relative to the folder,
# absolute, or unique file names), every method a model supports: the pointing-game hit rate
# (the map's peak inside a box padded by 5% of the image's longer side), the image-centre
# baseline, the mean share of the map's mass inside the boxes (against the boxes' share of the
# area: a flat map's), and milliseconds per image (decode included, one image at a time).
#   scripts/bench-explain.sh FOLDER BOXES.csv [MODEL_DIR...]   (default: the bundled model)
#   scripts/bench-explain.sh --generated [N]   (N generated breaks per class, known boxes; the
#                                               bundled model and a linear head fitted on
#                                               generated folders)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q
bin="${CARGO_TARGET_DIR:-target}/debug/osteoai"
device="${OSTEOAI_DEVICE:-cpu}"
echo "bench-explain: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), device $device"
if [[ "${1:-}" == "--generated" ]]; then
  n="${2:-40}"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$bin" make-fixtures "$work/data/train" --pointing 60 --seed 20000 >/dev/null
  "$bin" make-fixtures "$work/data/val" --pointing 20 --seed 30000 >/dev/null
  "$bin" make-fixtures "$work/held-out" --pointing "$n" --seed 10000 >/dev/null
  "$bin" train "$work/data" --finetune --epochs 3 --freeze-epochs 3 --out "$work/linear" \
    --device "$device" >/dev/null 2>&1
  "$bin" train "$work/data" --out "$work/lightgbm" --learning-rate 0.01 --max-rounds 300 \
    --early-stopping 300 --feature-fraction 0.1 --num-leaves 4 --device "$device" >/dev/null 2>&1
  set -- "$work/held-out" "$work/held-out/boxes.csv" models/default "$work/linear" "$work/lightgbm"
fi
folder="${1:?FOLDER}"
boxes="${2:?BOXES.csv}"
shift 2
models=("$@")
[[ ${#models[@]} -gt 0 ]] || models=(models/default)
for m in "${models[@]}"; do
  echo
  echo "model $(basename "$m") ($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["head"]["kind"])' "$m/manifest.json") head):"
  "$bin" explain "$folder" --boxes "$boxes" --model "$m" --method all --device "$device" 2>/dev/null
done
