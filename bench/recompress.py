"""Re-encodes the site images of a proxy label file as JPEG at quality Q into another folder
(outside the project), keeping their relative paths: a site whose scanner exports heavily
compressed images, for bench/adapt_proxy.sh (SITE_ROOT=OUT).

    bench/recompress.py SRC_ROOT LABELS.csv OUT_ROOT Q   (needs opencv: bench/venv.sh opencv)
"""
import csv
import os
import sys

import cv2


def main():
    src, labels, out, quality = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open(labels, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    for r in rows:
        image = cv2.imread(os.path.join(src, r["path"]), cv2.IMREAD_UNCHANGED)
        target = os.path.join(out, r["path"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        cv2.imwrite(target, image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    print(f"{len(rows)} images re-encoded at quality {quality} into {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
