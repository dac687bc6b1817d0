#!/bin/bash
# Submits the classification array (one task per shard) and the merge, which runs only when
# every task has succeeded:  OSTEOAI_DATA_DIR=/data/radiographs deploy/slurm/submit.sh 8
set -euo pipefail
shards=${1:-4}
here=$(cd "$(dirname "$0")" && pwd)
: "${OSTEOAI_DATA_DIR:?set OSTEOAI_DATA_DIR to the folder to score}"
array=$(sbatch --parsable --export=ALL --array=0-$((shards - 1)) "$here/classify.sbatch")
array=${array%%;*}
merge=$(sbatch --parsable --export=ALL --dependency=afterok:"$array" "$here/merge.sbatch")
merge=${merge%%;*}
echo "classify: job $array ($shards tasks); merge: job $merge after it"
