#!/usr/bin/env bash
# Renders an experiment's index.html in headless Chromium (Debian package `chromium`) and
# checks that the page, its inline plots and its gallery came out: a screenshot and the DOM
# are written next to it, and the DOM must contain the metrics table, the plots and the
# gallery's thumbnails.
#   scripts/check-report-render.sh runs/demo/report/index.html
set -euo pipefail
page=$(realpath "${1:?usage: check-report-render.sh path/to/index.html}")
chromium=$(command -v chromium || command -v chromium-browser || true)
[[ -n "$chromium" ]] || { echo "check: chromium is not installed (apt-get install chromium)" >&2; exit 1; }
out=$(dirname "$page")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$profile" --window-size=1200,2400)
"$chromium" "${flags[@]}" --screenshot="$out/index.png" "file://$page" 2>/dev/null
"$chromium" "${flags[@]}" --dump-dom "file://$page" 2>/dev/null > "$out/index.dom.html"
grep -q "<h2>Metrics</h2>" "$out/index.dom.html" || { echo "check: no metrics table in the rendered page" >&2; exit 1; }
images=$(grep -o 'data:image/svg+xml;base64' "$out/index.dom.html" | wc -l)
[[ "$images" -ge 4 ]] || { echo "check: only $images inline plots rendered" >&2; exit 1; }
# The gallery: thumbnails decoded as images inside figures (with heatmaps when report.explain).
figures=$(grep -o '<figure' "$out/index.dom.html" | wc -l)
[[ "$figures" -ge 1 ]] || { echo "check: no gallery of cases in the rendered page" >&2; exit 1; }
thumbnails=$(grep -o 'data:image/png;base64' "$out/index.dom.html" | wc -l)
[[ "$thumbnails" -ge "$figures" ]] || { echo "check: $figures gallery cases but $thumbnails thumbnails" >&2; exit 1; }
heatmaps=$(grep -o 'Grad-CAM heatmap of its call' "$out/index.dom.html" | wc -l)
size=$(stat -c %s "$out/index.png")
[[ "$size" -gt 20000 ]] || { echo "check: the screenshot is nearly empty ($size bytes)" >&2; exit 1; }
echo "check: $page rendered ($images plots, $figures gallery cases, heatmap notes on $heatmaps splits, screenshot $out/index.png, $size bytes)"
