#!/usr/bin/env python3
"""The JIT against ONNX Runtime on the whole model zoo, 1 and 2 threads: issue 16's table.

Why this exists: the JIT must hold its own against ORT on every architecture a user brings,
not only on the ResNets it was tuned on. This script runs every zoo model through
`scripts/bench_jit.py`'s interleaved timing (ORT in this process, `ssc-opt bench` in a
subprocess, alternating rounds, medians), checks that both engines agree within --tol, and
records per model: the JIT/ORT ratio on 1 and 2 threads, each engine's 1 -> 2 thread scaling,
the JIT's compile time and the nodes that fell back to reference kernels. A second table does
the same for ssc-opt's output of every structured family (scripts/make_structured.py), both
engines running the same optimised file.

The zoo:
  * the torchvision-style architectures of scripts/make_models.py at full size (224x224,
    `<arch>_folded.onnx`), generated into bench-out/models/ on first use;
  * the real models of the real-model zoo (tests/zoo/manifest.json; scripts/fetch_zoo.py fills
    the ignored cache .cache/zoo/), fed the manifest's input shapes and value ranges;
  * an MGIC ResNet, when its generator (scripts/make_mgic.py) exists in this checkout.
  Models that cannot be measured are listed as such, never silently dropped.

Each model's result is cached in bench-out/zoo/<name>.json, so the zoo can be measured one
model per short quiet run and the table assembled afterwards:

    cargo build --release -p ssc-opt-cli
    .venv/bin/python scripts/bench_zoo.py --list                       # the zoo's names
    .venv/bin/python scripts/bench_zoo.py --only resnet18 --only vgg11  # measure some (cached)
    .venv/bin/python scripts/bench_zoo.py                               # measure all
    .venv/bin/python scripts/bench_zoo.py --table --write-docs          # tables -> docs/benchmarks.md

Ratios are median(JIT) / median(ORT) per thread count: below 1 the JIT is faster; the
"speed-up" columns are the inverse (ORT / JIT), which is how issue 16 states its targets.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_jit as bj  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(REPO, "bench-out", "models")
FAMS = os.path.join(REPO, "bench-out", "families")
CACHE = os.path.join(REPO, "bench-out", "zoo")
DOCS = os.path.join(REPO, "docs", "benchmarks.md")
BEGIN, END = "<!-- zoo-table:begin -->", "<!-- zoo-table:end -->"

ARCHS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0",
         "shufflenet_v2_x1_0", "squeezenet1_1", "densenet121", "resnext50_32x4d",
         "regnet_x_400mf", "vgg11", "convnext_tiny"]
FAMILIES = ["dense", "ssc_block", "ssc_shift", "ssc_dw", "blockdiag", "plus", "zero_filters",
            "const_kernels", "in_blocks4", "sparse90"]


def py() -> str:
    return sys.executable


def arch_model(arch: str) -> str | None:
    path = os.path.join(MODELS, f"{arch}_folded.onnx")
    if not os.path.isfile(path):
        print(f"generating {path} ...", file=sys.stderr)
        subprocess.run([py(), os.path.join(REPO, "scripts/make_models.py"), "--size", "full",
                        "--only", f"{arch}_folded", "--out", MODELS, "--no-check"],
                       check=True, stdout=sys.stderr)
    return path


def mgic_models() -> dict[str, str]:
    """MGIC ResNets from scripts/make_mgic.py, when that generator exists here."""
    gen = os.path.join(REPO, "scripts", "make_mgic.py")
    if not os.path.isfile(gen):
        return {}
    out = os.path.join(REPO, "bench-out", "mgic")
    if not os.path.isdir(out) or not any(f.endswith(".onnx") for f in os.listdir(out)):
        subprocess.run([py(), gen, "--size", "full", "--out", out], check=True, stdout=sys.stderr)
    return {f"mgic_{f[:-5]}": os.path.join(out, f) for f in sorted(os.listdir(out))
            if f.endswith(".onnx")}


def real_models() -> dict[str, str]:
    """The real-model zoo (tests/zoo/manifest.json, cache filled by scripts/fetch_zoo.py)."""
    manifest = os.path.join(REPO, "tests", "zoo", "manifest.json")
    if not os.path.isfile(manifest):
        return {}
    import fetch_zoo

    try:
        paths = fetch_zoo.fetch()
    except fetch_zoo.ZooError as e:
        print(f"warning: the real-model zoo cannot be filled: {e}", file=sys.stderr)
        return {}
    return {f"real_{n}": p for n, p in sorted(paths.items())}


def real_feeds(name: str) -> dict | None:
    """Inputs for a real model: the manifest's shapes and value ranges, seeded."""
    import numpy as np

    with open(os.path.join(REPO, "tests", "zoo", "manifest.json")) as f:
        models = {m["name"]: m for m in json.load(f)["models"]}
    m = models.get(name[len("real_"):]) if name.startswith("real_") else None
    if m is None:
        return None
    rng = np.random.default_rng(0)
    return {k: rng.uniform(v["range"][0], v["range"][1], v["shape"]).astype(np.float32)
            for k, v in m["inputs"].items()}


def family_model(fam: str, binary: str) -> tuple[str, str]:
    src = os.path.join(FAMS, f"resnet18_{fam}.onnx")
    opt = os.path.join(FAMS, "opt", f"resnet18_{fam}.onnx")
    if not os.path.isfile(src):
        subprocess.run([py(), os.path.join(REPO, "scripts/make_structured.py"), "--src",
                        arch_model("resnet18"), "--out", FAMS, "--no-check", "--only", fam],
                       check=True, stdout=sys.stderr)
    if not os.path.isfile(opt):
        os.makedirs(os.path.dirname(opt), exist_ok=True)
        subprocess.run([binary, src, "-o", opt, "--overwrite", "-q"], check=True)
    return src, opt


def zoo(binary: str, with_families: bool) -> dict[str, tuple[str, str]]:
    """name -> (JIT model, ORT model)."""
    out: dict[str, tuple[str, str]] = {}
    for a in ARCHS:
        out[a] = (a, "")  # resolved lazily (generation takes a while)
    for name, path in {**mgic_models(), **real_models()}.items():
        out[name] = (path, path)
    if with_families:
        for f in FAMILIES:
            out[f"family_{f}"] = (f, "")
    return out


def resolve(name: str, spec: tuple[str, str], binary: str) -> tuple[str, str]:
    if name in ARCHS:
        p = arch_model(name)
        return p, p
    if name.startswith("family_"):
        _, opt = family_model(name[len("family_"):], binary)
        return opt, opt
    return spec


def ort_loadable(name: str, path: str) -> str:
    """The model ORT is given: a real model's copy with its graph outputs' declared shapes
    cleared (bench-out/zoo/<name>.ort.onnx), since some exporters declare a wrong output rank
    (ddddocr_ocr) that ORT refuses at run time; nothing else in the graph changes."""
    if not name.startswith("real_"):
        return path
    import onnx

    m = onnx.load(path)
    for o in m.graph.output:
        o.type.tensor_type.ClearField("shape")
    os.makedirs(CACHE, exist_ok=True)
    out = os.path.join(CACHE, f"{name}.ort.onnx")
    onnx.save(m, out)
    return out


def measure(name: str, jit_model: str, ort_model: str, a) -> dict:
    feeds = real_feeds(name) or bj.input_arrays(ort_model)
    ort_model = ort_loadable(name, ort_model)
    shapes = [f"{k}:{','.join(str(d) for d in v.shape)}" for k, v in feeds.items()]
    sess1 = bj.ort_session(ort_model, 1)
    row = {"name": name, "jit_model": os.path.relpath(jit_model, REPO),
           "agreement": bj.agreement(a.bin, jit_model, sess1, feeds), "threads": {}}
    for t in (1, 2):
        sess = sess1 if t == 1 else bj.ort_session(ort_model, t)
        bj.time_ort(sess, feeds, 3)
        o_times, j_times, rep = [], [], None
        for _ in range(a.rounds):
            o_times += bj.time_ort(sess, feeds, a.iters)
            jt, rep = bj.time_jit(a.bin, jit_model, t, a.iters, shapes)
            j_times += jt
        so, sj = bj.stats(o_times), bj.stats(j_times)
        row["threads"][str(t)] = {"ort": so, "jit": sj, "ratio": sj["median"] / so["median"],
                                  "compile_ms": rep["compile_ms"],
                                  "fallback_nodes": rep["fallback_nodes"]}
        print(f"{name} [{t}t]: ORT {so['median']:.2f} ms, JIT {sj['median']:.2f} ms, "
              f"JIT/ORT {sj['median'] / so['median']:.3f}, compile {rep['compile_ms']:.0f} ms, "
              f"fallbacks {len(rep['fallback_nodes'])}, agreement {row['agreement']:.1e}",
              file=sys.stderr, flush=True)
    row["commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                   capture_output=True, text=True).stdout.strip()
    row["dirty"] = bool(subprocess.run(["git", "-C", REPO, "status", "--porcelain", "-uno"],
                                       capture_output=True, text=True).stdout.strip())
    row["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return row


def table(rows: list[dict], missing: list[str], tol: float) -> str:
    lines = ["| model | ORT 1t ms | JIT 1t ms | speed-up 1t | ORT 2t ms | JIT 2t ms | speed-up 2t "
             "| scaling ORT / JIT | compile ms | fallbacks | agreement | measured |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    sp1, sp2 = [], []
    for r in rows:
        t1, t2 = r["threads"]["1"], r["threads"]["2"]
        s1 = t1["ort"]["median"] / t1["jit"]["median"]
        s2 = t2["ort"]["median"] / t2["jit"]["median"]
        sp1.append(s1)
        sp2.append(s2)
        so = t1["ort"]["median"] / t2["ort"]["median"]
        sj = t1["jit"]["median"] / t2["jit"]["median"]
        ok = "" if r["agreement"] <= tol else " **FAIL**"
        lines.append(
            f"| {r['name']} | {t1['ort']['median']:.2f} | {t1['jit']['median']:.2f} | **{s1:.2f}x** "
            f"| {t2['ort']['median']:.2f} | {t2['jit']['median']:.2f} | **{s2:.2f}x** "
            f"| {so:.2f}x / {sj:.2f}x | {max(t1['compile_ms'], t2['compile_ms']):.0f} "
            f"| {len(t1['fallback_nodes'])} | {r['agreement']:.1e}{ok} "
            f"| {r['commit']}{'+' if r['dirty'] else ''} {r['date']} |")
    if sp1:
        g1 = math.exp(sum(map(math.log, sp1)) / len(sp1))
        g2 = math.exp(sum(map(math.log, sp2)) / len(sp2))
        lines.append(f"| **geometric mean** | | | **{g1:.2f}x** | | | **{g2:.2f}x** | | | | | |")
    for m in missing:
        lines.append(f"| {m} | not measured | | | | | | | | | | | |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, "target/release/ssc-opt"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--only", action="append", default=[], help="measure only these (repeatable)")
    ap.add_argument("--no-families", action="store_true", help="leave out the structured families")
    ap.add_argument("--list", action="store_true", help="print the zoo's names and exit")
    ap.add_argument("--cache", default=CACHE, help="per-model result directory (default bench-out/zoo)")
    ap.add_argument("--table", action="store_true", help="print the tables from the cache, measure nothing")
    ap.add_argument("--write-docs", action="store_true", help="with --table: write them into docs/benchmarks.md")
    a = ap.parse_args()
    z = zoo(a.bin, not a.no_families)
    if a.list:
        print("\n".join(z))
        return 0
    os.makedirs(a.cache, exist_ok=True)
    ok = True
    if not a.table:
        names = [n for n in z if not a.only or n in a.only]
        unknown = [o for o in a.only if o not in z]
        if unknown:
            print(f"unknown: {', '.join(unknown)}; known: {', '.join(z)}", file=sys.stderr)
            return 2
        for n in names:
            jm, om = resolve(n, z[n], a.bin)
            try:
                row = measure(n, jm, om, a)
            except (RuntimeError, subprocess.SubprocessError) as e:
                print(f"{n}: cannot be measured: {e}", file=sys.stderr)
                row = {"name": n, "error": str(e).splitlines()[0][:200]}
                ok = False
                with open(os.path.join(a.cache, f"{n}.json"), "w") as f:
                    json.dump(row, f, indent=1)
                continue
            ok &= row["agreement"] <= a.tol
            with open(os.path.join(a.cache, f"{n}.json"), "w") as f:
                json.dump(row, f, indent=1)
    rows, fam_rows, missing, fam_missing = [], [], [], []
    for n in z:
        path = os.path.join(a.cache, f"{n}.json")
        if not os.path.isfile(path):
            (fam_missing if n.startswith("family_") else missing).append(n)
            continue
        with open(path) as f:
            r = json.load(f)
        if "error" in r:
            (fam_missing if n.startswith("family_") else missing).append(f"{n} ({r['error']})")
            continue
        (fam_rows if n.startswith("family_") else rows).append(r)
    out = ["### The zoo (JIT and ORT each on the model)", "", table(rows, missing, a.tol)]
    if not a.no_families:
        out += ["", "### ssc-opt's output of each structured family (ResNet-18, 224x224; "
                "JIT and ORT both on the optimised file)", "", table(fam_rows, fam_missing, a.tol)]
    text = "\n".join(out)
    print(text)
    if a.write_docs:
        with open(DOCS) as f:
            doc = f.read()
        cmd = ("Reproduce: `cargo build --release -p ssc-opt-cli && .venv/bin/python "
               "scripts/bench_zoo.py` (or one model at a time with `--only NAME`, then "
               "`--table --write-docs`). 5 rounds x 10 runs per engine and thread count, "
               "interleaved; speed-up = median(ORT) / median(JIT).")
        block = f"{BEGIN}\n{cmd}\n\n{text}\n{END}"
        if BEGIN in doc:
            pre, _, rest = doc.partition(BEGIN)
            _, _, post = rest.partition(END)
            doc = pre + block + post
        else:
            doc = doc.rstrip("\n") + "\n\n## (g) The JIT on the model zoo\n\n" + block + "\n"
        with open(DOCS, "w") as f:
            f.write(doc)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
