#!/usr/bin/env python3
"""Structured-family acceptance: does ssc-opt reach the ideal MACs of every weight structure it
targets, without changing what the network computes?

Why this exists: ssc-opt's purpose is to find structure hidden in the weights of dense Convs
(SSC's full/point kernels, block-diagonal groups in disguise, '+' kernels, zero filters, MSWU
unified kernels) and rewrite it into cheaper standard ONNX. The unit tests check each rule on
small hand-built layers; this suite checks the issue's acceptance criteria end to end, on a
whole BN-folded ResNet-18 per structure family (tests/models/structured/, planted by
scripts/make_structured.py; its docstring defines the families and their ideal MACs), with the
release binary in its default mode and an independent runtime (onnxruntime) as the judge.

Per family (one model each, listed in the fixtures' manifest.json):
  * ssc-opt IN -o OUT --report json --quiet must exit 0 with a JSON report;
  * accuracy: ORT (CPU, 1 thread, ORT_DISABLE_ALL so ORT does not rewrite either graph) runs
    the original and the optimised model on 2 seeded standard-normal inputs (symbolic dims = 1);
    the norm-wise relative error max|a-b| / max|a| must be <= 1e-4;
  * MACs: both ONNX models are counted by this script's own counter (below), independently of
    ssc-opt's report, and the optimised model's whole-model MACs must be within 10% of the
    family's ideal (manifest `ideal_macs`: MACs of the non-zero weights for the zero families,
    MACs of the unified form for const_kernels / in_blocks4; unaffected layers count dense).
    Per affected layer, the report's `macs_after` is compared with the manifest's per-layer
    ideal and the worst ratio is summarised (information: the whole-model ratio decides).
  * no regression: `sparse90` (90% unstructured zeros) has no ONNX-level structure to exploit,
    so no rewrite is expected (MACs unchanged, outputs within 1e-4); `dense` must come out with
    unchanged MACs and bit-identical outputs (within 1e-6 is tolerated and reported as such).

MAC counter: Conv, Gemm and MatMul only, from onnx shape inference with symbolic dims fixed to
1 (Conv = numel(Y) * Ci/group * prod(kernel); Gemm = M*N*K; MatMul = numel(Y) * K). Adds,
pools, Gathers/Transposes (permutations) are not counted. Consequences: the two-branch forms
(e.g. SSC's grouped kxk + dense 1x1 joined by an Add) are counted without their Add, which
ssc-opt's own report does count; and a unified form whose pre-summation is realised with a
pool or Add (const_kernels, in_blocks4, whose ideal counts those additions) can come out below
its ideal here. The counter is checked against the manifest's dense MACs on every original.

Tolerances:
  * 1e-4 relative accuracy is the issue's bar. Every rewrite is exact in real arithmetic; in
    f32 it only reassociates sums (a split conv adds two partial sums, a grouped conv skips
    exact zeros), which moves each layer's output by ~1e-7 relative, so across ResNet-18's
    ~20 convs the drift stays orders of magnitude below 1e-4 (measured ~1e-7), while any real
    bug (a wrong permutation, a dropped tap or bias) moves outputs by a large fraction of their
    scale. Element-wise relative error is not used: it is ill-conditioned near zero outputs.
  * 10% MACs: the issue's bar. The exact standard-ONNX forms cost slightly more than the
    non-zero count (SSC's dense 1x1 also multiplies the centre taps of the full blocks,
    ~1/(k*k) of the split layer), so 0% is not achievable; 10% is.
  * dense 1e-6: nothing should be rewritten, so outputs are normally bit-identical; exact
    clean-ups that ORT executes in a different order may reassociate, hence 1e-6.

Statuses: pass; accuracy-fail and error are FAILURES; mac-fail (a REQUIRED family above 110%
of ideal) and unexpected-rewrite (MACs changed on dense, grown on sparse90) are FAILURES;
mac-target-unmet (a family whose rules are still pending, above 110% of ideal) is a reported
shortfall printed under "NOT YET MET", not a failure, so the suite can run in CI while those
rules are being written. Keep REQUIRED_FAMILIES in step with the rewriter.

Usage: structured.py --ssc-opt BIN [--models-dir DIR]... [--json FILE]
Last line: "structured: N passed, M failed" (M counts real failures only); exit 1 on failures.
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
from onnx import shape_inference

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Families whose rewrites are implemented and once met the 10% MAC target: missing it now is a
# regression and fails the suite. When a pending family's rule lands and it passes, move it here.
# The fixtures are ResNet-18 at reduced width (8-64 channels, 64x64 input): they test that the
# rules find and exploit each structure, i.e. that the structural MAC target is reachable. On
# layers that small the default latency-calibrated cost model rightly keeps dense convs (ORT's
# per-node overhead outweighs the saved MACs), so this suite prices alternatives by MACs. Speed
# at real width, with the default cost model, is measured by scripts/bench_families.sh and
# reported in docs/benchmarks.md.
SSC_ARGS = ["--cost-model", "macs"]

REQUIRED_FAMILIES = {"ssc_block", "ssc_shift", "ssc_dw", "blockdiag", "const_kernels", "in_blocks4",
                     "zero_filters", "plus", "prune", "ssc_rem", "ssc_prune"}
# Families whose rules are pending (none now; see docs/rules.md "Pending"): missing the target is
# reported under NOT YET MET, not failed. Any family in the manifest that is in none of these sets
# is treated the same way.
PENDING_FAMILIES: set[str] = set()
# Families where no structural rewrite is expected. Dense: MACs must be unchanged. 90% unstructured
# zeros: ONNX operators cannot exploit scattered zeros (that is the JIT's job), so MACs must not
# grow; at these fixtures' tiny widths magnitude pruning does zero whole filters and input
# columns (e.g. 0.9^8 = 43% of 1x1 filters over 8 inputs), which the pruned-channel rules remove
# exactly, so a decrease is legitimate.
NO_CHANGE_FAMILIES = {"dense", "sparse90"}
# MGIC nets (tests/models/mgic/, scripts/make_mgic.py; families mgic_*) are grouped V-cycles with
# no structural MAC target of their own: like sparse90, their MACs must not grow and outputs stay
# within 1e-4.


def no_change(family: str) -> bool:
    return family in NO_CHANGE_FAMILIES or family.startswith("mgic")

RTOL = 1e-4          # the accuracy bar (norm-wise relative)
DENSE_RTOL = 1e-6    # dense: bit-identical expected, this much tolerated
MAC_TOL = 0.10       # optimised MACs may exceed the ideal by at most 10%
SEEDS = 2
FAILING = {"error", "accuracy-fail", "mac-fail", "unexpected-rewrite", "params-grew"}


# ---------------------------------------------------------------------------------------------
# MAC counting
# ---------------------------------------------------------------------------------------------

def fix_symbolic_dims(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose graph inputs have every symbolic/unknown dim set to 1."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {t.name for t in m.graph.initializer}
    for vi in m.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if not d.HasField("dim_value") or d.dim_value <= 0:
                d.Clear()
                d.dim_value = 1
    return m


def known_shapes(model: onnx.ModelProto) -> dict[str, list[int] | None]:
    inferred = shape_inference.infer_shapes(fix_symbolic_dims(model), strict_mode=False)
    g = inferred.graph
    shapes: dict[str, list[int] | None] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            shapes[vi.name] = None
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        shapes[vi.name] = None if any(x < 0 for x in dims) else dims
    for t in g.initializer:
        shapes[t.name] = list(t.dims)
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    shapes[n.output[0]] = list(a.t.dims)
    return shapes


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def count_params(model: onnx.ModelProto) -> int:
    """Elements of every initializer (weights, biases, indices, constants)."""
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


def count_macs(model: onnx.ModelProto) -> tuple[int, dict[str, int]]:
    """Whole-model MACs over Conv/Gemm/MatMul (per image: symbolic dims = 1), and per node.

    Raises ValueError when a counted node's shapes cannot be inferred."""
    shapes = known_shapes(model)
    per: dict[str, int] = {}

    def shape(name: str, node: onnx.NodeProto) -> list[int]:
        s = shapes.get(name)
        if s is None:
            raise ValueError(f"{node.op_type} {node.name!r}: shape of {name!r} unknown")
        return s

    for i, n in enumerate(model.graph.node):
        key = n.name or f"#{i}:{n.op_type}"
        if n.domain not in ("", "ai.onnx"):
            continue
        if n.op_type == "Conv":
            y = shape(n.output[0], n)
            w = shape(n.input[1], n)            # [Co, Ci/group, k...]
            per[key] = int(np.prod(y)) * w[1] * int(np.prod(w[2:]))
        elif n.op_type == "Gemm":
            a = shape(n.input[0], n)
            b = shape(n.input[1], n)
            m_, k = (a[1], a[0]) if _attr(n, "transA", 0) else (a[0], a[1])
            nn = b[0] if _attr(n, "transB", 0) else b[1]
            per[key] = m_ * nn * k
        elif n.op_type == "MatMul":
            a = shape(n.input[0], n)
            y = shape(n.output[0], n)
            per[key] = int(np.prod(y)) * a[-1]
    return sum(per.values()), per


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------

def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(a))), 1e-30)


def session(path: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def feeds_for(model: onnx.ModelProto, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                 for d in tt.shape.dim]
        dt = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        feeds[vi.name] = rng.standard_normal(shape).astype(dt)
    return feeds


def accuracy(orig_path: str, opt_path: str, model: onnx.ModelProto) -> tuple[float, bool]:
    """Worst norm-wise relative error over outputs and seeds, and whether all were identical."""
    s0, s1 = session(orig_path), session(opt_path)
    names = [o.name for o in s0.get_outputs()]
    got_names = [o.name for o in s1.get_outputs()]
    if names != got_names:
        raise ValueError(f"outputs changed: {names} -> {got_names}")
    worst, identical = 0.0, True
    for seed in range(SEEDS):
        feeds = feeds_for(model, seed)
        want = s0.run(names, feeds)
        got = s1.run(names, feeds)
        for n, w, g in zip(names, want, got):
            if w.shape != g.shape or w.dtype != g.dtype:
                raise ValueError(f"output {n!r}: {g.dtype}{list(g.shape)} vs {w.dtype}{list(w.shape)}")
            identical &= bool(np.array_equal(w, g))
            worst = max(worst, rel_err(w, g))
    return worst, identical


def check_family(name: str, entry: dict, models_dir: str, ssc: str, tmp: str) -> dict:
    family = entry.get("family", name)
    layers = entry.get("layers", {})
    ideal = entry.get("ideal_macs")
    if ideal is None:
        ideal = sum(v["ideal_macs"] if v.get("affected") else v["dense_macs"] for v in layers.values())
    r: dict = {"model": name, "family": family, "ideal_macs": int(ideal),
               "manifest_dense_macs": entry.get("dense_macs"), "status": None, "why": "",
               "notes": []}
    src = os.path.join(models_dir, entry.get("file", name + ".onnx"))
    dst = os.path.join(tmp, name + ".opt.onnx")
    t0 = time.monotonic()
    try:
        p = subprocess.run([ssc, src, "-o", dst, "--report", "json", "--quiet", *SSC_ARGS],
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
        r["exit"] = p.returncode
        if p.returncode != 0:
            tail = p.stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"ssc-opt exit {p.returncode}: {tail[-1] if tail else ''}")
        report = json.loads(p.stdout)
        r["report_verification"] = report.get("verification")
        rw = (report.get("optimize") or {}).get("rewrite") or {}
        r["report_macs_after"] = (report.get("optimize") or {}).get("macs_after")

        original = onnx.load(src)
        optimised = onnx.load(dst)
        r["macs_original"], _ = count_macs(original)
        r["macs_optimised"], _ = count_macs(optimised)
        dense = entry.get("dense_macs")
        if dense is not None and dense != r["macs_original"]:
            raise RuntimeError(f"MAC counter disagrees with the manifest on the original: "
                               f"{r['macs_original']} vs dense_macs {dense}")
        r["ratio"] = r["macs_optimised"] / r["ideal_macs"]
        r["params_original"] = count_params(original)
        r["params_optimised"] = count_params(optimised)

        # Per affected layer: the report's macs_after (which counts the Adds) vs the ideal.
        per_layer = []
        reported = {l.get("node"): l for l in rw.get("layers", [])}
        for node, lay in layers.items():
            if not lay.get("affected"):
                continue
            l = reported.get(node)
            row = {"node": node, "ideal": lay["ideal_macs"], "dense": lay["dense_macs"]}
            if l is not None and l.get("macs_after") is not None:
                row.update(macs_after=l["macs_after"], ratio=l["macs_after"] / lay["ideal_macs"],
                           rewritten=bool(l.get("rewritten")), form_before=l.get("form_before"),
                           form_after=l.get("form_after"), rules=l.get("rules_fired", []))
            per_layer.append(row)
        r["layers"] = per_layer

        r["max_rel_err"], r["identical"] = accuracy(src, dst, original)
    except Exception as e:  # noqa: BLE001 - any failure of the pipeline is an `error` row
        r["status"], r["why"] = "error", f"{type(e).__name__}: {e}"
        r["seconds"] = time.monotonic() - t0
        return r
    r["seconds"] = time.monotonic() - t0

    err = r["max_rel_err"]
    if err > RTOL:
        r["status"], r["why"] = "accuracy-fail", f"rel err {err:.3e} > {RTOL:g}"
    elif r["params_optimised"] > r["params_original"]:
        r["status"] = "params-grew"
        r["why"] = f"parameters {r['params_original']:,} -> {r['params_optimised']:,}"
    elif no_change(family):
        grew = r["macs_optimised"] > r["macs_original"]
        changed = r["macs_optimised"] != r["macs_original"]
        if grew or (family == "dense" and changed):
            r["status"] = "unexpected-rewrite"
            r["why"] = f"MACs changed {r['macs_original']} -> {r['macs_optimised']}, no rewrite expected"
        elif family == "dense" and err > DENSE_RTOL:
            r["status"], r["why"] = "accuracy-fail", f"dense: rel err {err:.3e} > {DENSE_RTOL:g}"
        else:
            r["status"] = "pass"
            what = ("no rewrite expected: MACs unchanged" if not changed
                    else f"only whole zero filters/columns removed: MACs {r['macs_original']:,} -> {r['macs_optimised']:,}")
            r["notes"].append(what + (", bit-identical" if r["identical"]
                                      else f", within {DENSE_RTOL if family == 'dense' else RTOL:g}"))
    elif entry.get("mac_check") is False:
        r["status"] = "pass"
        r["notes"].append(f"MACs {r['ratio']:.3f}x ideal, not held to the target at this width")
    elif r["ratio"] <= 1.0 + MAC_TOL:
        r["status"] = "pass"
        if family not in REQUIRED_FAMILIES:
            r["notes"].append("meets target: add to REQUIRED_FAMILIES")
    elif family in REQUIRED_FAMILIES:
        r["status"] = "mac-fail"
        r["why"] = f"MACs {r['ratio']:.3f}x ideal > {1 + MAC_TOL:.2f}x (required family)"
    else:
        r["status"] = "mac-target-unmet"
        r["why"] = f"MACs {r['ratio']:.3f}x ideal > {1 + MAC_TOL:.2f}x (rule pending)"
    if r["status"] in ("pass", "mac-fail", "mac-target-unmet") and not no_change(family):
        r["notes"].append("bit-identical" if r["identical"] else "")
    r["notes"] = [n for n in r["notes"] if n]
    return r


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

def fmt_int(x) -> str:
    return f"{x:,}" if isinstance(x, int) else "-"


def print_report(rows: list[dict], elapsed: float) -> None:
    print("\nstructured families (MACs: Conv/Gemm/MatMul only, per image; Adds, pools and "
          "permutations not counted)")
    hdr = (f"{'model':<24} {'MACs original':>14} {'MACs optimised':>15} {'ideal':>12} "
           f"{'opt/ideal':>9} {'max rel err':>12}  {'status':<18} note")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else "-"
        err = f"{r['max_rel_err']:.3e}" if "max_rel_err" in r else "-"
        note = "; ".join(r["notes"] + ([r["why"]] if r["why"] else []))
        print(f"{r['model']:<24.24} {fmt_int(r.get('macs_original')):>14} "
              f"{fmt_int(r.get('macs_optimised')):>15} {fmt_int(r['ideal_macs']):>12} "
              f"{ratio:>9} {err:>12}  {r['status']:<18} {note}")

    print("\nper affected layer: ssc-opt report's macs_after / manifest ideal (the report's per-layer "
          "figure counts the branch Add;\nits whole-model macs_after does not)")
    print(f"{'family':<14} {'affected':>8} {'rewritten':>9} {'worst rewritten':>15} {'worst any':>9}"
          f"  worst rewritten layer (form)")
    for r in rows:
        lay = r.get("layers")
        if not lay:
            continue
        with_ratio = [l for l in lay if "ratio" in l]
        rewritten = [l for l in with_ratio if l["rewritten"]]
        worst_any = f"{max(l['ratio'] for l in with_ratio):.3f}" if with_ratio else "-"
        if rewritten:
            w = max(rewritten, key=lambda l: l["ratio"])
            worst, where = f"{w['ratio']:.3f}", f"{w['node']} ({w['form_after']})"
        else:
            worst = "-"
            where = "no layer rewritten" + ("" if with_ratio else " (no per-layer entry in the report)")
        print(f"{r['family']:<14} {len(lay):>8} {len(rewritten):>9} {worst:>15} {worst_any:>9}  {where}")
        skipped = [l for l in lay if not l.get("rewritten")]
        if skipped and rewritten:
            # Some layers rewritten, some not: list the ones left as they were.
            for l in skipped:
                how = (f"rules fired {l['rules']}, kept {l['form_after']}" if "rules" in l
                       else "not in the report")
                print(f"{'':<14}   not rewritten: {l['node']} (ideal {l['ideal']:,} vs "
                      f"{l['dense']:,} dense; {how})")

    unmet = [r for r in rows if r["status"] == "mac-target-unmet"]
    print("\nNOT YET MET (rules pending; a shortfall, not a failure):")
    if not unmet:
        print("  none")
    for r in unmet:
        n_rw = sum(1 for l in r.get("layers", []) if l.get("rewritten"))
        print(f"  !!! {r['family']}: {r['macs_optimised']:,} MACs vs ideal {r['ideal_macs']:,} "
              f"({r['ratio']:.3f}x, target <= {1 + MAC_TOL:.2f}x; original {r['macs_original']:,}); "
              f"{n_rw} of {len(r.get('layers', []))} affected layers rewritten")

    failed = [r for r in rows if r["status"] in FAILING]
    if failed:
        print("\nFAILURES:")
        for r in failed:
            print(f"  {r['family']}: {r['status']}: {r['why']}")
    print(f"\n{len(rows)} families, {SEEDS} seeded inputs each, rtol {RTOL:g}, "
          f"MAC tolerance {MAC_TOL:.0%}, {elapsed:.1f} s")
    passed = sum(1 for r in rows if r["status"] == "pass")
    print(f"structured: {passed} passed, {len(failed)} failed")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ssc-opt", required=True, help="the ssc-opt binary")
    ap.add_argument("--models-dir", action="append", default=None,
                    help="fixtures with manifest.json; repeatable (default: tests/models/structured, "
                         "tests/models/pruned and tests/models/mgic)")
    ap.add_argument("--json", help="write the per-family results here")
    args = ap.parse_args(argv)

    ort.set_default_logger_severity(3)
    dirs = args.models_dir or [os.path.join(REPO, "tests", "models", d)
                               for d in ("structured", "pruned", "mgic")]
    t0 = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for models_dir in dirs:
            with open(os.path.join(models_dir, "manifest.json")) as f:
                models = json.load(f).get("models", {})
            for name in sorted(models, key=lambda n: (models[n].get("family") != "dense", n)):
                rows.append(check_family(name, models[name], models_dir, args.ssc_opt, tmp))
    elapsed = time.monotonic() - t0
    print_report(rows, elapsed)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rtol": RTOL, "dense_rtol": DENSE_RTOL, "mac_tol": MAC_TOL,
                       "required_families": sorted(REQUIRED_FAMILIES),
                       "mac_counter": "Conv/Gemm/MatMul only", "results": rows}, f, indent=1)
            f.write("\n")
    failed = sum(1 for r in rows if r["status"] in FAILING)
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
