"""Writes single-node cases whose expected outputs come from onnxruntime, to DIR/ort, in the
layout of ONNX's node test data (model.onnx + test_data_set_0/{input,output}_k.pb).

Why: ONNX's node cases (gen_onnx_node_data.py) were produced by its reference implementation,
which ignores several attributes deployed models use (LSTM/GRU/RNN `sequence_lens`,
`activations`, `clip`, `input_forget`), and they exercise each op on a handful of shapes. These
cases hold the executor to onnxruntime, the runtime users deploy on, across the attribute and
input combinations the node suite leaves out. The same Rust harness runs both folders:

    python gen_ort_cases.py /tmp/onnx_nodedata
    SSC_EXEC_TESTDATA_DIR=/tmp/onnx_nodedata SSC_EXEC_TESTDATA_FOLDERS=ort \
        cargo test -p ssc-exec --test onnx_testdata -- --nocapture

Inputs are seeded, so the files are the same on every run with the pinned onnxruntime.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

CASES: list[tuple[str, onnx.ModelProto, list[np.ndarray]]] = []


def add(name: str, op: str, inputs: list, n_out: int, opset: int, domain: str = "", out_names=None, **attrs) -> None:
    """One `op` node whose present inputs are graph inputs (`None` is an empty slot) and whose
    outputs `y0..` are graph outputs (an empty name in `out_names` leaves that slot unused)."""
    names = []
    graph_inputs = []
    feeds = []
    for k, a in enumerate(inputs):
        if a is None:
            names.append("")
            continue
        n = f"x{k}"
        names.append(n)
        graph_inputs.append(helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape))
        feeds.append(a)
    outs = out_names if out_names is not None else [f"y{k}" for k in range(n_out)]
    node = helper.make_node(op, names, outs, domain=domain, **attrs)
    graph = helper.make_graph(
        [node], name, graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outs if o]
    )
    imports = [helper.make_opsetid("", opset)]
    if domain:
        imports.append(helper.make_opsetid(domain, 1))
    model = helper.make_model(graph, opset_imports=imports, producer_name="gen_ort_cases")
    model.ir_version = 8 if opset < 21 else 10
    CASES.append((name, model, feeds))


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def f32(r: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (r.standard_normal(shape) * scale).astype(np.float32)


def recurrent_cases() -> None:
    """LSTM, GRU and RNN over directions and every optional input and attribute (onnxruntime
    refuses `layout=1`; the node suite's `*_batchwise` cases cover it)."""
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}
    acts = {
        "LSTM": [["HardSigmoid", "LeakyRelu", "Affine"], ["Sigmoid", "ScaledTanh", "Softsign"]],
        "GRU": [["HardSigmoid", "Elu"], ["Sigmoid", "Softplus"]],
        "RNN": [["Relu"], ["ThresholdedRelu"]],
    }
    seed = 0
    for op, (direction, layout, variant) in itertools.product(
        ["LSTM", "GRU", "RNN"],
        itertools.product(["forward", "reverse", "bidirectional"], [0], ["plain", "full", "acts"]),
    ):
        seed += 1
        r = rng(seed)
        nd = 2 if direction == "bidirectional" else 1
        seq, batch, inp, hid = 5, 3, 4, 6
        g = gates[op]
        x = f32(r, seq, batch, inp) if layout == 0 else f32(r, batch, seq, inp)
        w = f32(r, nd, g * hid, inp, scale=0.5)
        rr = f32(r, nd, g * hid, hid, scale=0.5)
        attrs = {"direction": direction, "hidden_size": hid}
        if layout:
            attrs["layout"] = 1
        ins = [x, w, rr]
        if variant != "plain":
            state = (nd, batch, hid) if layout == 0 else (batch, nd, hid)
            ins.append(f32(r, nd, 2 * g * hid, scale=0.5))
            # Lengths include a full, a shorter and an empty sequence.
            ins.append(np.array([seq, 3, 0], dtype=np.int32))
            ins.append(f32(r, *state))
            if op == "LSTM":
                ins.append(f32(r, *state))
                ins.append(f32(r, nd, 3 * hid, scale=0.5))
            if variant == "acts":
                names = acts[op][0] + (acts[op][1] if nd == 2 else [])
                attrs["activations"] = names
                attrs["activation_alpha"] = [0.3, 0.7, 1.5][: len(names)]
                attrs["activation_beta"] = [0.2, 0.4][: len(names)]
            else:
                attrs["clip"] = 0.8
                if op == "LSTM":
                    attrs["input_forget"] = 1
                if op == "GRU":
                    attrs["linear_before_reset"] = 1
        n_out = 3 if op == "LSTM" else 2
        name = f"ort_{op.lower()}_{direction}_layout{layout}_{variant}"
        add(name, op, ins, n_out, 14, **attrs)
    # Only the last state requested (Y left empty), and an old opset.
    r = rng(100)
    x, w, rr = f32(r, 7, 2, 3), f32(r, 1, 16, 3), f32(r, 1, 16, 4)
    add("ort_lstm_only_yh", "LSTM", [x, w, rr], 2, 7, out_names=["", "y_h"], hidden_size=4)
    x, w, rr = f32(r, 7, 2, 3), f32(r, 1, 12, 3), f32(r, 1, 12, 4)
    add("ort_gru_opset7", "GRU", [x, w, rr], 2, 7, hidden_size=4)
    # A long sequence: the recurrence must stay accurate (and quick) over 100 steps.
    x, w, rr = f32(r, 100, 1, 32), f32(r, 2, 4 * 64, 32, scale=0.2), f32(r, 2, 4 * 64, 64, scale=0.2)
    add("ort_lstm_long_bidirectional", "LSTM", [x, w, rr], 3, 14, direction="bidirectional", hidden_size=64)


def quant_cases() -> None:
    """The quantised ops: per-tensor, per-channel and blocked parameters, both signednesses,
    bias, padding, strides and groups."""
    r = rng(200)

    def u8(*shape):
        return r.integers(0, 256, shape).astype(np.uint8)

    def i8(*shape):
        return r.integers(-128, 128, shape).astype(np.int8)

    def sc(*shape, lo=0.005, hi=0.05):
        return r.uniform(lo, hi, shape).astype(np.float32)

    x = f32(r, 2, 3, 5, 4, scale=3.0)
    add("ort_quantize_per_tensor_u8", "QuantizeLinear", [x, sc(), np.array(128, np.uint8)], 1, 13)
    add("ort_quantize_per_axis_i8", "QuantizeLinear", [x, sc(3), i8(3) // 4], 1, 13)
    add("ort_quantize_axis_negative", "QuantizeLinear", [x, sc(4), u8(4)], 1, 13, axis=-1)
    add("ort_quantize_no_zero_point", "QuantizeLinear", [x, sc()], 1, 13)
    add("ort_quantize_blocked_i8", "QuantizeLinear", [x, sc(2, 3, 3, 4), i8(2, 3, 3, 4) // 4], 1, 21, axis=2, block_size=2)
    add("ort_quantize_u16", "QuantizeLinear", [x, sc(), np.array(30000, np.uint16)], 1, 21)
    q = u8(2, 3, 5, 4)
    add("ort_dequantize_per_tensor", "DequantizeLinear", [q, sc(), np.array(7, np.uint8)], 1, 13)
    add("ort_dequantize_per_axis", "DequantizeLinear", [i8(2, 3, 5, 4), sc(5), i8(5)], 1, 13, axis=2)
    add("ort_dequantize_int32", "DequantizeLinear", [r.integers(-(2**20), 2**20, (6,)).astype(np.int32), sc()], 1, 13)
    add("ort_dequantize_blocked", "DequantizeLinear", [q, sc(2, 3, 5, 2), u8(2, 3, 5, 2)], 1, 21, axis=-1, block_size=3)
    for k, data in enumerate([f32(r, 3, 7, scale=4.0), -np.abs(f32(r, 10)), np.abs(f32(r, 2, 5)) + 1.0]):
        add(f"ort_dynamic_quantize_{k}", "DynamicQuantizeLinear", [data], 3, 11)
    add("ort_matmul_integer_u8", "MatMulInteger", [u8(2, 4, 6), u8(6, 5), np.array(3, np.uint8), np.array(200, np.uint8)], 1, 10)
    add("ort_matmul_integer_per_column", "MatMulInteger", [u8(4, 6), i8(6, 5), np.array(128, np.uint8), i8(5)], 1, 10)
    add("ort_matmul_integer_no_zero_points", "MatMulInteger", [u8(3, 4), u8(4, 2)], 1, 10)
    xc = u8(1, 4, 7, 6)
    add("ort_conv_integer", "ConvInteger", [xc, u8(2, 4, 3, 3), np.array(100, np.uint8), np.array(120, np.uint8)], 1, 10, pads=[1, 0, 2, 1], strides=[2, 1])
    add("ort_conv_integer_i8_weights", "ConvInteger", [xc, i8(6, 2, 2, 3)], 1, 10, group=2, dilations=[2, 1])
    for name, w, ws, wz in [
        ("per_tensor_u8", u8(4, 4, 3, 3), sc(), np.array(128, np.uint8)),
        ("per_channel_i8", i8(4, 4, 3, 3), sc(4, lo=0.001, hi=0.01), np.zeros(4, np.int8)),
    ]:
        add(f"ort_qlinearconv_{name}", "QLinearConv",
            [xc, np.array(0.02, np.float32), np.array(110, np.uint8), w, ws, wz, np.array(0.5, np.float32), np.array(120, np.uint8),
             r.integers(-2000, 2000, 4).astype(np.int32)], 1, 10, pads=[1, 1, 1, 1], strides=[1, 2])
    xi = i8(2, 6, 5, 5)
    add("ort_qlinearconv_i8_grouped", "QLinearConv",
        [xi, np.array(0.05, np.float32), np.array(-3, np.int8), i8(6, 2, 3, 3), sc(6, lo=0.001, hi=0.01), np.zeros(6, np.int8),
         np.array(0.3, np.float32), np.array(5, np.int8)], 1, 10, group=3, auto_pad="SAME_UPPER")
    add("ort_qlinearmatmul_u8", "QLinearMatMul",
        [u8(2, 3, 8), np.array(0.03, np.float32), np.array(100, np.uint8), u8(8, 5), np.array(0.02, np.float32),
         np.array(130, np.uint8), np.array(0.4, np.float32), np.array(90, np.uint8)], 1, 10)
    add("ort_qlinearmatmul_i8_per_column", "QLinearMatMul",
        [i8(4, 8), np.array(0.03, np.float32), np.array(-5, np.int8), i8(8, 5), sc(5), np.zeros(5, np.int8),
         np.array(0.4, np.float32), np.array(3, np.int8)], 1, 10)


def detection_cases() -> None:
    """Detection post-processing: TopK with ties, NMS in both box formats and with every
    threshold, the scatters with their reductions, GatherND, CumSum, OneHot, Trilu, Einsum and
    GridSample in every mode."""
    r = rng(300)
    ties = r.integers(0, 4, (3, 7)).astype(np.float32)
    for largest in (0, 1):
        add(f"ort_topk_ties_largest{largest}", "TopK", [ties, np.array([4], np.int64)], 2, 11, largest=largest)
    add("ort_topk_axis0_int", "TopK", [r.integers(-5, 5, (6, 3)).astype(np.int32), np.array([3], np.int64)], 2, 11, axis=0)
    add("ort_topk_k0", "TopK", [f32(r, 2, 5), np.array([0], np.int64)], 2, 11)
    # Boxes on a coarse grid so that IoUs sit near the thresholds.
    for center in (0, 1):
        boxes = (r.integers(0, 8, (2, 30, 4)) / 2).astype(np.float32)
        if center:
            boxes[..., 2:] = np.abs(boxes[..., 2:]) + 0.5
        scores = (r.integers(0, 10, (2, 3, 30)) / 10).astype(np.float32)
        add(f"ort_nms_center{center}", "NonMaxSuppression",
            [boxes, scores, np.array([5], np.int64), np.array([0.3], np.float32), np.array([0.25], np.float32)],
            1, 11, center_point_box=center)
    add("ort_nms_no_thresholds", "NonMaxSuppression",
        [(r.integers(0, 8, (1, 12, 4)) / 2).astype(np.float32), r.random((1, 2, 12)).astype(np.float32),
         np.array([100], np.int64)], 1, 11)
    data = f32(r, 4, 5, 3)
    for red in ("none", "add", "mul", "max", "min"):
        idx = np.array([[1], [3], [1], [-1]], np.int64)
        add(f"ort_scatternd_{red}", "ScatterND", [data, idx, f32(r, 4, 5, 3)], 1, 18,
            **({} if red == "none" else {"reduction": red}))
        if red != "none":
            ei = np.array([[0, 1, 1], [-1, 2, 0]], np.int64)
            add(f"ort_scatter_elements_{red}", "ScatterElements",
                [f32(r, 4, 3), ei, f32(r, 2, 3)], 1, 18, axis=0, reduction=red)
    add("ort_scatter_elements_axis_neg", "ScatterElements",
        [f32(r, 3, 4), np.array([[3, -4], [0, 2]], np.int64), f32(r, 2, 2)], 1, 13, axis=-1)
    add("ort_gathernd_batch", "GatherND", [f32(r, 2, 3, 4), np.array([[[1], [0]], [[2], [-1]]], np.int64)], 1, 13, batch_dims=1)
    for excl, rev in itertools.product((0, 1), (0, 1)):
        add(f"ort_cumsum_e{excl}_r{rev}", "CumSum", [f32(r, 3, 4, 2), np.array(-2, np.int64)], 1, 14, exclusive=excl, reverse=rev)
    add("ort_cumsum_int", "CumSum", [r.integers(-9, 9, (5, 3)).astype(np.int64), np.array(0, np.int32)], 1, 14)
    add("ort_onehot_negative", "OneHot",
        [np.array([[0, -1, 4], [-5, 2, 9]], np.int64), np.array(5, np.int64), np.array([-1.0, 3.0], np.float32)], 1, 11, axis=1)
    for upper, k in itertools.product((0, 1), (-2, 0, 3)):
        add(f"ort_trilu_u{upper}_k{k}", "Trilu", [f32(r, 2, 4, 5), np.array(k, np.int64)], 1, 14, upper=upper)
    for name, eq, shapes in [
        ("batch_matmul", "bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
        ("transpose", "ijk->kji", [(2, 3, 4)]),
        ("trace", "ii", [(4, 4)]),
        ("diagonal", "ii->i", [(3, 3)]),
        ("ellipsis_broadcast", "...ij,...jk->...ik", [(2, 1, 3, 4), (1, 5, 4, 2)]),
        ("three_operands", "ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
        ("implicit", "kj,ji", [(3, 4), (4, 2)]),
        ("outer", "i,j->ij", [(3,), (4,)]),
        ("sum_all", "ijk->", [(2, 3, 4)]),
        ("attention", "bhqd,bhkd->bhqk", [(1, 2, 5, 8), (1, 2, 6, 8)]),
    ]:
        add(f"ort_einsum_{name}", "Einsum", [f32(r, *s) for s in shapes], 1, 12, equation=eq)
    img = f32(r, 2, 3, 5, 6)
    grid = r.uniform(-1.3, 1.3, (2, 4, 7, 2)).astype(np.float32)
    for mode, pad, align in itertools.product(("bilinear", "nearest", "bicubic"), ("zeros", "border", "reflection"), (0, 1)):
        add(f"ort_gridsample_{mode}_{pad}_a{align}", "GridSample", [img, grid], 1, 16,
            mode=mode, padding_mode=pad, align_corners=align)
    vol = f32(r, 1, 2, 3, 4, 5)
    vgrid = r.uniform(-1.2, 1.2, (1, 2, 3, 4, 3)).astype(np.float32)
    for mode, pad in itertools.product(("linear", "nearest"), ("zeros", "border", "reflection")):
        add(f"ort_gridsample_3d_{mode}_{pad}", "GridSample", [vol, vgrid], 1, 20, mode=mode, padding_mode=pad)


def main(out: str) -> None:
    recurrent_cases()
    quant_cases()
    detection_cases()
    root = os.path.join(out, "ort")
    if os.path.exists(root):
        shutil.rmtree(root)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    for name, model, feeds in CASES:
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        inputs = {i.name: a for i, a in zip(sess.get_inputs(), feeds)}
        outputs = sess.run(None, inputs)
        d = os.path.join(root, name)
        ds = os.path.join(d, "test_data_set_0")
        os.makedirs(ds)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(model.SerializeToString())
        for kind, values, infos in (("input", feeds, model.graph.input), ("output", outputs, model.graph.output)):
            for k, (v, info) in enumerate(zip(values, infos)):
                with open(os.path.join(ds, f"{kind}_{k}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(np.asarray(v), info.name).SerializeToString())
    print(f"wrote {len(CASES)} onnxruntime cases to {root}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/onnx_nodedata")
