#!/usr/bin/env python3
"""Executor conformance: `ssc-opt run` against ONNX Runtime on real CNN architectures.

Why this exists: the reference executor is the oracle for every rewrite ssc-opt makes, so it
must agree with an independent implementation on the networks ssc-opt targets. For each model
(our exported architectures: ResNet-18/50, MobileNetV2, SqueezeNet, ShuffleNetV2, DenseNet-121,
EfficientNet-B0, RegNetX, each with BatchNorm folded and unfolded) it feeds seeded random inputs
to both `ssc-opt run` and onnxruntime (CPU, 1 thread, ORT_DISABLE_ALL) and compares every output
with the norm-wise relative error max|a-b| / max|a|.

Tolerance 1e-4: the executor accumulates convolutions in f64 while ORT uses f32 with its own
summation order; through a deep network their difference stays around 1e-6 relative (measured:
under 1e-6 on every committed model), so 1e-4 leaves two orders of magnitude for honest
rounding while any real bug (a wrong pad, a missed bias, a transposed weight) moves outputs by a
large fraction of their scale. Element-wise relative error is not used: it is ill-conditioned
where an output cancels to about zero.

The ONNX test-data folders are checked by the Rust test `crates/ssc-exec/tests/onnx_testdata.rs`
(run by `cargo test`); this script covers the architectures, and `--models-dir` points it at the
full-size models a benchmark script generates.

Usage: executor.py --ssc-opt BIN [--models-dir DIR ...] [--seeds N] [--rtol 1e-4]
Last line: "executor: N passed, M failed".
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(a))), 1e-30)


def safe_name(name: str) -> str:
    """The file name `ssc-opt run` gives an output."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) + ".npy"


def feeds_for(model: onnx.ModelProto, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim]
        dt = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        feeds[vi.name] = rng.standard_normal(shape).astype(dt)
    return feeds


def check(ssc: str, path: str, seeds: int, rtol: float) -> tuple[bool, float, str]:
    model = onnx.load(path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            feeds = feeds_for(model, seed)
            args = [ssc, "run", path, "--output-dir", tmp, "-q"]
            for k, v in feeds.items():
                f = os.path.join(tmp, f"in_{len(args)}.npy")
                np.save(f, v)
                args += ["--input", f"{k}={f}"]
            p = subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL, timeout=600)
            if p.returncode != 0:
                return False, worst, p.stderr.decode(errors="replace").strip().splitlines()[-1]
            want = sess.run(names, feeds)
            for n, w in zip(names, want):
                got = np.load(os.path.join(tmp, safe_name(n)))
                if got.shape != w.shape or got.dtype != w.dtype:
                    return False, worst, f"output {n!r}: {got.dtype}{list(got.shape)} vs ORT {w.dtype}{list(w.shape)}"
                worst = max(worst, rel_err(w, got))
    ok = worst <= rtol
    return ok, worst, "" if ok else f"rel err {worst:.3e} > {rtol:g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ssc-opt", required=True)
    ap.add_argument("--models-dir", action="append", help="default: tests/models (repeatable)")
    ap.add_argument("--seeds", type=int, default=2, help="random input sets per model")
    ap.add_argument("--rtol", type=float, default=1e-4)
    args = ap.parse_args()
    dirs = args.models_dir or [os.path.join(REPO, "tests", "models")]
    rows = []
    t0 = time.monotonic()
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*.onnx"))):
            t = time.monotonic()
            ok, err, why = check(args.ssc_opt, path, args.seeds, args.rtol)
            rows.append((os.path.basename(d.rstrip("/")), os.path.basename(path), ok, err, why, time.monotonic() - t))
    print(f"\n{'folder':<10} {'model':<34} {'max rel err':>12} {'seconds':>8}  result")
    for folder, name, ok, err, why, secs in rows:
        print(f"{folder:<10} {name:<34} {err:>12.3e} {secs:>8.2f}  {'ok' if ok else 'FAIL: ' + why}")
    failed = sum(1 for r in rows if not r[2])
    print(f"\n{len(rows)} models, rtol {args.rtol:g}, {args.seeds} seeded inputs each, {time.monotonic() - t0:.1f} s")
    print(f"executor: {len(rows) - failed} passed, {failed} failed")
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
