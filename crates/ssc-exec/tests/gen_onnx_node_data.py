"""Writes the onnx package's per-operator (node) test cases to DIR/node, for a wider
conformance run of the reference executor than the data the onnx wheel ships.

The wheel ships model-level test data only; the node cases exist as Python generators
(onnx.backend.test.case.node). This writes each one as model.onnx + test_data_set_0/*.pb
(a TensorProto per tensor, a SequenceProto per sequence, an OptionalProto per optional, as onnx's
own `backend-test-tools generate-data` writes them), skipping cases with map values, and writing the outputs of the
few cases whose hand-written data is wrong (`REFERENCE_EXPECTED`) from onnx's reference
implementation. Then:

    python gen_onnx_node_data.py /tmp/onnx_nodedata
    SSC_EXEC_TESTDATA_DIR=/tmp/onnx_nodedata SSC_EXEC_TESTDATA_FOLDERS=node \
        cargo test -p ssc-exec --test onnx_testdata -- --nocapture
"""

import os
import shutil
import sys

from onnx import TensorProto, numpy_helper
from onnx.reference import ReferenceEvaluator
import onnx.backend.test.case.node as node_test

# Cases whose hand-written expected outputs are wrong, with why: their outputs are written as
# onnx's own ReferenceEvaluator computes them (which onnxruntime agrees with), so the case
# still checks the op instead of being dropped or passed by a wider bound.
REFERENCE_EXPECTED = {
    "test_averagepool_2d_ceil_last_window_starts_on_pad": (
        "the expected 0.2841 of channel 1 is not its window's average (0.8816 + 0.4353 + "
        "0.5772 + 0.6623) / 9 = 0.28404; the other channels are their averages rounded to four "
        "decimals, within the tolerance"
    ),
}


def main(out: str) -> None:
    written = 0
    for case in node_test.collect_testcases():
        if case.name in REFERENCE_EXPECTED:
            ref = ReferenceEvaluator(case.model)
            case.data_sets = [
                (ins, ref.run(None, {i.name: v for i, v in zip(case.model.graph.input, ins)}))
                for ins, _ in case.data_sets
            ]
            print(f"{case.name}: expected outputs from the reference evaluator ({REFERENCE_EXPECTED[case.name]})")
        d = os.path.join(out, "node", case.name)
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        ok = True
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(d, f"test_data_set_{i}")
            os.makedirs(ds)
            for kind, values, infos in (
                ("input", inputs, case.model.graph.input),
                ("output", outputs, case.model.graph.output),
            ):
                for j, v in enumerate(values):
                    info = infos[j]
                    kind_of = info.type.WhichOneof("value")
                    if kind_of not in ("tensor_type", "sequence_type", "optional_type"):
                        ok = False
                        continue
                    with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                        if kind_of == "sequence_type":
                            f.write(numpy_helper.from_list(v, info.name).SerializeToString())
                        elif kind_of == "optional_type":
                            f.write(numpy_helper.from_optional(v, info.name).SerializeToString())
                        elif isinstance(v, TensorProto):
                            f.write(v.SerializeToString())
                        else:
                            try:
                                f.write(numpy_helper.from_array(v, info.name).SerializeToString())
                            except Exception:  # noqa: BLE001 - types numpy_helper cannot encode
                                ok = False
        if ok:
            written += 1
        else:
            shutil.rmtree(d)
    print(f"wrote {written} node cases to {os.path.join(out, 'node')}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/onnx_nodedata")
