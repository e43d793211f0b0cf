#!/usr/bin/env bash
# Grade a class on a Slurm cluster: a job array with one task per shard (one GPU each), then a
# job that runs only when every task succeeded and merges the shards, builds the dashboard and
# writes the CSV export.
#
#   scripts/slurm/grade-array.sh 01-lora /data/submitted 8          # from the repository root
#   OUT=/scratch/grades PARTITION=gpu scripts/slurm/grade-array.sh 01-lora /data/submitted 8
#
# The same file is the array task ("task") and the merge job ("merge"); sbatch runs it with
# those words. Results: $OUT/shards/<i>/ per task, then $OUT/ (gradebook.sqlite, dashboard).
set -euo pipefail

usage() { echo "usage: $0 ASSIGNMENT SUBMITTED_DIR [SHARDS]" >&2; exit 2; }

root=${COURSE_ROOT:-$(pwd)}
course=${COURSE:-$root/.venv/bin/course}
out=${OUT:-$root/results}

task() {  # task ASSIGNMENT SUBMITTED SHARDS; the shard index comes from Slurm
  local assignment=$1 submitted=$2 shards=$3 shard=${SLURM_ARRAY_TASK_ID:?not inside a Slurm array task}
  # Exit 1 means some submissions are ungraded: recorded as such, so the task still succeeded.
  "$course" grade "$assignment" "$submitted" --profile full --require-isolation \
    --shard "$shard/$shards" --out "$out/shards/$shard" || [ $? -eq 1 ]
}

merge() {  # merge ASSIGNMENT SHARDS
  local assignment=$1 shards=$2 dirs=() i
  for ((i = 0; i < shards; i++)); do dirs+=("$out/shards/$i"); done
  "$course" gradebook merge "${dirs[@]}" --assignment "$assignment" --out "$out"
  "$course" report "$assignment" --results "$out"
  "$course" export "$assignment" --format csv --results "$out"
}

submit() {  # submit ASSIGNMENT SUBMITTED [SHARDS]
  local assignment=$1 submitted=$2 shards=${3:-4} array_id
  [[ $shards =~ ^[1-9][0-9]*$ ]] || usage
  mkdir -p "$out/logs"
  array_id=$(sbatch --parsable --job-name="grade-$assignment" --array="0-$((shards - 1))" \
    --partition="${PARTITION:-gpu}" --gres=gpu:1 --cpus-per-task=8 --mem=64G --time=06:00:00 \
    --output="$out/logs/grade-%A_%a.out" --chdir="$root" "$0" task "$assignment" "$submitted" "$shards")
  array_id=${array_id%%;*}  # --parsable prints "jobid[;cluster]"
  sbatch --parsable --job-name="merge-$assignment" --dependency="afterok:$array_id" \
    --partition="${MERGE_PARTITION:-${PARTITION:-gpu}}" --cpus-per-task=2 --mem=8G --time=00:30:00 \
    --output="$out/logs/merge-%j.out" --chdir="$root" "$0" merge "$assignment" "$shards"
  echo "submitted array $array_id ($shards shards) and its merge job; results in $out" >&2
}

case "${1:-}" in
  task) shift; [ $# -eq 3 ] || usage; task "$@" ;;
  merge) shift; [ $# -eq 2 ] || usage; merge "$@" ;;
  "" | -h | --help) usage ;;
  *) if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi; submit "$@" ;;
esac
