#!/usr/bin/env python3
"""Generate small models in the forms deployment toolchains export, for tests/models/deploy/.

Why this exists: exported models users bring are not all float CNNs. onnxruntime's quantisers
write QDQ models (QuantizeLinear/DequantizeLinear around float ops) and QOperator models
(QLinearConv, ConvInteger, MatMulInteger with DynamicQuantizeLinear); OCR recognisers are
CRNNs with a bidirectional LSTM. ssc-opt must round-trip them, clean them up without touching
their quantisation, verify them and run them under both engines. These fixtures hold that.

Models (input ``input``, output ``output``, opset 13, ir 8):
    qdq_convnet.onnx      QDQ: int8 per-channel conv weights, a residual, a block-diagonal
                          conv weight the rewriter must leave alone (it sits behind a
                          DequantizeLinear), a quantised Gemm.
    qop_convnet.onnx      QOperator: QuantizeLinear, QLinearConv (per-channel int8 weights,
                          int32 bias), a grouped QLinearConv, QLinearMatMul, DequantizeLinear.
    dynamic_quant.onnx    onnxruntime's dynamic quantisation: DynamicQuantizeLinear,
                          ConvInteger, MatMulInteger, Cast and the scale Muls.
    crnn_lstm.onnx        a CRNN recogniser: conv, pool, a bidirectional LSTM over the width,
                          a classifier and Softmax.

Scales are powers of two and every float value on the quantised path is a small multiple of
one, so each sum and product is exact in f32: onnxruntime, the reference executor and the JIT
compute bit-identical quantised values (any difference is then a bug, not a rounding that a
requantisation amplifies). Value types come from ONNX shape inference, so ssc-opt's inference
is checked against it. Deterministic: fixed seeds, deterministic serialisation.

Usage: python scripts/make_deploy_models.py [--out tests/models/deploy] [--no-check]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCER = "ssc-opt scripts/make_deploy_models.py"


class Graph:
    """Collects nodes and initializers; names are unique by construction."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def init(self, base: str, arr: np.ndarray) -> str:
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(arr, n))
        return n

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs) -> list[str]:
        outs = [self.name(f"{op_type.lower()}_out") for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs))
        return outs

    def op1(self, op_type: str, inputs: list[str], **attrs) -> str:
        return self.op(op_type, inputs, 1, **attrs)[0]

    def int8(self, *shape: int, lo: int = -127, hi: int = 128) -> np.ndarray:
        return self.rng.integers(lo, hi, shape).astype(np.int8)

    def finish(self, name: str, x_shape: list[int], out: str, doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, x_shape)],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
            self.inits,
        )
        fix_output_name(graph, out)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name=PRODUCER)
        model.ir_version = 8
        model.doc_string = doc
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
        return model


def fix_output_name(graph: onnx.GraphProto, out: str) -> None:
    """Renames value `out` to `output` everywhere (the last node wrote it)."""
    for node in graph.node:
        for i, v in enumerate(node.input):
            if v == out:
                node.input[i] = "output"
        for i, v in enumerate(node.output):
            if v == out:
                node.output[i] = "output"


def po2(g: Graph, n: int, lo: int, hi: int) -> np.ndarray:
    """`n` power-of-two scales 2^-k for k in [lo, hi]."""
    return (2.0 ** -g.rng.integers(lo, hi + 1, n)).astype(np.float32)


def qdq_convnet() -> onnx.ModelProto:
    g = Graph(1)
    x_s, x_z = g.init("x_scale", np.float32(2**-4)), g.init("x_zp", np.int8(0))
    a_s, a_z = g.init("act_scale", np.float32(2**-3)), g.init("act_zp", np.uint8(0))

    def qdq(v: str, s: str, z: str) -> str:
        return g.op1("DequantizeLinear", [g.op1("QuantizeLinear", [v, s, z]), s, z])

    def weight(w: np.ndarray, scales: np.ndarray) -> str:
        axis = {"axis": 0} if scales.size > 1 else {}
        z = np.zeros(scales.shape, np.int8)
        return g.op1("DequantizeLinear", [g.init("w_q", w), g.init("w_scale", scales), g.init("w_zp", z)], **axis)

    def bias(unit: np.ndarray, n: int) -> str:
        return g.init("bias", (g.rng.integers(-64, 64, n) * unit).astype(np.float32))

    x = qdq("input", x_s, x_z)
    s1 = po2(g, 8, 6, 7)
    y = g.op1("Conv", [x, weight(g.int8(8, 4, 3, 3), s1), bias(s1 * 2**-4, 8)], pads=[1, 1, 1, 1])
    r = qdq(g.op1("Relu", [y]), a_s, a_z)
    # Two diagonal blocks of four channels: a grouped conv in disguise.
    w2 = g.int8(8, 8, 3, 3)
    w2[:4, 4:] = 0
    w2[4:, :4] = 0
    s2 = np.array([2**-6], np.float32)
    y2 = g.op1("Conv", [r, weight(w2, s2), bias(s2 * 2**-3, 8)], pads=[1, 1, 1, 1])
    y2 = qdq(g.op1("Relu", [g.op1("Add", [y2, r])]), a_s, a_z)
    p = g.op1("Flatten", [g.op1("GlobalAveragePool", [y2])])
    s3 = np.array([2**-5], np.float32)
    out = g.op1("Gemm", [p, weight(g.int8(10, 8), s3), bias(s3 * 2**-9, 10)], transB=1)
    return g.finish("qdq_convnet", [1, 4, 8, 8], out, "QDQ conv net (onnxruntime's static QDQ form)")


def qop_convnet() -> onnx.ModelProto:
    g = Graph(2)

    def scalar(base: str, v, dt) -> str:
        return g.init(base, np.array(v, dt))

    x_s, x_z = scalar("x_scale", 2**-4, np.float32), scalar("x_zp", 128, np.uint8)
    q = g.op1("QuantizeLinear", ["input", x_s, x_z])
    s1 = po2(g, 8, 6, 7)
    y_s, y_z = scalar("y_scale", 2**-2, np.float32), scalar("y_zp", 100, np.uint8)
    b1 = g.init("bias", g.rng.integers(-500, 500, 8).astype(np.int32))
    c1 = g.op1(
        "QLinearConv",
        [q, x_s, x_z, g.init("w_q", g.int8(8, 4, 3, 3)), g.init("w_scale", s1), g.init("w_zp", np.zeros(8, np.int8)), y_s, y_z, b1],
        pads=[1, 1, 1, 1],
    )
    # A grouped (two groups) strided conv on the quantised activations.
    s2 = g.init("w_scale", np.array(2**-6, np.float32))
    y2_s, y2_z = scalar("y_scale", 2**-2, np.float32), scalar("y_zp", 128, np.uint8)
    c2 = g.op1(
        "QLinearConv",
        [c1, y_s, y_z, g.init("w_q", g.int8(8, 4, 3, 3)), s2, scalar("w_zp", 0, np.int8), y2_s, y2_z],
        pads=[1, 1, 1, 1],
        strides=[2, 2],
        group=2,
    )
    flat = g.op1("Reshape", [c2, g.init("shape", np.array([8, 16], np.int64))])
    y3_s, y3_z = scalar("y_scale", 2**-1, np.float32), scalar("y_zp", 128, np.uint8)
    mm = g.op1(
        "QLinearMatMul",
        [flat, y2_s, y2_z, g.init("w_q", g.int8(16, 5)), scalar("w_scale", 2**-7, np.float32), scalar("w_zp", 0, np.int8), y3_s, y3_z],
    )
    out = g.op1("DequantizeLinear", [mm, y3_s, y3_z])
    return g.finish("qop_convnet", [1, 4, 8, 8], out, "QOperator conv net (QLinearConv, QLinearMatMul)")


def dynamic_quant() -> onnx.ModelProto:
    g = Graph(3)
    q, qs, qz = g.op("DynamicQuantizeLinear", ["input"], 3)
    w = g.rng.integers(0, 256, (6, 3, 3, 3)).astype(np.uint8)
    w_s = np.float32(2**-7)
    ci = g.op1("ConvInteger", [q, g.init("w_q", w), qz, g.init("w_zp", np.uint8(128))], pads=[1, 1, 1, 1])
    scale = g.op1("Mul", [qs, g.init("w_scale", w_s)])
    y = g.op1("Mul", [g.op1("Cast", [ci], to=TensorProto.FLOAT), scale])
    y = g.op1("Relu", [g.op1("Add", [y, g.init("bias", g.rng.standard_normal((1, 6, 1, 1)).astype(np.float32))])])
    flat = g.op1("Flatten", [y])
    q2, q2s, q2z = g.op("DynamicQuantizeLinear", [flat], 3)
    w2 = g.rng.integers(0, 256, (6 * 6 * 6, 4)).astype(np.uint8)
    mi = g.op1("MatMulInteger", [q2, g.init("w_q", w2), q2z, g.init("w_zp", np.uint8(128))])
    scale2 = g.op1("Mul", [q2s, g.init("w_scale", np.float32(2**-8))])
    out = g.op1("Mul", [g.op1("Cast", [mi], to=TensorProto.FLOAT), scale2])
    return g.finish("dynamic_quant", [1, 3, 6, 6], out, "onnxruntime dynamic quantisation (ConvInteger, MatMulInteger)")


def crnn_lstm() -> onnx.ModelProto:
    g = Graph(4)
    r = g.rng
    c, hid, classes = 8, 16, 11
    y = g.op1("Conv", ["input", g.init("w", (r.standard_normal((c, 1, 3, 3)) * 0.5).astype(np.float32)),
                       g.init("b", (r.standard_normal(c) * 0.1).astype(np.float32))], pads=[1, 1, 1, 1])
    y = g.op1("MaxPool", [g.op1("Relu", [y])], kernel_shape=[2, 2], strides=[2, 2])
    # [1, 8, 4, 16] -> [16 (width = time), 1, 32 (channels x height)].
    t = g.op1("Transpose", [y], perm=[3, 0, 1, 2])
    seq = g.op1("Reshape", [t, g.init("shape", np.array([16, 1, c * 4], np.int64))])
    w = (r.standard_normal((2, 4 * hid, c * 4)) * 0.3).astype(np.float32)
    rr = (r.standard_normal((2, 4 * hid, hid)) * 0.3).astype(np.float32)
    b = (r.standard_normal((2, 8 * hid)) * 0.1).astype(np.float32)
    ys, _, _ = g.op("LSTM", [seq, g.init("W", w), g.init("R", rr), g.init("B", b)], 3,
                    direction="bidirectional", hidden_size=hid)
    # [16, 2, 1, 16] -> [16, 1, 32] -> logits [16, 1, classes].
    f = g.op1("Reshape", [g.op1("Transpose", [ys], perm=[0, 2, 1, 3]), g.init("shape", np.array([16, 1, 2 * hid], np.int64))])
    logits = g.op1("Add", [g.op1("MatMul", [f, g.init("fc", (r.standard_normal((2 * hid, classes)) * 0.3).astype(np.float32))]),
                           g.init("fc_b", np.zeros(classes, np.float32))])
    out = g.op1("Softmax", [logits], axis=2)
    return g.finish("crnn_lstm", [1, 1, 8, 32], out, "CRNN text recogniser with a bidirectional LSTM")


MODELS = {
    "qdq_convnet": qdq_convnet,
    "qop_convnet": qop_convnet,
    "dynamic_quant": dynamic_quant,
    "crnn_lstm": crnn_lstm,
}


def check(paths: dict[str, str]) -> bool:
    """Each model runs in onnxruntime with finite, non-constant outputs."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ok = True
    for name, path in paths.items():
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        shape = sess.get_inputs()[0].shape
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        y = sess.run(None, {"input": x})[0]
        good = bool(np.all(np.isfinite(y))) and float(np.std(y)) > 0
        ok &= good
        print(f"  {name:16s} out{list(y.shape)} std={y.std():.4f} {'OK' if good else 'BAD'}", file=sys.stderr)
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "models", "deploy"))
    ap.add_argument("--no-check", dest="check", action="store_false", default=True)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    written = {}
    for name, build in MODELS.items():
        data = build().SerializeToString(deterministic=True)
        path = os.path.join(args.out, f"{name}.onnx")
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        written[name] = path
        print(f"{path}: {len(data):,} bytes")
    if args.check and not check(written):
        print("error: model sanity check failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
