#!/usr/bin/env python3
"""Generate the example model(s) shipped in examples/.

Why this exists: the README and the CLI docs need a small model a user can
run ssc-opt on right after cloning, and that shows off what the default
optimising mode cleans up. ``examples/tiny_resnet.onnx`` is a tiny ResNet-ish
CNN in the shape an exporter produces, with typical export debris sprinkled
in:
  * Conv -> BatchNormalization -> Relu blocks (BN to fold), one residual Add
    with an identity shortcut and one with a 1x1 downsample Conv+BN shortcut;
  * Identity nodes (one on the graph output path), an inference-mode Dropout
    whose ratio comes from a Constant node;
  * Constant nodes: a flatten shape stored as an int32 Constant followed by a
    Cast to int64 (constant-foldable), and two identical Constant scalars
    (common-subexpression candidates) feeding a Mul/Add pair that is an exact
    no-op (x * 1 + 0);
  * dead code: a Constant and a Relu whose outputs nothing uses, and an
    initializer that no node reads;
  * and structure in the weights of its four 3x3 convs, so the first command a
    newcomer runs shows the rewriter at work (per layer with --report text):
    layer1.conv1 has constant kernels (MSWU-style unified weights: sum-pool
    then 1x1), layer1.conv2 and layer2.conv1 have '+'-shaped kernels (corner
    taps pruned: a 3x1 plus a 1x3 conv), layer2.conv2 is block-diagonal over
    4 channel groups (a grouped conv). BN folding scales each output channel,
    which keeps every one of these patterns.

Deterministic (fixed seed, deterministic serialisation), opset 17, ir 8,
< 200 KB. Input ``input`` float32 [1,3,32,32], output ``output`` [1,10].

Usage: python scripts/make_examples.py [--out examples]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import REPO, Builder, serialize  # noqa: E402


def constant(b: Builder, name: str, arr: np.ndarray) -> str:
    out = f"{name}_output_0"
    b.nodes.append(
        helper.make_node("Constant", [], [out], name=name, value=numpy_helper.from_array(arr))
    )
    b.shape[out] = tuple(arr.shape)
    return out


def structure(b: Builder) -> None:
    """Gives the 3x3 convs of the residual blocks the weight structure the docstring lists."""
    for i, t in enumerate(b.inits):
        w = numpy_helper.to_array(t)
        if w.ndim != 4 or not t.name.startswith("layer"):
            continue
        co, ci = w.shape[:2]
        if t.name == "layer1.conv1.weight":
            w = np.broadcast_to(w.mean(axis=(2, 3), keepdims=True), w.shape)
        elif t.name in ("layer1.conv2.weight", "layer2.conv1.weight"):
            w = w.copy()
            w[:, :, [0, 0, 2, 2], [0, 2, 0, 2]] = 0.0
        elif t.name == "layer2.conv2.weight":
            blocks = (np.arange(co)[:, None] // (co // 4)) == (np.arange(ci)[None, :] // (ci // 4))
            w = np.where(blocks[:, :, None, None], w, 0.0)
        else:
            continue
        b.inits[i] = numpy_helper.from_array(np.ascontiguousarray(w, dtype=np.float32), t.name)


def tiny_resnet() -> bytes:
    b = Builder("tiny_resnet", "bn", seed=20240601, hw=32)
    x = b.conv_bn("input", "/stem/conv", "/stem/bn", 16, 3, act_path="/stem/relu")

    # Block 1: identity shortcut; an Identity node sits on the shortcut.
    sc = b.node("Identity", [x], "/layer1/shortcut", b.shape[x])
    y = b.conv_bn(x, "/layer1/conv1", "/layer1/bn1", 16, 3, act_path="/layer1/relu1")
    y = b.conv_bn(y, "/layer1/conv2", "/layer1/bn2", 16, 3, act=None, gamma_scale=0.25)
    x = b.act(b.add(y, sc, "/layer1"), "/layer1/relu2", "relu")

    # Dead code: a Relu nobody reads and a Constant nobody reads.
    b.node("Relu", [x], "/unused", b.shape[x])
    constant(b, "/unused/Constant", np.arange(4, dtype=np.float32))

    # Inference-mode Dropout (training_mode absent -> identity), ratio from a Constant.
    ratio = constant(b, "/dropout/Constant", np.array(0.1, dtype=np.float32))
    x = b.node("Dropout", [x, ratio], "/dropout", b.shape[x])

    # Block 2: stride 2 with a 1x1 downsample shortcut.
    y = b.conv_bn(x, "/layer2/conv1", "/layer2/bn1", 32, 3, 2, act_path="/layer2/relu1")
    y = b.conv_bn(y, "/layer2/conv2", "/layer2/bn2", 32, 3, act=None, gamma_scale=0.25)
    sc = b.conv_bn(x, "/layer2/downsample/conv", "/layer2/downsample/bn", 32, 1, 2, act=None)
    x = b.act(b.add(y, sc, "/layer2"), "/layer2/relu2", "relu")

    # x * 1 + 0 with duplicated Constant scalars: exact no-ops.
    one_a = constant(b, "/scale/Constant", np.array(1.0, dtype=np.float32))
    zero = constant(b, "/shift/Constant", np.array(0.0, dtype=np.float32))
    one_b = constant(b, "/scale/Constant_1", np.array(1.0, dtype=np.float32))
    x = b.node("Mul", [x, one_a], "/scale", b.shape[x])
    x = b.node("Add", [x, zero], "/shift", b.shape[x])
    x = b.node("Mul", [x, one_b], "/scale", b.shape[x])

    # Head: GAP -> Reshape(shape = Cast(int32 Constant)) -> Gemm -> Identity.
    x = b.gap(x, "/avgpool")
    shp32 = constant(b, "/flatten/Constant", np.array([1, -1], dtype=np.int32))
    shp = b.node("Cast", [shp32], "/flatten", (2,), to=TensorProto.INT64)
    x = b.node("Reshape", [x, shp], "/flatten", (1, 32))
    x = b.gemm(x, "/fc", 10)
    b.node("Identity", [x], "/output", (1, 10), out="output")

    # An initializer nothing reads.
    b.init("unused.weight", np.zeros((8, 8), np.float32))

    structure(b)
    model = b.finish(
        "output",
        {"example": "tiny_resnet"},
        "Tiny ResNet-style example with export debris for ssc-opt to clean up; "
        "generated by scripts/make_examples.py.",
    )
    return serialize(model)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "examples"))
    ap.add_argument("--no-check", dest="check", action="store_false")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "tiny_resnet.onnx")
    data = tiny_resnet()
    assert len(data) < 200_000, len(data)
    with open(path, "wb") as f:
        f.write(data)
    print(f"{path}: {len(data):,} bytes")
    if args.check:
        import onnxruntime as ort

        ort.set_default_logger_severity(3)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
        y = sess.run(None, {"input": x})[0]
        ok = bool(np.all(np.isfinite(y))) and 0 < float(np.abs(y).max()) < 1e4
        print(f"  output {list(y.shape)} mean={y.mean():+.4f} std={y.std():.4f} "
              f"max|y|={np.abs(y).max():.4f} {'OK' if ok else 'BAD'}", file=sys.stderr)
        if not ok:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
