"""A proxy for a shift of acquisition family in the Kermany training data: NORMAL images are
named `IM-*` or `NORMAL2-IM-*` (two acquisition batches). Writes a label file that trains on
one family's normals (plus 85% of the pneumonia patients) and puts the other family's normals
(plus the other 15% of pneumonia patients) into a `test` split, for the csv adapter. Run the
pipeline on it and compare the test split's specificity (an unseen family) with the estimate
split's (the seen one).

    bench/family_proxy.py ROOT OUT.csv [train-family: IM | NORMAL2]
"""
import csv
import hashlib
import os
import sys


def patient(name):
    stem = name.rsplit(".", 1)[0]
    if stem.startswith("person"):
        return stem.split("_")[0]
    for prefix in ("NORMAL2-IM-", "IM-"):
        if stem.startswith(prefix):
            return prefix + stem[len(prefix):].split("-")[0]
    return stem


def main():
    root, out = sys.argv[1], sys.argv[2]
    train_family = sys.argv[3] if len(sys.argv) > 3 else "IM"
    rows = []
    for cls in ("NORMAL", "PNEUMONIA"):
        for name in sorted(os.listdir(os.path.join(root, cls))):
            if cls == "NORMAL":
                family = "NORMAL2" if name.startswith("NORMAL2-") else "IM"
                split = "train" if family == train_family else "test"
            else:
                h = int(hashlib.sha256(patient(name).encode()).hexdigest(), 16) % 100
                split = "train" if h >= 15 else "test"
            rows.append((f"{cls}/{name}", cls, split))
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split"])
        w.writerows(rows)
    counts = {}
    for _, cls, split in rows:
        counts[(split, cls)] = counts.get((split, cls), 0) + 1
    print(counts, file=sys.stderr)


if __name__ == "__main__":
    main()
