#!/usr/bin/env bash
# Renders an experiment's index.html in headless Chromium (Debian package `chromium`) and
# checks that the page and its inline plots came out: a screenshot and the DOM are written
# next to it, and the DOM must contain every metrics table and all plot images decoded.
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
size=$(stat -c %s "$out/index.png")
[[ "$size" -gt 20000 ]] || { echo "check: the screenshot is nearly empty ($size bytes)" >&2; exit 1; }
echo "check: $page rendered ($images plots, screenshot $out/index.png, $size bytes)"
