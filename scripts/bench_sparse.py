#!/usr/bin/env python3
"""Issue 14's acceptance benchmark: the JIT on ssc-opt's output against ORT on the original.

Why this exists: issue 14 is judged by latency ratios on pruned and micro-structured models
(ResNet-18 and MobileNetV2 at 224x224, 1 thread), by 2-thread scaling, compile times,
agreement with ORT, and a per-layer rule: no layer's kernel may be slower than the dense
kernel it replaced. This script measures all of it in one run, on models that
``scripts/bench_sparse.sh`` generates (``scripts/make_sparse.py --size full``) and optimises
(``ssc-opt IN -o OUT``).

Per model (CASE = NAME=OPTIMISED.onnx:ORIGINAL.onnx), R rounds (--rounds), each:
    ORT on the original, --iters runs in this process (scripts/bench_jit.py's io_binding loop);
    `ssc-opt bench OPTIMISED --iters N --json` (the JIT's normal kernel choice);
    `ssc-opt bench OPTIMISED --iters N --json --dense-only` (every conv on a dense kernel).
The three are interleaved, so drift and neighbours hit them alike. Reported: medians over all
runs; speed-up = median(ORT) / median(JIT) (above 1: the JIT is faster), the same for the
dense-only JIT, compile time (median over rounds), and the agreement of `ssc-opt run --engine
jit` on the optimised model with ORT on the original on one seeded input (max|a-b| / max|a|,
must be <= --tol). With --threads-for NAME the model is also timed at 2 threads (ORT and JIT,
interleaved) and the JIT's 1 -> 2 thread scaling reported.

The per-layer check: each `bench` run lists every step's kernel and median time over its
profiled runs (`kernels` in the JSON). Steps of the normal and the dense-only plan are aligned
by node name (difflib on the step lists); a *segment* is an aligned step plus the unaligned
steps after it, so a conv whose choice changed what fuses with it (an SSC pair one dense step
but two sparse ones, an Add no longer in an epilogue) is compared with everything it now
costs. Segments whose kernels are identical in both plans are not compared (any difference is
noise). In each round the normal and the dense-only run are neighbours in time, so the
segment's ratio normal / dense is taken per round; a changed segment fails when
    median over rounds of that ratio > 1 + REL  and
    median normal time - median dense time > ABS ms
REL and ABS (--rel-margin, --abs-margin) come from an A/A measurement (--aa: the dense-only
plan against itself, the same procedure): see docs/benchmarks.md for the numbers that set the
defaults.

Exit status: 0 when every agreement and every per-layer check holds, 1 otherwise (the speed-up
targets are reported, not enforced: they are benchmarks, not tests).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_jit as bj  # noqa: E402  (the paired ORT / JIT timing this script reuses)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Issue 14's acceptance table: name -> (description, target speed-up over ORT).
TARGETS = {
    "resnet18_unstructured90": ("ResNet-18, 90% unstructured (per layer)", 3.5),
    "resnet18_unstructured95": ("ResNet-18, 95% unstructured (per layer)", 5.0),
    "resnet18_global70": ("ResNet-18, 70% global magnitude", 2.0),
    "resnet18_global50": ("ResNet-18, 50% global magnitude", 1.3),
    "resnet18_mswu4x4_p50_sign": ("ResNet-18, MSWU 4x4, 50% pruned, rest sign-kept", 1.9),
    "resnet18_mswu4x4_p75": ("ResNet-18, MSWU 4x4, 75% pruned", 3.0),
    "resnet18_mswu4x4_one_q50": ("ResNet-18, MSWU 4x4 one-value tiles on a 50% quota", 1.6),
    "mobilenet_v2_global60": ("MobileNetV2, 60% global on non-depthwise convs", 1.4),
    "resnet18_nm2of4": ("ResNet-18, 2:4", 1.5),
}

REL_MARGIN = 0.15
ABS_MARGIN_MS = 0.05


def step_key(steps: list[dict]) -> list[str]:
    """Node names made unique by occurrence (a node label appears once per plan in practice)."""
    seen: dict[str, int] = {}
    out = []
    for s in steps:
        n = seen.get(s["node"], 0)
        seen[s["node"]] = n + 1
        out.append(s["node"] if n == 0 else f"{s['node']}#{n}")
    return out


def segments(a: list[dict], b: list[dict]) -> list[tuple[list[int], list[int]]]:
    """Aligned segments of two step lists: (indices into a, indices into b)."""
    ka, kb = step_key(a), step_key(b)
    sm = difflib.SequenceMatcher(None, ka, kb, autojunk=False)
    anchors = [(blk.a + k, blk.b + k) for blk in sm.get_matching_blocks() for k in range(blk.size)]
    segs: list[tuple[list[int], list[int]]] = []
    lead_a = list(range(anchors[0][0])) if anchors else list(range(len(a)))
    lead_b = list(range(anchors[0][1])) if anchors else list(range(len(b)))
    if lead_a or lead_b:
        segs.append((lead_a, lead_b))
    for n, (ia, ib) in enumerate(anchors):
        na, nb = anchors[n + 1] if n + 1 < len(anchors) else (len(a), len(b))
        segs.append((list(range(ia, na)), list(range(ib, nb))))
    return segs


def segment_stat(runs_a: list[dict], ia: list[int], runs_b: list[dict], ib: list[int]) -> dict:
    """A segment's time in two plans: per round (the two runs of a round are neighbours in
    time, so the machine's drift cancels in their ratio), then the median over rounds."""
    ta = [sum(r["kernels"][i]["median_ms"] for i in ia) for r in runs_a]
    tb = [sum(r["kernels"][i]["median_ms"] for i in ib) for r in runs_b]
    ratios = [x / y if y > 0 else float("inf") for x, y in zip(ta, tb)]
    return {"a_ms": float(np.median(ta)), "b_ms": float(np.median(tb)),
            "ratio": float(np.median(ratios))}


def slower(st: dict, rel: float, abs_ms: float) -> bool:
    """Slower beyond the noise: both the ratio and the gap past their margins."""
    return st["ratio"] > 1.0 + rel and st["a_ms"] - st["b_ms"] > abs_ms


def per_layer(normal_runs: list[dict], dense_runs: list[dict], rel: float, abs_ms: float) -> dict:
    """The per-layer check over rounds of `bench --json` reports (see the module doc)."""
    first_n, first_d = normal_runs[0]["kernels"], dense_runs[0]["kernels"]
    for runs, ref in ((normal_runs, first_n), (dense_runs, first_d)):
        for r in runs:
            if [s["kernel"] for s in r["kernels"]] != [s["kernel"] for s in ref]:
                raise RuntimeError("the plan changed between rounds (non-deterministic compile?)")
    rows = []
    for ia, ib in segments(first_n, first_d):
        kn = [f"{first_n[i]['node']}: {first_n[i]['kernel']}" for i in ia]
        kd = [f"{first_d[i]['node']}: {first_d[i]['kernel']}" for i in ib]
        if kn == kd:
            continue
        st = segment_stat(normal_runs, ia, dense_runs, ib)
        rows.append({"normal": kn, "dense": kd, "normal_ms": st["a_ms"], "dense_ms": st["b_ms"],
                     "ratio": st["ratio"], "ok": not slower(st, rel, abs_ms)})
    return {"changed": len(rows), "failed": sum(not r["ok"] for r in rows), "rows": rows}


def bench_case(a, name: str, jit_model: str, ort_model: str, two_threads: bool) -> dict:
    feeds = bj.input_arrays(ort_model)
    shapes = [f"{k}:{','.join(str(d) for d in v.shape)}" for k, v in feeds.items()]
    sess = bj.ort_session(ort_model, 1)
    row = {"name": name, "jit_model": jit_model, "ort_model": ort_model}
    row["agreement"] = bj.agreement(a.bin, jit_model, sess, feeds)
    bj.time_ort(sess, feeds, 3)
    ort_t, jit_t, dense_t, normal_runs, dense_runs, aa_runs = [], [], [], [], [], []
    second = ("--dense-only",)
    for _ in range(a.rounds):
        ort_t += bj.time_ort(sess, feeds, a.iters)
        t, rep = bj.time_jit(a.bin, jit_model, 1, a.iters, shapes)
        jit_t += t
        normal_runs.append(rep)
        t, rep = bj.time_jit(a.bin, jit_model, 1, a.iters, shapes, second)
        dense_t += t
        dense_runs.append(rep)
        if a.aa:
            # A/A: the dense-only plan against itself, to measure the per-layer noise.
            aa_runs.append(bj.time_jit(a.bin, jit_model, 1, a.iters, shapes, second)[1])
    if a.aa:
        row["aa"] = aa_noise(aa_runs, dense_runs, a.rel_margin, a.abs_margin)
    so, sj, sd = bj.stats(ort_t), bj.stats(jit_t), bj.stats(dense_t)
    row.update({
        "ort": so, "jit": sj, "jit_dense": sd,
        "speedup": so["median"] / sj["median"],
        "speedup_dense": so["median"] / sd["median"],
        "compile_ms": float(np.median([r["compile_ms"] for r in normal_runs])),
        "fallback_nodes": normal_runs[0]["fallback_nodes"],
        "per_layer": per_layer(normal_runs, dense_runs, a.rel_margin, a.abs_margin),
    })
    if two_threads:
        sess2 = bj.ort_session(ort_model, 2)
        bj.time_ort(sess2, feeds, 3)
        o2, j2 = [], []
        for _ in range(a.rounds):
            o2 += bj.time_ort(sess2, feeds, a.iters)
            j2 += bj.time_jit(a.bin, jit_model, 2, a.iters, shapes)[0]
        row["threads2"] = {"ort": bj.stats(o2), "jit": bj.stats(j2),
                           "jit_scaling": sj["median"] / bj.stats(j2)["median"],
                           "ort_scaling": so["median"] / bj.stats(o2)["median"]}
    return row


def aa_noise(a_runs: list[dict], b_runs: list[dict], rel: float, abs_ms: float) -> dict:
    """The check's statistic on two runs of one plan, step by step: its noise."""
    st = [segment_stat(a_runs, [i], b_runs, [i]) for i in range(len(a_runs[0]["kernels"]))]
    st = [x for x in st if x["b_ms"] > 0]
    worst = max(st, key=lambda x: x["ratio"])
    return {"steps": len(st), "max_ratio": worst["ratio"], "max_ratio_ms": worst["b_ms"],
            "max_gap_ms": max(x["a_ms"] - x["b_ms"] for x in st),
            "false_failures": sum(slower(x, rel, abs_ms) for x in st),
            "pairs": [[x["a_ms"], x["b_ms"], x["ratio"]] for x in st]}


def markdown(rows: list[dict], manifest: dict) -> str:
    out = ["| model | MAC limit | target | ORT ms | JIT ms | **JIT vs ORT** | JIT dense-only vs ORT "
           "| compile ms | agreement | per-layer check |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        desc, target = TARGETS.get(r["name"], (r["name"], None))
        lim = manifest.get(r["name"], {}).get("speedup_limit")
        pl = r["per_layer"]
        check = (f"ok ({pl['changed']} changed)" if not pl["failed"]
                 else f"**FAILED** {pl['failed']} of {pl['changed']}")
        met = "" if target is None else (" (met)" if r["speedup"] >= target else " (not met)")
        out.append(
            f"| {desc} | {'' if lim is None else f'{lim:.2f}x'} | "
            f"{'' if target is None else f'>= {target}x'} | {r['ort']['median']:.2f} | "
            f"{r['jit']['median']:.2f} | **{r['speedup']:.2f}x**{met} | {r['speedup_dense']:.2f}x | "
            f"{r['compile_ms']:.0f} | {r['agreement']:.1e} | {check} |")
    two = [r for r in rows if "threads2" in r]
    if two:
        out += ["", "| model | JIT 1 thread ms | JIT 2 threads ms | **JIT 1 -> 2 scaling** | "
                "ORT 1 -> 2 scaling |", "|---|---:|---:|---:|---:|"]
        for r in two:
            t = r["threads2"]
            out.append(f"| {TARGETS.get(r['name'], (r['name'],))[0]} | {r['jit']['median']:.2f} | "
                       f"{t['jit']['median']:.2f} | **{t['jit_scaling']:.2f}x** | "
                       f"{t['ort_scaling']:.2f}x |")
    return "\n".join(out)


def layer_details(rows: list[dict]) -> str:
    out = []
    for r in rows:
        pl = r["per_layer"]
        out.append(f"\n#### {r['name']}: {pl['changed']} layers changed kernel, {pl['failed']} slower "
                   "than dense\n")
        out.append("| normal plan | dense-only plan | normal ms | dense ms | ratio | |")
        out.append("|---|---|---:|---:|---:|---|")
        for x in pl["rows"]:
            out.append(f"| {'<br>'.join(x['normal'])} | {'<br>'.join(x['dense'])} | "
                       f"{x['normal_ms']:.3f} | {x['dense_ms']:.3f} | {x['ratio']:.2f} | "
                       f"{'ok' if x['ok'] else '**slower**'} |")
        if "aa" in r:
            aa = r["aa"]
            out.append(f"\nA/A (dense-only against itself, {aa['steps']} steps): largest ratio "
                       f"{aa['max_ratio']:.3f} (a {aa['max_ratio_ms']:.3f} ms step), largest gap "
                       f"{aa['max_gap_ms']:.3f} ms, {aa['false_failures']} false failures")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", help="NAME=OPTIMISED.onnx:ORIGINAL.onnx")
    ap.add_argument("--bin", default=os.path.join(REPO, "target/release/ssc-opt"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--threads-for", action="append", default=[],
                    help="also time this model at 2 threads (repeatable)")
    ap.add_argument("--rel-margin", type=float, default=REL_MARGIN)
    ap.add_argument("--abs-margin", type=float, default=ABS_MARGIN_MS, help="ms")
    ap.add_argument("--aa", action="store_true", help="also measure the per-layer A/A noise")
    ap.add_argument("--manifest", default=os.path.join(REPO, "bench-out/sparse/manifest.json"))
    ap.add_argument("--json")
    ap.add_argument("--details", help="write the per-layer tables (markdown) here")
    a = ap.parse_args()
    manifest = {}
    if os.path.exists(a.manifest):
        with open(a.manifest) as f:
            manifest = json.load(f).get("models", {})
    rows, ok = [], True
    for case in a.cases:
        name, _, paths = case.partition("=")
        jit_model, _, ort_model = paths.partition(":")
        r = bench_case(a, name, jit_model, ort_model or jit_model, name in a.threads_for)
        rows.append(r)
        pl = r["per_layer"]
        good = r["agreement"] <= a.tol and pl["failed"] == 0
        ok &= good
        print(f"{name}: ORT {r['ort']['median']:.2f} ms, JIT {r['jit']['median']:.2f} ms "
              f"({r['speedup']:.2f}x), dense-only {r['jit_dense']['median']:.2f} ms "
              f"({r['speedup_dense']:.2f}x), compile {r['compile_ms']:.0f} ms, agreement "
              f"{r['agreement']:.1e}, per-layer {pl['failed']} of {pl['changed']} slower"
              + (f", 2 threads {r['threads2']['jit_scaling']:.2f}x" if "threads2" in r else ""),
              file=sys.stderr, flush=True)
        for x in pl["rows"]:
            if not x["ok"]:
                print(f"  slower than dense: {x['normal']} {x['normal_ms']:.3f} ms against "
                      f"{x['dense']} {x['dense_ms']:.3f} ms", file=sys.stderr)
    print(markdown(rows, manifest))
    if a.details:
        with open(a.details, "w") as f:
            f.write(layer_details(rows) + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
