#!/usr/bin/env python3
"""Generate the malformed-input corpus under tests/malformed/.

Why this exists: ssc-opt promises that bad input (not ONNX at all, a broken
protobuf, or a protobuf that breaks an ONNX rule) ends with a one-line error
naming the file and the node or field at fault, exit code 2, no panic and no
partial output file. This script builds one tiny file per way a model can be
wrong, deterministically (fixed seeds, no timestamps), so the corpus can be
rebuilt byte-for-byte and reviewed. It also writes the two descriptions of the
corpus from one list, so they cannot drift apart:

    tests/malformed/expected.txt  machine-readable manifest, read by
                                  crates/ssc-opt-cli/tests/malformed.rs
                                  (file <TAB> outcome <TAB> message fragment)
    tests/malformed/README.md     the same as a table, for people

Outcomes: ``error`` (exit 2, one ``ssc-opt: error:`` line containing the
fragment), ``warn`` (exit 0, a ``warning:`` line containing the fragment),
``ok`` (exit 0, no warning: the valid control case) and ``data`` (not a model:
an auxiliary file another case points at).

The files also seed the importer's fuzz corpus (scripts/fuzz.sh). Cases named
``fuzz_*`` or marked as regressions reproduce crashes the fuzzer or review
found, so they never come back.

Usage: python scripts/make_malformed.py [--out tests/malformed]
Needs onnx and numpy (scripts/venv.sh installs them).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
from onnx import TensorProto, helper

IR = 8
OPSET = [helper.make_opsetid("", 17)]

CASES: list[tuple[str, str, str, str]] = []  # (file, outcome, fragment, why)


def case(name: str, outcome: str, fragment: str, why: str, data: bytes, out: str) -> None:
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    CASES.append((name, outcome, fragment, why))


def weight(dims=(3, 2), **fields) -> TensorProto:
    """The `W` initializer of the base model; keyword fields override its storage."""
    t = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=list(dims))
    if not fields:
        t.raw_data = np.arange(6, dtype="<f4").tobytes()
    for k, v in fields.items():
        if k in ("float_data", "external_data"):
            getattr(t, k).extend(v)
        else:
            setattr(t, k, v)
    return t


def model(nodes=None, inits=None, outputs=None, ir=IR, inputs=None) -> onnx.ModelProto:
    """X[1,3] @ W[3,2] -> Y[1,2]: the smallest valid model, with parts replaceable."""
    if nodes is None:
        nodes = [helper.make_node("MatMul", ["X", "W"], ["Y"], name="mm")]
    if inits is None:
        inits = [weight()]
    if inputs is None:
        inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3])]
    if outputs is None:
        outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])]
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=OPSET, producer_name="make_malformed")
    m.ir_version = ir
    return m


def ser(m: onnx.ModelProto) -> bytes:
    return m.SerializeToString()


def ext(location: str, offset: int | None = None, length: int | None = None) -> TensorProto:
    kv = [("location", location)]
    if offset is not None:
        kv.append(("offset", str(offset)))
    if length is not None:
        kv.append(("length", str(length)))
    t = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[3, 2])
    t.data_location = TensorProto.EXTERNAL
    for k, v in kv:
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def nested_if(depth: int) -> bytes:
    """A model whose If node's then-branch holds an If ... `depth` deep: past the decoder's
    recursion limit. Built on the wire, since the Python protobuf refuses such depth too."""
    g = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["o0"])],
        "b0",
        [],
        [helper.make_tensor_value_info("o0", TensorProto.FLOAT, [1, 3])],
    ).SerializeToString()
    for i in range(1, depth + 1):
        # AttributeProto{name=1, g=6, type=20 (GRAPH=5)}
        attr = _field(1, b"then_branch") + _field(6, g) + _varint(20 << 3) + _varint(5)
        # NodeProto{input=1, output=2, op_type=4, attribute=5}
        node = _field(1, b"c") + _field(2, f"o{i}".encode()) + _field(4, b"If") + _field(5, attr)
        # GraphProto{node=1, name=2}
        g = _field(1, node) + _field(2, f"b{i}".encode())
    # ModelProto{ir_version=1, graph=7}
    m = model()
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, g)


def valid_model() -> onnx.ModelProto:
    """A small but varied valid model: the control case, and the CLI tests' round-trip input."""
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["h"], name="mm", doc_string="x @ w"),
        helper.make_node("Constant", [], ["k"], name="k", value=helper.make_tensor("kv", TensorProto.FLOAT, [2], [0.5, -1.0])),
        helper.make_node("Add", ["h", "k"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape"], ["Y"], name="reshape"),
        helper.make_node("Shape", ["X"], ["xs"], name="shape_of_x"),
    ]
    shape = TensorProto(name="shape", data_type=TensorProto.INT64, dims=[2])
    shape.int64_data.extend([2, 1])
    outputs = [
        helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 1]),
        helper.make_tensor_value_info("xs", TensorProto.INT64, [2]),
    ]
    m = model(nodes=nodes, inits=[weight(), shape], outputs=outputs)
    m.graph.value_info.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 2]))
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    m.doc_string = "the control case of tests/malformed"
    helper.set_model_props(m, {"purpose": "test", "seed": "none"})
    onnx.checker.check_model(m, full_check=True)
    return m


def build(out: str) -> None:
    valid = ser(model())
    case("valid.onnx", "ok", "", "nothing: the control case (exit 0, no warning)", ser(valid_model()), out)

    # --- not a protobuf / not a model -------------------------------------------------------
    case("empty.onnx", "error", "file is empty", "zero bytes", b"", out)
    rng = np.random.default_rng(20240601)
    case(
        "random_bytes.onnx",
        "error",
        "not an ONNX model",
        "512 seeded random bytes",
        rng.integers(0, 256, 512, dtype=np.uint8).tobytes(),
        out,
    )
    case(
        "truncated.onnx",
        "error",
        "not an ONNX model",
        "a valid model cut in half",
        valid[: len(valid) // 2],
        out,
    )
    case(
        "readme_text.onnx",
        "error",
        "not an ONNX model",
        "a README-like text file",
        b"# My model\n\nThis folder holds the exported network.\nRun `make` to rebuild it.\n",
        out,
    )
    case(
        "model.json",
        "error",
        "not an ONNX model",
        "a JSON description of a model",
        b'{"ir_version": 8, "graph": {"node": [{"op_type": "Relu"}]}}\n',
        out,
    )
    no_graph = onnx.ModelProto(ir_version=IR, producer_name="make_malformed")
    no_graph.opset_import.extend(OPSET)
    case("no_graph.onnx", "error", "ModelProto.graph is missing", "a model without a graph", ser(no_graph), out)
    no_ir = model()
    no_ir.ClearField("ir_version")
    case("no_ir_version.onnx", "error", "ModelProto.ir_version is missing", "ir_version unset", ser(no_ir), out)
    case(
        "deep_nesting.onnx",
        "error",
        "recursion limit",
        "If subgraphs nested 40 deep (past the decoder's recursion limit)",
        nested_if(40),
        out,
    )

    # --- wiring ---------------------------------------------------------------------------
    dangling = [
        helper.make_node("MatMul", ["X", "W"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "ghost"], ["Y"], name="add"),
    ]
    case(
        "dangling_input.onnx",
        "error",
        "node `add` (Add) reads `ghost`",
        "a node input that nothing produces",
        ser(model(nodes=dangling)),
        out,
    )
    dup = [
        helper.make_node("MatMul", ["X", "W"], ["Y"], name="mm"),
        helper.make_node("Relu", ["X"], ["Y"], name="relu"),
    ]
    case(
        "duplicate_output.onnx",
        "error",
        "node `relu` writes `Y`, which is already defined",
        "two nodes write the same output name",
        ser(model(nodes=dup)),
        out,
    )
    case(
        "output_not_produced.onnx",
        "error",
        "graph output `Z` is not produced",
        "a graph output that nothing produces",
        ser(model(outputs=[helper.make_tensor_value_info("Z", TensorProto.FLOAT, [1, 2])])),
        out,
    )
    cyc = [
        helper.make_node("Add", ["X", "b"], ["a"], name="p"),
        helper.make_node("Relu", ["a"], ["b"], name="q"),
        helper.make_node("MatMul", ["a", "W"], ["Y"], name="mm"),
    ]
    case("cycle.onnx", "error", "cycle", "two nodes that read each other's output", ser(model(nodes=cyc)), out)
    no_op = [helper.make_node("MatMul", ["X", "W"], ["Y"], name="mm")]
    no_op[0].ClearField("op_type")
    case("no_op_type.onnx", "error", "node `mm` has no op_type", "a node without op_type", ser(model(nodes=no_op)), out)

    # --- tensor data ----------------------------------------------------------------------
    case(
        "raw_data_short.onnx",
        "error",
        "initializer `W`: float tensor with dims [3, 2] needs 24 bytes of data but has 8",
        "raw_data shorter than dims call for",
        ser(model(inits=[weight(raw_data=b"\0" * 8)])),
        out,
    )
    case(
        "float_data_count.onnx",
        "error",
        "initializer `W`: float tensor with 6 elements has 5 typed values",
        "float_data count differs from dims",
        ser(model(inits=[weight(float_data=[1.0, 2.0, 3.0, 4.0, 5.0])])),
        out,
    )
    case(
        "negative_dims.onnx",
        "error",
        "initializer `W`: negative dimension -2",
        "a negative dim",
        ser(model(inits=[weight(dims=(3, -2), float_data=[0.0] * 6)])),
        out,
    )
    case(
        "dims_overflow.onnx",
        "error",
        "initializer `W`: dims [4294967296, 4294967296] overflow",
        "dims whose product overflows 64 bits",
        ser(model(inits=[weight(dims=(1 << 32, 1 << 32), raw_data=b"")])),
        out,
    )
    # Regressions: each of these once allocated, panicked or was accepted.
    case(
        "huge_typed_tensor.onnx",
        "error",
        "initializer `W`: float tensor with 1000000000000 elements has 0 typed values",
        "regression: 1e12 elements declared, no data (must not allocate 4 TB)",
        ser(model(inits=[weight(dims=(10**6, 10**6), float_data=[])])),
        out,
    )
    case(
        "dims_bytes_overflow.onnx",
        "error",
        "initializer `W`: dims [4611686018427387904] overflow",
        "regression: element count fits but its byte size overflows (was accepted with no data)",
        ser(model(inits=[weight(dims=(1 << 62,), raw_data=b"")])),
        out,
    )
    cplx = TensorProto(name="W", data_type=TensorProto.COMPLEX64, dims=[1 << 62, 2])
    case(
        "complex_overflow.onnx",
        "error",
        "initializer `W`",
        "regression: complex64 with 2^63 elements (2 floats each overflowed a multiply)",
        ser(model(inits=[cplx])),
        out,
    )
    bad_const = helper.make_node("Constant", [], ["Y"], name="const")
    vt = TensorProto(name="", data_type=TensorProto.FLOAT, dims=[1, 2], raw_data=b"\0" * 4)
    bad_const.attribute.append(helper.make_attribute("value", vt))
    case(
        "bad_attribute_tensor.onnx",
        "error",
        "node `const`: attribute `value`",
        "a Constant whose tensor is too short",
        ser(model(nodes=[bad_const], inits=[])),
        out,
    )

    # --- external data --------------------------------------------------------------------
    case(
        "external_missing.onnx",
        "error",
        "external_missing.bin: No such file",

        "external data file does not exist",
        ser(model(inits=[ext("external_missing.bin")])),
        out,
    )
    case(
        "external_traversal.onnx",
        "error",
        "location `../x` must be a relative path inside the model's directory",
        "external data location escapes the model's directory",
        ser(model(inits=[ext("../x")])),
        out,
    )
    case(
        "external_out_of_range.onnx",
        "error",
        "bytes 16..40 requested but the file has 24",
        "external data offset+length beyond the file",
        ser(model(inits=[ext("external_out_of_range.bin", offset=16, length=24)])),
        out,
    )
    case(
        "external_out_of_range.bin",
        "data",
        "",
        "the 24-byte data file external_out_of_range.onnx points into",
        np.arange(6, dtype="<f4").tobytes(),
        out,
    )

    # --- readable but unusual ---------------------------------------------------------------
    case(
        "future_ir.onnx",
        "warn",
        "IR version 99 is newer than the newest this build knows",
        "IR version 99, otherwise valid: read with a warning",
        ser(model(ir=99)),
        out,
    )


def conv_model(x_dims, y_dims, constant_weights=False, ir=IR) -> onnx.ModelProto:
    """x[?,3,8,8] -> Conv(4 filters, 3x3, same) -> Relu -> y, with the given declared dims."""
    w = np.linspace(-1.0, 1.0, 4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3)
    nodes, inits = [], []
    if constant_weights:
        # Paddle2ONNX stores weights as Constant nodes rather than initializers.
        nodes.append(
            helper.make_node("Constant", [], ["w"], name="w_const", value=onnx.numpy_helper.from_array(w, "w"))
        )
    else:
        inits.append(onnx.numpy_helper.from_array(w, "w"))
    nodes += [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_dims)],
        initializer=inits,
    )
    m = helper.make_model(g, opset_imports=OPSET, producer_name="make_malformed")
    m.ir_version = ir
    return m


def quirks(out: str) -> None:
    """Models exporters write that ONNX Runtime runs (with a warning at most): read them."""
    case(
        "negative_type_dim.onnx",
        "warn",
        "negative dimension in a declared type",
        "`dim_value: -1` for the batch in the input and output types, weights in a Constant node "
        "(as Paddle2ONNX writes them): read as a symbolic batch",
        ser(conv_model([-1, 3, 8, 8], [-1, 4, 8, 8], constant_weights=True)),
        out,
    )
    case(
        "wrong_declared_shape.onnx",
        "warn",
        "declared type float[1,seqlen] disagrees with the inferred float[1,4,8,8]",
        "an output declared with the wrong rank (as one PyTorch export of a recogniser does): "
        "inference uses what the ops compute, the output keeps the declaration",
        ser(conv_model([1, 3, 8, 8], [1, "seqlen"])),
        out,
    )
    m = conv_model([1, 3, 8, 8], [1, 4, 8, 8])
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.INT64
    case(
        "wrong_declared_elem.onnx",
        "error",
        "value `y`: declared type int64[1,4,8,8] disagrees with the inferred float[1,4,8,8]",
        "an output declared with the wrong element type (ONNX Runtime refuses it too)",
        ser(m),
        out,
    )
    m = model()
    m.ir_version = 0
    case(
        "ir_version_zero.onnx",
        "warn",
        "ModelProto.ir_version 0 is invalid",
        "ir_version present but 0 (ONNX Runtime loads it)",
        ser(m),
        out,
    )
    first = weight()
    first.raw_data = np.full(6, 7.0, dtype="<f4").tobytes()
    case(
        "duplicate_initializer.onnx",
        "warn",
        "initializer `W` is defined twice; using the later definition",
        "two initializers named `W` (ONNX Runtime warns and uses the later one)",
        ser(model(inits=[first, weight()])),
        out,
    )
    m = model()
    m.graph.value_info.append(helper.make_tensor_value_info("", TensorProto.FLOAT, [1]))
    case(
        "value_info_no_name.onnx",
        "warn",
        "a value_info entry has no name",
        "a value_info entry without a name (describes nothing; ONNX Runtime ignores it)",
        ser(m),
        out,
    )
    m = conv_model([1, 3, 8, 8], [1, 4, 8, 8])
    m.graph.initializer[0].CopyFrom(
        onnx.numpy_helper.from_array(np.ones((4, 2, 3, 3), dtype=np.float32), "w")
    )
    case(
        "conv_channel_mismatch.onnx",
        "error",
        "node `conv` (Conv): input has 3 channels but weight expects 2",
        "a Conv whose weight does not fit its input (ONNX Runtime loads it but cannot run it)",
        ser(m),
        out,
    )


def refused_by_ort_too(out: str) -> None:
    """Errors of the importer and of shape inference that ONNX Runtime shares (the audit of
    tests/conformance/malformed_ort.py runs ORT on each)."""
    m = model()
    m.graph.input.append(m.graph.input[0])
    case("input_twice.onnx", "error", "graph input `X` is listed twice",
         "one graph input listed twice", ser(m), out)
    m = model()
    m.graph.input[0].name = ""
    case("input_no_name.onnx", "error", "graph input has no name",
         "a graph input without a name", ser(m), out)
    n = helper.make_node("Gemm", ["X", "W"], ["Y"], name="mm")
    a = n.attribute.add()
    a.type, a.f = onnx.AttributeProto.FLOAT, 1.0
    case("attribute_no_name.onnx", "error", "node `mm` has an attribute with no name",
         "an attribute without a name", ser(model(nodes=[n])), out)
    c = helper.make_node("Constant", [], ["C"], name="const")
    a = c.attribute.add()
    a.name, a.type = "value", onnx.AttributeProto.TENSOR
    case("attribute_no_tensor.onnx", "error", "node `const`: tensor attribute `value` has no tensor",
         "a tensor attribute whose tensor is missing",
         ser(model(nodes=[c, helper.make_node("MatMul", ["X", "W"], ["Y"], name="mm")])), out)
    case("output_shadows_input.onnx", "error", "node `mm` writes `X`, which is already defined",
         "a node writing a graph input's name",
         ser(model(nodes=[helper.make_node("MatMul", ["X", "W"], ["X"], name="mm")],
                   outputs=[helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2])])), out)
    m = model()
    m.opset_import[0].ClearField("version")
    case("opset_no_version.onnx", "error", "opset_import for domain `` has no version",
         "an opset import without a version", ser(m), out)
    # Found by scripts/fuzz.sh: a value_info entry made the name readable although nothing
    # produces it, so export dropped it and the written model did not re-import.
    m = model(nodes=[helper.make_node("Relu", ["ghost"], ["Y"], name="relu")], inits=[])
    m.graph.value_info.append(helper.make_tensor_value_info("ghost", TensorProto.FLOAT, [1, 2]))
    case("fuzz_value_info_only_input.onnx", "error", "node `relu` (Relu) reads `ghost`",
         "regression: a node reads a name that only value_info declares", ser(m), out)
    m = model()
    m.graph.output[0].name = "ghost"
    m.graph.value_info.append(helper.make_tensor_value_info("ghost", TensorProto.FLOAT, [1, 2]))
    case("value_info_only_output.onnx", "error", "graph output `ghost` is not produced",
         "a graph output that only value_info declares", ser(m), out)
    shape = onnx.numpy_helper.from_array(np.array([2, 2], dtype=np.int64), "S")
    case("reshape_mismatch.onnx", "error", "node `r` (Reshape): cannot reshape 3 elements into 4",
         "a Reshape to a constant shape of another size (ORT loads it but cannot run it)",
         ser(model(nodes=[helper.make_node("Reshape", ["X", "S"], ["Y"], name="r")], inits=[shape],
                   outputs=[helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 2])])), out)


def write_manifests(out: str) -> None:
    with open(os.path.join(out, "expected.txt"), "w") as f:
        f.write("# Generated by scripts/make_malformed.py; do not edit.\n")
        f.write("# file<TAB>outcome<TAB>message fragment\n")
        for name, outcome, frag, _ in CASES:
            f.write(f"{name}\t{outcome}\t{frag}\n")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("# Malformed-input corpus\n\n")
        f.write(
            "Generated by `scripts/make_malformed.py` (do not edit by hand). Each model must make\n"
            "`ssc-opt IN -o OUT` exit 2 with one `ssc-opt: error:` line on stderr that names the file\n"
            "and contains the fragment below, with no panic and no output file left behind;\n"
            "`warn` cases exit 0 with a `warning:` line, `ok` (the control) exits 0 quietly, and `data`\n"
            "files are what other cases point at. `crates/ssc-opt-cli/tests/malformed.rs`\n"
            "checks every file here against `expected.txt`, and a file missing from it fails the\n"
            "test. The files also seed the importer's fuzz corpus (`scripts/fuzz.sh`).\n\n"
        )
        f.write("| file | what is wrong | outcome | message fragment |\n")
        f.write("| --- | --- | --- | --- |\n")
        for name, outcome, frag, why in CASES:
            shown = f"`` {frag} ``" if frag else ""
            f.write(f"| `{name}` | {why} | {outcome} | {shown} |\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "malformed"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    build(args.out)
    quirks(args.out)
    refused_by_ort_too(args.out)
    write_manifests(args.out)
    print(f"make_malformed: wrote {len(CASES)} files to {os.path.normpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
