#!/usr/bin/env python3
"""Minimal reproduction of an OpenVINO CPU bug: a channel permutation (Gather on axis 1) feeding
a Convolution is computed with the inverse permutation.

Why this file exists: ssc-opt's rewrites emit channel gathers (block-diagonal convs between
permutations, zero filters put back in place). OpenVINO 2026.4 computed such models wrongly
(issue 15: max relative error 0.81 on a filter-pruned ResNet-18), and the differential fuzzer
(tests/conformance/fuzz.py) narrowed it down to this two-node model, ready to report upstream.

The model: y = Conv(Gather(x, indices=[2, 0, 1], axis=1), W), x of shape [1, 3, 4, 4], W of
shape [5, 3, 1, 1]. ONNX Runtime and numpy agree; OpenVINO's result equals the conv of
x[:, argsort([2, 0, 1])], i.e. it applies the inverse permutation. A permutation that is its
own inverse (a reversal such as BGR <-> RGB, a swap) is therefore computed correctly, which
is presumably why this went unnoticed. The pattern that OpenVINO folds this way is
ov::pass::ReverseInputChannelsFusion's (its Gather matcher takes any constant, unique,
full-length indices on a non-negative axis, then the permutation is fused into the conv
weights); as its matcher skips negative axes, the same model with axis=-3 is computed
correctly, and that is the form ssc-opt emits (crates/ssc-rewrite/src/materialize.rs).

Observed with openvino 2026.4.1 (CPU plugin, INFERENCE_PRECISION_HINT=f32), onnxruntime 1.32.0:
  axis=1, indices [2, 0, 1] (not an involution): max rel err 0.91, and 8e-8 against the
                                                 conv of the inversely permuted input  <- the bug
  axis=1, indices [0, 2, 1] (an involution):     ~1e-7
  axis=-3, indices [2, 0, 1]:                    ~1e-7
  grouped / depthwise conv after the gather:     ~1e-7 (not affected)

Run: python docs/openvino_gather_conv.py   (needs numpy, onnx, onnxruntime, openvino)
Exit status 1 when the bug is present, 0 when OpenVINO computes every case right.
"""

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov
from onnx import TensorProto, helper, numpy_helper


def model(indices: list[int], axis: int, group: int = 1) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    c = len(indices)
    w = rng.standard_normal((5 if group == 1 else c, c // group, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["x", "idx"], ["g"], axis=axis),
         helper.make_node("Conv", ["g", "w"], ["y"], group=group)],
        "gather_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, w.shape[0], 4, 4])],
        [numpy_helper.from_array(np.array(indices, np.int64), "idx"), numpy_helper.from_array(w, "w")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def rel_err(want: np.ndarray, got: np.ndarray) -> float:
    return float(np.abs(want - got).max() / np.abs(want).max())


def main() -> int:
    core = ov.Core()
    x = np.random.default_rng(1).standard_normal((1, 3, 4, 4)).astype(np.float32)
    cases = [("axis=1, indices [2, 0, 1]", [2, 0, 1], 1, 1),
             ("axis=1, indices [0, 2, 1] (an involution)", [0, 2, 1], 1, 1),
             ("axis=-3, indices [2, 0, 1]", [2, 0, 1], -3, 1),
             ("axis=1, indices [2, 0, 1], depthwise conv", [2, 0, 1], 1, 3)]
    print(f"openvino {ov.__version__}, onnxruntime {ort.__version__}")
    bad = 0
    for label, idx, axis, group in cases:
        m = model(idx, axis, group)
        ref = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        compiled = core.compile_model(core.read_model(m.SerializeToString(), b""), "CPU",
                                      {"INFERENCE_PRECISION_HINT": "f32"})
        got = np.asarray(compiled({"x": x})[compiled.outputs[0]])
        err = rel_err(ref, got)
        wrong = err > 1e-4
        bad += wrong
        print(f"  {label:<45} OpenVINO vs ONNX Runtime: max rel err {err:.1e}{'  <- WRONG' if wrong else ''}")
        if wrong and group == 1:
            w = numpy_helper.to_array(m.graph.initializer[1])[:, :, 0, 0]
            inv = np.einsum("oi,nihw->nohw", w, x[:, np.argsort(idx)])
            print(f"  {'':<45} OpenVINO vs the inverse permutation:  {rel_err(inv, got):.1e}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
