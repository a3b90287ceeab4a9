#!/usr/bin/env bash
# Writes the first screen of a report, as a laptop shows it, to a PNG: the picture at the top
# of the README (`make screenshot` renders `make demo`'s report into docs/img/report.png).
#   scripts/report-screenshot.sh runs/demo/report/index.html docs/img/report.png
set -euo pipefail
page=$(realpath "${1:?usage: report-screenshot.sh path/to/index.html out.png}")
out=${2:?usage: report-screenshot.sh path/to/index.html out.png}
chromium=$(command -v chromium || command -v chromium-browser || true)
[[ -n "$chromium" ]] || { echo "screenshot: chromium is not installed (apt-get install chromium)" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$chromium" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
    --window-size=1000,820 --screenshot="$out.tmp.png" "file://$page" 2>/dev/null
mv "$out.tmp.png" "$out"
echo "screenshot: $out ($(stat -c %s "$out") bytes)"
