#!/usr/bin/env python3
"""Minimal reproduction of an OpenVINO CPU crash: a 1x1 Convolution with a bias and an
asymmetric pad on a 1x1 input kills the process (SIGSEGV) at inference.

Why this file exists: the differential fuzzer (tests/conformance/fuzz.py, seed 80 of the session
5 generator) found it. ssc-opt's `kernel-crop` turns a `[1, 2]` kernel with pads
`[0, 1, 0, 1]` whose first column is unused into this valid 1x1 conv with pads `[0, 0, 0, 1]`;
ONNX Runtime and the reference executor compute it, OpenVINO crashes. Ready to report upstream.

The model: y = Conv(x, W, b, kernel_shape=[1, 1], pads=[0, 0, 0, 1]), x of shape [1, 2, 1, 1],
W of shape [1, 2, 1, 1], b of shape [1] (y: [1, 1, 1, 2]). Each case runs in a child process so
a crash is observed, not suffered.

Observed with openvino 2026.4.1 (CPU plugin, INFERENCE_PRECISION_HINT=f32), onnxruntime 1.32.0:
  1x1 input, 1x1 kernel, bias, pads [0, 0, 0, 1]:   crash (exit -11)  <- the bug
  the same without the bias:                        ok
  the same with pads [0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0] or none: ok
  3x3 input, or a [1, 2] kernel with pads [0, 1, 0, 1]:                ok

The same crash in 1-D (the long fuzz run, seed 5396): y = Conv(x[1, 1, L], W[1, 1, 1], b) with
pads [p0, p1] crashes when p1 - p0 is L - 1 or L (L = 4: pads [0, 3], [0, 4], [1, 4], [1, 5]);
with 15 input channels it crashes at p1 - p0 = L + k - 1 for kernels k = 1, 2, 3 too, so the
region is wider than one-tap kernels and not characterised further. kernel-crop can produce
such convs from ones OpenVINO runs (k = 3, dilation 3, pads [3, 5] on L = 3 -> k = 1, pads
[0, 2]); ssc-opt does not avoid this yet.

Run: python docs/openvino_conv1x1_pad_crash.py   (needs numpy, onnx, onnxruntime, openvino)
Exit status 1 when the crash is present, 0 when OpenVINO computes every case like ORT.
"""

import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CASES = [
    # (input HxW, kernel, pads, bias)
    ((1, 1), [1, 1], [0, 0, 0, 1], True),
    ((1, 1), [1, 1], [0, 0, 0, 1], False),
    ((1, 1), [1, 1], [0, 0, 1, 0], True),
    ((3, 3), [1, 1], [0, 0, 0, 1], True),
    ((1, 1), [1, 2], [0, 1, 0, 1], True),
]

CHILD = r"""
import sys, numpy as np, onnxruntime as ort, openvino as ov
path = sys.argv[1]
x = np.random.default_rng(0).normal(size=tuple(int(d) for d in sys.argv[2].split(","))).astype(np.float32)
ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
core = ov.Core()
got = core.compile_model(core.read_model(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})([x])[0]
err = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-3))
print(f"{err:.1e}")
sys.exit(0 if err <= 1e-4 else 1)
"""


def model(hw, k, pads, bias) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(size=(1, 2, *k)).astype(np.float32), "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(np.array([0.5], np.float32), "b"))
        inputs.append("b")
    node = helper.make_node("Conv", inputs, ["y"], kernel_shape=k, pads=pads)
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, *hw])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def main() -> int:
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        for i, (hw, k, pads, bias) in enumerate(CASES):
            path = f"{d}/case{i}.onnx"
            onnx.save(model(hw, k, pads, bias), path)
            r = subprocess.run([sys.executable, "-c", CHILD, path, f"1,2,{hw[0]},{hw[1]}"],
                               capture_output=True, text=True)
            what = r.stdout.strip() if r.returncode >= 0 else f"crash (exit {r.returncode})"
            ok = r.returncode == 0
            bad += not ok
            print(f"input {hw} kernel {k} pads {pads} bias {bias}: {'ok' if ok else 'FAIL'} {what}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
