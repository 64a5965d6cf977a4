#!/usr/bin/env python3
"""Holds ssc-opt's refusals to ONNX Runtime's: we refuse a model only where ORT does.

Why this exists: ssc-opt promises to read whatever ONNX Runtime runs (warning on quirks) and to
refuse, with one clear line, only what ORT refuses or what is truly ambiguous. The malformed
corpus (tests/malformed/, from scripts/make_malformed.py) records what ssc-opt does with each
case (`error`, `warn`, `ok`; `crates/ssc-opt-cli/tests/malformed.rs` checks that). This script
checks the other side with onnxruntime (CPU): every `error` case must be refused by ORT too
(at load, or when run on seeded inputs), and every `warn` / `ok` case must load and run in ORT,
except the few cases listed in MORE_LIBERAL below, which ssc-opt reads although ORT does not.

Usage: malformed_ort.py [--ssc-opt BIN]   (the binary is not needed; the flag is accepted for
the scripts/test.sh hook). Last line: "malformed_ort: N passed, M failed".
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnxruntime as ort

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(REPO, "tests", "malformed")

# Cases ssc-opt reads although ORT refuses them, and why that is the better call.
MORE_LIBERAL = {
    "future_ir.onnx": "a newer IR version is read with a warning: the fields we know keep their meaning",
}

NP_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8,
}


def ort_verdict(path: str) -> str:
    """`ok`, or why ORT refused the model (first line)."""
    ort.set_default_logger_severity(4)
    try:
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as e:
        return "load: " + str(e).splitlines()[0][:160]
    rng = np.random.default_rng(0)
    feeds = {}
    for i in s.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        feeds[i.name] = rng.standard_normal(shape).astype(NP_TYPES.get(i.type, np.float32))
    try:
        s.run(None, feeds)
    except Exception as e:
        return "run: " + str(e).splitlines()[0][:160]
    return "ok"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ssc-opt", help="unused (accepted for the scripts/test.sh hook)")
    ap.parse_args()
    passed = failed = 0
    with open(os.path.join(CORPUS, "expected.txt")) as f:
        lines = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    for line in lines:
        name, outcome = line.split("\t")[:2]
        if outcome == "data":
            continue
        v = ort_verdict(os.path.join(CORPUS, name))
        ort_refuses = v != "ok"
        if outcome == "error":
            ok = ort_refuses
            want = "ORT refuses it too"
        elif name in MORE_LIBERAL:
            ok = ort_refuses
            want = f"ORT refuses it; we read it ({MORE_LIBERAL[name]})"
        else:
            ok = not ort_refuses
            want = "ORT runs it too"
        passed += ok
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name:<30} ssc-opt: {outcome:<5} ORT: {v}")
        if not ok:
            print(f"     expected: {want}")
    print(f"malformed_ort: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
