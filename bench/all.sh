#!/usr/bin/env bash
# make bench: every benchmark (preprocess, train, infer), each against its peer in the same
# run, then one table of the figures, printed and written to bench/out/bench.csv and, with
# the date, revision and machine, bench/out/bench.txt (both written whole at the end: an
# interrupted run leaves the last complete table in place).
# Columns: figure, unit (of the cxr and peer values), cxr, peer, peer_value, ratio (the figure
# the aim is about: cxr's speed over the peer's, higher is better, unless the aim says <=),
# aim. Takes about 35 minutes on 2 cores (REPEATS=1 RUNS=1 for a rougher, quicker table).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
BENCH_CSV=$(mktemp bench/out/.bench.XXXXXX)
export BENCH_CSV
trap 'rm -f "$BENCH_CSV"' EXIT
echo "figure,unit,cxr,peer,peer_value,ratio,aim" >"$BENCH_CSV"
for part in preprocess train infer; do
    echo "== bench-$part"
    "bench/$part.sh"
done
machine="$(date -u +%Y-%m-%dT%H:%MZ), git $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), AMX int8: $(grep -qw amx_int8 /proc/cpuinfo && grep -qw amx_tile /proc/cpuinfo && echo yes || echo no)"
{ echo "make bench: $machine"; column -s, -t "$BENCH_CSV"; } >bench/out/.bench.txt.tmp
cp "$BENCH_CSV" bench/out/.bench.csv.tmp
mv bench/out/.bench.csv.tmp bench/out/bench.csv
mv bench/out/.bench.txt.tmp bench/out/bench.txt
echo
echo "== make bench: bench/out/bench.csv (and bench/out/bench.txt, with the machine)"
cat bench/out/bench.txt
