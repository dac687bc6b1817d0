#!/bin/bash
# Throughput of sharded classification on this machine: 1, 2 and 4 local processes, one thread
# each (RAYON_NUM_THREADS=1, OMP_NUM_THREADS=1), each with a cold cache, over the same folder;
# then the merge. Run it on a quiet machine:
#   scripts/bench-shards.sh "$OSTEOAI_DATA/test" [binary]
set -euo pipefail
dir=${1:?usage: scripts/bench-shards.sh DIR [osteoai binary]}
bin=${2:-$(dirname "$0")/../target/debug/osteoai}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
images=""
printf "%-10s %-8s %-10s %-10s %s\n" processes threads seconds images/s speed-up
base=""
for n in 1 2 4; do
    out="$tmp/$n"
    mkdir -p "$out"
    start=$(date +%s.%N)
    pids=()
    for ((i = 0; i < n; i++)); do
        RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1 XDG_CACHE_HOME="$out/cache" \
            "$bin" classify "$dir" --shard "$i/$n" --device cpu \
            --output "$out/part.$i.jsonl" 2>"$out/log.$i" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    end=$(date +%s.%N)
    "$bin" merge "$out/merged.jsonl" "$out"/part.*.jsonl 2>"$out/merge.log"
    images=$(wc -l <"$out/merged.jsonl")
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
    rate=$(awk -v n="$images" -v s="$secs" 'BEGIN { print n / s }')
    [ -z "$base" ] && base=$rate
    printf "%-10s %-8s %-10.1f %-10.1f %.2fx\n" "$n" 1 "$secs" "$rate" \
        "$(awk -v r="$rate" -v b="$base" 'BEGIN { print r / b }')"
done
echo "($images images of $dir; $(nproc) cores; $(uname -m))"
