#!/usr/bin/env bash
# The seed replica against what differs from the tutorial's Keras run: input normalisation
# (caffe vs the tutorial's raw RGB), resize filter (area vs cv2's bilinear) and epoch choice
# (best val_loss vs the last epoch, as Keras' fit keeps). Five seeds per variant; prints the
# estimate split's accuracy, ROC AUC, sensitivity and specificity (nothing is chosen on it),
# mean ± sd. The last variant is what configs/seed_replica.yaml ships.
#   bench/replica_study.sh [SEEDS="1 2 3 4 5"]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-1 2 3 4 5}
bin=target/debug
# Every variant names all three settings, so the table does not depend on the shipped config.
declare -A variants=(
    [caffe+area+best]="model.normalization=caffe preprocess.resize_filter=area train.early_stopping.monitor=val_loss"
    [raw-rgb+area+best]="model.normalization=none preprocess.resize_filter=area train.early_stopping.monitor=val_loss"
    [raw-rgb+bilinear+best]="model.normalization=none preprocess.resize_filter=bilinear train.early_stopping.monitor=val_loss"
    [raw-rgb+bilinear+last]="model.normalization=none preprocess.resize_filter=bilinear train.early_stopping.monitor=last"
)
printf '| variant | estimate accuracy | estimate ROC AUC | estimate sensitivity | estimate specificity |\n|---|---|---|---|---|\n'
for name in caffe+area+best raw-rgb+area+best raw-rgb+bilinear+best raw-rgb+bilinear+last; do
    rows=()
    for seed in $seeds; do
        sets=(--set "experiment.name=replica-$name-$seed" --set "experiment.seed=$seed" --set report.png=false)
        for s in ${variants[$name]}; do sets+=(--set "$s"); done
        for stage in preprocess train infer report; do
            "$bin/$stage" --config configs/seed_replica.yaml "${sets[@]}" -q --no-progress >/dev/null
        done
        rows+=("$(awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i} $1=="estimate"{print $c["accuracy"], $c["auc"], $c["sensitivity"], $c["specificity"]}' "runs/replica-$name-$seed/report/metrics.csv")")
    done
    printf '%s\n' "${rows[@]}" | awk -v name="$name" '{for(i=1;i<=4;i++){s[i]+=$i; q[i]+=$i*$i}} END {printf "| %s |", name; for(i=1;i<=4;i++){m=s[i]/NR; sd=sqrt((q[i]-NR*m*m)/(NR-1)); printf " %.3f ± %.3f |", m, sd}; printf "\n"}'
done
