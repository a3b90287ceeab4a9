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
# The smaller and the larger of two numbers (best-of-N times and rates).
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b < a) ? b : a }'; }
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }
# The wall seconds of a whole process (start-up included); its output is dropped, its
# errors are shown and fail the caller's assignment when it fails.
wall() {
    /usr/bin/time -f %e -o /tmp/cxr-bench-time "$@" >/dev/null 2>/tmp/cxr-bench-wall.err \
        || { cat /tmp/cxr-bench-wall.err >&2; return 1; }
    cat /tmp/cxr-bench-time
}
# A ratio a/b to 3 decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
