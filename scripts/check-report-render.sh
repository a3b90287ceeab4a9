#!/usr/bin/env bash
# Renders an experiment's index.html in headless Chromium (Debian package `chromium`) at a
# laptop's width (1280 px) and a phone's (390 px) and checks what a reader meets:
# - the page, its inline plots and its gallery came out (the DOM must hold the metrics
#   table, the plots and the gallery's thumbnails);
# - no text is smaller than 12 px at 100% zoom: the page's own text at both widths, the
#   plots' text as drawn at the laptop's width (on a phone the plots shrink to the screen
#   and their text must stay at 7 px or more: pinch to read);
# - on the phone nothing makes the page wider than the screen (wide tables scroll inside
#   themselves).
# Screenshots index.png (laptop) and index-phone.png and the DOM are written next to it.
#   scripts/check-report-render.sh runs/demo/report/index.html
set -euo pipefail
page=$(realpath "${1:?usage: check-report-render.sh path/to/index.html}")
chromium=$(command -v chromium || command -v chromium-browser || true)
[[ -n "$chromium" ]] || { echo "check: chromium is not installed (apt-get install chromium)" >&2; exit 1; }
out=$(dirname "$page")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$work/profile")
"$chromium" "${flags[@]}" --window-size=1280,2400 --screenshot="$out/index.png" "file://$page" 2>/dev/null
"$chromium" "${flags[@]}" --window-size=390,1600 --screenshot="$out/index-phone.png" "file://$page" 2>/dev/null
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

# The page in an iframe of a probe page that measures it once laid out: the smallest
# computed font size of any element with its own text, the smallest plot text as drawn
# (each SVG's font sizes scaled by its shown width over its own), and the page's width.
measure() {
    local width=$1
    cat > "$work/probe.html" <<EOF
<!doctype html><html><body><iframe id=f style="width:${width}px;height:1200px;border:0" src="file://$page"></iframe><pre id=out>pending</pre>
<script>
document.getElementById('f').addEventListener('load', () => {
  const f = document.getElementById('f'), d = f.contentDocument, w = f.contentWindow;
  let text = 1e9, where = '';
  for (const el of d.body.querySelectorAll('*')) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    if (el.closest('pre')) continue;
    const size = parseFloat(w.getComputedStyle(el).fontSize);
    if (size < text) { text = size; where = el.tagName + ' ' + el.textContent.trim().slice(0, 40); }
  }
  let plot = 1e9;
  for (const img of d.querySelectorAll('img[src^="data:image/svg+xml;base64,"]')) {
    const svg = atob(img.src.split(',')[1]);
    const own = parseFloat((svg.match(/width="([0-9.]+)"/) || [0, 0])[1]);
    const sizes = [...svg.matchAll(/font-size="([0-9.]+)"/g)].map(m => parseFloat(m[1]));
    if (!own || !sizes.length || !img.clientWidth) continue;
    plot = Math.min(plot, Math.min(...sizes) * img.clientWidth / own);
  }
  document.getElementById('out').textContent = 'measured text=' + text.toFixed(2) + ' plot=' + plot.toFixed(2) +
    ' page=' + d.documentElement.scrollWidth + ' view=' + w.innerWidth + ' smallest=' + where;
});
</script></body></html>
EOF
    "$chromium" "${flags[@]}" --allow-file-access-from-files --virtual-time-budget=10000 --dump-dom \
        "file://$work/probe.html" 2>/dev/null | grep -o 'measured text=[^<]*' | head -1 || true
}
failed=0
for device in laptop:1280:12 phone:390:7; do
    IFS=: read -r name width plot_min <<< "$device"
    line=$(measure "$width")
    [[ -n "$line" ]] || { echo "check: the $name-width probe measured nothing" >&2; exit 1; }
    read -r text plot pagew view <<< "$(sed -E 's/.*text=([0-9.]+) plot=([0-9.e+]+) page=([0-9]+) view=([0-9]+).*/\1 \2 \3 \4/' <<< "$line")"
    echo "check: $name ($width px): smallest text ${text} px, smallest plot text ${plot} px, page ${pagew} px wide (${line##*smallest=})"
    if awk -v t="$text" 'BEGIN { exit !(t < 12) }'; then echo "check: $name: text below 12 px" >&2; failed=1; fi
    if awk -v p="$plot" -v m="$plot_min" 'BEGIN { exit !(p < m) }'; then echo "check: $name: plot text below $plot_min px" >&2; failed=1; fi
    if [[ "$name" == phone && "$pagew" -gt "$view" ]]; then echo "check: phone: the page is $pagew px wide on a $view px screen" >&2; failed=1; fi
done
[[ "$failed" -eq 0 ]] || exit 1
echo "check: $page rendered ($images plots, $figures gallery cases, heatmap notes on $heatmaps splits, screenshots $out/index.png and $out/index-phone.png, $size bytes)"
