#!/usr/bin/env bash
# Fetches nasm, which assembles libjpeg-turbo's SIMD code (x86-64), from Debian's archive
# without installing anything: `apt-get download` + `dpkg -x` into .tools/nasm/. Idempotent.
# Where that is not possible (nasm already on PATH, not x86-64, not Debian) it does nothing
# more, and the JPEG decoder is built without SIMD: everything works, 224x224 decoding is
# about 15% slower (scripts/cargo-features.sh decides).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.tools/nasm"
if [[ -x "$dest/usr/bin/nasm" ]] || command -v nasm >/dev/null 2>&1; then
    exit 0
fi
skip() { echo "setup: $1; the JPEG decoder is built without SIMD" >&2; exit 0; }
[[ "$(uname -m)" == x86_64 ]] || skip "not x86-64"
command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 || skip "no apt-get/dpkg to fetch nasm"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "setup: downloading nasm (Debian package) into $dest" >&2
(cd "$work" && apt-get download nasm >/dev/null 2>&1) || skip "apt-get download nasm failed"
dpkg -x "$work"/nasm_*.deb "$work/nasm"
"$work/nasm/usr/bin/nasm" -v >/dev/null || skip "the downloaded nasm does not run"
mkdir -p "$root/.tools"
rm -rf "$dest"
mv "$work/nasm" "$dest"
