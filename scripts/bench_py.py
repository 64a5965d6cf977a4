#!/usr/bin/env python3
"""The Python package's acceptance measurements (issue 18, points 2 and 3), on the full-size
block-grouped SSC ResNet-18 and a small model, through the installed ``ssc_opt`` package.

Why this exists: the package's speed and overhead claims must come from a committed script run
on a quiet machine (`/work/bin/quiet`), with ORT run on the same inputs and the two engines
interleaved, never from a timed unit test. It checks, and prints with the measured numbers:

2. ``ssc_opt.optimize(MODEL)`` (default options) on the SSC ResNet-18 cuts its MACs by more than
   half; ``.save()`` writes exactly ``.model_bytes``; ORT on the result agrees with ORT on the
   original within 1e-4 (norm-wise max|a-b| / max|a|) on seeded inputs.
3. ``ssc_opt.InferenceSession(OPTIMISED, threads=1).run(None, {"input": x})``
   * agrees with ORT on the original within 1e-4;
   * is at least 1.5x faster than ORT (1 intra-op thread, its default ORT_ENABLE_ALL) on the
     original: both called through their Python ``run`` with the same array, interleaved
     A, B, A, B, ... after a warm-up; speed-up = median(ORT) / median(ssc_opt);
   * has a Python overhead under 20 us on a small model: median of ``session.run`` minus the
     median the CLI's ``ssc-opt bench`` (the same JIT, timed inside Rust, no Python) reports,
     interleaved in rounds (this process times ``--iters`` runs, then one ``ssc-opt bench
     --iters N --json``), medians over all rounds. Two small models: the committed
     tiny_resnet (about 0.2 ms, where run-to-run noise is a few us) and a one-Relu model made
     here (about 1 us of work, so the difference is almost all overhead).

The models are made if missing (bench-out/, ignored by git), as docs/benchmarks.md (b) does:
    scripts/make_models.py --size full --only resnet18_folded --out bench-out/models
    scripts/make_structured.py --src bench-out/models/resnet18_folded.onnx
        --out bench-out/families --only ssc_block

Usage: bench_py.py [--model M.onnx] [--small M.onnx ...] [--runs 40]
                   [--rounds 7] [--iters 50] [--bin target/release/ssc-opt] [--json OUT]
Exit status 1 if any acceptance check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

import ssc_opt

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-4


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    num = float(np.max(np.abs(a - b)))
    return 0.0 if num == 0.0 else num / max(float(np.max(np.abs(a))), 1e-300)


def ort_session(model, threads: int = 1) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def inputs(sess, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
        for i in sess.get_inputs()
    }


def ensure_model(path: str) -> None:
    if os.path.exists(path):
        return
    py = sys.executable
    full = os.path.join(REPO, "bench-out", "models", "resnet18_folded.onnx")
    if not os.path.exists(full):
        subprocess.run([py, "scripts/make_models.py", "--size", "full", "--only", "resnet18_folded",
                        "--out", "bench-out/models"], cwd=REPO, check=True)
    subprocess.run([py, "scripts/make_structured.py", "--src", full, "--out", "bench-out/families",
                    "--only", "ssc_block"], cwd=REPO, check=True)


def ms(ns: list[int]) -> float:
    return statistics.median(ns) / 1e6


def relu_model(tmp: str) -> str:
    """A one-node model (Relu on 1x8 floats): a run is almost nothing but overhead."""
    from onnx import TensorProto, helper, save

    g = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["output"], name="relu")], "relu",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = os.path.join(tmp, "relu.onnx")
    save(m, path)
    return path


def overhead(path: str, args) -> dict:
    """Median `InferenceSession.run` time against the median `ssc-opt bench` reports, in us."""
    sess = ssc_opt.InferenceSession(path, threads=1)
    feeds = {i.name: np.random.default_rng(0).uniform(-1, 1, i.shape).astype(np.float32)
             for i in sess.get_inputs()}
    for _ in range(50):
        sess.run(None, feeds)
    py_ns: list[int] = []
    cli_ms: list[float] = []
    for _ in range(args.rounds):
        for _ in range(args.iters):
            t = time.perf_counter_ns()
            sess.run(None, feeds)
            py_ns.append(time.perf_counter_ns() - t)
        p = subprocess.run([args.bin, "bench", path, "--threads", "1", "--iters", str(args.iters),
                            "--warmup", "50", "--json"], capture_output=True, text=True, check=True)
        cli_ms.extend(json.loads(p.stdout)["times_ms"])
    py_us = statistics.median(py_ns) / 1e3
    cli_us = statistics.median(cli_ms) * 1e3
    return {"python_us": py_us, "cli_bench_us": cli_us, "overhead_us": py_us - cli_us,
            "rounds": args.rounds, "iters": args.iters}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(REPO, "bench-out/families/resnet18_ssc_block.onnx"))
    ap.add_argument("--small", nargs="+", help="small models for the overhead check "
                    "(default: examples/tiny_resnet.onnx and a one-Relu model)")
    ap.add_argument("--runs", type=int, default=40, help="timed runs of each engine (point 3, speed)")
    ap.add_argument("--rounds", type=int, default=7, help="overhead rounds")
    ap.add_argument("--iters", type=int, default=50, help="runs per overhead round and engine")
    ap.add_argument("--bin", default=os.path.join(REPO, "target/release/ssc-opt"))
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    ensure_model(args.model)
    ok = True
    tmp = tempfile.mkdtemp(prefix="bench_py.")
    small_models = args.small or [os.path.join(REPO, "examples/tiny_resnet.onnx"), relu_model(tmp)]
    res: dict = {"model": os.path.relpath(args.model, REPO), "overhead": {}}

    def check(name: str, passed: bool, detail: str) -> None:
        nonlocal ok
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {detail}")

    # -- 2. optimize -------------------------------------------------------------------------
    t0 = time.perf_counter()
    opt = ssc_opt.optimize(args.model)
    opt_s = time.perf_counter() - t0
    r = opt.report["optimize"]
    res["optimize"] = {"seconds": opt_s, "macs_before": r["macs_before"], "macs_after": r["macs_after"],
                       "summary": opt.summary()}
    print(f"optimize: {opt.summary()} ({opt_s:.2f} s)")
    check("2a MACs cut by more than half", r["macs_after"] < r["macs_before"] / 2,
          f"{r['macs_before'] / 1e9:.3f} -> {r['macs_after'] / 1e9:.3f} GMACs "
          f"({r['macs_after'] / r['macs_before']:.3f}x)")
    opt_path = os.path.join(tmp, "resnet18_ssc_block.opt.onnx")
    opt.save(opt_path)
    with open(opt_path, "rb") as f:
        same = f.read() == opt.model_bytes
    check("2b save() writes exactly model_bytes", same, f"{len(opt.model_bytes)} bytes")
    a, b = ort_session(args.model), ort_session(opt.model_bytes)
    err2 = max(rel_err(x, y) for s in (0, 1) for x, y in zip(a.run(None, inputs(a, s)), b.run(None, inputs(a, s))))
    res["ort_vs_ort"] = err2
    check("2c ORT(optimised) vs ORT(original)", err2 <= TOL, f"{err2:.2e} (tolerance {TOL:g})")

    # -- 3. InferenceSession ------------------------------------------------------------------
    sess = ssc_opt.InferenceSession(opt_path, threads=1)
    feeds = inputs(a, 7)
    (want,) = a.run(None, feeds)
    (got,) = sess.run(None, feeds)
    err3 = rel_err(want, got)
    res["session_vs_ort"] = err3
    check("3a InferenceSession vs ORT(original)", err3 <= TOL, f"{err3:.2e} (engine {sess.engine})")
    for _ in range(5):
        a.run(None, feeds)
        sess.run(None, feeds)
    t_ort, t_ssc = [], []
    for _ in range(args.runs):
        t = time.perf_counter_ns()
        a.run(None, feeds)
        t_ort.append(time.perf_counter_ns() - t)
        t = time.perf_counter_ns()
        sess.run(None, feeds)
        t_ssc.append(time.perf_counter_ns() - t)
    speedup = ms(t_ort) / ms(t_ssc)
    res["speed"] = {"ort_ms": ms(t_ort), "ssc_ms": ms(t_ssc), "ort_min_ms": min(t_ort) / 1e6,
                    "ssc_min_ms": min(t_ssc) / 1e6, "speedup": speedup, "runs": args.runs}
    check("3b InferenceSession >= 1.5x faster than ORT on the original", speedup >= 1.5,
          f"median {ms(t_ssc):.2f} ms vs ORT {ms(t_ort):.2f} ms: {speedup:.2f}x "
          f"(min {min(t_ssc) / 1e6:.2f} vs {min(t_ort) / 1e6:.2f} ms; {args.runs} interleaved runs each)")

    # -- 3. Python overhead over `ssc-opt bench` ---------------------------------------------
    for path in small_models:
        over = overhead(path, args)
        res["overhead"][os.path.basename(path)] = over
        check("3c Python overhead of run over `ssc-opt bench` < 20 us", over["overhead_us"] < 20.0,
              f"{os.path.basename(path)}: run median {over['python_us']:.1f} us, bench median "
              f"{over['cli_bench_us']:.1f} us, overhead {over['overhead_us']:.1f} us "
              f"({args.rounds} rounds x {args.iters} runs each)")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    print("all acceptance checks passed" if ok else "SOME ACCEPTANCE CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
