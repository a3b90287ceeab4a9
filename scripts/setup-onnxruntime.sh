#!/usr/bin/env bash
# Puts ONNX Runtime's shared library into a project-local folder from the PyPI wheel
# (no global install, nothing but the package registry). Idempotent: does nothing when done.
#   scripts/setup-onnxruntime.sh cpu   -> .ort/cpu/libonnxruntime.so   (onnxruntime)
#   scripts/setup-onnxruntime.sh cuda  -> .ort/cuda/libonnxruntime.so  (onnxruntime-gpu + CUDA/cuDNN wheels)
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
    cpu) package=onnxruntime ;;
    cuda) package=onnxruntime-gpu ;;
    *) echo "usage: $0 cpu|cuda" >&2; exit 2 ;;
esac
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "setup: downloading $package==$VERSION wheel into $dest" >&2
"$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$work" "$package==$VERSION"
mkdir -p "$dest"
(cd "$work" && "$python" -m zipfile -e ./*.whl unpacked)
cp "$work"/unpacked/onnxruntime/capi/libonnxruntime*.so* "$dest/"
ln -sf "libonnxruntime.so.$VERSION" "$dest/libonnxruntime.so"
if [[ "$flavour" == cuda ]]; then
    # The CUDA provider needs the CUDA 12 runtime, cuBLAS, cuFFT, cuRAND and cuDNN 9: all on PyPI.
    echo "setup: downloading CUDA 12 / cuDNN 9 runtime wheels into $dest/nvidia" >&2
    "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$work/nv" \
        nvidia-cuda-runtime-cu12 nvidia-cublas-cu12 nvidia-cufft-cu12 nvidia-curand-cu12 \
        nvidia-cudnn-cu12==9.* nvidia-cuda-nvrtc-cu12
    mkdir -p "$dest/nvidia"
    for w in "$work"/nv/*.whl; do "$python" -m zipfile -e "$w" "$work/nvx"; done
    find "$work/nvx/nvidia" -name 'lib*.so*' -exec cp -a {} "$dest/" \;
fi
touch "$stamp"
echo "setup: ONNX Runtime $VERSION ($flavour) ready in $dest" >&2
