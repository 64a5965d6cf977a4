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
    # Only the last state requested (Y left empty), the oldest opset, no hidden_size attribute.
    r = rng(100)
    x, w, rr = f32(r, 7, 2, 3), f32(r, 1, 16, 3), f32(r, 1, 16, 4)
    add("ort_lstm_only_yh", "LSTM", [x, w, rr], 2, 7, out_names=["", "y_h"])
    x, w, rr = f32(r, 7, 2, 3), f32(r, 1, 12, 3), f32(r, 1, 12, 4)
    add("ort_gru_opset7", "GRU", [x, w, rr], 2, 7, hidden_size=4)
    # A long sequence: the recurrence must stay accurate (and quick) over 100 steps.
    x, w, rr = f32(r, 100, 1, 32), f32(r, 2, 4 * 64, 32, scale=0.2), f32(r, 2, 4 * 64, 64, scale=0.2)
    add("ort_lstm_long_bidirectional", "LSTM", [x, w, rr], 3, 14, direction="bidirectional", hidden_size=64)


def main(out: str) -> None:
    recurrent_cases()
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
