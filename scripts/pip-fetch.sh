#!/usr/bin/env bash
# Downloads the wheels a lock file in scripts/wheels/ names into DEST, checked by pip against
# the SHA-256 values recorded there (--require-hashes), for CPython 3.11 on manylinux x86-64
# whatever the local Python: one exact file per package, so one hash pins it.
#   scripts/pip-fetch.sh scripts/wheels/cpu.txt DEST
set -euo pipefail
lock=${1:?usage: pip-fetch.sh LOCK DEST}
dest=${2:?usage: pip-fetch.sh LOCK DEST}
python=${PYTHON:-python3}
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_12_x86_64 manylinux2010_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
"$python" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    --python-version 3.11 --implementation cp --abi cp311 --abi none "${platforms[@]}" \
    -d "$dest" -r "$lock"
