#!/usr/bin/env bash
# make bench-int8-accuracy: what int8 costs in accuracy. For configs/seed_replica.yaml and
# configs/kermany.yaml: preprocess once, then train + infer + report with model.precision
# fp32 and int8 on the same tensors; prints each split's ROC AUC and accuracy side by side
# (aim: int8 within 0.005 AUC of float32). About 25 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s setup
export PATH="$PWD/.tools/nasm/usr/bin:$PATH"
# shellcheck disable=SC2046 # the flags are words
cargo build --release -q --workspace --bins $(scripts/cargo-features.sh)
# A workdir of its own: both precisions compute their features here, none comes from an
# older run's feature cache.
workdir=runs/bench-int8
for config in ${CONFIGS:-seed_replica kermany}; do
    base=$config
    rm -rf $workdir
    target/release/preprocess -q --no-progress --config configs/$config.yaml --set experiment.workdir=$workdir \
        --set experiment.name=$base-fp32
    mkdir -p $workdir/$base-int8 && cp -r $workdir/$base-fp32/tensors $workdir/$base-int8/
    for precision in fp32 int8; do
        sets=(--config configs/$config.yaml --set experiment.workdir=$workdir --set experiment.name=$base-$precision
              --set model.precision=$precision)
        start=$(date +%s)
        target/release/train -q --no-progress "${sets[@]}"
        features=$(sed -n 's/.*"seconds_features": "\(.*\)".*/\1/p' $workdir/$base-$precision/train/provenance.json)
        target/release/infer -q --no-progress "${sets[@]}"
        target/release/report -q --no-progress "${sets[@]}" > /dev/null
        echo "$config $precision: train + infer + report $(( $(date +%s) - start )) s (backbone pass $features s)"
    done
    # metrics.csv: split,n,...,accuracy (7th),...,auc (named): read by header.
    for precision in fp32 int8; do
        awk -F, -v p="$precision" -v c="$config" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
            { printf "  %s %s %-8s accuracy %.4f  ROC AUC %.4f\n", c, p, $col["split"], $col["accuracy"], $col["auc"] }' \
            $workdir/$base-$precision/report/metrics.csv
    done
    rm -rf $workdir
done
