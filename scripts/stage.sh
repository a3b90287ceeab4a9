#!/usr/bin/env bash
# Runs one stage binary with the Makefile's CONFIG and SET, passed through the environment
# so that make and the shell never re-split or interpret them:
#   CONFIG=configs/x.yaml SET="train.epochs=5 'data.root=/my data;2'" scripts/stage.sh BIN [ARGS...]
# SET holds KEY=VALUE items separated by whitespace; an item with spaces is quoted ('...' or
# "..."), as xargs reads them. Nothing in it is expanded or executed.
set -euo pipefail
bin=${1:?usage: stage.sh BIN [ARGS...]}
shift
args=(--config "${CONFIG:?CONFIG is not set}")
if [[ -n "${SET:-}" ]]; then
    items_file=$(mktemp)
    trap 'rm -f "$items_file"' EXIT
    if ! printf '%s' "$SET" | xargs printf '%s\0' >"$items_file"; then
        echo "error: SET=$SET: unbalanced quotes (quote an item with spaces as 'key=a value')" >&2
        exit 2
    fi
    mapfile -d '' items <"$items_file"
    for item in "${items[@]}"; do
        args+=(--set "$item")
    done
fi
"$bin" "${args[@]}" "$@"
