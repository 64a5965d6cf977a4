#!/usr/bin/env python3
"""Measure single ONNX ops in ONNX Runtime and fit the ssc-cost latency model (calibration.json).

Why this exists: the rewrite engine must choose between exactly-equivalent graph forms by
what runs faster in ONNX Runtime on this machine, not by MAC counts (ORT runs a dense conv
with zero weights at full cost, and grouped convs with few channels per group run far below
peak). This script is the single source of every number in ``crates/ssc-cost``: it times
single-op models over a grid of realistic CNN shapes, fits a small linear latency model per
op kind and efficiency bucket, measures a few multi-node "decision" graphs that encode the
choices the cost model must get right, and writes ``crates/ssc-cost/calibration.json``.

Model (per bucket; all coefficients non-negative; units in the JSON ``units`` block):
    time_us = overhead_us + (macs * ns_per_mac + (bytes_in + bytes_out + weight_bytes) * ns_per_byte) / 1000
MAC definitions (the same as ``NodeCostInput`` in crates/ssc-cost):
    Conv         N * Cout * Hout * Wout * (Cin / group) * kh * kw
    MatMul/Gemm  M * K * N
    Pool         output elements * window taps (GlobalAveragePool: input elements)
    Elementwise  output elements (Add, Mul, Relu, Clip, ...)
    Gather       output elements
    Other        output elements (Concat, Slice, Pad, ...)

Measurement: CPUExecutionProvider, intra_op_num_threads=1, inter_op_num_threads=1, default
graph optimisation (ORT_ENABLE_ALL: what users get, including the NCHWc layout transform);
inputs and outputs bound once with io_binding; warm-up runs, then timed runs
(``time.perf_counter_ns``) until ``--min-runs`` clean runs and ``--budget`` seconds. This is a
shared 2-core VM whose vCPUs may be SMT siblings, so:
  * a run is *clean* when its wall time exceeds the thread's CPU time by at most 3% + 5 us
    (ORT with one thread runs on the calling thread, so the gap is time spent descheduled);
    a model's time is the median wall time of its clean runs;
  * every model runs alternately with a reference session (one Relu on one element); the
    reference's median, less one trivial node's cost (from 1- vs 9-node Relu chains), is
    subtracted: what remains is the node, without run_with_iobinding's fixed overhead;
  * the grid is measured ``--passes`` times, minutes apart, and the lowest median is kept
    (interference from other processes only ever adds time).
Decisions (multi-node graphs of exactly-equivalent forms of one layer) are timed with the
alternatives and the reference interleaved A,B,C,ref,A,B,C,ref,...

Fit: per bucket, non-negative least squares on relative error (each row divided by the
measured time), exact for 3 unknowns by enumerating the active sets. Reported: median and
maximum relative error per bucket and per kind (``fit`` blocks in the JSON, and stdout).

Output is deterministic apart from the measured numbers: sorted keys, fixed float rounding,
no timestamp unless ``--date`` is given.

Usage:
    PY=$(bash scripts/venv.sh | tail -n1)
    "$PY" scripts/calibrate_cost.py --date YYYY-MM-DD     # default grid, 3 passes: ~2-3 min
    "$PY" scripts/calibrate_cost.py --grid large --passes 5 --budget 0.5   # denser: ~10-15 min
    "$PY" scripts/calibrate_cost.py --grid tiny --out /tmp/c.json          # smoke test: ~15 s
    "$PY" scripts/calibrate_cost.py --refit crates/ssc-cost/calibration.json   # refit only
Then: cargo test -p ssc-cost   (checks the table loads and the decisions still hold).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "crates", "ssc-cost", "calibration.json")
OPSET = 17
IR_VERSION = 8
F32 = 4  # bytes per float32 element
FORMAT = "ssc-cost-calibration"
FORMAT_VERSION = 1

# ORT's NCHWc block size on this machine (16 with AVX-512, 8 with AVX2 only). Grouped convs
# whose channels per group are multiples of it take the NCHWc kernels; others fall back to
# per-group im2col + GEMM. Detected from /proc/cpuinfo, recorded in the JSON, used by the
# bucket predicates below.


def nchwc_block() -> int:
    flags = cpu_flags()
    return 16 if "avx512f" in flags else 8


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            info = {}
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    info.setdefault(k.strip(), v.strip())
                if not line.strip():
                    break
        return f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
    except OSError:
        return platform.processor() or "unknown"


# --------------------------------------------------------------------------------------------
# Buckets. The first bucket of a kind whose predicate matches is used; the last one of each
# kind matches everything. The predicate vocabulary is the one crates/ssc-cost understands:
#   groups [min, max], cin_per_group [min, max], cout_per_group [min, max] (max null = no
#   bound), kernel "pointwise" | "spatial", aligned true | false (cin_per_group and
#   cout_per_group both multiples of the table's nchwc_block).
# --------------------------------------------------------------------------------------------


def conv_buckets(block: int) -> list[dict]:
    """The committed conv buckets. Why these: ORT's speed on a conv is set by which kernel
    runs it. Dense convs and grouped convs whose channels per group are multiples of the NCHWc
    block take the NCHWc / GEMM kernels at ~50-60 GMAC/s; depthwise convs have their own
    kernel; every other grouped conv is one im2col + small GEMM per group, whose time follows
    the patch size (macs / cout_per_group) and degrades as channels per group shrink.
    ``brief_buckets`` is the channels-per-group-only alternative, reported for comparison."""
    return [
        {"name": "conv_depthwise", "when": {"groups": [2, None], "cin_per_group": [1, 1], "cout_per_group": [1, 1]}},
        {"name": "conv_dense_pointwise_aligned", "when": {"groups": [1, 1], "kernel": "pointwise", "aligned": True}},
        {"name": "conv_dense_spatial_aligned", "when": {"groups": [1, 1], "kernel": "spatial", "aligned": True}},
        {"name": "conv_dense_unaligned", "when": {"groups": [1, 1]}},
        {"name": "conv_grouped_aligned", "when": {"aligned": True}},
        {"name": "conv_grouped_pointwise", "when": {"kernel": "pointwise"}},
        {"name": "conv_grouped_cpg_1_4", "when": {"cin_per_group": [1, 4]}},
        {"name": "conv_grouped_cpg_5_8", "when": {"cin_per_group": [5, 8]}},
        {"name": "conv_grouped_cpg_9_up", "when": {}},
    ]


def brief_buckets() -> list[dict]:
    """Alternative for comparison: dense k x k / pointwise / depthwise, then channels per group
    1, 2-4, 5-8, 9-16, 17-32, 33-64, 65+, with overhead, MAC and byte terms only."""
    terms = ["overhead_us", "ns_per_mac", "ns_per_byte"]
    rng = [(1, 1), (2, 4), (5, 8), (9, 16), (17, 32), (33, 64), (65, None)]
    out = [
        {"name": "depthwise", "when": {"groups": [2, None], "cin_per_group": [1, 1], "cout_per_group": [1, 1]}},
        {"name": "dense_pointwise", "when": {"groups": [1, 1], "kernel": "pointwise"}},
        {"name": "dense_spatial", "when": {"groups": [1, 1]}},
    ] + [{"name": f"cpg_{lo}_{hi}", "when": {"cin_per_group": [lo, hi]}} for lo, hi in rng[:-1]]
    out.append({"name": "cpg_65_up", "when": {}})
    for b in out:
        b["terms"] = terms
    return out


NON_CONV_TERMS = ["overhead_us", "ns_per_mac", "ns_per_byte"]
SIMPLE_BUCKETS = {
    kind: [{"name": kind, "when": {}, "terms": NON_CONV_TERMS}]
    for kind in ("pool", "elementwise", "gather", "matmul", "other")
}


def matches(when: dict, s: dict, block: int) -> bool:
    """The same predicate semantics as crates/ssc-cost (Predicate::matches)."""

    def in_range(key: str, value: int) -> bool:
        if key not in when:
            return True
        lo, hi = when[key]
        return (lo is None or value >= lo) and (hi is None or value <= hi)

    if s["kind"] != "conv":
        return not when
    if not in_range("groups", s["groups"]):
        return False
    if not in_range("cin_per_group", s["cin_per_group"]):
        return False
    if not in_range("cout_per_group", s["cout_per_group"]):
        return False
    if "kernel" in when:
        pointwise = all(k == 1 for k in s["kernel"])
        if (when["kernel"] == "pointwise") != pointwise:
            return False
    if "aligned" in when:
        aligned = s["cin_per_group"] % block == 0 and s["cout_per_group"] % block == 0
        if when["aligned"] != aligned:
            return False
    return True


# --------------------------------------------------------------------------------------------
# Single-op model builders. Each returns (model, sample) where the sample carries the
# NodeCostInput fields of the op.
# --------------------------------------------------------------------------------------------


def make_model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "calib", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="calibrate_cost.py")
    m.ir_version = IR_VERSION
    return m


def vi(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def conv_out(hw: int, k: int, s: int) -> int:
    p = k // 2
    return (hw + 2 * p - k) // s + 1


def conv_sample(cin, cout, g, k, s, hw, label=None) -> dict:
    ho = conv_out(hw, k, s)
    return {
        "kind": "conv",
        "label": label or f"conv c{cin}->{cout} g{g} k{k} s{s} hw{hw}",
        "groups": g,
        "cin_per_group": cin // g,
        "cout_per_group": cout // g,
        "kernel": [k, k],
        "stride": [s, s],
        "macs": cout * (cin // g) * k * k * ho * ho,
        "bytes_in": cin * hw * hw * F32,
        "bytes_out": cout * ho * ho * F32,
        "weight_bytes": (cout * (cin // g) * k * k + cout) * F32,
    }


def conv_node(x, y, wname, bname, cin, cout, g, k, s, rng, inits, weight=None):
    w = weight if weight is not None else rng.standard_normal((cout, cin // g, k, k)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    inits += [numpy_helper.from_array(w, wname), numpy_helper.from_array(b, bname)]
    p = k // 2
    return helper.make_node("Conv", [x, wname, bname], [y], group=g, kernel_shape=[k, k], pads=[p] * 4, strides=[s, s])


def build_conv(cin, cout, g, k, s, hw):
    rng = np.random.default_rng(cin * 1000003 + cout * 1009 + g * 101 + k * 11 + s + hw * 7)
    inits = []
    node = conv_node("x", "y", "w", "b", cin, cout, g, k, s, rng, inits)
    ho = conv_out(hw, k, s)
    m = make_model([node], [vi("x", [1, cin, hw, hw])], [vi("y", [1, cout, ho, ho])], inits)
    return m, conv_sample(cin, cout, g, k, s, hw)


def simple_sample(kind, label, macs, bytes_in, bytes_out, weight_bytes=0) -> dict:
    return {"kind": kind, "label": label, "macs": int(macs), "bytes_in": int(bytes_in),
            "bytes_out": int(bytes_out), "weight_bytes": int(weight_bytes)}


def build_pool(op, c, hw, k, s):
    x = [1, c, hw, hw]
    if op == "GlobalAveragePool":
        node = helper.make_node(op, ["x"], ["y"])
        y = [1, c, 1, 1]
        macs = c * hw * hw
    else:
        p = k // 2 if op == "AveragePool" or k == 3 else 0
        attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": [p] * 4}
        if op == "AveragePool":
            attrs["count_include_pad"] = 1
        node = helper.make_node(op, ["x"], ["y"], **attrs)
        ho = (hw + 2 * p - k) // s + 1
        y = [1, c, ho, ho]
        macs = c * ho * ho * k * k
    m = make_model([node], [vi("x", x)], [vi("y", y)], [])
    return m, simple_sample("pool", f"{op} c{c} hw{hw} k{k} s{s}", macs, np.prod(x) * F32, np.prod(y) * F32)


def build_elementwise(op, c, hw):
    shape = [1, c, hw, hw]
    n = c * hw * hw
    inits = []
    if op == "Add":
        node = helper.make_node("Add", ["x", "x2"], ["y"])
        inputs = [vi("x", shape), vi("x2", shape)]
        bin_, wb = 2 * n * F32, 0
    elif op == "Mul":  # per-channel scale, as a folded sign/scale would be
        inits.append(numpy_helper.from_array(np.linspace(-1, 1, c, dtype=np.float32).reshape(1, c, 1, 1), "s"))
        node = helper.make_node("Mul", ["x", "s"], ["y"])
        inputs = [vi("x", shape)]
        bin_, wb = n * F32, c * F32
    elif op == "Clip":
        inits += [numpy_helper.from_array(np.array(0, np.float32), "lo"),
                  numpy_helper.from_array(np.array(6, np.float32), "hi")]
        node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"])
        inputs = [vi("x", shape)]
        bin_, wb = n * F32, 2 * F32
    else:
        node = helper.make_node(op, ["x"], ["y"])
        inputs = [vi("x", shape)]
        bin_, wb = n * F32, 0
    m = make_model([node], inputs, [vi("y", shape)], inits)
    return m, simple_sample("elementwise", f"{op} c{c} hw{hw}", n, bin_, n * F32, wb)


def build_gather(c, hw, cout=None):
    cout = cout or c
    rng = np.random.default_rng(c * 31 + hw)
    idx = rng.permutation(c)[:cout] if cout <= c else rng.integers(0, c, cout)
    inits = [numpy_helper.from_array(idx.astype(np.int64), "idx")]
    node = helper.make_node("Gather", ["x", "idx"], ["y"], axis=1)
    m = make_model([node], [vi("x", [1, c, hw, hw])], [vi("y", [1, cout, hw, hw])], inits)
    n_out = cout * hw * hw
    return m, simple_sample("gather", f"Gather axis1 c{c}->{cout} hw{hw}", n_out, c * hw * hw * F32, n_out * F32, cout * 8)


def build_gemm(m_, k, n):
    rng = np.random.default_rng(m_ * 7 + k * 13 + n)
    inits = [numpy_helper.from_array(rng.standard_normal((n, k)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "b")]
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
    m = make_model([node], [vi("x", [m_, k])], [vi("y", [m_, n])], inits)
    return m, simple_sample("matmul", f"Gemm {m_}x{k}x{n}", m_ * k * n, m_ * k * F32, m_ * n * F32, (k * n + n) * F32)


def build_other(op, c, hw):
    shape = [1, c, hw, hw]
    n = c * hw * hw
    inits = []
    if op == "Concat":
        h = c // 2
        node = helper.make_node("Concat", ["x", "x2"], ["y"], axis=1)
        inputs = [vi("x", [1, h, hw, hw]), vi("x2", [1, c - h, hw, hw])]
        y = shape
    elif op == "Slice":  # the first half of the channels
        inits += [numpy_helper.from_array(np.array([0], np.int64), "st"),
                  numpy_helper.from_array(np.array([c // 2], np.int64), "en"),
                  numpy_helper.from_array(np.array([1], np.int64), "ax")]
        node = helper.make_node("Slice", ["x", "st", "en", "ax"], ["y"])
        inputs = [vi("x", shape)]
        y = [1, c // 2, hw, hw]
    elif op == "Pad":  # one pixel of zeros around, as a shifted-1x1 decomposition needs
        inits.append(numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "p"))
        node = helper.make_node("Pad", ["x", "p"], ["y"], mode="constant")
        inputs = [vi("x", shape)]
        y = [1, c, hw + 2, hw + 2]
    else:
        raise ValueError(op)
    m = make_model([node], inputs, [vi("y", y)], inits)
    n_out = int(np.prod(y))
    return m, simple_sample("other", f"{op} c{c} hw{hw}", n_out, n * F32, n_out * F32, 0)


# --------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------

STAGES = [(64, 56), (128, 28), (256, 14), (512, 7)]
EXTRA_STAGES = [(32, 112), (96, 28), (160, 14)]


def grid(name: str):
    """Yield (builder, args). 'tiny' is a smoke test, 'default' the committed table, 'large'
    adds spatial sizes around every stage."""
    tiny = name == "tiny"
    large = name == "large"
    stages = STAGES[1:3] if tiny else STAGES + EXTRA_STAGES
    if large:
        stages = stages + [(c, hw * 2) for c, hw in STAGES] + [(c, max(hw // 2, 4)) for c, hw in STAGES]
    # Dense convs: CNN stages, stride-2 downsampling, bottleneck 1x1s, the stems, small
    # channel counts (the per-node overhead) and channel counts that are not multiples of 16.
    for c, hw in stages:
        yield build_conv, (c, c, 1, 3, 1, hw)
        yield build_conv, (c, c, 1, 1, 1, hw)
        if not tiny:
            yield build_conv, (c, 2 * c, 1, 3, 2, hw)
            yield build_conv, (c, 2 * c, 1, 1, 2, hw)
            yield build_conv, (c, c // 4, 1, 1, 1, hw)
            yield build_conv, (c // 4, c, 1, 1, 1, hw)
    if not tiny:
        for c, hw in STAGES:
            yield build_conv, (c, c, 1, 5, 1, hw)
        yield build_conv, (3, 64, 1, 7, 2, 224)
        yield build_conv, (3, 32, 1, 3, 2, 224)
        for c in (4, 8, 16, 32):
            for hw in (7, 14, 28, 56):
                for k in (1, 3):
                    yield build_conv, (c, c, 1, k, 1, hw)
        for cin, cout, k, hw in [(120, 120, 3, 28), (120, 128, 3, 28), (128, 120, 3, 28), (120, 120, 1, 28),
                                 (72, 72, 3, 28), (200, 200, 1, 14), (40, 40, 3, 56), (256, 250, 3, 14),
                                 (250, 256, 1, 14), (128, 100, 1, 28), (24, 24, 3, 56), (12, 12, 3, 28)]:
            yield build_conv, (cin, cout, 1, k, 1, hw)
    # Grouped convs: every power-of-two group count on each stage (3x3; 1x1 on a subset),
    # and on small maps where the per-group and per-node overheads dominate.
    small_maps = [] if tiny else [(64, 7), (32, 14), (16, 28)]
    for c, hw in stages + small_maps:
        gs = [2 ** i for i in range(1, int(np.log2(c)) + 1) if c % 2 ** i == 0]
        if tiny:
            gs = [4, 16, c // 2, c]
        for g in gs:
            yield build_conv, (c, c, g, 3, 1, hw)
            if g < c and (c, hw) in STAGES + [(c, hw) for c, hw in stages if tiny]:
                yield build_conv, (c, c, g, 1, 1, hw)
    if not tiny:
        # Odd channels per group (3, 6, 12, 24, 48), stride 2, 5x5 groups, uneven in/out.
        for cin, g, k, s, hw in [(192, 64, 3, 1, 14), (192, 32, 3, 1, 14), (192, 16, 3, 1, 14), (192, 8, 3, 1, 14),
                                 (192, 4, 3, 1, 14), (96, 32, 3, 1, 28), (96, 8, 3, 1, 28), (96, 4, 3, 1, 56),
                                 (128, 8, 3, 2, 28), (256, 16, 3, 2, 14), (256, 64, 3, 2, 14), (128, 64, 3, 2, 28),
                                 (64, 16, 5, 1, 28), (128, 4, 5, 1, 14), (384, 8, 1, 1, 14), (240, 10, 3, 1, 14),
                                 (96, 8, 3, 1, 7), (192, 16, 3, 1, 7), (48, 4, 3, 1, 14), (384, 16, 3, 1, 7),
                                 (24, 2, 3, 1, 28)]:
            yield build_conv, (cin, cin, g, k, s, hw)
        for cin, cout, g, hw in [(128, 256, 8, 14), (256, 128, 8, 14), (128, 256, 32, 14), (256, 128, 64, 14)]:
            yield build_conv, (cin, cout, g, 3, 1, hw)
        # Depthwise, incl. MobileNet / EfficientNet shapes, and a depthwise multiplier of 2.
        for c, k, s, hw in [(32, 3, 1, 112), (96, 3, 2, 112), (144, 3, 1, 56), (144, 3, 2, 56), (192, 3, 1, 28),
                            (384, 3, 1, 14), (576, 3, 1, 14), (960, 3, 1, 7), (240, 5, 1, 28), (672, 5, 2, 14),
                            (1152, 5, 1, 7), (64, 7, 1, 56), (16, 3, 1, 112), (72, 3, 1, 28), (200, 3, 1, 14)]:
            yield build_conv, (c, c, c, k, s, hw)
        for c, hw in [(64, 56), (128, 28), (256, 14)]:
            yield build_conv, (c, 2 * c, c, 3, 1, hw)
    # Pools.
    for c, hw in (stages[:2] if tiny else stages):
        yield build_pool, ("AveragePool", c, hw, 3, 1)
        yield build_pool, ("GlobalAveragePool", c, hw, 1, 1)
        if not tiny:
            yield build_pool, ("MaxPool", c, hw, 3, 2)
            yield build_pool, ("AveragePool", c, hw, 2, 2)
    if not tiny:
        yield build_pool, ("MaxPool", 64, 112, 3, 2)
        yield build_pool, ("GlobalAveragePool", 2048, 7, 1, 1)
        yield build_pool, ("AveragePool", 8, 8, 3, 1)
    # Elementwise, gather, gemm, other.
    shapes = [(64, 56), (256, 14)] if tiny else [(16, 112), (64, 56), (128, 28), (256, 14), (512, 7), (8, 8),
                                                  (256, 56), (32, 14), (1024, 14)]
    for c, hw in shapes:
        for op in (["Add", "Relu"] if tiny else ["Add", "Relu", "Mul", "Clip"]):
            yield build_elementwise, (op, c, hw)
        yield build_gather, (c, hw)
        if not tiny:
            yield build_gather, (c, hw, c // 2)
            for op in ["Concat", "Slice", "Pad"]:
                yield build_other, (op, c, hw)
    for mkn in ([(1, 512, 1000)] if tiny else [(1, 512, 1000), (1, 2048, 1000), (1, 1280, 1000), (1, 256, 10),
                                                (1, 4096, 1000), (8, 512, 1000), (64, 256, 256), (1, 64, 64),
                                                (16, 1024, 1024)]):
        yield build_gemm, mkn


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def session(model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


class Bound:
    """A session with seeded inputs and preallocated outputs bound once (io_binding), so a
    timed call is the graph and ORT's fixed per-run overhead, without numpy conversions."""

    def __init__(self, model: onnx.ModelProto, threads: int, seed: int = 0):
        self.sess = session(model, threads)
        self.io = self.sess.io_binding()
        rng = np.random.default_rng(seed)
        self.keep = []
        for i in self.sess.get_inputs():
            x = rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
            v = ort.OrtValue.ortvalue_from_numpy(x)
            self.keep.append(v)
            self.io.bind_ortvalue_input(i.name, v)
        for o in self.sess.get_outputs():
            v = ort.OrtValue.ortvalue_from_shape_and_type(o.shape, np.float32)
            self.keep.append(v)
            self.io.bind_ortvalue_output(o.name, v)

    def once(self) -> tuple[int, int]:
        """(wall ns, this thread's CPU ns) of one run. With intra_op_num_threads=1 ORT runs the
        graph on the calling thread, so the two differ only when the thread was descheduled."""
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        self.sess.run_with_iobinding(self.io)
        t1 = time.perf_counter_ns()
        return t1 - t0, time.thread_time_ns() - c0


# A run counts as uncontended when its wall time exceeds its CPU time by at most this much
# (relative, absolute ns): the machine is shared, and a run during which the OS gave the core
# to another process measures that process, not ORT.
CLEAN_REL = 0.03
# Floor for a node's measured time (us): below timer and subtraction noise.
MIN_US = 0.05
CLEAN_ABS_NS = 5_000


def clean(wall: int, cpu: int) -> bool:
    return wall - cpu <= CLEAN_REL * wall + CLEAN_ABS_NS


class Timer:
    """Collects runs of one model; the statistic is the median wall time of uncontended runs."""

    def __init__(self):
        self.walls, self.cpus = [], []

    def add(self, wc: tuple[int, int]) -> None:
        self.walls.append(wc[0])
        self.cpus.append(wc[1])

    def clean_walls(self) -> list[int]:
        return [w for w, c in zip(self.walls, self.cpus) if clean(w, c)]

    def median_us(self) -> float:
        ws = self.clean_walls()
        if len(ws) < 3:  # hopelessly contended: fall back on CPU time, which excludes waiting
            return float(np.median(self.cpus)) / 1e3
        return float(np.median(ws)) / 1e3


def time_model(model, ref, threads, warmup, max_runs, min_runs, budget_s) -> tuple[float, int, int]:
    """Median uncontended run time of ``model`` minus that of ``ref`` (the empty-session
    reference, run alternately with it so both see the same machine state), in microseconds;
    clean runs, all runs. Runs until ``min_runs`` clean runs and ``budget_s`` of running, or
    ``max_runs`` clean runs, or ``4 * budget_s`` wall seconds, whichever comes first."""
    b = Bound(model, threads)
    for _ in range(max(1, warmup)):
        b.once()
        ref.once()
    tm, rm = Timer(), Timer()
    t_end_soft = time.perf_counter() + budget_s
    t_end_hard = time.perf_counter() + 4 * budget_s
    while True:
        tm.add(b.once())
        rm.add(ref.once())
        n_clean = len(tm.clean_walls())
        now = time.perf_counter()
        if n_clean >= max_runs or now > t_end_hard and len(tm.walls) >= min_runs:
            break
        if n_clean >= min_runs and now > t_end_soft:
            break
    return tm.median_us() - rm.median_us(), len(tm.clean_walls()), len(tm.walls)


def time_interleaved(models: list, threads, warmup, runs, ref=None) -> list[float]:
    """Median uncontended run time of each model, runs interleaved A,B,C,A,B,C,... to cancel
    drift; with ``ref`` (a bound empty-session reference) its median is subtracted."""
    bs = [Bound(m, threads) for m in models] + ([ref] if ref is not None else [])
    for _ in range(warmup):
        for b in bs:
            b.once()
    tms = [Timer() for _ in bs]
    for _ in range(runs):
        for b, tm in zip(bs, tms):
            tm.add(b.once())
    meds = [tm.median_us() for tm in tms]
    if ref is not None:
        return [m - meds[-1] for m in meds[:-1]]
    return meds


def relu_chain(n: int) -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(n)]
    return make_model(nodes, [vi("t0", [1])], [vi(f"t{n}", [1])], [])


def run_overhead(threads: int) -> tuple[float, float]:
    """(session overhead us, per-node overhead us) from 1- and 9-node chains of a 1-element
    Relu: the fixed cost of one run_with_iobinding call, and what one trivial node adds."""
    t1s, t9s = [], []
    for _ in range(3):
        t1, t9 = time_interleaved([relu_chain(1), relu_chain(9)], threads, 50, 400)
        t1s.append(t1)
        t9s.append(t9)
    t1, t9 = min(t1s), min(t9s)
    per_node = max(0.0, (t9 - t1) / 8)
    return max(0.0, t1 - per_node), per_node


# --------------------------------------------------------------------------------------------
# Decisions: multi-node graphs, each alternative an exactly-equivalent form of one layer.
# --------------------------------------------------------------------------------------------


def ssc_alternatives(c, hw, g, k=3):
    """Dense k x k conv (SSC weights) vs grouped G k x k + 1x1 + Add (the SSC rewrite)."""
    rng = np.random.default_rng(c * 7 + hw * 3 + g)
    # Dense form.
    inits = []
    n = conv_node("x", "y", "w", "b", c, c, 1, k, 1, rng, inits)
    dense = make_model([n], [vi("x", [1, c, hw, hw])], [vi("y", [1, c, hw, hw])], inits)
    # Rewritten form.
    inits = []
    n1 = conv_node("x", "a", "wg", "bg", c, c, g, k, 1, rng, inits)
    n2 = conv_node("x", "p", "wp", "bp", c, c, 1, 1, 1, rng, inits)
    n3 = helper.make_node("Add", ["a", "p"], ["y"])
    rew = make_model([n1, n2, n3], [vi("x", [1, c, hw, hw])], [vi("y", [1, c, hw, hw])], inits)
    add = simple_sample("elementwise", "Add", c * hw * hw, 2 * c * hw * hw * F32, c * hw * hw * F32)
    return [
        ("dense", dense, [conv_sample(c, c, 1, k, 1, hw)]),
        (f"grouped{g}+pointwise+add", rew, [conv_sample(c, c, g, k, 1, hw), conv_sample(c, c, 1, 1, 1, hw), add]),
    ]


def blockdiag_alternatives(c, hw, blocks, coarse, k=3):
    """A conv whose weights are block-diagonal with `blocks` blocks: dense as exported, grouped
    with group=blocks (fewest MACs), or grouped with a coarser group=coarse (zeros inside the
    coarse blocks, more MACs but aligned channels per group)."""
    rng = np.random.default_rng(c * 5 + hw + blocks)
    out = []
    for name, g in (("dense", 1), (f"grouped{blocks}", blocks), (f"grouped{coarse}", coarse)):
        inits = []
        n = conv_node("x", "y", "w", "b", c, c, g, k, 1, rng, inits)
        out.append((name, make_model([n], [vi("x", [1, c, hw, hw])], [vi("y", [1, c, hw, hw])], inits),
                    [conv_sample(c, c, g, k, 1, hw)]))
    return out


def split_alternatives(c, hw, g, k=3):
    """Many small nodes: a grouped conv as one Conv(group=g) vs Split + g dense convs + Concat."""
    rng = np.random.default_rng(c * 11 + hw + g)
    inits = []
    n = conv_node("x", "y", "w", "b", c, c, g, k, 1, rng, inits)
    one = make_model([n], [vi("x", [1, c, hw, hw])], [vi("y", [1, c, hw, hw])], inits)
    cg = c // g
    inits = [numpy_helper.from_array(np.full(g, cg, np.int64), "splits")]
    nodes = [helper.make_node("Split", ["x", "splits"], [f"x{i}" for i in range(g)], axis=1)]
    for i in range(g):
        nodes.append(conv_node(f"x{i}", f"y{i}", f"w{i}", f"b{i}", cg, cg, 1, k, 1, rng, inits))
    nodes.append(helper.make_node("Concat", [f"y{i}" for i in range(g)], ["y"], axis=1))
    many = make_model(nodes, [vi("x", [1, c, hw, hw])], [vi("y", [1, c, hw, hw])], inits)
    n_el = c * hw * hw
    split = simple_sample("other", "Split", n_el, n_el * F32, n_el * F32)
    concat = simple_sample("other", "Concat", n_el, n_el * F32, n_el * F32)
    return [
        (f"grouped{g}", one, [conv_sample(c, c, g, k, 1, hw)]),
        (f"split+{g}xconv+concat", many, [split] + [conv_sample(cg, cg, 1, k, 1, hw)] * g + [concat]),
        ("dense", blockdiag_alternatives(c, hw, g, g, k)[0][1], [conv_sample(c, c, 1, k, 1, hw)]),
    ]


def plus_alternatives(c, hw):
    """'+'-shaped 3x3 taps: dense 3x3 (corners zero) vs Pad + 5 shifted 1x1 convs (Slice) + 4 Add."""
    rng = np.random.default_rng(c * 13 + hw)
    inits = []
    n = conv_node("x", "y", "w", "b", c, c, 1, 3, 1, rng, inits)
    dense = make_model([n], [vi("x", [1, c, hw, hw])], [vi("y", [1, c, hw, hw])], inits)
    inits = [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes")]
    nodes = [helper.make_node("Pad", ["x", "pads"], ["xp"], mode="constant")]
    taps = [(1, 1), (0, 1), (1, 0), (1, 2), (2, 1)]
    n_el = c * hw * hw
    n_pad = c * (hw + 2) * (hw + 2)
    samples = [simple_sample("other", "Pad", n_pad, n_el * F32, n_pad * F32)]
    prev = None
    for t, (dy, dx) in enumerate(taps):
        inits += [numpy_helper.from_array(np.array([dy, dx], np.int64), f"st{t}"),
                  numpy_helper.from_array(np.array([dy + hw, dx + hw], np.int64), f"en{t}")]
        nodes.append(helper.make_node("Slice", ["xp", f"st{t}", f"en{t}", "axes"], [f"s{t}"]))
        samples.append(simple_sample("other", "Slice", n_el, n_pad * F32, n_el * F32))
        bias = t == 0
        w = rng.standard_normal((c, c, 1, 1)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{t}"))
        ins = [f"s{t}", f"w{t}"]
        if bias:
            inits.append(numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "b0"))
            ins.append("b0")
        nodes.append(helper.make_node("Conv", ins, [f"c{t}"], kernel_shape=[1, 1]))
        samples.append(conv_sample(c, c, 1, 1, 1, hw))
        if prev is not None:
            out = "y" if t == len(taps) - 1 else f"a{t}"
            nodes.append(helper.make_node("Add", [prev, f"c{t}"], [out]))
            samples.append(simple_sample("elementwise", "Add", n_el, 2 * n_el * F32, n_el * F32))
            prev = out
        else:
            prev = f"c{t}"
    shifted = make_model(nodes, [vi("x", [1, c, hw, hw])], [vi("y", [1, c, hw, hw])], inits)
    return [("dense", dense, [conv_sample(c, c, 1, 3, 1, hw)]), ("pad+5x(slice+conv1x1)+4add", shifted, samples)]


def shift_alternatives(c, hw, g=4):
    """HetConv-style shifted SSC (F where (i - o) mod g == 0): dense vs Gather + grouped conv +
    Gather + 1x1 + Add (the permutation cannot be folded across a residual add)."""
    rng = np.random.default_rng(c * 17 + hw)
    inits = []
    n = conv_node("x", "y", "w", "b", c, c, 1, 3, 1, rng, inits)
    dense = make_model([n], [vi("x", [1, c, hw, hw])], [vi("y", [1, c, hw, hw])], inits)
    perm = np.concatenate([np.arange(r, c, g) for r in range(g)]).astype(np.int64)
    inv = np.argsort(perm).astype(np.int64)
    inits = [numpy_helper.from_array(perm, "perm"), numpy_helper.from_array(inv, "inv")]
    nodes = [helper.make_node("Gather", ["x", "perm"], ["xp"], axis=1),
             conv_node("xp", "gp", "wg", "bg", c, c, g, 3, 1, rng, inits),
             helper.make_node("Gather", ["gp", "inv"], ["gu"], axis=1),
             conv_node("x", "p", "wp", "bp", c, c, 1, 1, 1, rng, inits),
             helper.make_node("Add", ["gu", "p"], ["y"])]
    rew = make_model(nodes, [vi("x", [1, c, hw, hw])], [vi("y", [1, c, hw, hw])], inits)
    n_el = c * hw * hw
    gather = simple_sample("gather", "Gather", n_el, n_el * F32, n_el * F32, c * 8)
    add = simple_sample("elementwise", "Add", n_el, 2 * n_el * F32, n_el * F32)
    return [("dense", dense, [conv_sample(c, c, 1, 3, 1, hw)]),
            (f"gather+grouped{g}+gather+pointwise+add", rew,
             [gather, conv_sample(c, c, g, 3, 1, hw), gather, conv_sample(c, c, 1, 1, 1, hw), add])]


def decisions(tiny: bool):
    yield "ssc_g4_c256_hw14", "ResNet-18 layer3 3x3 conv with SSC group-wise G=4 weights", ssc_alternatives(256, 14, 4)
    yield "ssc_g128_c256_hw14", "SSC with 2 channels per group (G=128 on 256 channels)", ssc_alternatives(256, 14, 128)
    yield "blockdiag_2cpg_c256_hw14", "block-diagonal 3x3 with 128 blocks of 2 channels", blockdiag_alternatives(256, 14, 128, 16)
    if tiny:
        return
    yield "ssc_g4_c64_hw56", "ResNet-18 layer1 3x3 conv with SSC group-wise G=4 weights", ssc_alternatives(64, 56, 4)
    yield "ssc_g4_c512_hw7", "ResNet-18 layer4 3x3 conv with SSC group-wise G=4 weights", ssc_alternatives(512, 7, 4)
    yield "ssc_g32_c64_hw56", "SSC with 2 channels per group (G=32 on 64 channels)", ssc_alternatives(64, 56, 32)
    yield "blockdiag_8cpg_c256_hw14", "block-diagonal 3x3 with 32 blocks of 8 channels", blockdiag_alternatives(256, 14, 32, 16)
    yield "blockdiag_4cpg_c64_hw56", "block-diagonal 3x3 with 16 blocks of 4 channels", blockdiag_alternatives(64, 56, 16, 4)
    yield "split_g4_c256_hw14", "grouped G=4 as one node vs 4 separate convs", split_alternatives(256, 14, 4)
    yield "split_g32_c256_hw14", "grouped G=32 as one node vs 32 separate small convs", split_alternatives(256, 14, 32)
    yield "split_g16_c64_hw7", "grouped G=16 on a small map as one node vs 16 tiny convs", split_alternatives(64, 7, 16)
    yield "plus_c256_hw14", "'+'-shaped 3x3 kernels: dense vs 5 shifted 1x1 convs", plus_alternatives(256, 14)
    yield "plus_c64_hw56", "'+'-shaped 3x3 kernels on layer1: dense vs 5 shifted 1x1 convs", plus_alternatives(64, 56)
    yield "shift_g4_c256_hw14", "HetConv-style shifted SSC G=4 with the permutation kept as Gather", shift_alternatives(256, 14)


# --------------------------------------------------------------------------------------------
# Fit
# --------------------------------------------------------------------------------------------

FEATURES = ("overhead_us", "us_per_group", "ns_per_mac", "ns_per_byte", "ns_per_patch")


def patch_elems(s: dict) -> int:
    """Conv only: elements of the im2col patch matrix, N * Cin * kh * kw * Ho * Wo, which is
    macs / cout_per_group. Every patch element is loaded once per output channel of its group,
    so with few outputs per group this, not the MAC count, is the work."""
    return s["macs"] // s["cout_per_group"] if s["kind"] == "conv" else 0


def features(s: dict) -> np.ndarray:
    groups = s["groups"] if s["kind"] == "conv" else 0
    nbytes = s["bytes_in"] + s["bytes_out"] + s["weight_bytes"]
    return np.array([1.0, groups, s["macs"] / 1e3, nbytes / 1e3, patch_elems(s) / 1e3])


def nnls_relative(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """min sum(((x @ c) - t) / t)^2 subject to c >= 0, by trying every active set (3 unknowns)."""
    a = x / t[:, None]
    b = np.ones_like(t)
    best, best_err = np.zeros(x.shape[1]), float(np.sum(b**2))
    for r in range(1, x.shape[1] + 1):
        for cols in itertools.combinations(range(x.shape[1]), r):
            sub = a[:, cols]
            c, *_ = np.linalg.lstsq(sub, b, rcond=None)
            if np.any(c < 0):
                continue
            err = float(np.sum((sub @ c - b) ** 2))
            if err < best_err - 1e-12:
                full = np.zeros(x.shape[1])
                full[list(cols)] = c
                best, best_err = full, err
    return best


def predict(coef: dict, s: dict) -> float:
    return float(features(s) @ np.array([coef[k] for k in FEATURES]))


def bucket_of(table: dict, s: dict, block: int) -> dict:
    for b in table[s["kind"]]:
        if matches(b["when"], s, block):
            return b
    raise AssertionError("the last bucket of every kind matches everything")


def rel_errors(table, samples, block):
    return [abs(predict(bucket_of(table, s, block), s) - s["measured_us"]) / s["measured_us"] for s in samples]


def sig(x: float, digits: int = 6) -> float:
    """Round to significant digits so the JSON is stable and compact."""
    return float(f"{x:.{digits}g}") if x else 0.0


def fit(table: dict, samples: list[dict], block: int) -> None:
    """Fill in the coefficients and fit statistics of every bucket; a bucket without samples
    inherits the coefficients of the nearest preceding fitted bucket of its kind."""
    for kind, buckets in table.items():
        prev = None
        for b in buckets:
            mine = [s for s in samples if s["kind"] == kind and bucket_of(table, s, block) is b]
            terms = b.get("terms", list(FEATURES))
            cols = [FEATURES.index(k) for k in terms]
            if len(mine) >= 2:
                x = np.array([features(s) for s in mine])[:, cols]
                t = np.array([s["measured_us"] for s in mine])
                c = nnls_relative(x, t)
                b.update({k: 0.0 for k in FEATURES})
                b.update({k: sig(v) for k, v in zip(terms, c)})
                errs = [abs(predict(b, s) - s["measured_us"]) / s["measured_us"] for s in mine]
                b["fit"] = {"samples": len(mine), "median_rel_err": sig(float(np.median(errs)), 3),
                            "max_rel_err": sig(float(np.max(errs)), 3)}
                prev = b
            else:
                src = prev or {k: 0.0 for k in FEATURES}
                b.update({k: src[k] for k in FEATURES})
                b["fit"] = {"samples": len(mine), "median_rel_err": None, "max_rel_err": None,
                            "note": f"too few samples: coefficients copied from {prev['name'] if prev else 'zero'}"}


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def measure(args) -> tuple[list[dict], list[dict], dict]:
    """Time the grid and the decision graphs: (samples, decisions without predictions,
    measurement info)."""
    t_start = time.perf_counter()
    # Session overhead: every timed model runs alternately with `ref` (a 1-element Relu) and
    # the reference's median, less the trivial node's own cost, is subtracted.
    session_us, per_node_us = run_overhead(args.threads)
    print(f"run overhead: session {session_us:.2f} us, per node {per_node_us:.2f} us", file=sys.stderr)
    ref = Bound(relu_chain(1), args.threads)
    # Every model is timed once per pass; passes are minutes apart, and the lowest of a
    # model's per-pass medians is kept: other processes on this shared machine (whose two
    # vCPUs may be SMT siblings on the host) only ever add time, in bursts.
    todo = list(grid(args.grid))
    samples = [None] * len(todo)
    dec_list = list(decisions(args.grid == "tiny"))
    dec_times = [[float("inf")] * len(alts) for _, _, alts in dec_list]
    for p in range(args.passes):
        for i, (builder, bargs) in enumerate(todo):
            model, s = builder(*bargs)
            t, n_clean, n = time_model(model, ref, args.threads, args.warmup, args.max_runs, args.min_runs,
                                       args.budget)
            t = max(t + per_node_us, MIN_US)
            if samples[i] is None or t < samples[i]["measured_us"]:
                s["measured_us"] = t
                samples[i] = s
            print(f"  pass {p + 1}/{args.passes} {s['label']:44s} {t:10.1f} us  ({n_clean}/{n} clean runs)",
                  file=sys.stderr)
        for j, (name, desc, alts) in enumerate(dec_list):
            times = time_interleaved([m for _, m, _ in alts], args.threads, args.warmup, args.decision_runs, ref)
            times = [t + per_node_us for t in times]
            dec_times[j] = [min(a, max(b, MIN_US)) for a, b in zip(dec_times[j], times)]
            print(f"  pass {p + 1}/{args.passes} decision {name}: "
                  + ", ".join(f"{a[0]} {t:.0f} us" for a, t in zip(alts, times)), file=sys.stderr)
    for s in samples:
        s["measured_us"] = sig(s["measured_us"], 5)
    t_grid = time.perf_counter() - t_start
    decs = []
    for (name, desc, alts), times in zip(dec_list, dec_times):
        decs.append({"name": name, "description": desc, "alternatives": [
            {"name": aname, "measured_us": sig(t, 5),
             "macs": int(sum(n["macs"] for n in nodes)),
             "nodes": [{k: v for k, v in n.items() if k != "label"} for n in nodes]}
            for (aname, _, nodes), t in zip(alts, times)]})
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    info = {
        "warmup": args.warmup,
        "min_runs": args.min_runs,
        "max_runs": args.max_runs,
        "budget_s_per_model": args.budget,
        "decision_runs": args.decision_runs,
        "passes": args.passes,
        "overhead_reference": "every model runs alternately with a 1-element Relu session; the reference's median "
                              "minus per_node_overhead_us is subtracted",
        "statistic": "lowest over passes of the median wall time (perf_counter_ns) of uncontended runs: wall - thread CPU time <= "
                     f"{CLEAN_REL:.0%} + {CLEAN_ABS_NS / 1000:.0f} us",
        "session_overhead_us": sig(session_us, 4),
        "per_node_overhead_us": sig(per_node_us, 4),
        "seconds": round(time.perf_counter() - t_start),
        "measure_seconds": round(t_grid),
        "load_average_1min_at_end": round(load, 2) if load is not None else None,
    }
    return samples, decs, info


def report(table: dict, samples: list[dict], decs: list[dict], block: int) -> tuple[dict, dict]:
    """Print the fit quality and decision tables (markdown); return (fit by kind, MAC-only
    baseline) for the JSON."""
    print("fit quality per bucket (relative error |predicted - measured| / measured):\n")
    print("| bucket | samples | overhead us | us/group | GMAC/s | GB/s | G patch/s | median rel err | max rel err |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    inv = lambda v: f"{1 / v:.1f}" if v > 0 else "-"  # noqa: E731
    for kind, buckets in table.items():
        for b in buckets:
            f = b["fit"]
            pct = lambda v: f"{100 * v:.1f}%" if v is not None else "n/a"  # noqa: E731
            print(f"| {b['name']} | {f['samples']} | {b['overhead_us']:.2f} | {b['us_per_group']:.3f} | "
                  f"{inv(b['ns_per_mac'])} | {inv(b['ns_per_byte'])} | {inv(b['ns_per_patch'])} | "
                  f"{pct(f['median_rel_err'])} | {pct(f['max_rel_err'])} |")
    print("\nper kind:\n")
    print("| kind | samples | median rel err | 90th pct rel err |")
    print("|---|---:|---:|---:|")
    kind_fit = {}
    for kind in table:
        mine = [s for s in samples if s["kind"] == kind]
        if not mine:
            continue
        errs = rel_errors(table, mine, block)
        kind_fit[kind] = {"samples": len(mine), "median_rel_err": sig(float(np.median(errs)), 3),
                          "p90_rel_err": sig(float(np.percentile(errs, 90)), 3)}
        print(f"| {kind} | {len(mine)} | {100 * np.median(errs):.1f}% | {100 * np.percentile(errs, 90):.1f}% |")
    # The channels-per-group-only bucketing with the basic terms, for comparison.
    alt = {"conv": brief_buckets()}
    conv_samples = [s for s in samples if s["kind"] == "conv"]
    fit(alt, conv_samples, block)
    alt_errs = rel_errors(alt, conv_samples, block)
    alt_fit = {"median_rel_err": sig(float(np.median(alt_errs)), 3),
               "p90_rel_err": sig(float(np.percentile(alt_errs, 90)), 3)}
    print(f"\nconv with channels-per-group buckets only (1, 2-4, ..., 65+; overhead/MAC/byte terms), for "
          f"comparison: median rel err {100 * np.median(alt_errs):.1f}%, 90th pct {100 * np.percentile(alt_errs, 90):.1f}%")
    # The pure-MAC baseline (one throughput for every conv), for comparison.
    conv = [s for s in samples if s["kind"] == "conv"]
    x = np.array([[s["macs"] / 1e3] for s in conv])
    t = np.array([s["measured_us"] for s in conv])
    c = nnls_relative(x, t)[0]
    mac_errs = [abs(s["macs"] / 1e3 * c - s["measured_us"]) / s["measured_us"] for s in conv]
    mac_only = {"ns_per_mac": sig(c), "median_rel_err": sig(float(np.median(mac_errs)), 3),
                "p90_rel_err": sig(float(np.percentile(mac_errs, 90)), 3)}
    print(f"\nconv with one MAC-only throughput ({1 / c:.1f} GMAC/s), for comparison: median rel err "
          f"{100 * np.median(mac_errs):.1f}%, 90th pct {100 * np.percentile(mac_errs, 90):.1f}%")
    print("\ndecisions (measured / predicted us; * fastest measured, + cheapest predicted):\n")
    print("| decision | agrees | alternatives |")
    print("|---|---|---|")
    for d in decs:
        alts = d["alternatives"]
        fm = min(alts, key=lambda a: a["measured_us"])["name"]
        fp = min(alts, key=lambda a: a["predicted_us"])["name"]
        cells = "; ".join(f"{a['name']} {a['measured_us']:.0f}/{a['predicted_us']:.0f}"
                          f"{'*' if a['name'] == fm else ''}{'+' if a['name'] == fp else ''}" for a in alts)
        print(f"| {d['name']} | {'yes' if fm == fp else 'NO'} | {cells} |")
    return kind_fit, {"mac_only": mac_only, "cpg_buckets_only": alt_fit}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="calibration JSON to write (default: crates/ssc-cost/calibration.json)")
    ap.add_argument("--grid", choices=["tiny", "default", "large"], default="default")
    ap.add_argument("--threads", type=int, default=1, help="ORT intra-op threads (the table is for 1)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs per model")
    ap.add_argument("--max-runs", type=int, default=301, help="most clean timed runs per model")
    ap.add_argument("--min-runs", type=int, default=7, help="fewest clean timed runs per model")
    ap.add_argument("--budget", type=float, default=0.3, help="seconds of timed runs per model (soft)")
    ap.add_argument("--decision-runs", type=int, default=41, help="interleaved runs per decision alternative")
    ap.add_argument("--passes", type=int, default=3, help="times every model is measured (the lowest median is kept)")
    ap.add_argument("--date", default=None, help="date string recorded in the JSON (default: none)")
    ap.add_argument("--refit", metavar="JSON", default=None,
                    help="no measurement: refit the samples and decisions of an existing calibration JSON "
                         "(after changing buckets or terms)")
    args = ap.parse_args(argv)

    ort.set_default_logger_severity(3)
    block = nchwc_block()
    if args.refit:
        with open(args.refit) as f:
            old = json.load(f)
        samples, decs, info, machine = old["samples"], old["decisions"], old["measurement"], old["machine"]
        block, grid_name = old["nchwc_block"], old["grid"]
    else:
        samples, decs, info = measure(args)
        grid_name = args.grid
        machine = {
            "cpu_model": cpu_model(),
            "simd": sorted(f for f in cpu_flags() if f in ("avx", "avx2", "fma", "avx512f", "avx512bw",
                                                           "avx512vl", "avx512_vnni", "avx512_bf16")),
            "onnxruntime": ort.__version__,
            "onnx": onnx.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "threads": args.threads,
            "graph_optimization": "ORT_ENABLE_ALL",
            "date": args.date,
        }

    table = {"conv": conv_buckets(block)}
    table.update(json.loads(json.dumps(SIMPLE_BUCKETS)))
    fit(table, samples, block)
    for d in decs:
        for a in d["alternatives"]:
            a["predicted_us"] = sig(sum(predict(bucket_of(table, n, block), n) for n in a["nodes"]), 5)
    kind_fit, baselines = report(table, samples, decs, block)

    doc = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "generator": "scripts/calibrate_cost.py",
        "grid": grid_name,
        "units": {
            "time": "microseconds of single-thread ONNX Runtime latency of one node (the fixed per-run "
                    "overhead of run_with_iobinding, measurement.session_overhead_us, subtracted)",
            "overhead_us": "microseconds per node",
            "us_per_group": "microseconds per convolution group (Conv only; 0 for other kinds)",
            "ns_per_mac": "nanoseconds per multiply-accumulate (1 / GMAC/s)",
            "ns_per_byte": "nanoseconds per byte of bytes_in + bytes_out + weight_bytes (1 / GB/s)",
            "ns_per_patch": "nanoseconds per im2col patch element, macs / cout_per_group (Conv only)",
            "macs": "Conv N*Cout*Ho*Wo*(Cin/group)*kh*kw; MatMul/Gemm M*K*N; Pool output elements * window "
                    "taps (GlobalAveragePool: input elements); Elementwise, Gather, Other: output elements",
            "bytes": "float32 tensor bytes; weight_bytes counts initializers (weights, bias, indices)",
        },
        "formula": "time_us = overhead_us + groups * us_per_group + (macs * ns_per_mac + (bytes_in + bytes_out "
                   "+ weight_bytes) * ns_per_byte + macs / cout_per_group * ns_per_patch) / 1000",
        "nchwc_block": block,
        "machine": machine,
        "measurement": info,
        "buckets": table,
        "fit_by_kind": kind_fit,
        "conv_baselines": baselines,
        "samples": samples,
        "decisions": decs,
    }
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(f"\nwrote {args.out} ({len(samples)} samples, {len(decs)} decisions)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
