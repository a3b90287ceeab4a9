"""Proxies for a shift of cohort, measured with the real `infer` on perturbed copies of an
experiment's `estimate` images (which nothing was chosen on): exposure (gamma), contrast,
brightness, JPEG re-compression, lost resolution and blur. Prints one markdown row per
perturbation: accuracy, sensitivity, specificity, ROC AUC at the model's own threshold, and
the mean p(positive) of the negatives (how far NORMAL images drift towards PNEUMONIA).

    bench/shift_proxies.py CONFIG [--set KEY=VALUE ...]   (run from the project root)

The perturbed copies go to a temporary folder outside the project and are removed after.
"""
import csv
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np


def perturbations():
    def gamma(g):
        lut = np.array([255 * (i / 255) ** g for i in range(256)]).clip(0, 255).astype(np.uint8)
        return lambda im: cv2.LUT(im, lut)

    def contrast(c):
        return lambda im: np.clip((im.astype(np.float32) - im.mean()) * c + im.mean(), 0, 255).astype(np.uint8)

    def brightness(b):
        return lambda im: np.clip(im.astype(np.int16) + b, 0, 255).astype(np.uint8)

    def jpeg(q):
        return lambda im: cv2.imdecode(cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_UNCHANGED)

    def lowres(f):
        def apply(im):
            h, w = im.shape[:2]
            small = cv2.resize(im, (max(8, w // f), max(8, h // f)), interpolation=cv2.INTER_AREA)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        return apply

    def clahe(im):
        grey = im if im.ndim == 2 else cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
        return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(grey)

    return [
        ("none", lambda im: im),
        ("gamma 0.6 (brighter)", gamma(0.6)),
        ("gamma 1.6 (darker)", gamma(1.6)),
        ("contrast x0.7", contrast(0.7)),
        ("contrast x1.3", contrast(1.3)),
        ("brightness +30", brightness(30)),
        ("JPEG quality 20", jpeg(20)),
        ("resolution /4", lowres(4)),
        ("CLAHE (another vendor's processing)", clahe),
    ]


def auc(scores, positive):
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = np.asarray(scores)[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = np.asarray(positive)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def main():
    config, sets = sys.argv[1], sys.argv[2:]
    exp = subprocess.run(["target/debug/report", "--config", config, *sets, "--print-exp-dir"],
                         check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(exp, "tensors/estimate/manifest.csv")) as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(exp, "tensors/meta.json")) as f:
        import json
        classes = json.load(f)["classes"]
    positive = classes[-1]
    print(f"| perturbation of `{exp}`'s estimate split ({len(rows)} images) | accuracy | sensitivity | specificity | ROC AUC | mean p({positive}) of negatives |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in perturbations():
            folder = os.path.join(tmp, "".join(c if c.isalnum() else "_" for c in name))
            for r in rows:
                im = cv2.imread(r["path"], cv2.IMREAD_UNCHANGED)
                out = os.path.join(folder, r["class"], os.path.basename(r["path"]).rsplit(".", 1)[0] + ".png")
                os.makedirs(os.path.dirname(out), exist_ok=True)
                cv2.imwrite(out, fn(im))
            predictions = folder + ".csv"
            subprocess.run(["target/debug/infer", "--config", config, *sets, "--no-progress", "-q",
                            "--model", os.path.join(exp, "train/model.onnx"), "--out", predictions, folder], check=True)
            with open(predictions) as f:
                p = list(csv.DictReader(f))
            is_pos = np.array([r["label"] == positive for r in p])
            called = np.array([r["predicted"] == positive for r in p])
            score = np.array([float(r["p_" + positive]) for r in p])
            acc = (is_pos == called).mean()
            sens = (called & is_pos).sum() / is_pos.sum()
            spec = (~called & ~is_pos).sum() / (~is_pos).sum()
            print(f"| {name} | {acc:.3f} | {sens:.3f} | {spec:.3f} | {auc(score, is_pos):.3f} | {score[~is_pos].mean():.3f} |", flush=True)


if __name__ == "__main__":
    main()
