#!/usr/bin/env bash
# Runs `make demo` at git revision REV (in a worktree beside this checkout, sharing .ort/ and
# .tools/) and here, and compares every output file: the proof that a refactor changed no
# output. Files that may differ, and only in these fields: provenance.json (started, finished,
# git_revision, tools.seconds_*), history.csv / epochs.csv and checkpoint/state.json (seconds),
# model.json and index.html (absolute paths, which name the worktree; the git revision), .lock.
#   scripts/demo-compare.sh fcffd84
set -euo pipefail
rev=${1:?usage: demo-compare.sh REV}
here=$(pwd)
tree="$here/../cxr-demo-$rev"
[[ -d "$tree" ]] || git worktree add -q "$tree" "$rev"
for d in .ort .tools; do [[ -e "$tree/$d" ]] || ln -s "$here/$d" "$tree/$d"; done
(cd "$tree" && rm -rf runs/demo && make demo >/dev/null)
rm -rf runs/demo && make demo >/dev/null
digests() { (cd "$1" && find runs/demo -type f | sort | xargs sha256sum); }
diff <(digests "$tree" | awk '{print $2}') <(digests . | awk '{print $2}') || { echo "demo-compare: other files" >&2; exit 1; }
same=$(join -1 2 -2 2 <(digests "$tree" | sort -k2) <(digests . | sort -k2) | awk '$2==$3' | wc -l)
echo "demo-compare: $same of $(digests . | wc -l) files byte-identical at $rev and here; the others:"
join -1 2 -2 2 <(digests "$tree" | sort -k2) <(digests . | sort -k2) | awk '$2!=$3{print "  " $1}'
