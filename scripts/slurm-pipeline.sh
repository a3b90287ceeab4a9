#!/usr/bin/env bash
# Submits the whole pipeline to Slurm with job arrays of SHARDS tasks, each job starting when
# the one before it succeeded: preprocess shards -> merge -> backbone-pass shards ->
# train (merges the features, fits the head) -> infer shards -> merge + report.
# Prints the last job's id. This is the pipeline docs/scale-out.md describes, and the one
# `make check-slurm` runs.
#   CONFIG=configs/kermany.yaml SHARDS=16 scripts/slurm-pipeline.sh
# Optional: BIN (default target/release), SET ('key=value key=value', no spaces inside a
# value), CPUS (per task, default 1), LOGS (folder for the jobs' output, default slurm-logs).
set -euo pipefail
config=${CONFIG:?set CONFIG to a config file}
n=${SHARDS:-16}
bin=${BIN:-target/release}
cpus=${CPUS:-1}
logs=${LOGS:-slurm-logs}
mkdir -p "$logs"
args="--no-progress --config $config"
for s in ${SET:-}; do args="$args --set $s"; done
last=$((n - 1))
submit() { # submit NAME DEPENDENCY [sbatch options...] -- COMMAND
    local name=$1 after=$2
    shift 2
    local options=()
    while [[ $1 != -- ]]; do options+=("$1"); shift; done
    shift
    local dependency=()
    [[ -n $after ]] && dependency=(--dependency="afterok:$after" --kill-on-invalid-dep=yes)
    sbatch --parsable --job-name="cxr-$name" --cpus-per-task="$cpus" --output="$logs/%x-%A_%a.out" \
        "${dependency[@]}" "${options[@]}" --wrap "$*"
}
jid=$(submit preprocess "" --array="0-$last" -- "$bin/preprocess $args --shard \$SLURM_ARRAY_TASK_ID/$n")
jid=$(submit preprocess-merge "$jid" -- "$bin/preprocess $args --merge $n")
jid=$(submit features "$jid" --array="0-$last" -- "$bin/train $args --shard \$SLURM_ARRAY_TASK_ID/$n")
jid=$(submit train "$jid" -- "$bin/train $args")
jid=$(submit infer "$jid" --array="0-$last" -- "$bin/infer $args --shard \$SLURM_ARRAY_TASK_ID/$n")
jid=$(submit report "$jid" -- "$bin/infer $args --merge $n && $bin/report $args")
echo "$jid"
