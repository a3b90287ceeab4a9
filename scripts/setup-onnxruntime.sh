#!/usr/bin/env bash
# Puts ONNX Runtime's shared library into a project-local folder from the PyPI wheel
# (no global install, nothing but the package registry). Idempotent: does nothing when done.
#   scripts/setup-onnxruntime.sh cpu   -> .ort/cpu/libonnxruntime.so   (onnxruntime)
#   scripts/setup-onnxruntime.sh cuda  -> .ort/cuda/libonnxruntime.so  (onnxruntime-gpu + CUDA 13 / cuDNN 9 wheels)
# Every wheel is pinned by version and SHA-256 in scripts/wheels/<flavour>.txt; the engine
# checks the extracted library's own SHA-256 again whenever it loads it from .ort/.
set -euo pipefail
VERSION=1.31.1
flavour=${1:-cpu}
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.ort/$flavour"
stamp="$dest/.done-$VERSION"
if [[ -f "$stamp" && -e "$dest/libonnxruntime.so" ]]; then
    exit 0
fi
case "$flavour" in
    cpu | cuda) ;;
    *) echo "usage: $0 cpu|cuda" >&2; exit 2 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lock="$root/scripts/wheels/$flavour.txt"
echo "setup: downloading the wheels of $lock (SHA-256 checked) into $dest" >&2
"$root/scripts/pip-fetch.sh" "$lock" "$work/wheels"
mkdir -p "$dest"
runtime_wheel=$(ls "$work"/wheels/onnxruntime*-"$VERSION"-*.whl)
"${PYTHON:-python3}" -m zipfile -e "$runtime_wheel" "$work/unpacked"
cp "$work"/unpacked/onnxruntime/capi/libonnxruntime*.so* "$dest/"
ln -sf "libonnxruntime.so.$VERSION" "$dest/libonnxruntime.so"
if [[ "$flavour" == cuda ]]; then
    # onnxruntime-gpu 1.31 is built against CUDA 13 (its provider needs libcublas.so.13,
    # libcudart.so.13, libcurand.so.10) and cuDNN 9: the versions its own `cuda`/`cudnn`
    # extras name, all on PyPI. They go flat beside the runtime, where the engine preloads them.
    # The CUDA 13 / cuDNN 9 wheels came with the runtime's from the same lock file.
    for w in "$work"/wheels/nvidia_*.whl; do "${PYTHON:-python3}" -m zipfile -e "$w" "$work/nvx"; done
    find "$work/nvx/nvidia" -name 'lib*.so*' -exec cp -a {} "$dest/" \;
    for lib in libcudart.so.13 libcublasLt.so.13 libcublas.so.13 libcurand.so.10 libcudnn.so.9; do
        [[ -f "$dest/$lib" ]] || { echo "setup: $lib missing from the CUDA wheels" >&2; exit 1; }
    done
fi
touch "$stamp"
echo "setup: ONNX Runtime $VERSION ($flavour) ready in $dest" >&2
