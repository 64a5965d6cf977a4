"""Random valid conv graphs for differential fuzzing (used by tests/conformance/fuzz.py).

Why this exists: the rewriter's rules and the JIT's kernels were written against the shapes and
weight structures their authors thought of. NNSmith-style differential testing finds the rest:
generate many small valid models that cover the space the rules claim (shapes, odd sizes,
strides, asymmetric pads, dilations, groups; every weight structure the rules look for, and
mixtures of them; chains with activations, residual adds, concats and second convs), run each
through independent implementations, and flag any disagreement.

A graph is described by a *spec*, a small JSON-able dict, and built deterministically from it
(`build`). Specs, not models, are what the shrinker edits (fuzz.py): removing a node, a weight
structure, a stride or a channel is an edit of the spec, and the rebuilt model is checked again.
`build` raises `SpecError` when an edit makes the graph invalid (e.g. an Add of two shapes that
no longer match), so the shrinker can simply skip such candidates.

Spec layout:
  {"seed": int, "opset": 13|17, "input": [N, C, spatial...], "cost": "macs"|"calibrated",
   "threads": 1|2, "nodes": [node, ...], "outputs": [tensor id, ...]}
Tensor 0 is the graph input; node i produces tensor i + 1. Nodes:
  {"op": "conv", "x": t, "co": int, "k": [..], "s": [..], "d": [..], "pads": [begin.., end..],
   "g": int, "bias": bool, "kinds": [structure, ...], "wseed": int, "round": bool}
  {"op": "bn", "x": t, "wseed": int}             BatchNormalization (folded by ssc-opt)
  {"op": "chan", "x": t, "kind": "Add"|"Mul", "wseed": int}   per-channel constant
  {"op": "act", "x": t, "kind": "Relu"|"LeakyRelu"|"Clip"|"Sigmoid"|"Tanh"}
  {"op": "add", "x": [a, b]}    {"op": "concat", "x": [a, b]}
  {"op": "pool", "x": t, "kind": "MaxPool"|"AveragePool", "k", "s", "pads"}
  {"op": "gap", "x": t}         GlobalAveragePool
  {"op": "head", "x": t, "n": int, "wseed": int}   Flatten + Gemm
Weight structures ("kinds", applied in order to a He-scaled normal weight): dense, sparse,
zero_filters, zero_inputs, blockdiag, ssc, ssc_unequal (SSC over blocks of unequal sizes, the
form filter pruning leaves, sometimes with a hub column in every block's spatial support and
outputs without any spatial kernel), hetconv, box (taps in a sub-box), plus, const_kernel,
equal_inputs, dup_filters. Each kind adapts to any weight shape (a block count
that does not divide the channels falls back to one that does), so every shrunk spec still
builds.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

KINDS = ["dense", "sparse", "zero_filters", "zero_inputs", "blockdiag", "ssc", "hetconv", "box",
         "plus", "const_kernel", "equal_inputs", "dup_filters", "ssc_unequal"]
ACTS = ["Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh"]


class SpecError(ValueError):
    """The spec does not describe a valid graph (only shrinking edits produce such specs)."""


# ---------------------------------------------------------------------------------------------
# Weight structures
# ---------------------------------------------------------------------------------------------

def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _blocks(co: int, ci: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Block ids of outputs and inputs for a random block count G > 1 dividing both (or G = 1),
    under random permutations (or contiguous, half the time)."""
    common = [d for d in _divisors(math.gcd(co, ci)) if d > 1]
    g = int(rng.choice(common)) if common else 1
    ob = np.arange(co) * g // co
    ib = np.arange(ci) * g // ci
    if rng.random() < 0.5:
        ob, ib = rng.permutation(ob), rng.permutation(ib)
    return ob, ib, g


def _unequal_blocks(co: int, ci: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Block ids of outputs and inputs for 2..min(co, ci) blocks of random, unequal sizes (every
    block non-empty), under random permutations half the time; one block when a side has 1."""
    g = int(rng.integers(2, min(co, ci) + 1)) if min(co, ci) >= 2 else 1

    def ids(n: int) -> np.ndarray:
        cuts = np.sort(rng.choice(np.arange(1, n), g - 1, replace=False)) if g > 1 else []
        sizes = np.diff(np.concatenate([[0], cuts, [n]])).astype(int)
        return np.repeat(np.arange(g), sizes)

    ob, ib = ids(co), ids(ci)
    if rng.random() < 0.5:
        ob, ib = rng.permutation(ob), rng.permutation(ib)
    return ob, ib


def _centre_mask(kshape: tuple[int, ...]) -> np.ndarray:
    m = np.zeros(kshape, bool)
    m[tuple(k // 2 for k in kshape)] = True
    return m


def apply_kind(w: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """`w` ([Co, Ci/g, k...]) with structure `kind` planted."""
    w = w.copy()
    co, ci = w.shape[:2]
    ks = w.shape[2:]
    if kind == "dense":
        pass
    elif kind == "sparse":
        w[rng.random(w.shape) < rng.choice([0.5, 0.7, 0.9])] = 0.0
    elif kind == "zero_filters" and co > 1:
        n = int(rng.integers(1, co))
        w[rng.choice(co, n, replace=False)] = 0.0
    elif kind == "zero_inputs" and ci > 1:
        n = int(rng.integers(1, ci))
        how = rng.integers(3)
        idx = (np.arange(ci - n, ci) if how == 0 else np.arange(n) if how == 1
               else rng.choice(ci, n, replace=False))
        w[:, idx] = 0.0
    elif kind == "blockdiag":
        ob, ib, _ = _blocks(co, ci, rng)
        w[ob[:, None] != ib[None, :]] = 0.0
    elif kind in ("ssc", "ssc_unequal", "hetconv"):
        if kind == "ssc":
            ob, ib, _ = _blocks(co, ci, rng)
            full = ob[:, None] == ib[None, :]
        elif kind == "ssc_unequal":
            ob, ib = _unequal_blocks(co, ci, rng)
            full = ob[:, None] == ib[None, :]
            if ci > 1 and rng.random() < 0.3:
                full[:, int(rng.integers(ci))] = True       # a hub column
            if co > 1 and rng.random() < 0.3:
                full[int(rng.integers(co))] = False         # an output with no spatial kernel
        else:
            p = int(rng.integers(2, 5))
            full = (np.arange(ci)[None, :] - np.arange(co)[:, None]) % p == 0
        point = ~full
        if rng.random() < 0.3:
            point &= rng.random(point.shape) < 0.5   # some Z kernels too
        if kind != "hetconv" and ci > 1 and rng.random() < 0.3:
            # Inputs that feed only their own block: the split's 1x1 remainder has zero
            # columns, which zero-inputs-sliced slices in turn (rules composing).
            point[:, rng.choice(ci, int(rng.integers(1, ci)), replace=False)] = False
        centre = _centre_mask(ks)
        w[point] = w[point] * centre
        w[~full & ~point] = 0.0
    elif kind == "box":
        sl = []
        for k in ks:
            b = int(rng.integers(0, k))
            e = int(rng.integers(b + 1, k + 1))
            sl.append(slice(b, e))
        mask = np.zeros(ks, bool)
        mask[tuple(sl)] = True
        w *= mask
    elif kind == "plus" and len(ks) == 2:
        mask = np.zeros(ks, bool)
        mask[ks[0] // 2, :] = True
        mask[:, ks[1] // 2] = True
        if rng.random() < 0.3:
            mask &= rng.random(ks) < 0.7
            mask[ks[0] // 2, ks[1] // 2] = True
        w *= mask
    elif kind == "const_kernel":
        a = w.reshape(co, ci, -1)[:, :, :1]
        w = np.broadcast_to(a.reshape(co, ci, *([1] * len(ks))), w.shape).copy()
    elif kind == "equal_inputs" and ci > 1:
        how = rng.integers(3)
        if how == 0:
            b = int(rng.choice([d for d in _divisors(ci) if d > 1] or [1]))
            cls = np.arange(ci) // b
        elif how == 1:
            cls = np.arange(ci) % max(1, ci // 2)
        else:
            cls = rng.integers(0, max(1, ci - 1), ci)
        first = {}
        for i, c in enumerate(cls):
            first.setdefault(int(c), i)
        w = w[:, [first[int(c)] for c in cls]].copy()
    elif kind == "dup_filters" and co > 1:
        for o in range(1, co):
            if rng.random() < 0.5:
                src = int(rng.integers(0, o))
                w[o] = w[src] * (-1.0 if rng.random() < 0.3 else 1.0)
    return w


def conv_weight(node: dict, ci_group: int) -> np.ndarray:
    rng = np.random.default_rng(node["wseed"])
    shape = (node["co"], ci_group, *node["k"])
    fan_in = ci_group * int(np.prod(node["k"]))
    w = rng.standard_normal(shape) / math.sqrt(fan_in)
    for kind in node["kinds"]:
        w = apply_kind(w, kind, rng)
    if node.get("round"):
        w = np.round(w * 4) / 4
    return w.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------

def conv_out(shape: list[int], node: dict) -> list[int]:
    n, c = shape[:2]
    sp = shape[2:]
    r = len(sp)
    k, s, d, pads = node["k"], node["s"], node["d"], node["pads"]
    if not (len(k) == len(s) == len(d) == r and len(pads) == 2 * r):
        raise SpecError("conv attribute ranks")
    g = node["g"]
    if g < 1 or c % g or node["co"] % g or node["co"] < 1:
        raise SpecError("groups do not divide the channels")
    out = []
    for i in range(r):
        span = d[i] * (k[i] - 1) + 1
        padded = sp[i] + pads[i] + pads[r + i]
        if padded < span or min(k[i], s[i], d[i]) < 1 or min(pads) < 0:
            raise SpecError("kernel does not fit")
        out.append((padded - span) // s[i] + 1)
    return [n, node["co"], *out]


def pool_out(shape: list[int], node: dict) -> list[int]:
    sp = shape[2:]
    r = len(sp)
    k, s, pads = node["k"], node["s"], node["pads"]
    if not (len(k) == len(s) == r and len(pads) == 2 * r):
        raise SpecError("pool attribute ranks")
    out = []
    for i in range(r):
        if pads[i] >= k[i] or pads[r + i] >= k[i]:
            raise SpecError("pool pad >= kernel")
        padded = sp[i] + pads[i] + pads[r + i]
        if padded < k[i]:
            raise SpecError("pool does not fit")
        out.append((padded - k[i]) // s[i] + 1)
    return [*shape[:2], *out]


def shapes_of(spec: dict) -> list[list[int]]:
    """The shape of every tensor (input first), or SpecError."""
    shapes = [list(spec["input"])]

    def get(t):
        if not isinstance(t, int) or not 0 <= t < len(shapes):
            raise SpecError(f"tensor {t} does not exist yet")
        return shapes[t]

    for node in spec["nodes"]:
        op = node["op"]
        if op == "conv":
            shapes.append(conv_out(get(node["x"]), node))
        elif op in ("bn", "chan", "act"):
            x = get(node["x"])
            if op != "act" and len(x) < 2:
                raise SpecError("per-channel op on rank < 2")
            shapes.append(list(x))
        elif op == "add":
            a, b = get(node["x"][0]), get(node["x"][1])
            if a != b:
                raise SpecError("add of different shapes")
            shapes.append(list(a))
        elif op == "concat":
            a, b = get(node["x"][0]), get(node["x"][1])
            if len(a) != len(b) or len(a) < 3 or a[0] != b[0] or a[2:] != b[2:]:
                raise SpecError("concat of different shapes")
            shapes.append([a[0], a[1] + b[1], *a[2:]])
        elif op == "pool":
            shapes.append(pool_out(get(node["x"]), node))
        elif op == "gap":
            x = get(node["x"])
            if len(x) < 3:
                raise SpecError("gap on rank < 3")
            shapes.append([*x[:2], *([1] * (len(x) - 2))])
        elif op == "head":
            x = get(node["x"])
            shapes.append([x[0], node["n"]])
        else:
            raise SpecError(f"unknown op {op}")
    return shapes


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------

def build(spec: dict) -> onnx.ModelProto:
    """The ONNX model of `spec` (deterministic), or SpecError."""
    shapes = shapes_of(spec)
    outputs = spec["outputs"]
    if not outputs or any(not (1 <= t < len(shapes)) for t in outputs) or len(set(outputs)) != len(outputs):
        raise SpecError("bad outputs")
    if any(len(shapes[t]) < 2 for t in outputs if spec["nodes"][t - 1]["op"] != "head"):
        raise SpecError("bad output rank")
    name = lambda t: "x" if t == 0 else f"t{t}"   # noqa: E731
    nodes, inits = [], []

    def const(label: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), label))
        return label

    for i, node in enumerate(spec["nodes"]):
        t, op = i + 1, node["op"]
        out = name(t)
        if op == "conv":
            x = shapes[node["x"]]
            w = conv_weight(node, x[1] // node["g"])
            ins = [name(node["x"]), const(f"w{t}", w)]
            if node["bias"]:
                rng = np.random.default_rng(node["wseed"] + 1)
                ins.append(const(f"b{t}", (rng.standard_normal(node["co"]) * 0.5).astype(np.float32)))
            nodes.append(helper.make_node("Conv", ins, [out], name=f"conv{t}", kernel_shape=node["k"],
                                          strides=node["s"], dilations=node["d"], pads=node["pads"],
                                          group=node["g"]))
        elif op == "bn":
            c = shapes[node["x"]][1]
            rng = np.random.default_rng(node["wseed"])
            p = [rng.uniform(0.5, 1.5, c), rng.standard_normal(c) * 0.3, rng.standard_normal(c) * 0.3,
                 rng.uniform(0.5, 2.0, c)]
            ins = [name(node["x"])] + [const(f"bn{t}_{j}", a.astype(np.float32)) for j, a in enumerate(p)]
            nodes.append(helper.make_node("BatchNormalization", ins, [out], name=f"bn{t}"))
        elif op == "chan":
            x = shapes[node["x"]]
            rng = np.random.default_rng(node["wseed"])
            v = rng.uniform(0.5, 1.5, x[1]) if node["kind"] == "Mul" else rng.standard_normal(x[1]) * 0.3
            c = const(f"c{t}", v.astype(np.float32).reshape(x[1], *([1] * (len(x) - 2))))
            nodes.append(helper.make_node(node["kind"], [name(node["x"]), c], [out], name=f"chan{t}"))
        elif op == "act":
            kind = node["kind"]
            ins = [name(node["x"])]
            attrs = {}
            if kind == "LeakyRelu":
                attrs["alpha"] = 0.1
            if kind == "Clip":
                ins += [const(f"lo{t}", np.array(-1.0, np.float32)), const(f"hi{t}", np.array(1.5, np.float32))]
            nodes.append(helper.make_node(kind, ins, [out], name=f"act{t}", **attrs))
        elif op in ("add", "concat"):
            a, b = node["x"]
            kw = {"axis": 1} if op == "concat" else {}
            nodes.append(helper.make_node("Add" if op == "add" else "Concat", [name(a), name(b)], [out],
                                          name=f"{op}{t}", **kw))
        elif op == "pool":
            kw = dict(kernel_shape=node["k"], strides=node["s"], pads=node["pads"])
            if node["kind"] == "AveragePool":
                kw["count_include_pad"] = node.get("cip", 0)
            nodes.append(helper.make_node(node["kind"], [name(node["x"])], [out], name=f"pool{t}", **kw))
        elif op == "gap":
            nodes.append(helper.make_node("GlobalAveragePool", [name(node["x"])], [out], name=f"gap{t}"))
        elif op == "head":
            x = shapes[node["x"]]
            feat = int(np.prod(x[1:]))
            rng = np.random.default_rng(node["wseed"])
            w = (rng.standard_normal((node["n"], feat)) / math.sqrt(feat)).astype(np.float32)
            b = (rng.standard_normal(node["n"]) * 0.1).astype(np.float32)
            nodes.append(helper.make_node("Flatten", [name(node["x"])], [f"f{t}"], name=f"flat{t}"))
            nodes.append(helper.make_node("Gemm", [f"f{t}", const(f"gw{t}", w), const(f"gb{t}", b)], [out],
                                          name=f"gemm{t}", transB=1))
    vi = lambda t: helper.make_tensor_value_info(name(t), TensorProto.FLOAT, shapes[t])   # noqa: E731
    graph = helper.make_graph(nodes, f"fuzz{spec['seed']}", [vi(0)], [vi(t) for t in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", spec["opset"])],
                              producer_name="ssc-opt fuzzgen")
    model.ir_version = 8
    return model


def input_array(spec: dict) -> np.ndarray:
    return np.random.default_rng(spec["seed"] ^ 0x5EED).standard_normal(spec["input"]).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------

def _conv(rng: np.random.Generator, x: list[int], co: int | None = None, same: bool = False) -> dict:
    """A random conv on a tensor of shape `x`; `same` keeps the spatial size (stride 1, 'same'
    pads), for residual branches."""
    c, sp = x[1], x[2:]
    r = len(sp)
    g = 1
    if rng.random() < 0.3:
        g = int(rng.choice(_divisors(c)))
    if co is None:
        co = int(rng.integers(1, 17))
    co = max(g, co // g * g)
    k, s, d, pb, pe = [], [], [], [], []
    for i in range(r):
        ki = int(rng.choice([1, 1, 2, 3, 3, 3, 5, 7]))
        di = 1 if same or rng.random() < 0.8 else int(rng.integers(2, 4))
        si = 1 if same or rng.random() < 0.7 else int(rng.integers(2, 4))
        span = di * (ki - 1) + 1
        if same:
            if span % 2 == 0:
                ki, span = ki + 1, span + di
            a, b = span // 2, span // 2
        else:
            how = rng.random()
            if how < 0.5:
                a = b = span // 2
            elif how < 0.7:
                a = b = 0
            else:
                a, b = int(rng.integers(0, span)), int(rng.integers(0, span))
        while sp[i] + a + b < span:   # make it fit
            b += 1
        k.append(ki), s.append(si), d.append(di), pb.append(a), pe.append(b)
    n_kinds = int(rng.choice([1, 1, 1, 2, 2, 3]))
    kinds = [str(x) for x in rng.choice(KINDS, n_kinds, replace=False)]
    return {"op": "conv", "co": co, "k": k, "s": s, "d": d, "pads": pb + pe, "g": g,
            "bias": bool(rng.random() < 0.7), "kinds": kinds, "wseed": int(rng.integers(1 << 31)),
            "round": False}


def generate(seed: int) -> dict:
    """A random valid spec (`build(generate(s))` always succeeds)."""
    rng = np.random.default_rng(seed)
    rank = 1 if rng.random() < 0.1 else 2
    sp = [int(rng.integers(1, 18)) for _ in range(rank)]
    if rank == 2 and rng.random() < 0.5:
        sp[1] = sp[0]
    spec = {"seed": seed, "opset": int(rng.choice([13, 17])),
            "input": [int(rng.choice([1, 1, 1, 2])), int(rng.integers(1, 17)), *sp],
            "cost": "macs" if rng.random() < 0.75 else "calibrated",
            "threads": 1 if rng.random() < 0.75 else 2, "nodes": [], "outputs": []}
    nodes = spec["nodes"]

    def shape(t):
        return shapes_of(spec)[t]

    def add(node):
        nodes.append(node)
        return len(nodes)

    cur = add({**_conv(rng, shape(0)), "x": 0})
    for _ in range(int(rng.integers(0, 7))):
        x = shape(cur)
        roll = rng.random()
        if roll < 0.2:
            cur = add({"op": "act", "x": cur, "kind": str(rng.choice(ACTS))})
        elif roll < 0.3:
            cur = add({"op": "bn", "x": cur, "wseed": int(rng.integers(1 << 31))})
        elif roll < 0.35:
            cur = add({"op": "chan", "x": cur, "kind": str(rng.choice(["Add", "Mul"])),
                       "wseed": int(rng.integers(1 << 31))})
        elif roll < 0.55:
            cur = add({**_conv(rng, x), "x": cur})
        elif roll < 0.7:
            # Residual: a same-shape branch (conv, maybe BN and an activation) added back.
            b = add({**_conv(rng, x, co=x[1], same=True), "x": cur})
            if rng.random() < 0.5:
                b = add({"op": "bn", "x": b, "wseed": int(rng.integers(1 << 31))})
            if rng.random() < 0.5:
                b = add({"op": "act", "x": b, "kind": "Relu"})
            cur = add({"op": "add", "x": [b, cur] if rng.random() < 0.5 else [cur, b]})
        elif roll < 0.82:
            # Concat with a branch of the same spatial size.
            b = add({**_conv(rng, x, same=True), "x": cur})
            cur = add({"op": "concat", "x": [cur, b] if rng.random() < 0.5 else [b, cur]})
        elif roll < 0.92 and len(x) > 2:
            r = len(x) - 2
            k = [int(rng.choice([1, 2, 3])) for _ in range(r)]
            k = [min(ki, xi) for ki, xi in zip(k, x[2:])]
            s = [int(rng.choice([1, 2])) for _ in range(r)]
            pads = [int(rng.integers(0, ki)) if rng.random() < 0.4 else 0 for ki in k] * 2
            node = {"op": "pool", "x": cur, "kind": str(rng.choice(["MaxPool", "AveragePool"])),
                    "k": k, "s": s, "pads": pads, "cip": int(rng.integers(0, 2))}
            try:
                pool_out(x, node)
                cur = add(node)
            except SpecError:
                pass
        else:
            cur = add({"op": "gap", "x": cur})
    if rng.random() < 0.15:
        cur = add({"op": "head", "x": cur, "n": int(rng.integers(1, 11)), "wseed": int(rng.integers(1 << 31))})
    spec["outputs"] = [cur]
    # Sometimes an intermediate is a graph output too (a rewritten conv must keep its value).
    inner = [t for t in range(1, cur) if nodes[t - 1]["op"] != "head"]
    if inner and rng.random() < 0.15:
        spec["outputs"].append(int(rng.choice(inner)))
    build(spec)   # every generated spec must build
    return spec


# ---------------------------------------------------------------------------------------------
# Shrinking edits
# ---------------------------------------------------------------------------------------------

def _remap(spec: dict, dead: int, to: int) -> dict:
    """`spec` without node `dead - 1` (tensor `dead`), its readers reading tensor `to` instead."""
    s = copy.deepcopy(spec)
    del s["nodes"][dead - 1]

    def fix(t):
        if t == dead:
            t = to
        return t - 1 if t > dead else t

    for n in s["nodes"]:
        n["x"] = [fix(t) for t in n["x"]] if isinstance(n["x"], list) else fix(n["x"])
    s["outputs"] = list(dict.fromkeys(fix(t) for t in s["outputs"]))
    return s


def prune(spec: dict) -> dict:
    """`spec` without nodes no output depends on."""
    live = set(spec["outputs"])
    for t in range(len(spec["nodes"]), 0, -1):
        if t in live:
            x = spec["nodes"][t - 1]["x"]
            live.update(x if isinstance(x, list) else [x])
    s = spec
    for t in range(len(spec["nodes"]), 0, -1):
        if t not in live:
            s = _remap(s, t, 0)
    return s


def candidates(spec: dict):
    """Smaller or simpler variants of `spec`, most aggressive first (for delta debugging)."""
    n = len(spec["nodes"])
    if len(spec["outputs"]) > 1:
        for o in spec["outputs"]:
            s = copy.deepcopy(spec)
            s["outputs"].remove(o)
            yield prune(s)
    # Drop a node: its readers read one of its inputs instead.
    for t in range(n, 0, -1):
        x = spec["nodes"][t - 1]["x"]
        for src in (x if isinstance(x, list) else [x]):
            yield prune(_remap(spec, t, src))
    # Smaller input.
    inp = spec["input"]
    for i, v in enumerate(inp):
        for nv in sorted({1, v // 2, v - 1}):
            if 1 <= nv < v:
                s = copy.deepcopy(spec)
                s["input"][i] = nv
                yield s
    for t, node in enumerate(spec["nodes"], 1):
        def edit(**kw):
            s = copy.deepcopy(spec)
            s["nodes"][t - 1].update(kw)
            return s
        if node["op"] == "conv":
            for k in range(len(node["kinds"])):
                yield edit(kinds=node["kinds"][:k] + node["kinds"][k + 1:])
            if node["bias"]:
                yield edit(bias=False)
            if node["g"] > 1:
                yield edit(g=1)
            for co in sorted({node["g"], node["co"] // 2 // node["g"] * node["g"], node["co"] - node["g"]}):
                if 1 <= co < node["co"]:
                    yield edit(co=co)
            if any(v != 1 for v in node["s"]):
                yield edit(s=[1] * len(node["s"]))
            if any(v != 1 for v in node["d"]):
                yield edit(d=[1] * len(node["d"]))
            if any(node["pads"]):
                yield edit(pads=[0] * len(node["pads"]))
                r = len(node["k"])
                yield edit(pads=node["pads"][:r] * 2)
            for j, k in enumerate(node["k"]):
                if k > 1:
                    nk = list(node["k"])
                    nk[j] = k - 2 if k > 2 else 1
                    yield edit(k=nk)
            if not node.get("round"):
                yield edit(round=True)
        elif node["op"] == "act" and node["kind"] != "Relu":
            yield edit(kind="Relu")
        elif node["op"] == "pool":
            if any(node["pads"]):
                yield edit(pads=[0] * len(node["pads"]))
            if any(v != 1 for v in node["s"]):
                yield edit(s=[1] * len(node["s"]))
    if spec["threads"] != 1:
        yield {**copy.deepcopy(spec), "threads": 1}


# ---------------------------------------------------------------------------------------------
# Committed regressions
# ---------------------------------------------------------------------------------------------

def rebuild(src_dir: str, out_dir: str) -> None:
    """Writes NAME.onnx for every shrunk regression NAME.json in `src_dir` (the committed ones
    in tests/fuzz/regressions/, which crates/ssc-opt/tests/fuzz_regressions.rs loads)."""
    import json
    import os
    os.makedirs(out_dir, exist_ok=True)
    for f in sorted(os.listdir(src_dir)):
        if f.endswith(".json"):
            with open(os.path.join(src_dir, f)) as fh:
                spec = json.load(fh)["spec"]
            model = build(spec)
            with open(os.path.join(out_dir, f[:-5] + ".onnx"), "wb") as fh:
                fh.write(model.SerializeToString(deterministic=True))


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="Write the .onnx of every committed fuzz regression spec.")
    ap.add_argument("--rebuild", required=True, help="directory of NAME.json regression specs")
    ap.add_argument("--out", help="where to write NAME.onnx (default: the same directory)")
    ap.add_argument("--no-check", action="store_true", help="accepted for scripts/test.sh; no effect")
    a = ap.parse_args()
    rebuild(a.rebuild, a.out or a.rebuild)
