#!/usr/bin/env bash
# make bench-infer: images/s of `infer` end to end from JPEG files and on preprocessed tensors,
# against Python onnxruntime 1.31.1 running the same model.onnx on the same tensors with the
# same batch size and thread count; the model's achieved GFLOP/s against the CPU's peak; and
# what Grad-CAM heatmaps cost (`infer --explain`, PNGs written) against plain prediction
# from the same JPEG files; and the same model trained with `model.precision: int8` on the
# same tensors (its rate against float32's, and against Python onnxruntime's float32); the
# whole `infer` process on the tensors against a whole Python process running them; and the
# int8 model against ONNX Runtime's own static quantization of the same VGG16 weights, in one
# Python loop (bench/int8_vs_ort.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
fullres=${CXR_SHARED:-../shared}/data/chest_xray_fullres
[[ -d "$fullres" ]] || { echo "bench: $fullres is missing" >&2; exit 1; }
python=$(bench/venv.sh opencv)
make -s setup
export PATH="$PWD/.tools/nasm/usr/bin:$PATH"
# shellcheck disable=SC2046 # the flags are words
cargo build --release -q --workspace --bins $(scripts/cargo-features.sh)
threads=$(nproc)
batch=32
repeats=${REPEATS:-3}
mhz=$(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2 | xargs)
# AVX2 + FMA: two 256-bit FMA units per core = 32 float32 FLOPs per cycle at the reported
# clock. CPUs with AVX-512 (which ONNX Runtime's MLAS uses when present) and boost clocks go
# beyond it, so the AVX-512 figure (64 FLOPs per cycle) is printed too.
peak=$(awk -v c="$threads" -v m="$mhz" 'BEGIN { printf "%.1f", c * m / 1000 * 32 }')
peak512=$(awk -v c="$threads" -v m="$mhz" 'BEGIN { printf "%.1f", c * m / 1000 * 64 }')
avx512=$(grep -qw avx512f /proc/cpuinfo && echo yes || echo no)
echo "machine: $threads cores at ${mhz} MHz, float32 peak ${peak} GFLOP/s (AVX2 FMA), ${peak512} GFLOP/s (AVX-512 FMA; avx512f: $avx512)"
for size in ${SIZES:-50 224}; do
    exp=bench-infer-$size
    sets=(--set experiment.name=$exp --set "data.root=$fullres" --set "preprocess.size=[$size,$size]"
          --set model.backbone=imagenet --set model.pooling=avg --set train.epochs=1
          --set infer.batch_size=$batch --set runtime.intra_threads=$threads --set data.val_fraction=0.1)
    rm -rf runs/$exp
    target/release/preprocess -q --no-progress "${sets[@]}"
    target/release/train -q --no-progress "${sets[@]}"
    sets8=("${sets[@]}" --set experiment.name=$exp-int8 --set model.precision=int8)
    rm -rf runs/$exp-int8 && mkdir -p runs/$exp-int8 && cp -r runs/$exp/tensors runs/$exp-int8/
    target/release/train -q --no-progress "${sets8[@]}"
    rate() { "$@" 2>&1 | sed -n 's/.*(\([0-9.]*\) images\/s).*/\1/p'; }
    # The three contenders take turns, best of $repeats each, so that a slow spell of the
    # machine does not land on one of them only.
    tensors=0 files=0 py=0 explain=0 int8=0 whole=999999 pywhole=999999
    for _ in $(seq "$repeats"); do
        # Whole processes, start-up and the CSV included (Python runs no warm-up batch here).
        t=$(wall target/release/infer -q --no-progress "${sets[@]}" --split train --out /tmp/cxr-bench.csv)
        whole=$(min "$whole" "$t")
        t=$(wall "$python" bench/ort_tensors.py runs/$exp/train/model.onnx runs/$exp/tensors/train/images.npy $batch $threads 1 0)
        pywhole=$(min "$pywhole" "$t")
        tensors=$(max "$tensors" "$(rate target/release/infer --no-progress "${sets[@]}" --split train --out /tmp/cxr-bench.csv)")
        int8=$(max "$int8" "$(rate target/release/infer --no-progress "${sets8[@]}" --split train --out /tmp/cxr-bench.csv)")
        py=$(max "$py" "$("$python" bench/ort_tensors.py runs/$exp/train/model.onnx runs/$exp/tensors/train/images.npy $batch $threads 1 | sed 's/.*=//')")
        files=$(max "$files" "$(rate target/release/infer --no-progress "${sets[@]}" --out /tmp/cxr-bench.csv "$fullres")")
        explain=$(max "$explain" "$(rate target/release/infer --no-progress "${sets[@]}" --out /tmp/cxr-bench.csv --explain /tmp/cxr-bench-explain "$fullres")")
    done
    flops=$("$python" bench/vgg_flops.py $size $size)
    echo "${size}x${size}: cxr infer on tensors ${tensors}/s, cxr infer from JPEG files ${files}/s, python onnxruntime on tensors ${py}/s, cxr infer --explain from JPEG files ${explain}/s"
    echo "  int8 model (model.precision: int8) on tensors ${int8}/s"
    echo "  whole process on the tensors: cxr infer ${whole} s, python onnxruntime ${pywhole} s: cxr/python speed = $(ratio "$pywhole" "$whole") (target >= 1.0)"
    row "infer on tensors ${size}px" images/s "$tensors" "python onnxruntime" "$py" "$(ratio "$tensors" "$py")" ">= 1.0"
    row "infer whole process on tensors ${size}px (s)" s "$whole" "python onnxruntime script" "$pywhole" "$(ratio "$pywhole" "$whole")" ">= 1.0"
    row "infer from JPEG files / on tensors ${size}px" images/s "$files" "cxr on tensors" "$tensors" "$(ratio "$files" "$tensors")" ">= 0.85"
    row "infer --explain time / plain ${size}px" images/s "$explain" "cxr plain from files" "$files" "$(ratio "$files" "$explain")" "<= 2"
    row "infer int8 / float32 on tensors ${size}px" images/s "$int8" "cxr float32" "$tensors" "$(ratio "$int8" "$tensors")" ">= 3"
    # The int8 model at ONNX Runtime's ceiling: the project's float32 and int8 model.onnx and
    # ONNX Runtime's own float32 and QDQ backbone, in one Python loop.
    # (its quantization warnings go to a file, shown only if it fails)
    "$python" bench/int8_vs_ort.py "$size" runs/$exp/train/model.onnx runs/$exp-int8/train/model.onnx /tmp/cxr-bench-int8.json \
        >/dev/null 2>/tmp/cxr-bench-int8.err || { cat /tmp/cxr-bench-int8.err >&2; exit 1; }
    read -r own ort_own <<<"$("$python" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(round(r["images_per_s"]["project int8"], 1), round(r["images_per_s"]["ORT int8"], 1))' /tmp/cxr-bench-int8.json)"
    read -r speed ort_speed <<<"$("$python" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(round(r["project_int8_over_fp32"], 3), round(r["ort_int8_over_fp32"], 3))' /tmp/cxr-bench-int8.json)"
    echo "  int8 in one python loop: cxr int8 ${own}/s, onnxruntime's own quantize_static ${ort_own}/s; int8/float32 cxr ${speed}x, onnxruntime ${ort_speed}x"
    row "int8 model against onnxruntime quantize_static ${size}px" images/s "$own" "onnxruntime QDQ of the same weights" "$ort_own" "$(ratio "$own" "$ort_own")" ">= 1.0"
    row "int8 / float32 in one loop ${size}px (onnxruntime's own: ${ort_speed})" images/s "$own" "cxr float32" "" "$speed" ">= 3.7 (50px) 4.0 (224px)"
    # On a CPU with AMX: both int8 models as cxr's engine runs them (on ONNX Runtime's AMX GEMM).
    amx=$("$python" -c 'import json, sys; r = json.load(open(sys.argv[1])); v = r["images_per_s"]; print(round(v["project int8 AMX"], 1), round(v["ORT int8 AMX"], 1), round(r["project_int8_amx_over_fp32"], 3)) if r["amx"] else None' /tmp/cxr-bench-int8.json)
    if [[ -n "$amx" ]]; then
        read -r own_amx ort_amx speed_amx <<<"$amx"
        echo "  on this CPU's AMX: cxr int8 ${own_amx}/s (${speed_amx}x float32), onnxruntime's own quantize_static restated alike ${ort_amx}/s, as stored ${ort_own}/s"
        row "int8 model on AMX against onnxruntime quantize_static on AMX ${size}px" images/s "$own_amx" "onnxruntime QDQ of the same weights restated alike" "$ort_amx" "$(ratio "$own_amx" "$ort_amx")" ">= 1.0"
        row "int8 model on AMX against onnxruntime quantize_static as stored ${size}px" images/s "$own_amx" "onnxruntime QDQ of the same weights" "$ort_own" "$(ratio "$own_amx" "$ort_own")" ""
        row "int8 on AMX / float32 in one loop ${size}px" images/s "$own_amx" "cxr float32" "" "$speed_amx" ">= 3.7 (50px) 4.0 (224px)"
    fi
    awk -v t="$tensors" -v f="$files" -v p="$py" -v e="$explain" -v q="$int8" -v fl="$flops" -v pk="$peak" -v pk2="$peak512" 'BEGIN {
        printf "  int8: on tensors %.2fx float32 cxr, %.2fx python onnxruntime float32 (aim >= 3x)\n", q/t, q/p
        printf "  ratios: tensors cxr/python = %.3f (target >= 0.95), files/tensors = %.3f (target >= 0.85)\n", t/p, f/t
        printf "  heatmaps: %.2f ms/image with --explain against %.2f ms/image plain = %.2fx (target <= 2)\n", 1000/e, 1000/f, f/e
        printf "  model: %.2f GFLOP/image, achieved %.1f GFLOP/s = %.0f%% of the AVX2 peak, %.0f%% of the AVX-512 peak\n", fl/1e9, fl*t/1e9, 100*fl*t/1e9/pk, 100*fl*t/1e9/pk2 }'
    rm -rf runs/$exp runs/$exp-int8 /tmp/cxr-bench-explain
done
