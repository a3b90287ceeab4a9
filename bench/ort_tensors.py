"""Python onnxruntime running model.onnx on already-decoded tensors (images.npy), the same
batch size and thread count as `infer`. usage: ort_tensors.py MODEL IMAGES_NPY BATCH THREADS REPEATS [WARM_UP]
(WARM_UP 0: no warm-up batch, for timing the whole process from outside)"""
import sys
import time

import numpy as np
import onnxruntime as ort

model, images, batch, threads, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
x = np.load(images)
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
if len(sys.argv) <= 6 or sys.argv[6] != "0":
    session.run(None, {"image": x[:batch]})  # warm-up, as infer's first batch pays session start
best = 0.0
for _ in range(repeats):
    t = time.perf_counter()
    for i in range(0, len(x), batch):
        session.run(None, {"image": x[i:i + batch]})
    best = max(best, len(x) / (time.perf_counter() - t))
print(f"python_ort_images_per_s={best:.1f}")
