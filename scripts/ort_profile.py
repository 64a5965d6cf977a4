#!/usr/bin/env python3
"""ONNX Runtime's per-node times for one model: the other half of `ssc-opt bench --kernels`.

Why this exists: the JIT's ratios against ORT (scripts/bench_jit.py) say how far apart the two
engines are, not where. ORT's built-in profiler gives each node's kernel time, so a layer of
`ssc-opt bench MODEL --kernels` can be set against the same layer in ORT (ORT renames fused
nodes after their last output, e.g. `..._nchwc`; match them by layer name).

Usage:
    ort_profile.py MODEL.onnx [--runs 30] [--threads 1] [--top 40]

Method: CPUExecutionProvider, `--threads` intra-op threads, ORT_ENABLE_ALL (what users get),
one seeded uniform input per graph input (symbolic dims set to 1), `--runs` runs. ORT's
profiler records from session start, so the first (cold) run is included; the per-node median
over all runs is robust to it. Reported: each node's median in ms, largest first, and their
sum. The profile JSON goes to a temporary directory and is removed.
"""

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile

import numpy as np
import onnxruntime as ort


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--top", type=int, default=40)
    a = ap.parse_args()
    if not os.path.isfile(a.model):
        print(f"error: {a.model}: no such file", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "ort")
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feeds = {
            i.name: rng.random([d if isinstance(d, int) else 1 for d in i.shape], dtype=np.float32)
            for i in sess.get_inputs()
        }
        for _ in range(a.runs):
            sess.run(None, feeds)
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    per_node = collections.defaultdict(list)
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "Node" and name.endswith("_kernel_time"):
            per_node[(name[: -len("_kernel_time")], e["args"].get("op_name", "?"))].append(e["dur"])
    rows = sorted(
        ((statistics.median(v) / 1000.0, node, op) for (node, op), v in per_node.items()),
        reverse=True,
    )
    print(f"{a.model}: sum of per-node medians {sum(r[0] for r in rows):.3f} ms "
          f"({a.runs} runs, {a.threads} thread(s))")
    for ms, node, op in rows[: a.top]:
        print(f"{ms:8.3f} ms  {op:<18} {node}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
