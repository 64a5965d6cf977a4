#!/usr/bin/env python3
"""Plant each weight-structure family ssc-opt targets into a BN-folded ResNet-18.

Why this exists: ssc-opt's analysis and rewrites must be tested on networks that *have*
structured sparsity or unified weights, but no such trained model may be downloaded and torch
is not installable here. The structures are weight-value patterns on ordinary dense Conv nodes
(PAPERS.md), so they can be planted exactly into the seeded random weights of the ResNet-18
that ``scripts/make_models.py`` builds. Every family below is what a trained SSC / MSWU /
pruned network exports: same graph, structured weight values.

Input: a BN-folded ResNet-18 (``scripts/make_models.py --only resnet18_folded --size small``
writes ``tests/models/resnet18_folded.onnx``; ``--size full`` the torchvision-size one).

Output (``--out DIR``, default ``tests/models/structured``): ``resnet18_<family>.onnx`` per
family and ``manifest.json``. Every Conv is transformed except the first (the 7x7 stem on
RGB, which the papers leave dense); the final Gemm is left dense in every family.

Families (applied to each affected Conv ``W[Co, Ci, kh, kw]``, group 1 in ResNet-18):
    dense          0. unchanged.
    ssc_block      1. SSC group-wise: F (all taps) inside the G=4 diagonal blocks
                      ``o // (Co/4) == i // (Ci/4)``, P (centre tap only) elsewhere.
    ssc_shift      2. SSC HetConv-style shifted: F where ``(i - o) mod 4 == 0``, P elsewhere.
    ssc_dw         3. SSC depthwise + pointwise: F where ``i == o mod min(Ci, Co)`` (the
                      diagonal of a square layer; for Co = 2 Ci each input feeds two outputs,
                      a depthwise multiplier of 2 after permutation), P elsewhere.
    blockdiag      4. block-diagonal G=4 under a random permutation of outputs and of inputs,
                      zero elsewhere: a grouped conv in disguise (3x3 and 1x1).
    plus           5. '+'-shaped taps: the four corner taps of every 3x3 kernel are zeroed.
    zero_filters   6. a random half of the output filters are entirely zero (3x3 and 1x1).
    const_kernels  7. every 3x3 kernel is replaced by its mean (MSWU unification of a k x k
                      kernel): sum-pool then 1x1 conv.
    in_blocks4     8. each block of 4 consecutive input channels shares the block-mean kernel
                      (MSWU over input channels; 3x3 and 1x1).
    sparse90       9. unstructured: the 90% smallest-magnitude weights of each layer are zeroed
                      (floor(0.9 n) of them; 3x3 and 1x1).

1x1 convs: families 1-3 (SSC), 5 ('+') and 7 (constant kernel) need a k x k kernel. On a 1x1
kernel the SSC pattern is the dense conv (its only tap is the centre, so F and P coincide), a
'+' and a constant kernel are the kernel itself; those families leave 1x1 layers unchanged.
The manifest marks which layers each family affected.

Ideal MACs (per image; the manifest holds them per layer and summed, with the dense MACs).
Conv MACs at output resolution ``HWo`` (and input resolution ``HWi``); the Gemm counts K*N:
    dense, and every unaffected layer      Co * Ci * kh * kw * HWo
    zero families (1-6, 9)                 nnz(W) * HWo: only non-zero weights multiply
    const_kernels                          (Co * Ci + Ci * kh * kw) * HWo: a kh x kw sum-pool
                                           of every input channel, then a 1x1 conv
    in_blocks4                             Co * (Ci/4) * kh * kw * HWo + (Ci - Ci/4) * HWi:
                                           pre-sum each block of 4 inputs (3 adds per block
                                           per input pixel), then a conv with Ci/4 inputs
Additions are counted as MACs, so "ideal" is an achievable operation count, not a lower bound.

Deterministic: per-family, per-layer seeds from crc32 of their names; protobuf serialised
deterministically; the manifest is written with sorted keys.

Usage:
    python scripts/make_structured.py                       # small, -> tests/models/structured
    python scripts/make_structured.py --src /tmp/full/resnet18_folded.onnx --out /tmp/structured
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import zlib

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
G = 4

FAMILIES = [
    "dense",
    "ssc_block",
    "ssc_shift",
    "ssc_dw",
    "blockdiag",
    "plus",
    "zero_filters",
    "const_kernels",
    "in_blocks4",
    "sparse90",
]

# Families that only make sense on kernels with more than one tap.
NEEDS_KXK = {"ssc_block", "ssc_shift", "ssc_dw", "plus", "const_kernels"}
ZERO_FAMILIES = {"ssc_block", "ssc_shift", "ssc_dw", "blockdiag", "plus", "zero_filters", "sparse90"}


def rng_for(family: str, layer: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{family}/{layer}".encode()))


def keep_centre(w: np.ndarray) -> np.ndarray:
    """The P form of a kernel stack: only the centre tap survives."""
    p = np.zeros_like(w)
    kh, kw = w.shape[-2:]
    p[..., kh // 2, kw // 2] = w[..., kh // 2, kw // 2]
    return p


def ssc(w: np.ndarray, full: np.ndarray) -> np.ndarray:
    """F kernels where ``full[o, i]``, P kernels elsewhere."""
    return np.where(full[:, :, None, None], w, keep_centre(w))


def transform(family: str, layer: str, w: np.ndarray) -> np.ndarray | None:
    """The structured weight, or None when the family leaves this layer unchanged."""
    co, ci, kh, kw = w.shape
    o = np.arange(co)[:, None]
    i = np.arange(ci)[None, :]
    kxk = kh * kw > 1
    if family == "dense" or (family in NEEDS_KXK and not kxk):
        return None
    if family == "ssc_block":
        return ssc(w, o // (co // G) == i // (ci // G))
    if family == "ssc_shift":
        return ssc(w, (i - o) % G == 0)
    if family == "ssc_dw":
        n = min(ci, co)
        return ssc(w, o % n == i % n)
    if family == "blockdiag":
        rng = rng_for(family, layer)
        po, pi = rng.permutation(co), rng.permutation(ci)
        mask = (po[:, None] // (co // G)) == (pi[None, :] // (ci // G))
        return np.where(mask[:, :, None, None], w, 0.0).astype(np.float32)
    if family == "plus":
        out = w.copy()
        for y, x in ((0, 0), (0, kw - 1), (kh - 1, 0), (kh - 1, kw - 1)):
            out[:, :, y, x] = 0.0
        return out
    if family == "zero_filters":
        rng = rng_for(family, layer)
        out = w.copy()
        out[rng.permutation(co)[: co // 2]] = 0.0
        return out
    if family == "const_kernels":
        mean = w.mean(axis=(2, 3), dtype=np.float32, keepdims=True)
        return np.broadcast_to(mean, w.shape).astype(np.float32)
    if family == "in_blocks4":
        blocks = w.reshape(co, ci // 4, 4, kh, kw).mean(axis=2, dtype=np.float32, keepdims=True)
        return np.broadcast_to(blocks, (co, ci // 4, 4, kh, kw)).reshape(w.shape).astype(np.float32)
    if family == "sparse90":
        flat = w.ravel().copy()
        order = np.argsort(np.abs(flat), kind="stable")
        flat[order[: int(0.9 * flat.size)]] = 0.0
        return flat.reshape(w.shape)
    raise ValueError(family)


def ideal_macs(family: str, affected: bool, w: np.ndarray, hwo: int, hwi: int) -> int:
    co, ci, kh, kw = w.shape
    if not affected:
        return co * ci * kh * kw * hwo
    if family in ZERO_FAMILIES:
        return int(np.count_nonzero(w)) * hwo
    if family == "const_kernels":
        return (co * ci + ci * kh * kw) * hwo
    if family == "in_blocks4":
        return co * (ci // 4) * kh * kw * hwo + (ci - ci // 4) * hwi
    raise ValueError(family)


def spatial_sizes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    shapes = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    return shapes


def check_fixture(w: np.ndarray, family: str, affected: bool) -> None:
    """The planted structure must be exact: F kernels must have no accidental zero tap."""
    if family in ("ssc_block", "ssc_shift", "ssc_dw") and affected:
        nz = np.count_nonzero(w, axis=(2, 3))
        kk = w.shape[2] * w.shape[3]
        assert np.all((nz == kk) | (nz == 1)), "an F kernel has a zero tap"


def build(src: onnx.ModelProto, family: str) -> tuple[onnx.ModelProto, dict]:
    model = onnx.ModelProto()
    model.CopyFrom(src)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    shapes = spatial_sizes(src)
    layers = {}
    convs = [n for n in g.node if n.op_type == "Conv"]
    for idx, node in enumerate(convs):
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        assert groups == 1, f"{node.name}: grouped convs are not expected in ResNet-18"
        t = inits[node.input[1]]
        w = numpy_helper.to_array(t)
        new = None if idx == 0 else transform(family, node.name, w)
        affected = new is not None
        if affected:
            new = np.ascontiguousarray(new, dtype=np.float32)
            t.CopyFrom(numpy_helper.from_array(new, t.name))
            w = new
        check_fixture(w, family, affected)
        out_shape, in_shape = shapes[node.output[0]], shapes[node.input[0]]
        hwo = int(np.prod(out_shape[2:]))
        hwi = int(np.prod(in_shape[2:]))
        dense = int(w.size) * hwo
        layers[node.name] = {
            "op": "Conv",
            "weight": list(w.shape),
            "affected": affected,
            "out_hw": out_shape[2:],
            "dense_macs": dense,
            "ideal_macs": ideal_macs(family, affected, w, hwo, hwi),
        }
    for node in g.node:
        if node.op_type == "Gemm":
            b = numpy_helper.to_array(inits[node.input[1]])
            layers[node.name] = {
                "op": "Gemm",
                "weight": list(b.shape),
                "affected": False,
                "dense_macs": int(b.size),
                "ideal_macs": int(b.size),
            }
    meta = {p.key: p.value for p in model.metadata_props}
    meta["structure_family"] = family
    meta["structure_generator"] = "scripts/make_structured.py"
    del model.metadata_props[:]
    for k in sorted(meta):
        model.metadata_props.add(key=k, value=meta[k])
    model.doc_string = (src.doc_string + f" Structure family `{family}` planted by "
                        "scripts/make_structured.py.").strip()
    entry = {
        "family": family,
        "dense_macs": sum(v["dense_macs"] for v in layers.values()),
        "ideal_macs": sum(v["ideal_macs"] for v in layers.values()),
        "layers": layers,
    }
    return model, entry


def run_check(paths: dict[str, str]) -> bool:
    """Every model must still run and give finite, non-constant outputs."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ok = True
    width = max(map(len, paths), default=0)
    for name, path in paths.items():
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        shape = [d if isinstance(d, int) else 1 for d in sess.get_inputs()[0].shape]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        good = bool(np.all(np.isfinite(y))) and float(np.std(y)) > 0.0
        ok &= good
        print(f"  {name:{width}s} std={float(np.std(y)):.4f} {'OK' if good else 'BAD'}", file=sys.stderr)
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=os.path.join(REPO, "tests/models/resnet18_folded.onnx"),
                    help="BN-folded ResNet-18 (default: tests/models/resnet18_folded.onnx)")
    ap.add_argument("--out", default=os.path.join(REPO, "tests/models/structured"),
                    help="output dir (default: tests/models/structured)")
    ap.add_argument("--only", action="append", default=[], help="only this family; repeatable")
    ap.add_argument("--check", dest="check", action="store_true", default=True,
                    help="run every model in onnxruntime (default)")
    ap.add_argument("--no-check", dest="check", action="store_false")
    args = ap.parse_args(argv)

    families = [f for f in FAMILIES if not args.only or f in args.only]
    if not families:
        print(f"no family matches {args.only}; known: {', '.join(FAMILIES)}", file=sys.stderr)
        return 2
    with open(args.src, "rb") as f:
        src_bytes = f.read()
    src = onnx.load_from_string(src_bytes)
    os.makedirs(args.out, exist_ok=True)
    manifest_path = os.path.join(args.out, "manifest.json")
    manifest = {"models": {}}
    if os.path.exists(manifest_path):
        # Keep the entries of families not regenerated this time (--only).
        with open(manifest_path) as f:
            manifest = json.load(f)
    rel = os.path.relpath(os.path.abspath(args.src), REPO)
    manifest.update({
        "generator": "scripts/make_structured.py",
        "source": rel if not rel.startswith("..") else os.path.basename(args.src),
        "source_sha256": hashlib.sha256(src_bytes).hexdigest(),
        "mac_definition": "see the docstring of scripts/make_structured.py",
    })
    paths = {}
    for family in families:
        model, entry = build(src, family)
        name = f"resnet18_{family}"
        path = os.path.join(args.out, name + ".onnx")
        data = model.SerializeToString(deterministic=True)
        with open(path, "wb") as f:
            f.write(data)
        entry["file"] = name + ".onnx"
        manifest["models"][name] = entry
        paths[name] = path
        print(f"{path}: {len(data):,} bytes, ideal/dense MACs "
              f"{entry['ideal_macs'] / entry['dense_macs']:.3f}", file=sys.stderr)
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    if args.check and not run_check(paths):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
