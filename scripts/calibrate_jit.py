#!/usr/bin/env python3
"""Calibrate the JIT's own kernel-cost table (crates/ssc-jit/src/plan/calibration.rs).

Why this exists: issue 14 asks for the JIT's per-layer kernel choice (dense, AVX-512 SpMM or
the AVX2 table kernel) to come from a cost model of its own kernels, calibrated by a committed
script and committed as a table, as ssc-cost does for ONNX Runtime. `plan::choice` prices a
layer with the rates in that table; this script is their single source.

What it does: runs the ignored Rust test `plan::choice::tests::calibrate_jit` in release mode
(1 thread; ResNet-18's and MobileNetV2's layer shapes; per layer the dense kernel the layer
gets and SpmmConv on unstructured weights at 20% and 30% density), reads its `CAL` lines, and
writes the medians:
    SPMM_RATE           median over every (layer, density) of column entries per ns
    DENSE_RATE_F4/F2/DIRECT   median per dense form of direct multiply-adds per ns
and, from `plan::choice::linear::tests::calibrate_jit_linear` (Gemm / MatMul with a constant
B: classifier heads, MLP, recurrent and token-mixing shapes; the dense product the planner
gives each shape and kernels::sparse_linear at 10/20/30% density):
    DENSE_GEMM_RATE     median of the packed dense product's multiply-adds per ns (m > 1)
    DENSE_GEMV_RATE     median of the one-row dense product's weights per ns
    SPARSE_LINEAR_RATE  median of the sparse product's non-zero x row-lane FMAs per ns
    SPARSE_ROW_RATE     median of the one-row sparse product's non-zeros per ns
SPARSE_TRANSPOSE_RATE (the transpose of A, elements per ns) is a model parameter like
COLUMN_COST (--transpose-rate, default 1).
COLUMN_COST is a model parameter, not a rate: it is carried from --column-cost (default 2,
the value the per-layer check of scripts/bench_sparse.sh accepted; see docs/benchmarks.md (f)).
Rates are rounded to whole G/s so that re-running on a quiet machine rarely changes the file
(and the plans) by noise alone. The output is deterministic for a given set of CAL lines.

On the shared machine run it under the exclusive benchmark lock:
    /work/bin/quiet python3 scripts/calibrate_jit.py
    python3 scripts/calibrate_jit.py --from saved_output.txt   # re-fit from a saved run
    python3 scripts/calibrate_jit.py --dry-run                 # print, do not write
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(REPO, "crates", "ssc-jit", "src", "plan", "calibration.rs")
FORMS = {"f4": "DENSE_RATE_F4", "f2": "DENSE_RATE_F2", "direct": "DENSE_RATE_DIRECT"}
LINEAR = {"splin": "SPARSE_LINEAR_RATE", "sprow": "SPARSE_ROW_RATE",
          "gemm": "DENSE_GEMM_RATE", "gemv": "DENSE_GEMV_RATE"}


def run_test():
    cmd = [
        "cargo", "test", "--release", "-p", "ssc-jit", "--lib", "calibrate_jit",
        "--", "--ignored", "--nocapture", "--test-threads", "1",
    ]
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, text=True)
    return out.stdout


def parse(text):
    dense = {k: [] for k in FORMS}
    spmm = []
    samples = []
    for line in text.splitlines():
        m = re.search(r"CAL dense (\w+) (\S+) ([0-9.]+)$", line.strip())
        if m:
            dense[m.group(1)].append(float(m.group(3)))
            samples.append(f"dense {m.group(1)} {m.group(2)}: {m.group(3)}")
            continue
        m = re.search(r"CAL spmm (\S+) ([0-9.]+) ([0-9.]+)$", line.strip())
        if m:
            spmm.append(float(m.group(3)))
            samples.append(f"spmm {m.group(1)} at {m.group(2)}: {m.group(3)}")
    linear = {k: [] for k in LINEAR}
    for line in text.splitlines():
        m = re.search(r"CAL (gemm|gemv|splin|sprow) (\S+) (?:([0-9.]+) )?([0-9.]+)(?: \(.*\))?$",
                      line.strip())
        if m:
            linear[m.group(1)].append(float(m.group(4)))
            at = f" at {m.group(3)}" if m.group(3) else ""
            samples.append(f"{m.group(1)} {m.group(2)}{at}: {m.group(4)}")
    if not spmm or any(not v for v in dense.values()) or any(not v for v in linear.values()):
        sys.exit(f"calibrate_jit: missing samples (spmm {len(spmm)}, dense "
                 f"{ {k: len(v) for k, v in dense.items()} }, linear "
                 f"{ {k: len(v) for k, v in linear.items()} })")
    return dense, spmm, linear, samples


def render(dense, spmm, linear, samples, column_cost, transpose_rate):
    r = lambda v: f"{round(statistics.median(v)):.1f}"
    lines = [
        "//! The JIT's own kernel-cost table, the calibration `plan::choice` prices layers with: written",
        "//! by `scripts/calibrate_jit.py` from `calibrate_jit` (`plan::choice` tests) on this machine.",
        "//! Do not edit by hand; re-run the script (it rewrites this file).",
        "//!",
        "//! Samples (G/s, 1 thread):",
    ]
    lines += [f"//! - {s}" for s in samples]
    lines += [
        "",
        "/// `SpmmConv`'s rate in unblocked column entries per ns (G/s): the median over the",
        "/// calibration layers of unstructured weights at 20% and 30% density, blocks of one channel.",
        f"pub(super) const SPMM_RATE: f64 = {r(spmm)};",
        "/// The dense kernels' rates in multiply-adds of the direct conv per ns (G/s), by the form",
        "/// `DenseConv::new` gives a layer: Winograd F(4x4) (3x3 stride 1 on large planes).",
        f"pub(super) const DENSE_RATE_F4: f64 = {r(dense['f4'])};",
        "/// Winograd F(2x2) (3x3 stride 1 on 14x14 and smaller planes) and the phase-split stem.",
        f"pub(super) const DENSE_RATE_F2: f64 = {r(dense['f2'])};",
        "/// The direct, wide and GEMM kernels (strided and 1x1 layers).",
        f"pub(super) const DENSE_RATE_DIRECT: f64 = {r(dense['direct'])};",
        "/// What one `SpmmConv` column costs beyond its multiply-adds, in multiply-adds (its load, its",
        "/// table words, the loop): a model parameter the script carries (`--column-cost`), chosen",
        "/// against the per-layer check of `scripts/bench_sparse.sh` (see `plan::choice`).",
        f"pub(super) const COLUMN_COST: usize = {column_cost};",
        "/// `kernels::sparse_linear`'s rate in FMAs of one non-zero on one row lane of A per ns",
        "/// (G/s; rows padded to its 16-row vectors): the median over the linear calibration shapes",
        "/// at 10-30% density, after the transpose term.",
        f"pub(super) const SPARSE_LINEAR_RATE: f64 = {r(linear['splin'])};",
        "/// Its rate for a single row of A, in non-zeros per ns.",
        f"pub(super) const SPARSE_ROW_RATE: f64 = {r(linear['sprow'])};",
        "/// Its transpose of A, in elements per ns (a model parameter, `--transpose-rate`).",
        f"pub(super) const SPARSE_TRANSPOSE_RATE: f64 = {transpose_rate:.1f};",
        "/// The dense product of several rows (`kernels::packed_gemm`), multiply-adds per ns.",
        f"pub(super) const DENSE_GEMM_RATE: f64 = {r(linear['gemm'])};",
        "/// The dense product of one row (the `gemm` crate on the transposed weights), weights per ns.",
        f"pub(super) const DENSE_GEMV_RATE: f64 = {r(linear['gemv'])};",
        "",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="src", help="read CAL lines from this file instead of running the test")
    ap.add_argument("--column-cost", type=int, default=2)
    ap.add_argument("--transpose-rate", type=float, default=1.0)
    ap.add_argument("--dry-run", action="store_true", help="print the table, do not write it")
    a = ap.parse_args()
    text = open(a.src).read() if a.src else run_test()
    table = render(*parse(text), a.column_cost, a.transpose_rate)
    if a.dry_run:
        print(table)
    else:
        with open(TABLE, "w") as f:
            f.write(table)
        print(f"wrote {TABLE}", file=sys.stderr)


if __name__ == "__main__":
    main()
