"""The project's int8 model against ONNX Runtime's own static quantization of the same VGG16
weights, timed in one Python loop on the same images (issue: int8 at ONNX Runtime's ceiling).

For each image size: the project's float32 and int8 `model.onnx` (uint8 NHWC in: preprocessing,
backbone, pooling, head), and ONNX Runtime's float32 backbone (`.ort/models/vgg16_imagenet_notop.onnx`,
float NCHW in) and its `quantize_static` QDQ (per-channel int8 weights, uint8 activations, MinMax on
64 training images), with the op counts of each after ONNX Runtime's own graph optimisation.

usage: bench/int8_vs_ort.py SIZE FP32_MODEL INT8_MODEL [OUT.json]
  (.venv-bench/bin/python; models from `make experiment ... model.precision=fp32|int8`)
"""
import collections, json, os, sys, tempfile, time
from pathlib import Path

import cv2, numpy as np, onnx, onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

size, fp32_model, int8_model = int(sys.argv[1]), sys.argv[2], sys.argv[3]
out = sys.argv[4] if len(sys.argv) > 4 else None
backbone = ".ort/models/vgg16_imagenet_notop.onnx"
files = sorted(Path("../shared/data/chest_xray_224/train").rglob("*.jpeg"))
rng = np.random.default_rng(0)
pick = [files[i] for i in rng.choice(len(files), 160, replace=False)]


def images(fs):
    return np.stack([cv2.resize(cv2.imread(str(f)), (size, size), interpolation=cv2.INTER_AREA) for f in fs])


def caffe_nchw(u8):  # what the project's graph computes before the backbone: BGR, ImageNet means
    return (u8.astype(np.float32) - np.array([103.939, 116.779, 123.68], np.float32)).transpose(0, 3, 1, 2).copy()


ort_int8 = os.path.join(tempfile.gettempdir(), f"ort_qdq_vgg16_{size}.onnx")
if not os.path.exists(ort_int8):
    input_name = onnx.load(backbone).graph.input[0].name
    calibration = [{input_name: caffe_nchw(images(pick[i:i + 8]))} for i in range(0, 64, 8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration)

        def get_next(self):
            return next(self.batches, None)

    quantize_static(backbone, ort_int8, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)



def restated_for_amx(path, label):
    """The int8 model as cxr's engine gives it to the CPU provider on a CPU with AMX: each
    symmetric int8 conv weight as q - 1 with zero point -1, on the conditions of
    cxr_onnx::offset_symmetric_conv_weights (a rank-4 int8 weight in [-127, 127] and an all-zero
    int8 zero point, each read by this DequantizeLinear only, whose output feeds Conv weights
    only). ONNX Runtime then runs the convolutions on its AMX GEMM, not its symmetric VNNI kernel."""
    from onnx import numpy_helper
    m = onnx.load(path)
    inits = {t.name: t for t in m.graph.initializer}
    readers = collections.Counter(name for node in m.graph.node for name in set(node.input))
    readers.update(o.name for o in m.graph.output)
    readers.update(i.name for i in m.graph.input)
    consumers = collections.defaultdict(list)
    for node in m.graph.node:
        for position, name in enumerate(node.input):
            consumers[name].append((node.op_type, position))
    for node in m.graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) < 3 or node.input[0] not in inits or node.input[2] not in inits:
            continue
        w_name, z_name = node.input[0], node.input[2]
        w, z = numpy_helper.to_array(inits[w_name]), numpy_helper.to_array(inits[z_name])
        feeds = consumers[node.output[0]]
        if (w.dtype == np.int8 and w.ndim == 4 and w.min() > -128 and z.dtype == np.int8 and not z.any()
                and readers[w_name] == 1 and readers[z_name] == 1 and feeds
                and readers[node.output[0]] == len(feeds) and all(f == ("Conv", 1) for f in feeds)):
            inits[w_name].CopyFrom(numpy_helper.from_array((w - 1).astype(np.int8), w_name))
            inits[z_name].CopyFrom(numpy_helper.from_array(np.full_like(z, -1), z_name))
    restated = os.path.join(tempfile.gettempdir(), f"int8_amx_{label}_{size}.onnx")
    onnx.save(m, restated)
    return restated


n = 96 if size <= 64 else 32
u8 = images(pick[64:64 + n])
models = {"project fp32": fp32_model, "project int8": int8_model, "ORT fp32": backbone, "ORT int8": ort_int8}
flags = open("/proc/cpuinfo").read().split()
amx = "amx_int8" in flags and "amx_tile" in flags
if amx:  # both int8 models as cxr's engine would run them on this CPU
    models["project int8 AMX"] = restated_for_amx(int8_model, "project")
    models["ORT int8 AMX"] = restated_for_amx(ort_int8, "ort")
so = ort.SessionOptions()
so.intra_op_num_threads = os.cpu_count()
sessions, feeds, ops = {}, {}, {}
for label, path in models.items():
    opt = ort.SessionOptions()
    opt.intra_op_num_threads = os.cpu_count()
    opt.optimized_model_filepath = os.path.join(tempfile.gettempdir(), "optimized.onnx")
    ort.InferenceSession(path, opt, providers=["CPUExecutionProvider"])
    ops[label] = dict(collections.Counter(node.op_type for node in onnx.load(opt.optimized_model_filepath).graph.node))
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    feeds[label] = {i.name: u8 if i.type == "tensor(uint8)" else caffe_nchw(u8)}
    s.run(None, feeds[label])
    sessions[label] = s
best = {k: float("inf") for k in sessions}
for _ in range(5):  # alternating, best of 5
    for label, s in sessions.items():
        t = time.perf_counter()
        s.run(None, feeds[label])
        best[label] = min(best[label], time.perf_counter() - t)
result = {
    "size": size, "images": n,
    "images_per_s": {k: n / v for k, v in best.items()},
    "project_int8_over_fp32": best["project fp32"] / best["project int8"],
    "ort_int8_over_fp32": best["ORT fp32"] / best["ORT int8"],
    "project_int8_over_ort_int8": best["ORT int8"] / best["project int8"],
    "amx": amx,
    "ops_after_optimisation": ops,
}
if amx:
    result["project_int8_amx_over_fp32"] = best["project fp32"] / best["project int8 AMX"]
    result["project_int8_amx_over_ort_int8"] = best["ORT int8"] / best["project int8 AMX"]
    result["project_int8_amx_over_ort_int8_amx"] = best["ORT int8 AMX"] / best["project int8 AMX"]
print(json.dumps(result, indent=1))
if out:
    Path(out).write_text(json.dumps(result, indent=1))
