#!/usr/bin/env bash
# Runs the four stages of one experiment in order with the release binaries.
#   scripts/run-experiment.sh CONFIG [--set key=value ...]
set -euo pipefail
config=${1:?usage: run-experiment.sh CONFIG [--set key=value ...]}
shift
bin=target/release
for stage in preprocess train infer report; do
    echo "== $stage" >&2
    "$bin/$stage" --config "$config" "$@"
done
