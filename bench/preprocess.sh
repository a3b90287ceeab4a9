#!/usr/bin/env bash
# make bench-preprocess: decode + resize of the full-resolution X-rays at 50x50 and 224x224,
# this project's transform (1 and 2 threads) against OpenCV single-threaded (the tutorial's
# way, and libjpeg-turbo's DCT-scaled decode), in the same run; then the whole `preprocess`
# process on one thread against a whole OpenCV process doing the same decode + resize and
# saving one .npy (start-up, file walking and writing included); then peak RSS of
# `preprocess` on the 5216-image chest_xray_224 training split at 224x224.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
data=${CXR_SHARED:-../shared}/data
fullres="$data/chest_xray_fullres"
[[ -d "$fullres" ]] || { echo "bench: $fullres is missing" >&2; exit 1; }
python=$(bench/venv.sh opencv)
make -s setup
export PATH="$PWD/.tools/nasm/usr/bin:$PATH"
# shellcheck disable=SC2046 # the flags are words
cargo build --release -q -p cxr-preprocess --example bench_decode --bin preprocess $(scripts/cargo-features.sh)
bench=target/release/examples/bench_decode
repeats=${REPEATS:-3}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "images: $(find "$fullres" -type f | wc -l) files in $fullres"
for size in 50 224; do
    cv=$("$python" bench/opencv_decode.py "$fullres" "$size" "$repeats")
    tut=$(echo "$cv" | sed -n 's/opencv_tutorial_images_per_s=//p')
    dct=$(echo "$cv" | sed -n 's/opencv_dct_images_per_s=//p')
    one=$("$bench" "$fullres" "$size" 1 "$repeats" | sed 's/.*=//')
    two=$("$bench" "$fullres" "$size" 2 "$repeats" | sed 's/.*=//')
    echo "${size}x${size}: opencv tutorial ${tut}/s, opencv DCT-scaled ${dct}/s, cxr 1 thread ${one}/s, cxr 2 threads ${two}/s"
    row "decode + resize 1 thread ${size}px" images/s "$one" "opencv DCT-scaled" "$dct" "$(ratio "$one" "$dct")" ">= 1.0"
    row "decode + resize 2 threads / 1 thread ${size}px" images/s "$two" "cxr 1 thread" "$one" "$(ratio "$two" "$one")" ">= 1.8"
    awk -v t="$tut" -v d="$dct" -v o="$one" -v w="$two" 'BEGIN {
        printf "  ratios: cxr(1t)/opencv-DCT = %.2f (target >= 1.0), cxr(1t)/tutorial = %.2f, opencv-DCT/tutorial = %.2f, cxr 2t/1t = %.2f (target >= 1.8)\n", o/d, o/t, d/t, w/o }'
done
for size in 50 224; do
    # Whole processes, alternating, best of $repeats each: wall seconds for the 300 files.
    cxr_s=999 cv_s=999
    for ((r = 0; r < repeats; r++)); do
        rm -rf runs/bench-whole
        t=$(wall target/release/preprocess -q --no-progress --set experiment.name=bench-whole \
            --set "data.root=$fullres" --set "preprocess.size=[$size,$size]" --set preprocess.threads=1)
        cxr_s=$(min "$cxr_s" "$t")
        t=$(wall "$python" bench/opencv_preprocess.py "$fullres" "$size" /tmp/cxr-bench-opencv.npy)
        cv_s=$(min "$cv_s" "$t")
    done
    whole=$(ratio "$cv_s" "$cxr_s")
    echo "${size}x${size} whole process, 1 thread: preprocess ${cxr_s} s, opencv ${cv_s} s: cxr/opencv speed = ${whole} (target >= 1.0)"
    row "preprocess whole process 1 thread ${size}px (s)" s "$cxr_s" "opencv DCT-scaled script" "$cv_s" "$whole" ">= 1.0"
    rm -rf runs/bench-whole /tmp/cxr-bench-opencv.npy
done
train224="$data/chest_xray_224/train"
if [[ -d "$train224" ]]; then
    rm -rf runs/bench-rss
    /usr/bin/time -v target/release/preprocess --no-progress -q --set experiment.name=bench-rss \
        --set "data.root=$train224" --set preprocess.size=[224,224] 2> /tmp/cxr-rss.txt
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' /tmp/cxr-rss.txt)
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' /tmp/cxr-rss.txt)
    echo "peak RSS preprocessing $(find "$train224" -type f | wc -l) images at 224x224: $((rss / 1024)) MB (target < 300 MB), wall $wall"
    row "preprocess peak RSS 5216 images 224px" MB "$((rss / 1024))" "" "" "" "< 300"
    rm -rf runs/bench-rss
fi
