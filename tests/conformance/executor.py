#!/usr/bin/env python3
"""Executor conformance: both engines of `ssc-opt run` against ONNX Runtime on real CNN architectures.

Why this exists: the reference executor is the oracle for every rewrite ssc-opt makes, and the
JIT is what `ssc-opt run` uses by default (`--engine auto`), so both must agree with an
independent implementation on the networks ssc-opt targets. For each model (our exported
architectures: ResNet-18/50, MobileNetV2, SqueezeNet, ShuffleNetV2, DenseNet-121,
EfficientNet-B0, RegNetX, each with BatchNorm folded and unfolded; and tests/models/deploy:
QDQ and QOperator quantisation, a CRNN with an LSTM) it feeds seeded random inputs
to `ssc-opt run --engine reference`, `ssc-opt run --engine jit` and onnxruntime (CPU, 1 thread,
ORT_DISABLE_ALL) and compares every output with the norm-wise relative error max|a-b| / max|a|:
each engine against ORT, and the JIT against the reference. A model passes only when all three
comparisons do.

Tolerance 1e-4: the executor accumulates convolutions in f64 while ORT uses f32 with its own
summation order; through a deep network their difference stays around 1e-6 relative (measured:
under 1e-6 on every committed model), so 1e-4 leaves two orders of magnitude for honest
rounding while any real bug (a wrong pad, a missed bias, a transposed weight) moves outputs by a
large fraction of their scale. Element-wise relative error is not used: it is ill-conditioned
where an output cancels to about zero.

The ONNX test-data folders are checked by the Rust tests `crates/ssc-exec/tests/onnx_testdata.rs`
and `crates/ssc-jit/tests/onnx_testdata.rs` (run by `cargo test`); this script covers the architectures, and `--models-dir` points it at the
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


ENGINES = ("reference", "jit")


def run_engine(ssc: str, path: str, engine: str, feeds: dict[str, np.ndarray], names: list[str], tmp: str):
    """Runs `ssc-opt run --engine ENGINE`; returns its outputs by name, or the error's last line."""
    out_dir = os.path.join(tmp, engine)
    os.makedirs(out_dir, exist_ok=True)
    args = [ssc, "run", path, "--engine", engine, "--output-dir", out_dir, "-q"]
    for k, v in feeds.items():
        f = os.path.join(tmp, f"in_{len(args)}.npy")
        np.save(f, v)
        args += ["--input", f"{k}={f}"]
    p = subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL, timeout=600)
    if p.returncode != 0:
        lines = p.stderr.decode(errors="replace").strip().splitlines()
        return f"{engine}: {lines[-1] if lines else f'exit {p.returncode}'}"
    return {n: np.load(os.path.join(out_dir, safe_name(n))) for n in names}


def check(ssc: str, path: str, seeds: int, rtol: float) -> dict[str, tuple[bool, float, str]]:
    """Per comparison ("reference" and "jit" vs ORT, "jit-ref" JIT vs reference): (ok, worst, why)."""
    model = onnx.load(path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    res = {k: [True, 0.0, ""] for k in (*ENGINES, "jit-ref")}

    def fail(key: str, why: str) -> None:
        if res[key][0]:
            res[key][0], res[key][2] = False, why

    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            feeds = feeds_for(model, seed)
            want = dict(zip(names, sess.run(names, feeds)))
            got = {e: run_engine(ssc, path, e, feeds, names, tmp) for e in ENGINES}
            for e in ENGINES:
                if isinstance(got[e], str):
                    fail(e, got[e])
                    fail("jit-ref", got[e])
                    continue
                for n in names:
                    g, w = got[e][n], want[n]
                    if g.shape != w.shape or g.dtype != w.dtype:
                        fail(e, f"output {n!r}: {g.dtype}{list(g.shape)} vs ORT {w.dtype}{list(w.shape)}")
                        continue
                    res[e][1] = max(res[e][1], rel_err(w, g))
            if all(isinstance(got[e], dict) for e in ENGINES):
                for n in names:
                    g, w = got["jit"][n], got["reference"][n]
                    if g.shape != w.shape or g.dtype != w.dtype:
                        fail("jit-ref", f"output {n!r}: {g.dtype}{list(g.shape)} vs {w.dtype}{list(w.shape)}")
                        continue
                    res["jit-ref"][1] = max(res["jit-ref"][1], rel_err(w, g))
    for key, r in res.items():
        if r[0] and r[1] > rtol:
            r[0], r[2] = False, f"{key}: rel err {r[1]:.3e} > {rtol:g}"
    return {k: tuple(v) for k, v in res.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ssc-opt", required=True)
    ap.add_argument("--models-dir", action="append",
                    help="default: tests/models and tests/models/deploy (repeatable)")
    ap.add_argument("--seeds", type=int, default=2, help="random input sets per model")
    ap.add_argument("--rtol", type=float, default=1e-4)
    args = ap.parse_args()
    dirs = args.models_dir or [os.path.join(REPO, "tests", "models"), os.path.join(REPO, "tests", "models", "deploy")]
    rows = []
    t0 = time.monotonic()
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*.onnx"))):
            t = time.monotonic()
            res = check(args.ssc_opt, path, args.seeds, args.rtol)
            rows.append((os.path.basename(d.rstrip("/")), os.path.basename(path), res, time.monotonic() - t))
    print(f"\n{'folder':<10} {'model':<34} {'ref vs ORT':>11} {'jit vs ORT':>11} {'jit vs ref':>11} {'seconds':>8}  result")
    for folder, name, res, secs in rows:
        errs = " ".join(f"{res[k][1]:>11.3e}" for k in ("reference", "jit", "jit-ref"))
        whys = [res[k][2] for k in ("reference", "jit", "jit-ref") if not res[k][0]]
        print(f"{folder:<10} {name:<34} {errs} {secs:>8.2f}  {'ok' if not whys else 'FAIL: ' + '; '.join(whys)}")
    for k, label in (("reference", "reference engine vs ORT"), ("jit", "JIT engine vs ORT"), ("jit-ref", "JIT vs reference")):
        ok = sum(1 for r in rows if r[2][k][0])
        worst = max((r[2][k][1] for r in rows), default=0.0)
        print(f"{label:<24} {ok}/{len(rows)} within {args.rtol:g} (worst {worst:.3e})")
    failed = sum(1 for r in rows if not all(v[0] for v in r[2].values()))
    print(f"\n{len(rows)} models, rtol {args.rtol:g}, {args.seeds} seeded inputs each, both engines, {time.monotonic() - t0:.1f} s")
    print(f"executor: {len(rows) - failed} passed, {failed} failed")
    return 1 if failed or not rows else 0

if __name__ == "__main__":
    sys.exit(main())
