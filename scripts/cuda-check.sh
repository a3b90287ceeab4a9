#!/usr/bin/env bash
# Proves the CUDA path end to end on a machine with an NVIDIA GPU (`make cuda-check`):
# preprocesses the synthetic demo set, trains on CUDA, predicts the test split on CUDA and on
# CPU with the same model.onnx, checks the probabilities agree, and checks that
# `--device cuda` fails loudly when no GPU is visible. Needs `make setup-cuda` first.
# Env: BIN (binaries, default target/release), BACKBONE (imagenet | random), TOL (1e-3).
set -euo pipefail
BIN=${BIN:-target/release}
TOL=${TOL:-1e-3}
CONFIG=configs/demo.yaml
SET=(--set experiment.name=cuda-check --set "model.backbone=${BACKBONE:-imagenet}")
exp=$("$BIN/preprocess" --config "$CONFIG" "${SET[@]}" --print-exp-dir)
rm -rf "$exp"
seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(seconds)" 'BEGIN { printf "%.2f s", b - a }'; }

if command -v nvidia-smi >/dev/null; then nvidia-smi -L; fi
"$BIN/preprocess" --config "$CONFIG" "${SET[@]}" --no-progress -q

start=$(seconds)
"$BIN/train" --config "$CONFIG" "${SET[@]}" --device cuda --no-progress -v 2>"$exp/train-cuda.log" ||
    { tail -5 "$exp/train-cuda.log" >&2; exit 1; }
echo "cuda-check: train --device cuda: $(elapsed "$start")"
grep -q 'provider=CUDAExecutionProvider' "$exp/train-cuda.log" ||
    { echo "cuda-check: train did not report a CUDA session" >&2; exit 1; }

# The CPU run uses the CPU provider of the same (GPU) build of ONNX Runtime.
cuda_library=$(grep -o 'library=[^ ]*' "$exp/train-cuda.log" | head -1 | cut -d= -f2)
for device in cuda cpu; do
    start=$(seconds)
    ORT_DYLIB_PATH=$cuda_library "$BIN/infer" --config "$CONFIG" "${SET[@]}" --split test --device "$device" --no-progress -v \
        --out "$exp/test-$device.csv" 2>"$exp/infer-$device.log" || { tail -5 "$exp/infer-$device.log" >&2; exit 1; }
    echo "cuda-check: infer --device $device: $(elapsed "$start") ($(grep -o 'provider=[A-Za-z]*' "$exp/infer-$device.log" | sort -u | tr '\n' ' '))"
done

# Same model, same tensors: CUDA's and the CPU's probabilities differ only by float rounding.
paste -d, "$exp/test-cuda.csv" "$exp/test-cpu.csv" | awk -F, -v tol="$TOL" '
    NR == 1 { next }
    { n++; d = $5 - $10; if (d < 0) d = -d; if (d > max) max = d; if ($3 != $8) flips++ }
    END {
        printf "cuda-check: %d test images, max |p_cuda - p_cpu| = %.2e, %d predictions differ\n", n, max, flips
        exit (n > 0 && max <= tol) ? 0 : 1
    }'

# No visible GPU: --device cuda must fail, naming CUDA, not fall back to the CPU; auto falls back.
if CUDA_VISIBLE_DEVICES=-1 ORT_DYLIB_PATH=$cuda_library "$BIN/infer" --config "$CONFIG" "${SET[@]}" --split test \
    --device cuda --no-progress --out "$exp/hidden.csv" 2>"$exp/hidden.log"; then
    echo "cuda-check: --device cuda ran with no visible GPU" >&2
    exit 1
fi
grep -q 'could not use CUDA' "$exp/hidden.log" || { cat "$exp/hidden.log" >&2; exit 1; }
echo "cuda-check: with no visible GPU, --device cuda fails: $(grep -m1 'error:' "$exp/hidden.log" | cut -c1-240)"
CUDA_VISIBLE_DEVICES=-1 ORT_DYLIB_PATH=$cuda_library "$BIN/infer" --config "$CONFIG" "${SET[@]}" --split test \
    --device auto --no-progress --out "$exp/auto.csv" 2>"$exp/auto.log" || { cat "$exp/auto.log" >&2; exit 1; }
grep -q 'running on CPU' "$exp/auto.log" || { cat "$exp/auto.log" >&2; exit 1; }
echo "cuda-check: with no visible GPU, --device auto runs on the CPU and says why"
echo "cuda-check: passed"
