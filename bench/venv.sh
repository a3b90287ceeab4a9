#!/usr/bin/env bash
# Throwaway Python environments for the benchmarks' peers, from PyPI (idempotent).
#   bench/venv.sh opencv   -> .venv-bench (opencv-python-headless, onnxruntime 1.31.1, numpy, onnx)
#   bench/venv.sh keras    -> .venv-keras (tensorflow-cpu, opencv-python-headless)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
    opencv) dir="$root/.venv-bench"; packages=(opencv-python-headless==5.0.0.93 onnxruntime==1.31.1 numpy==2.4.6 onnx==1.23.2) ;;
    keras) dir="$root/.venv-keras"; packages=(tensorflow-cpu==2.21.0 opencv-python-headless==5.0.0.93) ;;
    *) echo "usage: $0 opencv|keras" >&2; exit 2 ;;
esac
# The marker names the package list, so that a venv made for an older list is topped up.
marker="$dir/.done-$(echo "${packages[*]}" | sha256sum | cut -c1-12)"
if [[ ! -f "$marker" ]]; then
    echo "bench: creating $dir (${packages[*]})" >&2
    [[ -x "$dir/bin/python" ]] || python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet "${packages[@]}"
    touch "$marker"
fi
echo "$dir/bin/python"
