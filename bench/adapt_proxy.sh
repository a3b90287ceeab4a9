#!/usr/bin/env bash
# The site-adaptation proxy with the real stages: the unseen acquisition family of
# bench/family_proxy.py (NORMAL2-IM-* normals and held-out pneumonia patients, 1358 images)
# as a new site. The source is configs/kermany.yaml trained without that family; each run
# draws a patient-grouped labelled local sample of about N site images (bench/adapt_proxy.py,
# seeded), runs `train --adapt-from` the source, `infer` (the adapted and the source model on
# every other site image, the site's test split) and `report`, and prints one row per run:
# test-split accuracy / sensitivity / specificity / ROC AUC of the source and adapted
# models, and the local weight chosen. Ends with mean ± sd per N.
#   bench/adapt_proxy.sh [SIZES="25 100 200"] [SEEDS="0 1 2"]   (about 6 min a run on 2 cores)
# SITE_ROOT=DIR judges a site whose images are another copy of the same files (for example
# the unseen family re-encoded at JPEG quality 20 by bench/recompress.py); TAG (jpeg20) names its runs.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES:-25 100 200}
seeds=${SEEDS:-0 1 2}
bin=${BIN:-target/debug}
data=../shared/data/chest_xray_224/train
work=runs/proxy
mkdir -p "$work" bench/out
label_sets=(--set data.adapter=csv --set data.csv.split_column=split --set data.patient=kermany --set experiment.workdir=$work --set report.png=false --set report.gallery=0)
if [[ ! -f $work/family_src/train/model.onnx ]]; then
    python3 bench/family_proxy.py "$data" "$work/family.csv"
    for stage in preprocess train; do
        "$bin/$stage" --config configs/kermany.yaml "${label_sets[@]}" --set experiment.name=family_src \
            --set "data.csv.file=$PWD/$work/family.csv" -q --no-progress
    done
fi
out=bench/out/adapt_proxy.csv
[[ -f $out ]] || echo "site,n,seed,local_images,test_images,local_weight,source_accuracy,source_sensitivity,source_specificity,source_auc,adapted_accuracy,adapted_sensitivity,adapted_specificity,adapted_auc" > "$out"
figures() { awk -F, -v want="$2" 'NR==1{for(i=1;i<=NF;i++)c[$i]=i} $1==want{printf "%.3f,%.3f,%.3f,%.3f", $c["accuracy"], $c["sensitivity"], $c["specificity"], $c["auc"]}' "$1"; }
for n in $sizes; do
    for seed in $seeds; do
        name=site${TAG:+$TAG-}$n-$seed
        python3 bench/adapt_proxy.py "$work/family.csv" "$work/$name.csv" "$n" "$seed"
        sets=("${label_sets[@]}" --set "experiment.name=$name" --set "data.csv.file=$PWD/$work/$name.csv" --set "data.root=${SITE_ROOT:-$data}")
        "$bin/preprocess" --config configs/kermany.yaml "${sets[@]}" -q --no-progress
        "$bin/train" --config configs/kermany.yaml "${sets[@]}" -q --no-progress --adapt-from "$work/family_src"
        for stage in infer report; do "$bin/$stage" --config configs/kermany.yaml "${sets[@]}" -q --no-progress; done
        metrics=$work/$name/report/metrics.csv
        adaptation=$work/$name/train/adaptation.json
        local_images=$(python3 -c "import json,sys; a=json.load(open(sys.argv[1])); print(a['local_images'], a['local_weight'])" "$adaptation")
        test_images=$(awk -F, '$1=="test"{print $2}' "$metrics")
        echo "${TAG:-family},$n,$seed,${local_images% *},$test_images,${local_images#* },$(figures "$metrics" source-test),$(figures "$metrics" test)" | tee -a "$out"
    done
done
echo
echo "| site | local images | runs | source: accuracy / sensitivity / specificity / AUC | adapted: accuracy / sensitivity / specificity / AUC |"
echo "|---|---|---|---|---|"
awk -F, 'NR>1{k=$1" | "$2; n[k]++; for(i=7;i<=14;i++){s[k,i]+=$i; q[k,i]+=$i*$i}} END {for(k in n){printf "| %s | %d |", k, n[k]; for(i=7;i<=14;i++){m=s[k,i]/n[k]; sd=n[k]>1?sqrt((q[k,i]-n[k]*m*m)/(n[k]-1)):0; printf " %.3f±%.3f%s", m, sd, (i==10||i==14)?" |":" /"}; printf "\n"}}' "$out" | sort
