"""The site-adaptation proxy: the unseen acquisition family of bench/family_proxy.py as a new
site. From the family proxy's label file, takes the `test` rows (the unseen NORMAL2-IM-*
normals and the held-out pneumonia patients) and writes a site label file for the csv adapter:
a seeded, patient-grouped sample of about N images as the labelled local sample (`train`) and
every other image of the site as its `test` split.

    bench/adapt_proxy.py FAMILY.csv OUT.csv N [SEED]
"""
import csv
import random
import sys

from family_proxy import patient


def main():
    family, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    with open(family, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    by_patient = {}
    for r in rows:
        by_patient.setdefault((r["label"], patient(r["path"].split("/")[-1])), []).append(r)
    # Patients in a seeded order, classes interleaved in proportion, so that any prefix has
    # the site's mix of NORMAL and PNEUMONIA.
    strata = {}
    for key in sorted(by_patient):
        strata.setdefault(key[0], []).append(key)
    rng = random.Random(seed)
    for keys in strata.values():
        rng.shuffle(keys)
    order, taken = [], {c: 0 for c in strata}
    while len(order) < len(by_patient):
        c = min((c for c in strata if taken[c] < len(strata[c])), key=lambda c: (taken[c] + 0.5) / len(strata[c]))
        order.append(strata[c][taken[c]])
        taken[c] += 1
    local = set()
    count = 0
    for key in order:
        if count >= n:
            break
        local.add(key)
        count += len(by_patient[key])
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split"])
        for key in sorted(by_patient):
            for r in by_patient[key]:
                w.writerow([r["path"], r["label"], "train" if key in local else "test"])
    print(f"{count} local images of {len(local)} patients, {len(rows) - count} test images", file=sys.stderr)


if __name__ == "__main__":
    main()
