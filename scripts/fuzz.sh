#!/usr/bin/env bash
# A longer run of the generated hostile-input properties (tests/robustness.rs): mutated images,
# damaged journals, review marks, audit decisions and manifests, folders of strange names.
# usage: scripts/fuzz.sh [SECONDS per property, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
OSTEOAI_FUZZ_MS=$((secs * 1000)) cargo test --test robustness -- --nocapture
