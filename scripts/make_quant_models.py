#!/usr/bin/env python3
# Why this exists: the JIT's integer kernels (issue 16: DynamicQuantizeLinear, ConvInteger,
# MatMulInteger, DynamicQuantizeLSTM) need small dynamically quantised models to be checked
# against the reference executor. This writes them the way users get them: a float model
# quantised by onnxruntime.quantization.quantize_dynamic, with near-miss shapes (odd channels,
# odd reductions, strides, asymmetric pads, a bidirectional LSTM, a MatMul with a column tail),
# once with uint8 weights and once with int8. Seeded: the same files every run.
#
#   .venv/bin/python scripts/make_quant_models.py   # writes tests/models/quant/*.onnx
import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "tests", "models", "quant")


def init(rng, name, shape, scale=0.5):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def conv_net(rng):
    """Conv 3 -> 5 (3x3, pad 1), Relu, Conv 5 -> 7 (3x3, stride 2, pads 0/1/1/0), Conv 1x1 7 -> 9,
    a residual-free SiLU as exporters write it, global pool, Gemm to 11 classes."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0]),
        helper.make_node("Conv", ["c2", "w3", "b3"], ["c3"], kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", ["c3"], ["s3"]),
        helper.make_node("Mul", ["c3", "s3"], ["a3"]),
        helper.make_node("GlobalAveragePool", ["a3"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "wf"], ["mm"]),
        helper.make_node("Add", ["mm", "bf"], ["y"]),
    ]
    inits = [
        init(rng, "w1", [5, 3, 3, 3]), init(rng, "b1", [5]),
        init(rng, "w2", [7, 5, 3, 3]), init(rng, "b2", [7]),
        init(rng, "w3", [9, 7, 1, 1]), init(rng, "b3", [9]),
        init(rng, "wf", [9, 11]), init(rng, "bf", [11]),
    ]
    g = helper.make_graph(
        nodes, "qconv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 17, 23])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 11])],
        inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def lstm_net(rng):
    """A bidirectional LSTM (13 inputs, 9 hidden, 6 steps) and a MatMul to 67 columns, as a CRNN
    head is written."""
    t, i, h, n = 6, 13, 9, 67
    nodes = [
        helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y", "", ""], hidden_size=h, direction="bidirectional"),
        helper.make_node("Transpose", ["Y"], ["Yt"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["Yt", "shape"], ["Yr"]),
        helper.make_node("MatMul", ["Yr", "wf"], ["y"]),
    ]
    inits = [
        init(rng, "W", [2, 4 * h, i], 0.3), init(rng, "R", [2, 4 * h, h], 0.3),
        init(rng, "B", [2, 8 * h], 0.1), init(rng, "wf", [2 * h, n]),
        numpy_helper.from_array(np.array([t, 2 * h], dtype=np.int64), "shape"),
    ]
    g = helper.make_graph(
        nodes, "qlstm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [t, 1, i])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [t, n])],
        inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(16)
    for name, make in [("conv", conv_net), ("lstm", lstm_net)]:
        m = make(rng)
        for wname, wt in [("u8", QuantType.QUInt8), ("s8", QuantType.QInt8)]:
            with tempfile.TemporaryDirectory() as d:
                src = os.path.join(d, "f.onnx")
                onnx.save(m, src)
                dst = os.path.join(OUT, f"{name}_{wname}.onnx")
                quantize_dynamic(src, dst, weight_type=wt)
            q = onnx.load(dst)
            ops = sorted({nd.op_type for nd in q.graph.node})
            print(dst, os.path.getsize(dst), ops)


if __name__ == "__main__":
    main()
