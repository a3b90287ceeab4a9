#!/usr/bin/env python3
"""Writes onnx/proto/onnx.proto3, the ONNX protobuf schema cxr-onnx generates its types from.

It is made the way ONNX makes its own `onnx.proto3`: the installed onnx wheel's
`gen_proto.py` translates the wheel's `onnx.in.proto` (proto2) to proto3 (the
`optional` labels dropped, `syntax = "proto3"`), not ONNX-ML, lite, package `onnx`,
exactly the options its shipped `onnx.proto` was made with (checked below). A header
says where the file came from and under which license.

Usage (from the repository root): .venv-bench/bin/python onnx/proto/vendor.py
"""

import os
import sys
import tempfile

import onnx
from onnx import gen_proto

HEADER = """\
// Vendored by onnx/proto/vendor.py from the `onnx` Python wheel, version {version}
// (https://pypi.org/project/onnx/{version}/): its onnx.in.proto translated to proto3 by its
// own onnx/gen_proto.py, as ONNX makes onnx/onnx.proto3 (not ONNX-ML, lite, package onnx).
// cxr-onnx generates its Rust types from this file (onnx/build.rs); do not edit it by hand.
//
// Copyright (c) ONNX Project Contributors. Licensed under the Apache License, Version 2.0
// (SPDX-License-Identifier: Apache-2.0; https://www.apache.org/licenses/LICENSE-2.0).

"""


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    wheel = os.path.dirname(os.path.abspath(gen_proto.__file__))
    with tempfile.TemporaryDirectory() as out:
        gen_proto.convert("onnx", package_name="onnx", output=out, do_onnx_ml=False, lite=True)
        with open(os.path.join(out, "onnx.proto"), encoding="utf-8") as f:
            proto2 = f.read()
        with open(os.path.join(wheel, "onnx.proto"), encoding="utf-8") as f:
            if f.read() != proto2:
                sys.exit("the wheel's onnx.proto was not made with these options; check gen_proto.py")
        with open(os.path.join(out, "onnx.proto3"), encoding="utf-8") as f:
            proto3 = f.read()
    target = os.path.join(here, "onnx.proto3")
    with open(target, "w", newline="\n", encoding="utf-8") as f:
        f.write(HEADER.format(version=onnx.__version__))
        f.write(proto3)
        if not proto3.endswith("\n"):
            f.write("\n")
    print(f"wrote {target} from onnx {onnx.__version__}")


if __name__ == "__main__":
    main()
