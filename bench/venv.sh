#!/usr/bin/env bash
# Throwaway Python environments for the benchmarks' peers, from PyPI (idempotent).
#   bench/venv.sh opencv   -> .venv-bench (opencv-python-headless, onnxruntime 1.31.1, numpy)
#   bench/venv.sh keras    -> .venv-keras (tensorflow-cpu, opencv-python-headless)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
    opencv) dir="$root/.venv-bench"; packages=(opencv-python-headless==5.0.0.93 onnxruntime==1.31.1 numpy==2.4.6) ;;
    keras) dir="$root/.venv-keras"; packages=(tensorflow-cpu==2.21.0 opencv-python-headless==5.0.0.93) ;;
    *) echo "usage: $0 opencv|keras" >&2; exit 2 ;;
esac
if [[ ! -f "$dir/.done" ]]; then
    echo "bench: creating $dir (${packages[*]})" >&2
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet "${packages[@]}"
    touch "$dir/.done"
fi
echo "$dir/bin/python"
