#!/usr/bin/env python3
"""DeepSparse 1.8 against ONNX Runtime on the same models, paired: the sparse-engine anchor.

Why this exists: issue 14 compares ssc-opt's JIT with the sparse CPU engine practitioners
would otherwise pick. DeepSparse runs ONNX directly and exploits unstructured zeros, so it gets
the *original* pruned model, as ORT does (scripts/bench_sparse.py gives the JIT ssc-opt's
output of the same file). It runs in its own venv (.venv-deepsparse/, Python 3.11, made by
scripts/bench_deepsparse.sh) with ORT 1.32 installed beside it, so both engines run in this
one process, interleaved: R rounds of --iters runs of each, medians over all runs,
speed-up = median(ORT) / median(DeepSparse). Both get the same seeded input; the agreement of
their outputs (max|a-b| / max|a|) is reported, not enforced (DeepSparse may reorder sums).

Settings: ORT as in bench_jit.py (CPUExecutionProvider, intra-op threads = --threads,
ORT_ENABLE_ALL, io_binding); DeepSparse `compile_model(path, batch_size=1, num_cores=T)`.
Analytics are disabled (NM_DISABLE_ANALYTICS).

Usage: bench_deepsparse.py NAME=MODEL.onnx ... [--rounds 5] [--iters 10] [--threads 1]
       [--json OUT] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402


def feeds_for(path: str) -> dict[str, np.ndarray]:
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(0)
    out = {}
    for i in m.graph.input:
        if i.name not in inits:
            dims = [d.dim_value if d.dim_value > 0 else 1 for d in i.type.tensor_type.shape.dim]
            out[i.name] = rng.standard_normal(dims).astype(np.float32)
    return out


def time_ort(sess, feeds, iters):
    b = sess.io_binding()
    for k, v in feeds.items():
        b.bind_cpu_input(k, v)
    for o in sess.get_outputs():
        b.bind_output(o.name)
    t = []
    for _ in range(iters):
        s = time.perf_counter_ns()
        sess.run_with_iobinding(b)
        t.append((time.perf_counter_ns() - s) / 1e6)
    return t


def time_ds(engine, inputs, iters):
    t = []
    for _ in range(iters):
        s = time.perf_counter_ns()
        engine(inputs)
        t.append((time.perf_counter_ns() - s) / 1e6)
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", help="NAME=MODEL.onnx")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    from deepsparse import compile_model, __version__ as ds_version

    rows = []
    for case in a.cases:
        name, _, path = case.partition("=")
        feeds = feeds_for(path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        t0 = time.perf_counter()
        engine = compile_model(path, batch_size=1, num_cores=a.threads)
        compile_s = time.perf_counter() - t0
        inputs = [feeds[i.name] for i in sess.get_inputs()]
        want = sess.run(None, feeds)[0].astype(np.float64)
        got = np.asarray(engine(inputs)[0], dtype=np.float64)
        agree = float(np.max(np.abs(want - got)) / max(float(np.max(np.abs(want))), 1e-30))
        time_ort(sess, feeds, 3)
        time_ds(engine, inputs, 3)
        to, td = [], []
        for _ in range(a.rounds):
            to += time_ort(sess, feeds, a.iters)
            td += time_ds(engine, inputs, a.iters)
        r = {"name": name, "model": path, "ort_ms": float(np.median(to)),
             "deepsparse_ms": float(np.median(td)), "deepsparse_min_ms": min(td),
             "deepsparse_max_ms": max(td), "compile_s": compile_s, "agreement": agree,
             "threads": a.threads, "deepsparse": ds_version, "onnxruntime": ort.__version__}
        r["speedup"] = r["ort_ms"] / r["deepsparse_ms"]
        rows.append(r)
        print(f"{name}: ORT {r['ort_ms']:.2f} ms, DeepSparse {r['deepsparse_ms']:.2f} ms "
              f"({r['speedup']:.2f}x), agreement {agree:.1e}, compile {compile_s:.1f} s",
              file=sys.stderr, flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    if a.markdown:
        print(f"| model | ORT ms | DeepSparse {rows[0]['deepsparse'] if rows else ''} ms | "
              "**DeepSparse vs ORT** | agreement | DeepSparse compile s |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['name']} | {r['ort_ms']:.2f} | {r['deepsparse_ms']:.2f} | "
                  f"**{r['speedup']:.2f}x** | {r['agreement']:.1e} | {r['compile_s']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
