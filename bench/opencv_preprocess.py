"""The whole-process peer of `preprocess` on one core: OpenCV's DCT-scaled decode + INTER_AREA
resize of every file in DIR to SIZE x SIZE, stacked and saved as one .npy (as preprocess
writes its tensors). Timed from outside, start-up included. usage: opencv_preprocess.py DIR SIZE OUT.npy"""
import os
import sys

import cv2
import numpy as np

cv2.setNumThreads(1)
folder, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if not f.startswith("."))
reduced = cv2.IMREAD_REDUCED_GRAYSCALE_8 if size <= 64 else cv2.IMREAD_REDUCED_GRAYSCALE_4
np.save(out, np.stack([cv2.resize(cv2.imread(p, reduced), (size, size), interpolation=cv2.INTER_AREA) for p in files]))
