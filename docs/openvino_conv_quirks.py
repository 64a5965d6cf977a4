#!/usr/bin/env python3
"""Minimal reproduction of an OpenVINO CPU bug in plain ONNX `Conv` nodes (a stride on an axis
that holds one window), found by ssc-opt's differential fuzzer (tests/conformance/fuzz.py,
`scripts/fuzz_long.sh`), ready to report upstream. Its crash on padded one-tap convs with a bias
has its own reproduction, docs/openvino_conv1x1_pad_crash.py.

Why this file exists: ssc-opt's outputs must compute the same in OpenVINO as the original in
ONNX Runtime (issue 15). This bug also hits models nobody rewrote:

The bug: `y = Conv(x[1, 1, 6, 3],
W[8, 1, 3, 3], strides = [1, 2])`: the output is `[1, 8, 4, 1]`, one column, which the
stride cannot change; OpenVINO computes some rows wrong (max relative error ~1). With
`strides = [1, 1]` (the same function) it is right, so ssc-opt's clean-up
`unit_window_strides` (crates/ssc-passes/src/passes/unit_window_strides.rs) writes that.
When the one window leaves an input column unread (x[1, 1, 6, 4], same W, stride 2), no
exact stride-1 form exists and OpenVINO is wrong on the user's graph as much as on ssc-opt's
output; the fuzzer lists such graphs as OpenVINO's bug (`ov-wrong-on-original`).

Observed with openvino 2026.4.1 (CPU plugin, INFERENCE_PRECISION_HINT=f32), onnxruntime 1.32.0.

Run: python docs/openvino_conv_quirks.py   (needs numpy, onnx, onnxruntime, openvino)
Exit status 1 when the bug is present, 0 when OpenVINO gets every case right.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper


def conv_model(x_shape, w, bias, **attrs):
    inits = [onnx.numpy_helper.from_array(w, "w")]
    ins = ["x", "w"]
    if bias is not None:
        inits.append(onnx.numpy_helper.from_array(bias, "b"))
        ins.append("b")
    g = helper.make_graph([helper.make_node("Conv", ins, ["y"], **attrs)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def run_ov(path, x):
    import openvino as ov
    c = ov.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return c([x])[0]


def child(path, npy):
    """Runs one model in OpenVINO in this (child) process: a crash kills only the child."""
    np.save(npy + ".out.npy", run_ov(path, np.load(npy)))


def case(tmp, name, model, x):
    """(ORT's output, OpenVINO's output or None when OpenVINO's process died)."""
    import onnxruntime as ort
    path = os.path.join(tmp, name + ".onnx")
    onnx.save(model, path)
    npy = os.path.join(tmp, name + ".x.npy")
    np.save(npy, x)
    want = ort.InferenceSession(path).run(None, {"x": x})[0]
    p = subprocess.run([sys.executable, __file__, "--child", path, npy], capture_output=True)
    got = np.load(npy + ".out.npy") if p.returncode == 0 else None
    return want, got, p.returncode


def main():
    rng = np.random.default_rng(0)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        print("stride 2 on an axis with one window: x[1, 1, 6, 3], W[8, 1, 3, 3]")
        x = rng.standard_normal((1, 1, 6, 3)).astype(np.float32)
        w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
        for strides in ([1, 2], [1, 1]):
            m = conv_model([1, 1, 6, 3], w, None, kernel_shape=[3, 3], strides=strides)
            want, got, rc = case(tmp, f"c2_{strides[1]}", m, x)
            err = (np.abs(got - want).max() / np.abs(want).max()) if got is not None else np.inf
            ok = err <= 1e-5
            bad += not ok
            print(f"   strides {strides}: max rel err {err:.2e} {'ok' if ok else 'WRONG'}")
    print("OpenVINO bug present" if bad else "OpenVINO computes every case right")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        sys.exit(0)
    sys.exit(main())
