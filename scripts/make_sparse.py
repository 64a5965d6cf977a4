#!/usr/bin/env python3
"""Plant the sparsity and micro-structure that pruning and MSWU leave in trained CNNs (issue 14).

Why this exists: the JIT's sparse, block-sparse and unified kernels, the analysis that feeds
their choice, and the benchmarks that judge them all need models that *have* realistic
pruning and weight-unification structure. No trained model may be downloaded and torch is not
installable here, so the structures are planted exactly into the seeded random (BN-folded)
weights of the models ``scripts/make_models.py`` builds: same graph, structured weight values,
which is what a pruned or unified network exports. ``scripts/make_structured.py`` covers the
SSC / block-diagonal / equal-channel families; this script covers the issue's "Structures to
cover" and shares nothing with it but the conventions (manifest, MAC counting, determinism).

A model is ``ARCH:KIND[:key=value,...]``; the presets below name the ones the acceptance,
the benchmarks and the committed fixtures use, and ``--spec`` makes any other.

ARCH: resnet18, mobilenet_v2 (make_models.py's ``*_folded``, at ``--size``), or ``mlp`` (a
CRNN/classifier-style stack built here: MatMul + Add + Relu, Gemm transB=1 + Relu, Gemm
transB=0 on ``[tokens, features]``; see ``mlp_model``).

KIND and its keys (defaults in brackets). Every kind leaves the first conv (the stem on RGB)
and depthwise convs dense, as pruning pipelines do, and the classifier Gemm of a CNN dense
unless ``gemm=1``; on ``mlp`` every MatMul/Gemm is a target:
    magnitude  sparsity [0.9], scope=layer|global [layer], convs=all|1x1|kxk [all], gemm [0]
               Unstructured magnitude pruning: per layer, the floor(sparsity * n) smallest |w|
               become 0; global, the floor(sparsity * N) smallest |w| over all targets
               together (He-scaled weights make the per-layer density uneven, as in real
               globally pruned models; the manifest has each layer's density).
    mswu       tile=BOxBI [4x4], prune [0.5], unify=none|sign|one [none], quota [1.0]
               MSWU micro-structure (PAPERS.md section 2): W[o, i, :, :] is cut into tiles of
               BO output x BI input channels over all taps (ragged at the channel ends; a
               grouped conv tiles within its group's [o, i] slice). The `prune` fraction of
               tiles (floor, least L2 norm first: pruning a tile costs |w_B|^2) become 0. Of
               the others, the `quota` fraction (floor, least projection error first) is
               unified: `sign` keeps the signs and shares one magnitude,
               w = sign(w) * mean|w| (error sum(|w| - mean|w|)^2); `one` gives the tile one
               signed value, w = mean(w) (error sum(w - mean w)^2). Values are computed in f64
               and rounded once, so a tile's magnitudes are bitwise equal.
    nm         n [2], m [4]
               N:M along input channels: for each output and tap, every run of m consecutive
               input channels (within the group; a shorter run at the end) keeps its n largest
               |w| (ties: lowest channel first).
    ssc_rem    groups [4], rem [0.5]
               SSC with a sparse pointwise remainder: F (all taps) kernels inside the
               `groups` diagonal blocks o // (Co/G) == i // (Ci/G), P (centre tap only)
               elsewhere, and then the `rem` fraction of those P kernels (least |centre tap|
               first) become Z, so ssc-opt's split leaves a 1x1 conv that is itself sparse.
               1x1 convs are left unchanged (their one tap is the centre).
    near       the near-miss single-conv fixtures (ARCH is ignored; see NEAR_MISSES).

MAC limit (per image; the manifest holds it per layer and summed, with the dense MACs and
each layer's density). HWo is the output resolution, T the rows of a MatMul/Gemm input:
    dense and every unaffected layer   Co * Ci/g * kh * kw * HWo      (T * K * N for matrices)
    magnitude, nm, ssc_rem, mswu with
    unify none or sign                 nnz(W) * HWo: only non-zero weights multiply (a
                                       sign-kept tile saves multiplies, not additions)
    mswu one-value tiles               (BI * kh * kw + BO) * HWo per tile of BO x BI: the sum
                                       of its inputs over the taps, computed once, then one
                                       multiply-add per output; other tiles as above
Additions count as MACs, so the limit is an achievable operation count; speed-up limit =
dense / limit.

Deterministic: per-model, per-layer seeds from crc32 of their names and ``--seed``; protobuf
serialised deterministically; the manifest written with sorted keys.

Usage:
    python scripts/make_sparse.py                        # small fixtures -> tests/models/sparse
    python scripts/make_sparse.py --size full --only resnet18_unstructured90   # -> bench-out/sparse
    python scripts/make_sparse.py --size full --spec resnet18:mswu:tile=8x1,prune=0.6,unify=sign
    python scripts/make_sparse.py --list
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_models  # noqa: E402  (the architectures; same directory)
from make_structured import run_check  # noqa: E402  (the generators' shared ORT check)

GENERATOR = "scripts/make_sparse.py"

# name -> spec. `fixture`: also written at --size small into tests/models/sparse (committed).
PRESETS: dict[str, tuple[str, bool]] = {
    # Unstructured magnitude pruning, per layer and global.
    "resnet18_unstructured50": ("resnet18:magnitude:sparsity=0.5", False),
    "resnet18_unstructured70": ("resnet18:magnitude:sparsity=0.7", False),
    "resnet18_unstructured90": ("resnet18:magnitude:sparsity=0.9", True),
    "resnet18_unstructured95": ("resnet18:magnitude:sparsity=0.95", True),
    "resnet18_global50": ("resnet18:magnitude:sparsity=0.5,scope=global", True),
    "resnet18_global70": ("resnet18:magnitude:sparsity=0.7,scope=global", True),
    "resnet18_global90": ("resnet18:magnitude:sparsity=0.9,scope=global", False),
    "resnet18_unstructured80_1x1": ("resnet18:magnitude:sparsity=0.8,convs=1x1,gemm=1", True),
    "mobilenet_v2_global60": ("mobilenet_v2:magnitude:sparsity=0.6,scope=global", True),
    # MSWU micro-structure.
    "resnet18_mswu4x4_p50_sign": ("resnet18:mswu:tile=4x4,prune=0.5,unify=sign", True),
    "resnet18_mswu4x4_p75": ("resnet18:mswu:tile=4x4,prune=0.75", True),
    "resnet18_mswu4x4_one_q50": ("resnet18:mswu:tile=4x4,prune=0,unify=one,quota=0.5", True),
    "resnet18_mswu4x4_p50_sign_q50": ("resnet18:mswu:tile=4x4,prune=0.5,unify=sign,quota=0.5", True),
    "resnet18_mswu8x1_p50_one": ("resnet18:mswu:tile=8x1,prune=0.5,unify=one", True),
    "resnet18_mswu1x8_p50_sign": ("resnet18:mswu:tile=1x8,prune=0.5,unify=sign", True),
    "resnet18_mswu16x1_p60": ("resnet18:mswu:tile=16x1,prune=0.6", True),
    # N:M along input channels.
    "resnet18_nm2of4": ("resnet18:nm:n=2,m=4", True),
    "resnet18_nm1of4": ("resnet18:nm:n=1,m=4", True),
    # SSC whose pointwise remainder is sparse.
    "resnet18_ssc_rem50": ("resnet18:ssc_rem:groups=4,rem=0.5", True),
    # Matrices with constant sparse weights.
    "mlp_unstructured80": ("mlp:magnitude:sparsity=0.8", True),
    "resnet18_fc90": ("resnet18:magnitude:sparsity=0.9,convs=none,gemm=1", False),
    # Near misses (single convs).
    "near": ("near:near", True),
}

# The models of issue 14's acceptance table, in its order (scripts/bench_sparse.py reads this).
ACCEPTANCE = [
    "resnet18_unstructured90",
    "resnet18_unstructured95",
    "resnet18_global70",
    "resnet18_global50",
    "resnet18_mswu4x4_p50_sign",
    "resnet18_mswu4x4_p75",
    "resnet18_mswu4x4_one_q50",
    "mobilenet_v2_global60",
    "resnet18_nm2of4",
]

KINDS = {
    "magnitude": {"sparsity": 0.9, "scope": "layer", "convs": "all", "gemm": 0},
    "mswu": {"tile": "4x4", "prune": 0.5, "unify": "none", "quota": 1.0},
    "nm": {"n": 2, "m": 4},
    "ssc_rem": {"groups": 4, "rem": 0.5},
    "near": {},
}


@dataclasses.dataclass
class Spec:
    arch: str
    kind: str
    params: dict

    @staticmethod
    def parse(text: str) -> "Spec":
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"spec `{text}`: expected ARCH:KIND[:key=value,...]")
        arch, kind = parts[0], parts[1]
        if kind not in KINDS:
            raise ValueError(f"spec `{text}`: unknown kind `{kind}` (known: {', '.join(KINDS)})")
        if kind != "near" and arch not in ("resnet18", "mobilenet_v2", "mlp", *make_models.ARCHS):
            raise ValueError(f"spec `{text}`: unknown arch `{arch}`")
        params = dict(KINDS[kind])
        if len(parts) == 3 and parts[2]:
            for kv in parts[2].split(","):
                k, _, v = kv.partition("=")
                if k not in params:
                    raise ValueError(f"spec `{text}`: `{k}` is not a key of {kind} ({', '.join(params)})")
                default = params[k]
                params[k] = type(default)(float(v)) if isinstance(default, (int, float)) else v
        return Spec(arch, kind, params)

    def canonical(self) -> str:
        kv = ",".join(f"{k}={self.params[k]}" for k in sorted(self.params))
        return f"{self.arch}:{self.kind}" + (f":{kv}" if kv else "")


def layer_rng(model: str, layer: str, seed: int) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{seed}/{model}/{layer}".encode()))


# ---------------------------------------------------------------------------
# Weight transforms. Each takes a float32 weight and returns (new weight, extra manifest
# facts, one-value tiles for the MAC limit as a list of (BO, BI) shapes).
# ---------------------------------------------------------------------------


def keep_mask(w: np.ndarray, count: int) -> np.ndarray:
    """False at the `count` smallest |w| (ties: first in memory order first), True elsewhere."""
    keep = np.ones(w.size, dtype=bool)
    keep[np.argsort(np.abs(w.ravel()), kind="stable")[:count]] = False
    return keep.reshape(w.shape)


def prune_smallest(w: np.ndarray, count: int) -> np.ndarray:
    return np.where(keep_mask(w, count), w, np.float32(0.0)).astype(np.float32)


def tiles_of(co: int, cig: int, group: int, bo: int, bi: int):
    """Tile slices (o0, o1, i0, i1) in weight coordinates; tiles never cross a group."""
    cog = co // group
    out = []
    for g in range(group):
        for o0 in range(g * cog, (g + 1) * cog, bo):
            o1 = min(o0 + bo, (g + 1) * cog)
            for i0 in range(0, cig, bi):
                out.append((o0, o1, i0, min(i0 + bi, cig)))
    return out


def mswu(w: np.ndarray, group: int, p: dict) -> tuple[np.ndarray, dict, list]:
    bo, bi = (int(x) for x in p["tile"].split("x"))
    co, cig = w.shape[:2]
    tiles = tiles_of(co, cig, group, bo, bi)
    w64 = w.astype(np.float64)
    norms = np.array([np.sum(w64[o0:o1, i0:i1] ** 2) for o0, o1, i0, i1 in tiles])
    n_prune = int(np.floor(p["prune"] * len(tiles)))
    order = np.argsort(norms, kind="stable")
    pruned = set(order[:n_prune].tolist())
    kept = [t for t in range(len(tiles)) if t not in pruned]
    out = w.copy()
    for t in pruned:
        o0, o1, i0, i1 = tiles[t]
        out[o0:o1, i0:i1] = 0.0
    unified: list[int] = []
    if p["unify"] != "none":
        if p["unify"] not in ("sign", "one"):
            raise ValueError(f"mswu unify must be none, sign or one, not {p['unify']}")
        errs = []
        for t in kept:
            o0, o1, i0, i1 = tiles[t]
            b = w64[o0:o1, i0:i1]
            if p["unify"] == "sign":
                errs.append(np.sum((np.abs(b) - np.mean(np.abs(b))) ** 2))
            else:
                errs.append(np.sum((b - np.mean(b)) ** 2))
        n_unify = int(np.floor(p["quota"] * len(kept)))
        unified = [kept[j] for j in np.argsort(np.array(errs), kind="stable")[:n_unify]]
        for t in unified:
            o0, o1, i0, i1 = tiles[t]
            b = w64[o0:o1, i0:i1]
            if p["unify"] == "sign":
                m = np.float32(np.mean(np.abs(b)))
                out[o0:o1, i0:i1] = np.where(b < 0, -m, m).astype(np.float32)
            else:
                out[o0:o1, i0:i1] = np.float32(np.mean(b))
    ones = [(tiles[t][1] - tiles[t][0], tiles[t][3] - tiles[t][2]) for t in unified] \
        if p["unify"] == "one" else []
    facts = {"tiles": len(tiles), "tiles_pruned": len(pruned), "tiles_unified": len(unified)}
    return out, facts, ones


def nm(w: np.ndarray, p: dict) -> np.ndarray:
    n, m = int(p["n"]), int(p["m"])
    co, cig = w.shape[:2]
    out = w.copy()
    for i0 in range(0, cig, m):
        blk = np.abs(w[:, i0:i0 + m])  # [co, run, taps...]
        # Rank within the run along axis 1: keep the n largest (stable: lower channel first).
        order = np.argsort(-blk, axis=1, kind="stable")
        drop = order[:, n:]
        np.put_along_axis(out[:, i0:i0 + m], drop, 0.0, axis=1)
    return out


def ssc_rem(w: np.ndarray, p: dict) -> np.ndarray:
    g, rem = int(p["groups"]), float(p["rem"])
    co, ci, kh, kw = w.shape
    o = np.arange(co)[:, None]
    i = np.arange(ci)[None, :]
    full = o // (co // g) == i // (ci // g)
    out = w.copy()
    centre = w[:, :, kh // 2, kw // 2].copy()
    out[~full] = 0.0
    out[:, :, kh // 2, kw // 2] = centre
    # Prune the smallest point kernels of the remainder.
    pos = np.argwhere(~full)
    mags = np.abs(centre[~full])
    order = np.argsort(mags, kind="stable")[: int(np.floor(rem * len(pos)))]
    for k in order:
        oo, ii = pos[k]
        out[oo, ii, kh // 2, kw // 2] = 0.0
    return out


# ---------------------------------------------------------------------------
# Models.
# ---------------------------------------------------------------------------


def mlp_model(size: str) -> onnx.ModelProto:
    """[tokens, features] -> MatMul+Add+Relu -> Gemm(transB=1)+Relu -> Gemm(transB=0)."""
    t, d, h, c = (4, 32, 64, 10) if size == "small" else (32, 512, 1024, 1000)
    rng = np.random.default_rng(zlib.crc32(f"mlp/{size}".encode()))

    def lin(fan_in, shape):
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    inits = [
        numpy_helper.from_array(lin(d, (d, h)), "fc1.weight"),
        numpy_helper.from_array(lin(d, (h,)), "fc1.bias"),
        numpy_helper.from_array(lin(h, (h, h)), "fc2.weight"),
        numpy_helper.from_array(lin(h, (h,)), "fc2.bias"),
        numpy_helper.from_array(lin(h, (h, c)), "fc3.weight"),
        numpy_helper.from_array(lin(h, (c,)), "fc3.bias"),
    ]
    nodes = [
        helper.make_node("MatMul", ["input", "fc1.weight"], ["fc1_mm"], name="/fc1/MatMul"),
        helper.make_node("Add", ["fc1_mm", "fc1.bias"], ["fc1_add"], name="/fc1/Add"),
        helper.make_node("Relu", ["fc1_add"], ["fc1_out"], name="/relu1/Relu"),
        helper.make_node("Gemm", ["fc1_out", "fc2.weight", "fc2.bias"], ["fc2_out"],
                         name="/fc2/Gemm", transB=1),
        helper.make_node("Relu", ["fc2_out"], ["fc2_relu"], name="/relu2/Relu"),
        helper.make_node("Gemm", ["fc2_relu", "fc3.weight", "fc3.bias"], ["output"],
                         name="/fc3/Gemm"),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [t, d])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [t, c])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", make_models.OPSET)],
                              producer_name="ssc-opt " + GENERATOR, producer_version="1")
    model.ir_version = make_models.IR_VERSION
    model.doc_string = (f"MLP head ([{t}, {d}] -> {h} -> {h} -> {c}), {size} size, seeded "
                        f"random weights; built by {GENERATOR}.")
    for k, v in {"architecture": "mlp", "size": size}.items():
        model.metadata_props.add(key=k, value=v)
    model = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def source_model(arch: str, size: str) -> onnx.ModelProto:
    if arch == "mlp":
        return mlp_model(size)
    return make_models.build(arch, "folded", size)


def shapes_of(model: onnx.ModelProto) -> dict[str, list[int]]:
    g = model.graph
    return {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
            for vi in list(g.value_info) + list(g.input) + list(g.output)}


@dataclasses.dataclass
class Layer:
    node: onnx.NodeProto
    op: str
    weight: str           # initializer name
    group: int
    transposed: bool      # matrices: stored [N, K] (Gemm transB=1)
    target: bool          # the kind may change it
    rows: int             # matrices: T; convs: output pixels HWo


def layers_of(model: onnx.ModelProto, spec: Spec) -> list[Layer]:
    g = model.graph
    shapes = shapes_of(model)
    inits = {t.name: t for t in g.initializer}
    out = []
    first_conv = True
    p = spec.params
    for node in g.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2 \
                or node.input[1] not in inits:
            continue
        dims = list(inits[node.input[1]].dims)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            group = int(attrs.get("group", 1))
            depthwise = dims[1] == 1 and group > 1
            kxk = int(np.prod(dims[2:])) > 1
            convs = p.get("convs", "all")
            wanted = convs == "all" or (convs == "1x1" and not kxk) or (convs == "kxk" and kxk)
            if spec.kind == "ssc_rem":
                wanted = kxk
            target = wanted and not first_conv and not depthwise
            first_conv = False
            hwo = int(np.prod(shapes[node.output[0]][2:]))
            out.append(Layer(node, "Conv", node.input[1], group, False, target, hwo))
        else:
            transposed = node.op_type == "Gemm" and int(attrs.get("transB", 0)) == 1
            a_shape = shapes[node.input[0]]
            rows = int(np.prod(a_shape[:-1])) if node.op_type == "MatMul" else a_shape[0]
            if int(attrs.get("transA", 0)) == 1:
                rows = a_shape[1]
            target = spec.arch == "mlp" or bool(p.get("gemm", 0))
            if spec.kind not in ("magnitude",):
                target = False
            out.append(Layer(node, node.op_type, node.input[1], 1, transposed, target, rows))
    return out


def layer_macs(layer: Layer, w: np.ndarray, ones: list) -> tuple[int, int]:
    """(dense MACs, MAC limit) of one layer (see the docstring)."""
    dense = int(w.size) * layer.rows
    if not ones:
        return dense, int(np.count_nonzero(w)) * layer.rows
    taps = int(np.prod(w.shape[2:]))
    one_area = sum(bo * bi for bo, bi in ones) * taps  # weights inside one-value tiles
    one_cost = sum(bi * taps + bo for bo, bi in ones)
    rest = int(np.count_nonzero(w)) - one_area
    return dense, (rest + one_cost) * layer.rows


def unfolded_weights(arch: str, size: str, layers: list["Layer"]) -> dict[str, np.ndarray]:
    """The conv weights before BatchNormalization was folded into them, by weight name.

    Pruning happens in training, on the conv weights, with BN separate; exporting then folds
    BN's per-output scale into the pruned weights. So magnitudes are ranked here, on the
    weights of make_models.py's ``_bn`` variant (the same seed, hence the same conv weights),
    and the zero pattern is applied to the folded ones. Ranking the folded weights instead
    would prune by the BN scale, e.g. wipe out each residual branch's last conv, whose BN has
    a small gamma.
    """
    if arch == "mlp":
        return {}
    bn = make_models.build(arch, "bn", size)
    raw_inits = {t.name: t for t in bn.graph.initializer}
    by_node = {n.name: n.input[1] for n in bn.graph.node if n.op_type in ("Conv", "Gemm")}
    out = {}
    for l in layers:
        raw = numpy_helper.to_array(raw_inits[by_node[l.node.name]]).astype(np.float32)
        out[l.weight] = raw
    return out


def build(name: str, spec: Spec, size: str, seed: int) -> tuple[onnx.ModelProto, dict]:
    model = source_model(spec.arch, size)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    layers = layers_of(model, spec)
    p = spec.params
    weights = {l.weight: numpy_helper.to_array(inits[l.weight]).astype(np.float32) for l in layers}
    # Magnitude pruning ranks the weights as training saw them (see unfolded_weights).
    rank = unfolded_weights(spec.arch, size, layers) if spec.kind == "magnitude" else {}
    for l in layers:
        assert rank.get(l.weight, weights[l.weight]).shape == weights[l.weight].shape, l.weight
    new: dict[str, np.ndarray] = {}
    extra: dict[str, dict] = {}
    ones: dict[str, list] = {}
    targets = [l for l in layers if l.target]
    if not targets:
        raise ValueError(f"{name}: the spec `{spec.canonical()}` changes no layer")
    if spec.kind == "magnitude" and p["scope"] == "global":
        allw = np.concatenate([np.abs(rank.get(l.weight, weights[l.weight])).ravel()
                               for l in targets])
        count = int(np.floor(p["sparsity"] * allw.size))
        # The global threshold: the count-th smallest magnitude; ties broken by layer order.
        order = np.argsort(allw, kind="stable")
        mask = np.ones(allw.size, dtype=bool)
        mask[order[:count]] = False
        off = 0
        for l in targets:
            w = weights[l.weight]
            keep = mask[off:off + w.size].reshape(w.shape)
            new[l.weight] = np.where(keep, w, np.float32(0.0)).astype(np.float32)
            off += w.size
    else:
        for l in targets:
            w = weights[l.weight]
            if spec.kind == "magnitude":
                if p["scope"] != "layer":
                    raise ValueError(f"magnitude scope must be layer or global, not {p['scope']}")
                r = rank.get(l.weight, w)
                keep = keep_mask(r, int(np.floor(p["sparsity"] * w.size)))
                new[l.weight] = np.where(keep, w, np.float32(0.0)).astype(np.float32)
            elif spec.kind == "mswu":
                new[l.weight], extra[l.weight], ones[l.weight] = mswu(w, l.group, p)
            elif spec.kind == "nm":
                new[l.weight] = nm(w, p)
            elif spec.kind == "ssc_rem":
                new[l.weight] = ssc_rem(w, p)
    manifest_layers = {}
    for l in layers:
        w = new.get(l.weight, weights[l.weight])
        if l.weight in new:
            inits[l.weight].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(w), l.weight))
        dense, limit = layer_macs(l, w, ones.get(l.weight, []))
        entry = {
            "op": l.op,
            "weight": list(w.shape),
            "affected": l.weight in new,
            "nnz": int(np.count_nonzero(w)),
            "density": float(np.count_nonzero(w)) / w.size,
            "dense_macs": dense,
            "mac_limit": limit,
        }
        if l.op == "Conv":
            entry["group"] = l.group
            entry["out_pixels"] = l.rows
        else:
            entry["rows"] = l.rows
            entry["transB"] = int(l.transposed)
        entry.update(extra.get(l.weight, {}))
        manifest_layers[l.node.name] = entry
    meta = {p_.key: p_.value for p_ in model.metadata_props}
    meta.update({"structure_family": name, "structure_spec": spec.canonical(),
                 "structure_generator": GENERATOR, "structure_seed": str(seed)})
    del model.metadata_props[:]
    for k in sorted(meta):
        model.metadata_props.add(key=k, value=meta[k])
    model.doc_string = (model.doc_string + f" Structure `{spec.canonical()}` planted by "
                        f"{GENERATOR} (seed {seed}).").strip()
    dense = sum(v["dense_macs"] for v in manifest_layers.values())
    limit = sum(v["mac_limit"] for v in manifest_layers.values())
    entry = {
        "spec": spec.canonical(),
        "dense_macs": dense,
        "mac_limit": limit,
        "speedup_limit": dense / limit,
        "layers": manifest_layers,
    }
    return model, entry


# ---------------------------------------------------------------------------
# Near misses: single convs whose structure is one weight away from a cleaner one.
# ---------------------------------------------------------------------------


def conv_model(name: str, w: np.ndarray, hw: int, doc: str, stride: int = 1,
               group: int = 1) -> onnx.ModelProto:
    co, cig, kh, kw = w.shape
    ci = cig * group
    rng = np.random.default_rng(zlib.crc32(f"near/{name}/bias".encode()))
    b = rng.normal(0.0, 0.1, co).astype(np.float32)
    pad = kh // 2
    ho = (hw + 2 * pad - kh) // stride + 1
    node = helper.make_node("Conv", ["input", "w", "b"], ["output"], name=f"/{name}/Conv",
                            kernel_shape=[kh, kw], pads=[pad] * 4, strides=[stride] * 2,
                            group=group)
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, ci, hw, hw])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, co, ho, ho])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", make_models.OPSET)],
                              producer_name="ssc-opt " + GENERATOR, producer_version="1")
    model.ir_version = make_models.IR_VERSION
    model.doc_string = f"Near-miss fixture `{name}`: {doc} Built by {GENERATOR}."
    onnx.checker.check_model(model, full_check=True)
    return model


def nudge(x: np.float32) -> np.float32:
    """The next f32 away from zero: one ulp, the smallest change that breaks equality."""
    return np.nextafter(x, np.float32(np.inf) if x > 0 else np.float32(-np.inf), dtype=np.float32)


def near_misses() -> dict[str, tuple[onnx.ModelProto, dict]]:
    """Each fixture: the model and the facts the analysis must report (tests check them)."""
    out = {}
    base = np.random.default_rng(zlib.crc32(b"near")).standard_normal((16, 16, 3, 3))
    base = (base * np.sqrt(2.0 / 144)).astype(np.float32)
    p = {"tile": "4x4", "prune": 0.5, "unify": "sign", "quota": 1.0}

    # 1. A pruned 4x4 tile with one stray non-zero: 7 pruned tiles, not 8, and 9 free.
    w, _, _ = mswu(base, 1, p)
    tiles = tiles_of(16, 16, 1, 4, 4)
    pruned = [t for t in tiles if not np.any(w[t[0]:t[1], t[2]:t[3]])]
    o0, _, i0, _ = pruned[0]
    w[o0 + 1, i0 + 2, 0, 1] = np.float32(0.03125)
    out["near_pruned_tile_stray"] = (w, "4x4 tiles, 8 of 16 pruned and the rest sign-kept, "
                                        "then one weight of a pruned tile set to 0.03125.",
                                     {"tile": [4, 4], "tiles": 16, "pruned": 7, "sign_kept": 8,
                                      "one_value": 0, "free": 1})
    # 2. A sign-kept tile with one magnitude one ulp off.
    w, _, _ = mswu(base, 1, p)
    kept = [t for t in tiles if np.any(w[t[0]:t[1], t[2]:t[3]])]
    o0, _, i0, _ = kept[0]
    w[o0 + 3, i0, 2, 2] = nudge(w[o0 + 3, i0, 2, 2])
    out["near_sign_kept_ulp"] = (w, "4x4 tiles, 8 of 16 pruned and the rest sign-kept, then one "
                                    "weight of a sign-kept tile moved by one ulp.",
                                 {"tile": [4, 4], "tiles": 16, "pruned": 8, "sign_kept": 7,
                                  "one_value": 0, "free": 1})
    # 3. One-value tiles: one with a weight one ulp off (free), one with a weight negated
    #    (sign-kept, not one-value).
    q = {"tile": "4x4", "prune": 0.0, "unify": "one", "quota": 1.0}
    w, _, _ = mswu(base, 1, q)
    w[0, 0, 0, 0] = nudge(w[0, 0, 0, 0])
    w[4, 4, 1, 1] = -w[4, 4, 1, 1]
    out["near_one_value_ulp"] = (w, "4x4 one-value tiles, then one weight of tile (0, 0) moved by "
                                    "one ulp and one weight of tile (1, 1) negated.",
                                 {"tile": [4, 4], "tiles": 16, "pruned": 0, "sign_kept": 1,
                                  "one_value": 14, "free": 1})
    # 4. Ragged 8x1 tiles on 12 outputs: the last tile of each column has 4 outputs.
    r = np.random.default_rng(zlib.crc32(b"near/ragged")).standard_normal((12, 8, 3, 3))
    w, _, _ = mswu((r * 0.1).astype(np.float32), 1,
                   {"tile": "8x1", "prune": 0.5, "unify": "one", "quota": 1.0})
    out["near_ragged_8x1"] = (w, "12 outputs in 8x1 tiles (each input column has one 8-output and "
                                 "one 4-output tile), half pruned, the rest one-value.",
                              {"tile": [8, 1], "tiles": 16, "pruned": 8, "sign_kept": 0,
                               "one_value": 8, "free": 0})
    # 5. Density exactly 0.5 (ssc-passes marks layers with at least half zeros sparse).
    r = np.random.default_rng(zlib.crc32(b"near/half")).standard_normal((16, 16, 1, 1))
    w = prune_smallest((r * 0.25).astype(np.float32), 128)
    out["near_density_half"] = (w, "1x1 conv, exactly 128 of 256 weights zero (density 0.5, the "
                                   "JIT annotation's boundary).", {"nnz": 128, "numel": 256})
    # 6. Density exactly 0.3 (JitOptions::sparse_threshold's default).
    r = np.random.default_rng(zlib.crc32(b"near/030")).standard_normal((10, 8, 3, 3))
    w = prune_smallest((r * 0.15).astype(np.float32), 720 - 216)
    out["near_density_030"] = (w, "3x3 conv, 216 of 720 weights non-zero (density exactly 0.3, "
                                  "the JIT's fixed sparse threshold).", {"nnz": 216, "numel": 720})
    # 7. 2:4 everywhere but one run of four input channels with three non-zeros.
    w = nm(base, {"n": 2, "m": 4})
    run = w[5, 8:12, 1, 0]
    w[5, 8 + int(np.flatnonzero(run == 0)[0]), 1, 0] = np.float32(0.0625)
    out["near_nm_3of4"] = (w, "2:4 along input channels except one run (output 5, inputs 8-11, "
                              "tap (1, 0)) with three non-zeros.", {"nm": [3, 4]})
    # 8. Exactly 2:4 (the boundary the previous one crosses), strided.
    w = nm(base, {"n": 2, "m": 4})
    out["near_nm_2of4_stride2"] = (w, "exactly 2:4 along input channels, stride 2.", {"nm": [2, 4]})
    models = {}
    for name, (wt, doc, facts) in out.items():
        stride = 2 if "stride2" in name else 1
        models[name] = (conv_model(name, np.ascontiguousarray(wt, dtype=np.float32), 12, doc,
                                   stride=stride), facts)
    return models


# ---------------------------------------------------------------------------


def write(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=["small", "full"], default="small",
                    help="small: make_models' small widths at 64x64 (fixtures); full: 224x224")
    ap.add_argument("--out", help="output dir (default: tests/models/sparse for small, "
                                  "bench-out/sparse for full)")
    ap.add_argument("--only", action="append", default=[],
                    help="only this preset (repeatable; `acceptance` = issue 14's table)")
    ap.add_argument("--spec", action="append", default=[],
                    help="an extra model ARCH:KIND[:k=v,...] (named after its spec)")
    ap.add_argument("--seed", type=int, default=0, help="mixed into every layer's seed")
    ap.add_argument("--all", action="store_true",
                    help="every preset (default at --size small: the fixture presets)")
    ap.add_argument("--check", dest="check", action="store_true", default=True,
                    help="run every model in onnxruntime (default)")
    ap.add_argument("--no-check", dest="check", action="store_false")
    ap.add_argument("--list", action="store_true", help="list presets and exit")
    args = ap.parse_args(argv)

    if args.list:
        for n, (s, fixture) in PRESETS.items():
            tags = [t for t, on in (("fixture", fixture), ("acceptance", n in ACCEPTANCE)) if on]
            print(f"{n:34s} {s}{'  [' + ', '.join(tags) + ']' if tags else ''}")
        return 0
    only = [n for o in args.only for n in (ACCEPTANCE if o == "acceptance" else [o])]
    unknown = [o for o in only if o not in PRESETS]
    if unknown:
        print(f"unknown preset(s) {unknown}; known: {', '.join(PRESETS)}", file=sys.stderr)
        return 2
    if only or args.spec:
        names = only
    elif args.all or args.size == "full":
        names = list(PRESETS)
    else:
        names = [n for n, (_, fixture) in PRESETS.items() if fixture]
    jobs: list[tuple[str, Spec]] = []
    try:
        jobs = [(n, Spec.parse(PRESETS[n][0])) for n in names]
        for s in args.spec:
            spec = Spec.parse(s)
            label = spec.canonical().replace(":", "_").replace(",", "_").replace("=", "")
            jobs.append((label, spec))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    out_dir = args.out or os.path.join(REPO, "tests/models/sparse" if args.size == "small"
                                       else "bench-out/sparse")
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, "manifest.json")
    manifest = {"models": {}}
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)  # keep entries not regenerated this time (--only)
        except (OSError, ValueError) as e:
            print(f"warning: {manifest_path}: {e}; starting a new manifest", file=sys.stderr)
    manifest.update({
        "generator": GENERATOR,
        "size": args.size,
        "mac_definition": "see the docstring of scripts/make_sparse.py",
    })
    paths = {}
    for name, spec in jobs:
        try:
            if spec.kind == "near":
                for nname, (model, facts) in near_misses().items():
                    data = model.SerializeToString(deterministic=True)
                    path = os.path.join(out_dir, nname + ".onnx")
                    write(path, data)
                    paths[nname] = path
                    manifest["models"][nname] = {
                        "spec": "near", "file": nname + ".onnx", "expect": facts,
                        "sha256": hashlib.sha256(data).hexdigest(),
                    }
                continue
            model, entry = build(name, spec, args.size, args.seed)
        except ValueError as e:
            print(f"error: {name}: {e}", file=sys.stderr)
            return 2
        data = model.SerializeToString(deterministic=True)
        path = os.path.join(out_dir, name + ".onnx")
        write(path, data)
        entry["file"] = name + ".onnx"
        entry["seed"] = args.seed
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        manifest["models"][name] = entry
        paths[name] = path
        print(f"{path}: {len(data):,} bytes, speed-up limit {entry['speedup_limit']:.2f}x",
              file=sys.stderr)
    tmp = manifest_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, manifest_path)
    if args.check and not run_check(paths):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
