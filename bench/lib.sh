#!/usr/bin/env bash
# Shared by the bench scripts: `row` records one figure of `make bench`'s table.
#   row FIGURE UNIT CXR PEER PEER_VALUE RATIO AIM
# appends a CSV line to $BENCH_CSV when it is set (make bench sets it); each script also
# prints its own figures as it goes. Fields hold no commas.
row() {
    [[ -n "${BENCH_CSV:-}" ]] || return 0
    local IFS=,
    echo "$*" >>"$BENCH_CSV"
}
# A ratio a/b to 3 decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
