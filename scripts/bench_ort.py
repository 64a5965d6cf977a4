#!/usr/bin/env python3
"""Paired ONNX Runtime benchmark: original vs optimised model, interleaved runs, one table.

Why this exists: ssc-opt's claim is "same outputs, faster in ORT". Timing two models one
after the other on a shared machine measures the machine's mood as much as the models, so
this script runs both sessions in the same process, alternately (A, B, A, B, ...), and
reports the ratio of medians. It also checks that the two models compute the same thing and
(with ``--macs``) counts the MACs of each.

Usage:
    bench_ort.py NAME=ORIGINAL.onnx:OPTIMISED.onnx [PAIR ...] [--runs N] [--warmup N]
                 [--threads 1] [--json OUT] [--markdown] [--macs] [--seed S] [--tol 1e-4]
                 [--no-filter]

Method:
  * sessions: CPUExecutionProvider, intra_op_num_threads=--threads (1), inter_op 1, default
    graph optimisation ORT_ENABLE_ALL (what users get);
  * one seeded standard-normal input per model input (symbolic dims set to 1), the same for
    both models; inputs and outputs bound once (io_binding), so a timed run is the graph;
  * --warmup runs of each, then --runs pairs, interleaved A, B, A, B, ... to cancel drift;
  * a run counts only when its wall time (``time.perf_counter_ns``) exceeds the thread's CPU
    time by at most 3% + 5 us: with one intra-op thread ORT runs on the calling thread, so the
    gap is time the OS gave the core to another process (this is a shared machine).
    ``--no-filter`` keeps every run; the number dropped is reported either way, and when fewer
    than 3 runs of a model are clean every run counts ("all kept");
  * reported: median, min and max latency (ms) of each model, speedup = median(original) /
    median(optimised); as a cross-check that ignores descheduling, the same ratio of the
    median thread CPU times; agreement = max|a - b| / max|a| over all outputs, must be
    <= --tol.
Exit status: 0 when every pair agrees, 1 otherwise, 2 on bad arguments.

MACs (``--macs``): Conv ``N*Cout*prod(out spatial)*(Cin/group)*prod(kernel)``, Gemm ``M*K*N``,
MatMul ``prod(batch)*M*K*N``, from ONNX shape inference; other ops count 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import shape_inference

CLEAN_REL = 0.03
CLEAN_ABS_NS = 5_000


def parse_pair(text: str) -> tuple[str, str, str]:
    name, eq, paths = text.partition("=")
    if not eq or paths.count(":") != 1 or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=ORIGINAL.onnx:OPTIMISED.onnx, got {text!r}")
    a, b = paths.split(":")
    return name, a, b


# ---------------------------------------------------------------------------------------------
# MAC counting
# ---------------------------------------------------------------------------------------------


def count_macs(path: str) -> int:
    """Conv / Gemm / MatMul MACs of a model, from ONNX shape inference (batch as in the model,
    symbolic dims as 1)."""
    model = onnx.load(path)
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    shapes: dict[str, list[int]] = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        shapes[vi.name] = [d.dim_value if d.dim_value > 0 else 1 for d in vi.type.tensor_type.shape.dim]
    for t in g.initializer:
        shapes[t.name] = list(t.dims)
    total = 0
    for n in g.node:
        if n.op_type == "Conv":
            w, y = shapes.get(n.input[1]), shapes.get(n.output[0])
            if w is None or y is None:
                continue
            total += int(y[0]) * int(y[1]) * int(np.prod(y[2:])) * int(np.prod(w[1:]))
        elif n.op_type == "Gemm":
            a, y = shapes.get(n.input[0]), shapes.get(n.output[0])
            if a is None or y is None:
                continue
            trans_a = next((at.i for at in n.attribute if at.name == "transA"), 0)
            k = a[0] if trans_a else a[1]
            total += int(y[0]) * int(y[1]) * int(k)
        elif n.op_type == "MatMul":
            a, y = shapes.get(n.input[0]), shapes.get(n.output[0])
            if a is None or y is None:
                continue
            total += int(np.prod(y)) * int(a[-1])
    return total


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


class Bound:
    """A session with its inputs and outputs bound once."""

    def __init__(self, path: str, feeds: list[np.ndarray], threads: int):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        ins = self.sess.get_inputs()
        if len(ins) != len(feeds):
            raise SystemExit(f"error: {path} has {len(ins)} inputs, expected {len(feeds)}")
        self.feeds = {i.name: x for i, x in zip(ins, feeds)}
        self.outputs = self.sess.run(None, self.feeds)  # also the reference result
        self.io = self.sess.io_binding()
        self.keep = []
        for i, x in zip(ins, feeds):
            v = ort.OrtValue.ortvalue_from_numpy(x)
            self.keep.append(v)
            self.io.bind_ortvalue_input(i.name, v)
        for o, y in zip(self.sess.get_outputs(), self.outputs):
            v = ort.OrtValue.ortvalue_from_shape_and_type(list(y.shape), y.dtype)
            self.keep.append(v)
            self.io.bind_ortvalue_output(o.name, v)

    def once(self) -> tuple[int, int]:
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        self.sess.run_with_iobinding(self.io)
        t1 = time.perf_counter_ns()
        return t1 - t0, time.thread_time_ns() - c0


def seeded_inputs(path: str, seed: int) -> list[np.ndarray]:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    out = []
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        if "float" not in i.type:
            raise SystemExit(f"error: input {i.name} of {path} is {i.type}; only float inputs are supported")
        out.append(rng.standard_normal(shape).astype(np.float32))
    return out


def stats(walls: list[int], cpus: list[int], use_filter: bool) -> dict:
    """Wall-clock statistics over the uncontended runs (all runs when fewer than 3 are clean,
    flagged ``fallback``), plus the median thread CPU time over all runs."""
    keep = [w for w, c in zip(walls, cpus) if not use_filter or w - c <= CLEAN_REL * w + CLEAN_ABS_NS]
    dropped = len(walls) - len(keep)
    fallback = len(keep) < 3
    if fallback:  # hopelessly contended: every run counts
        keep = walls
    ms = np.array(keep) / 1e6
    return {"median_ms": float(np.median(ms)), "min_ms": float(ms.min()), "max_ms": float(ms.max()),
            "cpu_median_ms": float(np.median(cpus)) / 1e6, "runs": len(walls), "dropped": dropped,
            "fallback": fallback}


def agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """max|a - b| / max|a| over all outputs (inf on a shape mismatch)."""
    if len(a) != len(b):
        return float("inf")
    num, den = 0.0, 0.0
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return float("inf")
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        num = max(num, float(np.max(np.abs(x64 - y64))) if x.size else 0.0)
        den = max(den, float(np.max(np.abs(x64))) if x.size else 0.0)
    return num / den if den > 0 else (0.0 if num == 0 else float("inf"))


def bench_pair(name, orig, opt, args) -> dict:
    feeds = seeded_inputs(orig, args.seed)
    a = Bound(orig, feeds, args.threads)
    b = Bound(opt, feeds, args.threads)
    rel = agreement(a.outputs, b.outputs)
    for _ in range(args.warmup):
        a.once()
        b.once()
    wa, ca, wb, cb = [], [], [], []
    for _ in range(args.runs):
        w, c = a.once()
        wa.append(w)
        ca.append(c)
        w, c = b.once()
        wb.append(w)
        cb.append(c)
    sa, sb = stats(wa, ca, not args.no_filter), stats(wb, cb, not args.no_filter)
    res = {"name": name, "original": orig, "optimised": opt, "original_stats": sa, "optimised_stats": sb,
           "speedup": sa["median_ms"] / sb["median_ms"],
           "speedup_cpu": sa["cpu_median_ms"] / sb["cpu_median_ms"], "max_rel_diff": rel, "agree": bool(rel <= args.tol)}
    if args.macs:
        ma, mb = count_macs(orig), count_macs(opt)
        res.update({"original_macs": ma, "optimised_macs": mb, "mac_ratio": ma / mb if mb else float("inf")})
    return res


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def table(results: list[dict], macs: bool, markdown: bool) -> str:
    head = ["model", "original ms (min-max)", "optimised ms (min-max)", "speedup", "speedup (CPU time)"]
    if macs:
        head += ["original GMAC", "optimised GMAC", "MAC ratio"]
    head += ["max rel diff", "agree", "contended runs"]
    rows = []
    for r in results:
        sa, sb = r["original_stats"], r["optimised_stats"]
        row = [r["name"],
               f"{sa['median_ms']:.2f} ({sa['min_ms']:.2f}-{sa['max_ms']:.2f})",
               f"{sb['median_ms']:.2f} ({sb['min_ms']:.2f}-{sb['max_ms']:.2f})",
               f"{r['speedup']:.2f}x", f"{r['speedup_cpu']:.2f}x"]
        if macs:
            row += [f"{r['original_macs'] / 1e9:.3f}", f"{r['optimised_macs'] / 1e9:.3f}", f"{r['mac_ratio']:.2f}x"]
        row += [f"{r['max_rel_diff']:.1e}", "yes" if r["agree"] else "NO",
                f"{sa['dropped']}+{sb['dropped']}/{sa['runs'] + sb['runs']}"
                + (" (all kept)" if sa["fallback"] or sb["fallback"] else "")]
        rows.append(row)
    if markdown:
        right = [False] + [True] * (len(head) - 1)
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join("---:" if r else "---" for r in right) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = lambda row: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))  # noqa: E731
    return "\n".join([fmt(head)] + [fmt(r) for r in rows])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Pairs are NAME=ORIGINAL.onnx:OPTIMISED.onnx (paths without ':').")
    ap.add_argument("pairs", nargs="+", type=parse_pair, metavar="PAIR")
    ap.add_argument("--runs", type=int, default=30, help="timed runs of each model (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs of each model first (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="ORT intra-op threads (default 1)")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    ap.add_argument("--macs", action="store_true", help="count Conv/Gemm/MatMul MACs of both models")
    ap.add_argument("--seed", type=int, default=0, help="input seed (default 0)")
    ap.add_argument("--tol", type=float, default=1e-4, help="agreement tolerance, max|a-b|/max|a| (default 1e-4)")
    ap.add_argument("--no-filter", action="store_true", help="keep runs during which the thread was descheduled")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    ort.set_default_logger_severity(3)
    results = []
    for name, orig, opt in args.pairs:
        print(f"bench {name}: {orig} vs {opt}", file=sys.stderr)
        r = bench_pair(name, orig, opt, args)
        results.append(r)
        print(f"  {r['original_stats']['median_ms']:.2f} ms vs {r['optimised_stats']['median_ms']:.2f} ms: "
              f"{r['speedup']:.2f}x, max rel diff {r['max_rel_diff']:.1e}", file=sys.stderr)
    print(table(results, args.macs, args.markdown))
    if args.json:
        meta = {"onnxruntime": ort.__version__, "threads": args.threads, "runs": args.runs,
                "warmup": args.warmup, "seed": args.seed, "tol": args.tol, "filter": not args.no_filter,
                "graph_optimization": "ORT_ENABLE_ALL"}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1, sort_keys=True)
            f.write("\n")
    return 0 if all(r["agree"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
