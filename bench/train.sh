#!/usr/bin/env bash
# make bench-train: the tutorial's recipe (300 + 300 images at 50x50, frozen VGG16, 16 epochs,
# batch 100, SGD 1e-4 momentum 0.9, validation every epoch on ~470 images) run end to end by
# the tutorial's own Keras code and by `preprocess` + `train`, on the same files and machine;
# and `train` again with `model.precision: int8` on the same tensors (its backbone pass
# against float32's, and end to end against Keras); then the backbone pass alone at 224x224,
# float32 against int8, on the 300 full-resolution X-rays.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
data=${CXR_SHARED:-../shared}/data/chest_xray_224/train
[[ -d "$data" ]] || { echo "bench: $data is missing" >&2; exit 1; }
python=$(bench/venv.sh keras)
make -s setup
export PATH="$PWD/.tools/nasm/usr/bin:$PATH"
# shellcheck disable=SC2046 # the flags are words
cargo build --release -q -p cxr-preprocess -p cxr-train --bins $(scripts/cargo-features.sh)
sets=(--set experiment.name=bench-train --set "data.root=$data" --set train.feature_cache=false)
# This VM's speed drifts by 10-20% over minutes (other tenants), so the two contenders run
# alternately, RUNS times each, and each is judged by its best run (as bench-infer does).
# Each starts after PAUSE idle seconds, so that neither runs in the wake of the other (or of
# the build): the backbone pass measured 3.9-4.1 s in runs right after Keras or the build,
# 3.65-4.0 s when run alone.
runs=${RUNS:-3}
pause=${PAUSE:-15}
results=()
for ((run = 1; run <= runs; run++)); do
    rm -rf runs/bench-train
    sleep "$pause"
    start=$(date +%s.%N)
    target/release/preprocess -q --no-progress --config configs/seed_replica.yaml "${sets[@]}"
    mid=$(date +%s.%N)
    target/release/train -q --no-progress --config configs/seed_replica.yaml "${sets[@]}"
    end=$(date +%s.%N)
    features=$(sed -n 's/.*"seconds_features": "\(.*\)".*/\1/p' runs/bench-train/train/provenance.json)
    sleep "$pause"
    start8=$(date +%s.%N)
    target/release/train -q --no-progress --config configs/seed_replica.yaml "${sets[@]}" --set model.precision=int8
    end8=$(date +%s.%N)
    features8=$(sed -n 's/.*"seconds_features": "\(.*\)".*/\1/p' runs/bench-train/train/provenance.json)
    sleep "$pause"
    keras=$("$python" bench/keras_tutorial.py runs/bench-train/tensors/train/manifest.csv runs/bench-train/tensors/val/manifest.csv)
    keras_s=$(echo "$keras" | sed -n 's/keras_seconds=//p')
    images=$(echo "$keras" | sed -n 's/keras_images=//p')
    line=$(awk -v s="$start" -v m="$mid" -v e="$end" -v f="$features" -v k="$keras_s" \
        -v s8="$start8" -v e8="$end8" -v f8="$features8" \
        'BEGIN { printf "%.3f %.3f %.3f %.3f %.2f %.3f %.3f", e - s, m - s, e - m, f, k, e8 - s8, f8 }')
    results+=("$line")
    read -r total pre tr f k tr8 f8 <<<"$line"
    echo "run $run/$runs: keras $k s; cxr $total s (preprocess $pre s, train $tr s, backbone pass $f s); ratio $(awk -v k="$k" -v t="$total" 'BEGIN { printf "%.1f", k / t }')x; int8 train $tr8 s (backbone pass $f8 s)" >&2
done
summary=$(printf '%s\n' "${results[@]}" | awk -v n="$images" -v runs="$runs" '
    NR == 1 || $1 < total { total = $1; pre = $2; tr = $3; f = $4 }
    NR == 1 || $5 < k { k = $5 }
    NR == 1 || $2 + $6 < total8 { total8 = $2 + $6; tr8 = $6; f8 = $7 }
    NR == 1 || $7 < best8 { best8 = $7 }
    NR == 1 || $4 < best32 { best32 = $4 }
    END {
        printf "images: %d (train + validation); best of %d alternating runs each\n", n, runs
        printf "keras tutorial (load + 16 epochs with validation): %.1f s\n", k
        printf "cxr preprocess + train: %.2f s (preprocess %.2f s, train %.2f s, of which the one backbone pass %.2f s)\n", total, pre, tr, f
        printf "ratio keras / cxr end to end: %.1fx (target >= 20x)\n", k / total
        printf "ceiling: keras / the one backbone pass alone = %.1fx (what a cxr with no other cost would reach)\n", k / f
        printf "cxr train / backbone floor: %.2fx (target <= 1.3x); cxr end to end / floor: %.2fx\n", tr / f, total / f
        printf "int8 (model.precision: int8, calibration included in train): preprocess + train %.2f s (train %.2f s, backbone pass %.2f s)\n", total8, tr8, f8
        printf "int8 backbone pass speed / float32 (best of each): %.2fx (aim >= 3.7x); ratio keras / cxr int8 end to end: %.1fx (aim >= 40x)\n", best32 / best8, k / total8
        printf "ROW %s %s %s %s %s %s\n", k, total, total8, best32, best8, tr8
    }')
echo "$summary" | grep -v '^ROW'
read -r _ keras_s total total8 f32 f8 tr8 <<<"$(echo "$summary" | grep '^ROW')"
row "preprocess + train float32 50px against Keras" s "$total" "keras tutorial" "$keras_s" "$(ratio "$keras_s" "$total")" ">= 20"
row "preprocess + train int8 50px against Keras" s "$total8" "keras tutorial" "$keras_s" "$(ratio "$keras_s" "$total8")" ">= 40"
row "train backbone pass int8 / float32 50px" s "$f8" "cxr float32" "$f32" "$(ratio "$f32" "$f8")" ">= 3.7"
rm -rf runs/bench-train

# The backbone pass at 224x224: float32 and int8 `train` alternating on the same tensors
# (the feature cache off, one epoch), best of RUNS each.
fullres=${CXR_SHARED:-../shared}/data/chest_xray_fullres
sets224=(--set experiment.name=bench-train-224 --set "data.root=$fullres" --set "preprocess.size=[224,224]"
         --set train.feature_cache=false --set train.epochs=1)
rm -rf runs/bench-train-224
target/release/preprocess -q --no-progress "${sets224[@]}" 2>/dev/null
# On a CPU with AMX int8 tiles, int8 runs on ONNX Runtime's AMX GEMM (runtime.amx, the
# default); it also runs once more with runtime.amx=false, on the VNNI kernels other CPUs use.
amx=$(grep -qw amx_int8 /proc/cpuinfo && grep -qw amx_tile /proc/cpuinfo && echo yes || echo no)
variants=(fp32 int8)
[[ $amx == yes ]] && variants+=(int8-vnni)
declare -A best=([fp32]=999999 [int8]=999999 [int8-vnni]=999999)
for ((run = 1; run <= runs; run++)); do
    for variant in "${variants[@]}"; do
        target/release/train -q --no-progress "${sets224[@]}" --set model.precision="${variant%-vnni}" \
            --set runtime.amx="$([[ $variant == int8-vnni ]] && echo false || echo true)"
        f=$(sed -n 's/.*"seconds_features": "\(.*\)".*/\1/p' runs/bench-train-224/train/provenance.json)
        best[$variant]=$(min "${best[$variant]}" "$f")
    done
done
images224=$(($(wc -l < runs/bench-train-224/tensors/train/manifest.csv) + $(wc -l < runs/bench-train-224/tensors/val/manifest.csv) - 2))
echo "224x224 backbone pass ($images224 images, best of $runs; AMX int8: $amx): float32 ${best[fp32]} s, int8 ${best[int8]} s: int8 speed / float32 $(ratio "${best[fp32]}" "${best[int8]}")x (aim >= 4.0x)"
row "train backbone pass int8 / float32 224px" s "${best[int8]}" "cxr float32" "${best[fp32]}" "$(ratio "${best[fp32]}" "${best[int8]}")" ">= 4.0"
if [[ $amx == yes ]]; then
    echo "  int8 on the VNNI kernels (runtime.amx=false): ${best[int8-vnni]} s: $(ratio "${best[fp32]}" "${best[int8-vnni]}")x float32"
    row "train backbone pass int8 VNNI kernels / float32 224px" s "${best[int8-vnni]}" "cxr float32" "${best[fp32]}" "$(ratio "${best[fp32]}" "${best[int8-vnni]}")" ""
fi
rm -rf runs/bench-train-224
