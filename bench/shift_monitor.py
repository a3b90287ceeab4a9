"""The cohort-shift monitor measured with the real `infer`: the share of images flagged
(`shifted`) and how well the shift score separates each set from the in-distribution
`estimate` split (ROC AUC of the score), on:
  - the estimate split itself (images like the training data: about 1% should be flagged);
  - the experiment's `test` split when it has one (the acquisition-family proxy's unseen family);
  - perturbed copies of the estimate images (gamma, contrast, JPEG quality 20, resolution /4);
  - the adult chest X-rays in ../shared/data/adult_samples (NIH PNG, SIIM DICOM, PadChest);
  - photo-like synthetic images and crops/rotations of the estimate images.
For labelled sets it also gives the error rate of flagged and unflagged images. Prints
markdown rows; copies go to a temporary folder outside the project.

    bench/shift_monitor.py CONFIG [--set KEY=VALUE ...]   (needs bench/venv.sh opencv, scipy)
"""
import csv
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
from scipy.stats import mannwhitneyu

sys.path.insert(0, os.path.dirname(__file__))
from shift_proxies import auc, perturbations  # noqa: E402


def infer(config, sets, args, out):
    subprocess.run(["target/debug/infer", "--config", config, *sets, "-q", "--no-progress", *args, "--out", out],
                   check=True)
    with open(out) as f:
        return list(csv.DictReader(f))


def summary(name, rows, reference, classes):
    scores = np.array([float(r["shift_score"]) for r in rows])
    flagged = np.array([r["shifted"] == "true" for r in rows])
    ref = np.array([float(r["shift_score"]) for r in reference])
    separation = auc(np.concatenate([scores, ref]), np.concatenate([np.ones(len(scores), bool), np.zeros(len(ref), bool)]))
    p = mannwhitneyu(scores, ref, alternative="greater").pvalue if len(rows) and rows is not reference else float("nan")
    labelled = [r for r in rows if r["label"] in classes]
    errors = ""
    if labelled:
        wrong = np.array([r["label"] != r["predicted"] for r in labelled])
        f = np.array([r["shifted"] == "true" for r in labelled])
        rate = lambda m: f"{wrong[m].mean():.3f} ({m.sum()})" if m.sum() else "n/a"
        s = np.array([float(r["shift_score"]) for r in labelled])
        error_auc = auc(s, wrong) if 0 < wrong.sum() < len(wrong) else float("nan")
        errors = f" | {rate(f)} | {rate(~f)} | {error_auc:.3f}"
    else:
        errors = " | | |"
    print(f"| {name} | {len(rows)} | {flagged.mean():.3f} | {np.median(scores):.3f} | {separation:.3f} | {p:.1e}{errors} |")


def main():
    config, sets = sys.argv[1], sys.argv[2:]
    exp = subprocess.run(["target/debug/report", "--config", config, *sets, "--print-exp-dir"],
                         check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(exp, "tensors/estimate/manifest.csv")) as f:
        manifest = list(csv.DictReader(f))
    classes = {r["class"] for r in manifest}
    print("| images | N | flagged share | median score | ROC AUC of the score against estimate | Mann-Whitney p | error rate flagged (N) | error rate unflagged (N) | ROC AUC of the score for errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        estimate = infer(config, sets, ["--split", "estimate"], os.path.join(tmp, "estimate.csv"))
        summary("estimate (in distribution)", estimate, estimate, classes)
        splits = os.listdir(os.path.join(exp, "tensors"))
        if "test" in splits:
            test = infer(config, sets, ["--split", "test"], os.path.join(tmp, "test.csv"))
            summary("test split", test, estimate, classes)
        extra = [("crop to the central 50%", lambda im: im[im.shape[0] // 4: 3 * im.shape[0] // 4, im.shape[1] // 4: 3 * im.shape[1] // 4]),
                 ("rotated 90 degrees", lambda im: np.ascontiguousarray(np.rot90(im))),
                 ("inverted (MONOCHROME1 read as 2)", lambda im: 255 - im)]
        for name, fn in perturbations()[1:] + extra:
            folder = os.path.join(tmp, "p")
            os.makedirs(folder, exist_ok=True)
            for f in os.listdir(folder):
                os.remove(os.path.join(folder, f))
            for i, r in enumerate(manifest):
                im = cv2.imread(r["path"], cv2.IMREAD_UNCHANGED)
                cls = r["class"]
                os.makedirs(os.path.join(folder, cls), exist_ok=True)
                cv2.imwrite(os.path.join(folder, cls, f"{i:05d}.png"), fn(im))
            rows = infer(config, sets, [folder], os.path.join(tmp, "p.csv"))
            summary(name, rows, estimate, classes)
            subprocess.run(["rm", "-rf", folder], check=True)
        adult = infer(config, sets, ["../shared/data/adult_samples"], os.path.join(tmp, "adult.csv"))
        summary("adult samples (NIH, SIIM DICOM, PadChest)", adult, estimate, classes)
        photos = os.path.join(tmp, "photos")
        os.makedirs(photos)
        rng = np.random.default_rng(0)
        for i in range(40):
            h, w = 300, 400
            y, x = np.mgrid[0:h, 0:w]
            im = np.stack([(x * rng.uniform(0.2, 2) + y * rng.uniform(0.2, 2) + rng.uniform(0, 255)) % 256 for _ in range(3)], -1)
            im = cv2.GaussianBlur(im.astype(np.uint8), (0, 0), 3)
            cv2.circle(im, (int(rng.uniform(50, 350)), int(rng.uniform(50, 250))), int(rng.uniform(20, 80)), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
            cv2.imwrite(os.path.join(photos, f"photo{i:02d}.jpeg"), im)
        rows = infer(config, sets, [photos], os.path.join(tmp, "photos.csv"))
        summary("photo-like synthetic images", rows, estimate, classes)


if __name__ == "__main__":
    main()
