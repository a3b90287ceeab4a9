#!/usr/bin/env bash
# Prints the cargo flags for this machine's build: libjpeg-turbo's SIMD (`cxr-imaging/simd`)
# when nasm is available, from .tools/nasm/ (scripts/setup-nasm.sh) or PATH; nothing otherwise.
# Every build of the workspace (make, benchmarks) uses these same flags.
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -x "$root/.tools/nasm/usr/bin/nasm" ]] || command -v nasm >/dev/null 2>&1; then
    echo "--features cxr-imaging/simd"
fi
