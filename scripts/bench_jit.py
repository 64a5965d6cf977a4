#!/usr/bin/env python3
"""Paired benchmark: the ssc-opt JIT (`ssc-opt bench`) against ONNX Runtime on the same inputs.

Why this exists: the JIT's acceptance is stated as latency ratios against ORT on this machine,
which is shared and noisy. Timing one engine after the other would measure the machine's mood,
so this script interleaves them: each round times ORT in this process for --iters runs, then
runs `ssc-opt bench --iters N --json` (which reports every run's wall time, compile excluded),
and the medians are taken over all rounds. It also checks that both engines compute the same
function: `ssc-opt run --engine jit` and ORT get the same seeded input (an .npy file) and the
outputs must agree within --tol (norm-wise max|a-b| / max|a|).

Usage:
    bench_jit.py CASE [CASE ...] [--bin target/release/ssc-opt] [--rounds 5] [--iters 10]
                 [--threads 1[,2]] [--json OUT] [--markdown] [--tol 1e-4]
    CASE is NAME=JIT_MODEL.onnx[:ORT_MODEL.onnx]; ORT runs ORT_MODEL (default: the JIT's model).

ORT settings: CPUExecutionProvider, intra_op_num_threads = the thread count, inter_op 1,
ORT_ENABLE_ALL (its default, what users get); inputs bound once with io_binding. Symbolic
input dims are set to 1.

Reported per case and thread count: median/min/max ms of each engine and
ratio = median(JIT) / median(ORT) (below 1: the JIT is faster). With several thread counts,
the JIT's scaling median(1 thread) / median(N threads) is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def input_arrays(path: str, seed: int = 0) -> dict[str, np.ndarray]:
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(seed)
    out = {}
    for i in m.graph.input:
        if i.name in inits:
            continue
        dims = [d.dim_value if d.dim_value > 0 else 1 for d in i.type.tensor_type.shape.dim]
        out[i.name] = rng.standard_normal(dims).astype(np.float32)
    return out


def ort_session(path: str, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def time_ort(sess: ort.InferenceSession, feeds: dict, iters: int) -> list[float]:
    binding = sess.io_binding()
    for k, v in feeds.items():
        binding.bind_cpu_input(k, v)
    for o in sess.get_outputs():
        binding.bind_output(o.name)
    times = []
    for _ in range(iters):
        t = time.perf_counter_ns()
        sess.run_with_iobinding(binding)
        times.append((time.perf_counter_ns() - t) / 1e6)
    return times


def time_jit(binary: str, path: str, threads: int, iters: int, shapes: list[str],
             extra: tuple[str, ...] = ()) -> tuple[list[float], dict]:
    """`ssc-opt bench --json` (plus `extra` flags, e.g. --dense-only): run times and the report."""
    args = [binary, "bench", path, "--threads", str(threads), "--iters", str(iters),
            "--warmup", "2", "--json", *extra]
    for s in shapes:
        args += ["--input-shape", s]
    p = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"ssc-opt bench {path}: {p.stderr.strip()}")
    rep = json.loads(p.stdout)
    return rep["times_ms"], rep


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(a))), 1e-30)


def agreement(binary: str, jit_model: str, ort_sess: ort.InferenceSession, feeds: dict) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        args = [binary, "run", jit_model, "--engine", "jit", "--output-dir", tmp, "-q"]
        for k, v in feeds.items():
            f = os.path.join(tmp, f"in_{len(args)}.npy")
            np.save(f, v)
            args += ["--input", f"{k}={f}"]
        p = subprocess.run(args, capture_output=True, text=True, timeout=1800)
        if p.returncode != 0:
            raise RuntimeError(f"ssc-opt run {jit_model}: {p.stderr.strip()}")
        names = [o.name for o in ort_sess.get_outputs()]
        want = ort_sess.run(names, feeds)
        worst = 0.0
        for n, w in zip(names, want):
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in n)
            got = np.load(os.path.join(tmp, f"{safe}.npy"))
            worst = max(worst, rel_err(w, got))
        return worst


def stats(v: list[float]) -> dict:
    return {"median": float(np.median(v)), "min": float(min(v)), "max": float(max(v)), "n": len(v)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+")
    ap.add_argument("--bin", default=os.path.join(REPO, "target/release/ssc-opt"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--threads", default="1")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--json")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    thread_counts = [int(t) for t in a.threads.split(",")]
    results = []
    ok = True
    for case in a.cases:
        name, _, paths = case.partition("=")
        jit_model, _, ort_model = paths.partition(":")
        ort_model = ort_model or jit_model
        feeds = input_arrays(ort_model)
        shapes = [f"{k}:{','.join(str(d) for d in v.shape)}" for k, v in feeds.items()]
        row = {"name": name, "jit_model": jit_model, "ort_model": ort_model, "threads": {}}
        sess1 = ort_session(ort_model, 1)
        row["agreement"] = agreement(a.bin, jit_model, sess1, feeds)
        if not row["agreement"] <= a.tol:
            ok = False
        for t in thread_counts:
            sess = sess1 if t == 1 else ort_session(ort_model, t)
            time_ort(sess, feeds, 3)
            o_times, j_times = [], []
            rep = None
            for _ in range(a.rounds):
                o_times += time_ort(sess, feeds, a.iters)
                jt, rep = time_jit(a.bin, jit_model, t, a.iters, shapes)
                j_times += jt
            so, sj = stats(o_times), stats(j_times)
            row["threads"][t] = {
                "ort": so,
                "jit": sj,
                "ratio": sj["median"] / so["median"],
                "compile_ms": rep["compile_ms"],
                "peak_activation_bytes": rep["peak_activation_bytes"],
                "fallback_nodes": rep["fallback_nodes"],
            }
            print(f"{name} [{t} thread(s)]: ORT {so['median']:.2f} ms, JIT {sj['median']:.2f} ms, "
                  f"JIT/ORT {sj['median'] / so['median']:.3f}, agreement {row['agreement']:.1e}",
                  file=sys.stderr, flush=True)
        if len(thread_counts) > 1:
            base = row["threads"][thread_counts[0]]["jit"]["median"]
            row["jit_scaling"] = {t: base / row["threads"][t]["jit"]["median"] for t in thread_counts}
        results.append(row)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    if a.markdown:
        print("| model | threads | ORT ms (median) | JIT ms (median) | JIT / ORT | JIT min-max ms | JIT scaling | agreement | compile ms |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in results:
            for t, v in r["threads"].items():
                sc = r.get("jit_scaling", {}).get(t)
                print(f"| {r['name']} | {t} | {v['ort']['median']:.2f} | {v['jit']['median']:.2f} | "
                      f"**{v['ratio']:.2f}** | {v['jit']['min']:.2f}-{v['jit']['max']:.2f} | "
                      f"{'' if sc is None else f'{sc:.2f}x'} | {r['agreement']:.1e} | {v['compile_ms']:.0f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
