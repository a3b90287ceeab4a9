"""Decode + resize throughput of OpenCV, single thread, two ways:
- tutorial: cv2.imread (BGR) + split/merge to RGB + cv2.resize (bilinear), as the Keras tutorial;
- dct: cv2.imread(IMREAD_REDUCED_GRAYSCALE_{8|4}) (libjpeg-turbo's DCT-scaled decode) + INTER_AREA.
usage: opencv_decode.py DIR SIZE REPEATS ; prints images/s for both.
"""
import os
import sys
import time

import cv2

cv2.setNumThreads(1)
folder, size, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if not f.startswith("."))
reduced = cv2.IMREAD_REDUCED_GRAYSCALE_8 if size <= 64 else cv2.IMREAD_REDUCED_GRAYSCALE_4


def tutorial(path):
    img = cv2.imread(path)
    b, g, r = cv2.split(img)
    return cv2.resize(cv2.merge([r, g, b]), (size, size))


def dct(path):
    return cv2.resize(cv2.imread(path, reduced), (size, size), interpolation=cv2.INTER_AREA)


for name, fn in [("opencv_tutorial", tutorial), ("opencv_dct", dct)]:
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for p in files:
            fn(p)
        best = max(best, len(files) / (time.perf_counter() - t))
    print(f"{name}_images_per_s={best:.1f}")
