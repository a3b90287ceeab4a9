#!/usr/bin/env bash
# Puts ONNX Runtime's shared library into a project-local folder from the PyPI wheel
# (no global install, nothing but the package registry). Idempotent: does nothing when done.
#   scripts/setup-onnxruntime.sh cpu   -> .ort/cpu/libonnxruntime.so   (onnxruntime)
#   scripts/setup-onnxruntime.sh cuda  -> .ort/cuda/libonnxruntime.so  (onnxruntime-gpu + CUDA 13 / cuDNN 9 wheels)
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
    # onnxruntime-gpu 1.31 is built against CUDA 13 (its provider needs libcublas.so.13,
    # libcudart.so.13, libcurand.so.10) and cuDNN 9: the versions its own `cuda`/`cudnn`
    # extras name, all on PyPI. They go flat beside the runtime, where the engine preloads them.
    echo "setup: downloading CUDA 13 / cuDNN 9 runtime wheels into $dest" >&2
    "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$work/nv" \
        'nvidia-cuda-runtime~=13.0' 'nvidia-cublas~=13.0' 'nvidia-cufft~=12.0' 'nvidia-curand~=10.0' \
        'nvidia-cudnn-cu13~=9.0' 'nvidia-cuda-nvrtc~=13.0'
    for w in "$work"/nv/*.whl; do "$python" -m zipfile -e "$w" "$work/nvx"; done
    find "$work/nvx/nvidia" -name 'lib*.so*' -exec cp -a {} "$dest/" \;
    for lib in libcudart.so.13 libcublasLt.so.13 libcublas.so.13 libcurand.so.10 libcudnn.so.9; do
        [[ -f "$dest/$lib" ]] || { echo "setup: $lib missing from the CUDA wheels" >&2; exit 1; }
    done
fi
touch "$stamp"
echo "setup: ONNX Runtime $VERSION ($flavour) ready in $dest" >&2
