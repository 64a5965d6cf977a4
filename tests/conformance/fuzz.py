#!/usr/bin/env python3
"""Differential fuzzing of ssc-opt's rewriter and JIT on random valid conv graphs.

Why this exists: unit tests check the cases their authors thought of; NNSmith-style differential
testing checks the rest. Every graph from tests/conformance/fuzzgen.py (random shapes, odd sizes,
strides, asymmetric pads, dilations, groups, every weight structure the rules know and mixtures
of them, chains with activations, residual adds, concats and second convs) goes through:

  ORT(original)   onnxruntime, CPU, 1 thread, ORT_DISABLE_ALL: the reference;
  ssc-opt         `ssc-opt g.onnx -o g.opt.onnx --no-verify` (cost model macs or calibrated);
  ORT(optimised)  the optimised file in onnxruntime;
  JIT             `ssc-opt run --engine jit` on the original and on the optimised file;
  OpenVINO        (every --ov-every'th graph) the optimised file on OpenVINO's CPU plugin with
                  INFERENCE_PRECISION_HINT=f32.

Any refusal (an error from ssc-opt on a model ORT runs), any warning from the optimiser (a rule
whose output failed validation: a bug, even though the job went on), any crash and any output
further than the tolerance from ORT(original) fails the run. ssc-opt's two steps run inside one
long-lived helper process per batch (crates/ssc-opt/examples/fuzz_helper.rs, the same facade
calls the CLI makes), so a graph costs no process start; `--cli-check N` runs the first N graphs
of the batch through the real binary too and requires identical results.

OpenVINO's own bugs are told apart from ssc-opt's, never silently: when OpenVINO fails on the
optimised file, it is run on the original too. If it crashes there as well (ov-fails-on-original),
computes a single op of the user's graph wrongly on its own (ov-wrong-op), or is already wrong on
the user's whole graph with an error at least half the output's (ov-wrong-on-original), the graph
is listed as OpenVINO's bug and does not fail the run; any OpenVINO failure an ssc-opt form
introduced does (docs/openvino_gather_conv.py, docs/openvino_conv_quirks.py).

Failing graphs are shrunk (delta debugging over the spec: drop nodes and outputs, weight
structures, bias, groups, strides, dilations, pads, channels, spatial size; round weights) to a
minimal graph that fails the same way, written to --failures-dir as NAME.json (the spec) plus
NAME.onnx. Committed ones live in tests/fuzz/regressions/ and are replayed first on every run
(they must pass now).

Tolerance: the norm-wise relative error max|a-b| / max(max|a|, 1e-3) <= 1e-4. Every rewrite is
exact in real arithmetic and the JIT differs from ORT only by f32 summation order, so honest
differences are ~1e-7 relative, while a wrong weight, pad or channel moves outputs by O(1).
Outputs are O(1) by construction (unit-normal inputs, weights scaled by 1/sqrt(fan-in)); the
1e-3 floor keeps an output that cancels to nearly zero from turning rounding into a failure.
Where a graph still exceeds 1e-4, ORT's own drift between ORT_DISABLE_ALL and ORT_ENABLE_ALL on
the original is measured and a difference within 10x that drift is reported as
ill-conditioned, not failed.

Usage:
  fuzz.py --ssc-opt BIN [--helper HELPER] [--seeds 0:2000] [--batch 250] [--ov-every 4]
          [--regressions tests/fuzz/regressions] [--failures-dir DIR] [--no-shrink] [--json F]
Last line: "fuzz: N passed, M failed".
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnx.numpy_helper
import onnx.shape_inference
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzzgen  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RTOL = 1e-4
FLOOR = 1e-3
DRIFT_FACTOR = 10.0
TIMEOUT = 120.0      # seconds per graph in the helper (a hang is a failure)
SHRINK_BUDGET = 400  # candidate evaluations per failing graph


def rel_err(want: np.ndarray, got: np.ndarray) -> float:
    if want.shape != got.shape:
        return float("inf")
    a, b = want.astype(np.float64), got.astype(np.float64)
    if not np.isfinite(b).all():
        return float("inf")
    return float(np.max(np.abs(a - b), initial=0.0)) / max(float(np.max(np.abs(a), initial=0.0)), FLOOR)


def ort_session(model_bytes_or_path, level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = level
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes_or_path, so, providers=["CPUExecutionProvider"])


def ov_worker() -> int:
    """`fuzz.py --ov-worker`: runs models in OpenVINO for the fuzzer, one JSON request per line
    ({"model", "input": x.npy or a .npz of named inputs, "out"}: outputs written to
    out.<i>.npy), one JSON answer per line. A
    separate process, because OpenVINO's CPU plugin segfaults on some valid graphs, and that
    must cost one graph, not the run."""
    import openvino as ov
    core = ov.Core()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            compiled = core.compile_model(req["model"], "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            src = req["input"]
            feeds = dict(np.load(src)) if src.endswith(".npz") else {"x": np.load(src)}
            res = compiled(feeds)
            for i, o in enumerate(compiled.outputs):
                np.save(f"{req['out']}.{i}.npy", np.asarray(res[o]))
            ans = {"n": len(compiled.outputs)}
        except Exception as e:  # noqa: BLE001
            ans = {"error": str(e).splitlines()[0][:300] if str(e) else type(e).__name__}
        sys.stdout.write(json.dumps(ans) + "\n")
        sys.stdout.flush()
    return 0


class OvRunner:
    """The --ov-worker process, restarted after a crash."""

    def __init__(self):
        self.proc = None

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, model: str, xin: str, out: str) -> list[np.ndarray]:
        """OpenVINO's outputs; raises RuntimeError("crash: ...") when the worker dies."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--ov-worker"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.proc.stdin.write(json.dumps({"model": model, "input": xin, "out": out}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            raise RuntimeError(f"crash: OpenVINO's process died (exit {code})")
        ans = json.loads(line)
        if "error" in ans:
            raise RuntimeError(ans["error"])
        return [np.load(f"{out}.{i}.npy") for i in range(ans["n"])]


OV = OvRunner()


# ---------------------------------------------------------------------------------------------
# The helper process
# ---------------------------------------------------------------------------------------------

class Helper:
    """The long-lived fuzz_helper process; restarted after a crash or a timeout."""

    def __init__(self, path: str):
        self.path = path
        self.proc = None

    def _start(self):
        self.proc = subprocess.Popen([self.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def request(self, req: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.close()
            return {"optimize": "crash: helper exited"}
        if not self.sel.select(timeout=TIMEOUT):
            self.close()
            return {"optimize": f"crash: no answer within {TIMEOUT:.0f} s (hang)"}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            return {"optimize": f"crash: helper died (exit {code}, e.g. an abort or stack overflow)"}
        return json.loads(line)


# ---------------------------------------------------------------------------------------------
# One graph
# ---------------------------------------------------------------------------------------------

def check_graph(spec: dict, helper: Helper, work: str, ov: bool, cli: str | None = None) -> dict:
    """Runs one spec through every implementation. Returns {"status": "pass"|"ill-conditioned"|
    failure class, "why": ..., ...}. Failure classes: invalid (the generator's graph does not run
    in ORT: a generator bug), refusal, warning, crash, jit-refusal, mismatch-opt, mismatch-jit,
    mismatch-jit-opt, ov-error, mismatch-ov, cli-differs."""
    r = {"seed": spec["seed"], "status": "pass", "why": ""}
    try:
        model = fuzzgen.build(spec)
    except fuzzgen.SpecError as e:
        return {**r, "status": "spec-error", "why": str(e)}
    tag = f"g{spec['seed']}"
    src = os.path.join(work, tag + ".onnx")
    dst = os.path.join(work, tag + ".opt.onnx")
    jit_dir = os.path.join(work, tag + ".jit")
    xin = os.path.join(work, tag + ".x.npy")
    onnx.save(model, src)
    x = fuzzgen.input_array(spec)
    np.save(xin, x)
    feeds = {"x": x}
    try:
        want = ort_session(src).run(None, feeds)
    except Exception as e:  # noqa: BLE001
        return {**r, "status": "invalid", "why": f"ORT cannot run the original: {e}"}

    resp = helper.request({"model": src, "out": dst, "cost": spec["cost"], "threads": spec["threads"],
                           "inputs": [["x", xin]], "jit_dir": jit_dir})
    r["rules"] = resp.get("rules", [])
    if resp.get("optimize"):
        msg = resp["optimize"]
        cls = "crash" if msg.startswith(("crash", "panic")) else "refusal"
        return {**r, "status": cls, "why": msg}
    if resp.get("warnings"):
        return {**r, "status": "warning", "why": "; ".join(resp["warnings"])}

    worst = {}

    def compare(name: str, got: list[np.ndarray]):
        worst[name] = max((rel_err(w, g) for w, g in zip(want, got)), default=0.0)
        if len(got) != len(want):
            worst[name] = float("inf")

    try:
        compare("opt", ort_session(dst).run(None, feeds))
    except Exception as e:  # noqa: BLE001
        return {**r, "status": "mismatch-opt", "why": f"ORT cannot run the optimised model: {e}"}
    for key, prefix in (("jit_orig", "orig"), ("jit_opt", "opt")):
        if resp.get(key):
            cls = "crash" if resp[key].startswith("panic") else "jit-refusal"
            return {**r, "status": cls, "why": f"{key}: {resp[key]}"}
        got = [np.load(os.path.join(jit_dir, f"{prefix}.{i}.npy")) for i in range(len(want))]
        compare("jit" if prefix == "orig" else "jit-opt", got)
    if ov:
        try:
            compare("ov", OV.run(dst, xin, os.path.join(work, tag + ".ov")))
        except Exception as e:  # noqa: BLE001
            # OpenVINO fails on the output: is it already failing on the user's own model?
            try:
                OV.run(src, xin, os.path.join(work, tag + ".ov0"))
            except Exception as e0:  # noqa: BLE001
                return {**r, "status": "ov-fails-on-original", "why": f"{e0}; on the output: {e}"}
            return {**r, "status": "ov-error", "why": str(e)}
    if cli:
        why = cli_differs(cli, spec, src, xin, work, dst, jit_dir)
        if why:
            return {**r, "status": "cli-differs", "why": why}
    r["errors"] = worst
    bad = {k: v for k, v in worst.items() if not v <= RTOL}
    if bad.get("ov") and set(bad) == {"ov"}:
        op = ov_wrong_op(dst, feeds, work, tag, original=src)
        if op:
            r["status"] = "ov-wrong-op"
            r["why"] = (f"OpenVINO computes a single {op} wrongly on its own, and the user's graph "
                        "has the same op (its bug: no ssc-opt form involved)")
            return r
        # OpenVINO may already be wrong on the user's own graph (docs/openvino_conv_quirks.py:
        # a stride on an axis with one window that the stride does change is not removable).
        # That is its bug, not ssc-opt's, as long as the output is no worse than the original.
        try:
            got0 = OV.run(src, xin, os.path.join(work, tag + ".ov0"))
            orig = max((rel_err(w, g) for w, g in zip(want, got0)), default=0.0)
        except Exception:  # noqa: BLE001
            orig = 0.0
        if orig > RTOL and bad["ov"] <= 2 * orig:
            r["status"] = "ov-wrong-on-original"
            r["why"] = (f"OpenVINO is wrong on the user's own graph too (rel err {orig:.2e}; on the "
                        f"output {bad['ov']:.2e}): its bug, no ssc-opt form involved")
            return r
    if bad:
        drift = ort_drift(src, feeds, want)
        r["drift"] = drift
        if all(v <= DRIFT_FACTOR * drift for v in bad.values()):
            r["status"] = "ill-conditioned"
            r["why"] = f"errors {bad} within {DRIFT_FACTOR:g}x ORT's own drift {drift:.2e}"
        else:
            k = max(bad, key=bad.get)
            r["status"] = {"opt": "mismatch-opt", "jit": "mismatch-jit", "jit-opt": "mismatch-jit-opt",
                           "ov": "mismatch-ov"}[k]
            r["why"] = f"{k}: rel err {bad[k]:.3e} > {RTOL:g} (ORT drift {drift:.1e}); rules {r['rules']}"
    return r


def op_signature(n, inits: dict, shapes: dict) -> tuple:
    """What makes two nodes the same computation for OpenVINO: op type, attributes, the shapes
    of the activations they read and the exact bytes of the constants they read."""
    attrs = tuple(sorted((a.name, str(onnx.helper.get_attribute_value(a))) for a in n.attribute))
    def const(t):
        a = onnx.numpy_helper.to_array(t)
        return ("c", a.dtype.str, a.shape, a.tobytes())
    ins = tuple(const(inits[x]) if x in inits
                else ("a", tuple(shapes.get(x, ()))) for x in n.input if x)
    return (n.op_type, attrs, ins)


def original_signatures(path: str) -> set:
    m = onnx.shape_inference.infer_shapes(onnx.load(path))
    inits = {t.name: t for t in m.graph.initializer}
    shapes = {}
    for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value for d in dims]
    return {op_signature(n, inits, shapes) for n in m.graph.node}


def ov_wrong_op(path: str, feeds: dict, work: str, tag: str, original: str) -> str:
    """Whether OpenVINO gets one op of the optimised model wrong in isolation *and* that op was
    already in the user's graph (`original`): each node becomes a one-node model fed the values
    ORT computes for its inputs. Returns the first such op (described), or "" otherwise. An op
    ssc-opt introduced (a Gather, a grouped conv, a folded weight) is never an excuse: the
    output must compute the same in OpenVINO, so ssc-opt must pick a form OpenVINO gets right;
    and when every op alone is right, the error comes from how OpenVINO compiles the graph,
    which ssc-opt's choice of form can avoid too. Either way the mismatch stands."""
    m = onnx.load(path)
    theirs = original_signatures(original)
    inits = {t.name: t for t in m.graph.initializer}
    full = onnx.ModelProto()
    full.CopyFrom(m)
    del full.graph.output[:]
    names = [o for n in m.graph.node for o in n.output]
    for o in names:
        full.graph.output.append(onnx.helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None))
    values = dict(zip(names, ort_session(full.SerializeToString()).run(names, feeds)))
    values.update(feeds)
    for i, n in enumerate(m.graph.node):
        ins = [x for x in n.input if x and x not in inits]
        if op_signature(n, inits, {x: list(values[x].shape) for x in ins}) not in theirs:
            continue  # ssc-opt introduced this op: never an excuse
        g = onnx.helper.make_graph(
            [n], "op", [onnx.helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, values[x].shape) for x in ins],
            [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None) for o in n.output],
            [inits[x] for x in n.input if x in inits])
        one = onnx.helper.make_model(g, opset_imports=m.opset_import)
        one.ir_version = m.ir_version
        p1 = os.path.join(work, f"{tag}.op{i}.onnx")
        onnx.save(one, p1)
        npz = os.path.join(work, f"{tag}.op{i}.npz")
        np.savez(npz, **{x: values[x] for x in ins})
        try:
            got = OV.run(p1, npz, os.path.join(work, f"{tag}.op{i}.ov"))
        except Exception:  # noqa: BLE001
            continue
        if any(rel_err(values[o], g_) > RTOL for o, g_ in zip(n.output, got)):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            shapes = [list(values[x].shape) if x in values else list(inits[x].dims) for x in n.input if x]
            return f"{n.op_type} {attrs} on inputs {shapes}"
    return ""


def ort_drift(src: str, feeds, want) -> float:
    try:
        got = ort_session(src, ort.GraphOptimizationLevel.ORT_ENABLE_ALL).run(None, feeds)
        return max(rel_err(w, g) for w, g in zip(want, got))
    except Exception:  # noqa: BLE001
        return 0.0


def cli_differs(cli: str, spec: dict, src: str, xin: str, work: str, dst: str, jit_dir: str) -> str:
    """Runs the real CLI on the graph and compares with what the helper produced."""
    dst2 = dst.replace(".opt.onnx", ".cli.onnx")
    p = subprocess.run([cli, src, "-o", dst2, "--no-verify", "--quiet", "--cost-model", spec["cost"]],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        return f"CLI exit {p.returncode}: {p.stderr.strip()}"
    with open(dst, "rb") as a, open(dst2, "rb") as b:
        if a.read() != b.read():
            return "the CLI's optimised file differs from the helper's"
    out = os.path.join(work, "cli.jit")
    os.makedirs(out, exist_ok=True)
    p = subprocess.run([cli, "run", src, "--engine", "jit", "--input", f"x={xin}", "--output-dir", out,
                        "--threads", str(spec["threads"]), "--quiet"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        return f"CLI run exit {p.returncode}: {p.stderr.strip()}"
    model = onnx.load(src)
    for i, o in enumerate(model.graph.output):
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in o.name) + ".npy"
        a = np.load(os.path.join(out, name))
        b = np.load(os.path.join(jit_dir, f"orig.{i}.npy"))
        if not np.array_equal(a, b):
            return f"CLI run output {o.name} differs from the helper's"
    return ""


# ---------------------------------------------------------------------------------------------
# Shrinking
# ---------------------------------------------------------------------------------------------

def failure_key(r: dict) -> tuple:
    """What must stay the same while shrinking: the class, and for a warning the rule it names,
    for refusals the message's first words (numbers and names stripped), so the shrinker keeps
    the same bug."""
    why = r.get("why", "")
    if r["status"] == "warning":
        m = re.search(r"rule `([^`]+)`", why)
        return (r["status"], m.group(1) if m else why[:40])
    if r["status"] in ("refusal", "crash", "jit-refusal", "ov-error"):
        words = "".join(c if not c.isdigit() else "#" for c in why).split()[:6]
        return (r["status"], " ".join(w for w in words if "`" not in w))
    return (r["status"],)


def size_of(spec: dict) -> tuple:
    """(nodes, weight structures, input elements, conv output channels): what the log shows."""
    convs = [n for n in spec["nodes"] if n["op"] == "conv"]
    return (len(spec["nodes"]), sum(len(n["kinds"]) for n in convs), int(np.prod(spec["input"])),
            sum(n["co"] for n in convs))


def complexity(spec: dict) -> int:
    """A score every shrinking edit lowers: nodes weigh most, then structures, sizes and every
    non-default attribute. A candidate is taken only if it lowers the score, so shrinking ends."""
    score = 100_000 * len(spec["nodes"]) + 1_000 * len(spec["outputs"]) + int(np.prod(spec["input"]))
    score += 10 * spec["threads"]
    for n in spec["nodes"]:
        if n["op"] == "conv":
            score += 5_000 * len(n["kinds"]) + 50 * n["co"] + 20 * sum(n["k"])
            score += 20 * (sum(n["s"]) + sum(n["d"]) + sum(n["pads"]) + (n["g"] > 1) + n["bias"])
            score += 10 * (not n.get("round"))
        elif n["op"] in ("act", "pool"):
            score += 10 * (n.get("kind") not in ("Relu", "MaxPool"))
            score += 10 * (sum(n.get("s", [])) + sum(n.get("pads", [])))
    return score


def shrink(spec: dict, first: dict, helper: Helper, work: str, log) -> tuple[dict, dict, int]:
    """Greedy delta debugging: take the first candidate edit that lowers the complexity and keeps
    the failure, repeat until no edit does (or the budget is spent)."""
    key = failure_key(first)
    ov = first["status"] in ("mismatch-ov", "ov-error")
    best, best_r, evals = spec, first, 0
    improved = True
    while improved and evals < SHRINK_BUDGET:
        improved = False
        for cand in fuzzgen.candidates(best):
            if evals >= SHRINK_BUDGET:
                break
            if complexity(cand) >= complexity(best):
                continue
            try:
                fuzzgen.build(cand)
            except fuzzgen.SpecError:
                continue
            evals += 1
            r = check_graph(cand, helper, work, ov)
            if r["status"] not in ("spec-error", "invalid") and failure_key(r) == key:
                best, best_r, improved = cand, r, True
                log(f"    shrunk to {size_of(best)} after {evals} evaluations")
                break
    return best, best_r, evals


def save_failure(spec: dict, r: dict, d: str) -> str:
    os.makedirs(d, exist_ok=True)
    name = f"{r['status']}-seed{spec['seed']}"
    with open(os.path.join(d, name + ".json"), "w") as f:
        json.dump({"spec": spec, "status": r["status"], "why": r.get("why", "")}, f, indent=1)
        f.write("\n")
    onnx.save(fuzzgen.build(spec), os.path.join(d, name + ".onnx"))
    return name


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

FAILING = {"invalid", "refusal", "warning", "crash", "jit-refusal", "mismatch-opt", "mismatch-jit",
           "mismatch-jit-opt", "ov-error", "mismatch-ov", "cli-differs", "spec-error"}


def main(argv=None) -> int:
    if (argv or sys.argv[1:]) == ["--ov-worker"]:
        return ov_worker()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ssc-opt", required=True, help="the ssc-opt binary (for --cli-check)")
    ap.add_argument("--helper", help="the fuzz_helper example (default: examples/fuzz_helper beside "
                    "the ssc-opt binary, where `cargo build --release -p ssc-opt --example fuzz_helper` puts it)")
    ap.add_argument("--seeds", default="0:2000", help="seed range A:B (B exclusive)")
    ap.add_argument("--batch", type=int, default=250, help="graphs per helper process")
    ap.add_argument("--ov-every", type=int, default=4, help="run every K-th graph in OpenVINO (0: none)")
    ap.add_argument("--cli-check", type=int, default=10, help="graphs checked through the real CLI too")
    ap.add_argument("--regressions", default=os.path.join(REPO, "tests", "fuzz", "regressions"))
    ap.add_argument("--failures-dir", default=os.path.join(REPO, "target", "fuzz-failures"))
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--max-shrink", type=int, default=5, help="shrink at most this many failures")
    ap.add_argument("--json", help="write the per-graph results here")
    args = ap.parse_args(argv)
    ort.set_default_logger_severity(3)
    if args.helper is None:
        args.helper = os.path.join(os.path.dirname(os.path.abspath(args.ssc_opt)), "examples", "fuzz_helper")
    if not os.access(args.helper, os.X_OK):
        print(f"error: fuzz helper {args.helper} not found; build it with "
              f"`cargo build --release -p ssc-opt --example fuzz_helper`", file=sys.stderr)
        return 2
    a, b = (int(v) for v in args.seeds.split(":"))
    log = lambda s: print(s, flush=True)   # noqa: E731

    t0 = time.monotonic()
    results, failures = [], []
    counts = collections.Counter()
    helper = Helper(args.helper)
    with tempfile.TemporaryDirectory(prefix="ssc-fuzz-") as work:
        # Committed regressions first: each must pass now.
        reg = sorted(f for f in os.listdir(args.regressions) if f.endswith(".json")) \
            if os.path.isdir(args.regressions) else []
        for f in reg:
            with open(os.path.join(args.regressions, f)) as fh:
                spec = json.load(fh)["spec"]
            r = check_graph(spec, helper, work, ov=bool(args.ov_every))
            r["regression"] = f
            counts[r["status"]] += 1
            results.append(r)
            log(f"regression {f}: {r['status']} {r['why']}")
            if r["status"] in FAILING:
                failures.append((spec, r))
        n_done = 0
        for seed in range(a, b):
            spec = fuzzgen.generate(seed)
            ov = bool(args.ov_every) and seed % args.ov_every == 0
            cli = args.ssc_opt if n_done < args.cli_check else None
            r = check_graph(spec, helper, work, ov, cli)
            counts[r["status"]] += 1
            results.append(r)
            n_done += 1
            if r["status"] in FAILING:
                failures.append((spec, r))
                log(f"seed {seed}: {r['status']}: {r['why']}")
            if n_done % args.batch == 0:
                helper.close()   # a fresh process per batch bounds what one leak can do
                shutil.rmtree(work, ignore_errors=True)
                os.makedirs(work, exist_ok=True)
                log(f"  {n_done}/{b - a} graphs, {time.monotonic() - t0:.0f} s, {dict(counts)}")
        shrunk = []
        if failures and not args.no_shrink:
            seen = set()
            for spec, r in failures:
                key = failure_key(r)
                if key in seen or len(shrunk) >= args.max_shrink:
                    continue
                seen.add(key)
                log(f"shrinking seed {spec['seed']} ({r['status']}) from {size_of(spec)}")
                small, sr, evals = shrink(spec, r, helper, work, log)
                name = save_failure(small, sr, args.failures_dir)
                shrunk.append(name)
                log(f"  -> {args.failures_dir}/{name}.json ({size_of(small)}, {evals} evaluations): {sr['why']}")
        helper.close()
        OV.close()
    elapsed = time.monotonic() - t0
    ill = [r for r in results if r["status"] == "ill-conditioned"]
    errs = [max(r["errors"].values(), default=0.0) for r in results if r.get("errors")]
    rules = collections.Counter(rule for r in results for rule in r.get("rules", []))
    print(f"\nfuzz: seeds {a}:{b} + {len(reg)} regressions in {elapsed:.1f} s "
          f"({elapsed / max(1, len(results)) * 1e3:.1f} ms/graph); OpenVINO on every "
          f"{args.ov_every or 'no'}th graph")
    print(f"statuses: {dict(sorted(counts.items()))}")
    if errs:
        print(f"worst relative error among compared graphs: {max(errs):.2e} (median {np.median(errs):.1e})")
    print(f"forms chosen, by rule: {dict(rules.most_common())}")
    for r in ill:
        print(f"  ill-conditioned seed {r['seed']}: {r['why']}")
    for r in results:
        if r["status"] in ("ov-fails-on-original", "ov-wrong-op", "ov-wrong-on-original"):
            print(f"  OpenVINO fails on the original graph of seed {r['seed']} (its bug, not ssc-opt's): {r['why']}")
    if failures:
        print("FAILURES:")
        by = collections.defaultdict(list)
        for spec, r in failures:
            by[failure_key(r)].append(spec["seed"])
        for k, seeds in by.items():
            print(f"  {k}: {len(seeds)} graphs, seeds {seeds[:10]}")
        for n in shrunk:
            print(f"  shrunk: {os.path.join(args.failures_dir, n)}.json")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seeds": [a, b], "elapsed": elapsed, "counts": counts, "results": results}, f)
    passed = sum(v for k, v in counts.items() if k not in FAILING)
    print(f"fuzz: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
