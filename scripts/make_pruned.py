#!/usr/bin/env python3
"""Filter-pruned and two-structure networks, made the way pruning toolchains make them, with the
end-to-end ideal MACs that ssc-opt's channel removal is measured against.

Why this exists: L1 filter pruning (fasterai, torch-pruning's magnitude pruner in "zero" mode,
Hubens et al. 2020) zeroes the weights of each conv's lowest-L1 filters but leaves the network's
shape alone, and the BatchNormalization after each conv stays: once BN is folded, every pruned
channel is a *live constant* (its BN bias), not zero. Removing such channels end to end (the
producer's filter, every consumer's column, folded exactly into biases) is ssc-opt's job, and it
must be tested on models built the way users build them: from ``*_bn`` models (BN present before
export), pruned in the weights only. No trained model may be downloaded and torch is not
installable here, so the structures are planted into the seeded weights of the models that
``scripts/make_models.py`` builds (same graphs as torchvision).

Input: ``<arch>_bn.onnx`` models: with ``--size small`` (the default) the committed ones in
``tests/models`` (``--src-dir``); with ``--size full`` they are built in memory by
``scripts/make_models.py`` at torchvision widths (224x224).

Sizes: the small fixtures (committed in ``tests/models/pruned``) test that removal is exact; at
their widths (8 to 32 channels) one carrier or zero filter is 10-20% of a layer, so their MAC
ratio is reported, not held to the 10% target (``mac_check: false`` in the manifest). The full
models (``--size full``, written to ``bench-out/pruned`` by default, or wherever ``--out`` says)
carry ``mac_check: true``: the conformance suite holds them to the target.

Families (written as ``<arch>_<family>.onnx`` into ``--out`` with ``manifest.json``):
    prune40        ResNet-18: every Conv's ``round(0.4 Co)`` filters of least L1 norm (over the
                   unfolded weight ``W[o]``) are zeroed; BN kept. The classifier Gemm is kept.
    prune30        MobileNetV2: the same at 30% (depthwise convs included: a depthwise filter is
                   its 3x3 kernel).
    ssc_prune30    ResNet-18: every 3x3 conv except the stem gets the SSC group-wise pattern
                   (F kernels in the G=4 diagonal blocks ``o // (Co/4) == i // (Ci/4)``, P kernels
                   elsewhere), then every conv loses 30% of its filters as in prune40.
    ssc_rem50      ResNet-18: the SSC pattern of ssc_prune30 where the off-block point kernels of
                   a random half of the input channels are zero, so that the 1x1 remainder of the
                   SSC split has 50% zero columns. No filter is pruned.

Ideal MACs (per image; additions are not counted, as in ``tests/conformance/structured.py``):
    prune*         the end-to-end channel ideal: each conv computes only its kept filters and
                   reads only its producer's kept channels where no residual Add or Concat ties
                   them. Conv ``C`` reads tensor ``t``; walking back from ``t`` through
                   channel-wise ops (BN, Relu, Clip, pools) reaches the op ``P`` that makes the
                   channels. If ``P`` is a Conv and no tensor on that walk (``P``'s output
                   included) is read by an Add, Mul, Concat or the graph output, ``C`` reads
                   ``kept(P)`` channels, else all of them. MACs = ``kept_out(C) * reads / group``
                   ``* k_h * k_w * HWo``, with ``reads / group = 1`` for a depthwise conv. The
                   classifier Gemm reads through GlobalAveragePool -> Flatten by the same rule.
    ssc_*          the non-zero-weight MACs the issue asks for: ``nnz(W) * HWo`` per conv
                   (after BN folding; a BN scale never creates or removes a zero) and the Gemm
                   dense. Consumers of pruned channels keep their (non-zero) columns in this
                   count, so removing those channels ends below it.
Both are achievable operation counts, not lower bounds; the manifest also holds the dense MACs
and each layer's kept filters.

Deterministic: per-model, per-layer seeds from crc32 of their names; protobuf serialised
deterministically; the manifest is written with sorted keys.

Usage:
    python scripts/make_pruned.py                          # small -> tests/models/pruned
    python scripts/make_pruned.py --size full              # full  -> bench-out/pruned
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_structured import run_check  # noqa: E402  (the generators' shared ORT check; same directory)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
G = 4

# model name -> (source arch, family, prune ratio)
MODELS = {
    "resnet18_prune40": ("resnet18", "prune", 0.4),
    "mobilenet_v2_prune30": ("mobilenet_v2", "prune", 0.3),
    "resnet18_ssc_prune30": ("resnet18", "ssc_prune", 0.3),
    "resnet18_ssc_rem50": ("resnet18", "ssc_rem", 0.0),
}

# Ops that map channel c of their (first) input to channel c of their output, one to one.
CHANNELWISE = {"BatchNormalization", "Relu", "Clip", "LeakyRelu", "MaxPool", "AveragePool",
               "Sigmoid", "HardSigmoid", "HardSwish", "Identity", "Dropout"}
# Ops whose output channels are tied to channels of another activation.
TYING = {"Add", "Sub", "Mul", "Div", "Sum", "Concat"}


def rng_for(model: str, layer: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{model}/{layer}".encode()))


def prune_filters(w: np.ndarray, ratio: float) -> tuple[np.ndarray, list[int]]:
    """Zeroes the round(ratio * Co) filters of least L1 norm (ties: lower index first)."""
    co = w.shape[0]
    n = int(round(ratio * co))
    if n == 0:
        return w, []
    l1 = np.abs(w.reshape(co, -1)).sum(axis=1, dtype=np.float64)
    pruned = sorted(int(o) for o in np.argsort(l1, kind="stable")[:n])
    out = w.copy()
    out[pruned] = 0.0
    return out, pruned


def keep_centre(w: np.ndarray) -> np.ndarray:
    p = np.zeros_like(w)
    kh, kw = w.shape[-2:]
    p[..., kh // 2, kw // 2] = w[..., kh // 2, kw // 2]
    return p


def ssc_block(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The SSC group-wise pattern: F in the G diagonal blocks, P elsewhere; and the block mask."""
    co, ci = w.shape[:2]
    full = (np.arange(co)[:, None] // (co // G)) == (np.arange(ci)[None, :] // (ci // G))
    return np.where(full[:, :, None, None], w, keep_centre(w)).astype(np.float32), full


def attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def shapes_of(model: onnx.ModelProto) -> dict[str, list[int]]:
    g = shape_inference.infer_shapes(model).graph
    out = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        out[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    return out


def plant(model_name: str, family: str, ratio: float, src: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    """The structured copy of ``src`` and each conv's kept filters."""
    model = onnx.ModelProto()
    model.CopyFrom(src)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    convs = [n for n in g.node if n.op_type == "Conv"]
    kept: dict[str, list[int]] = {}
    for idx, node in enumerate(convs):
        t = inits[node.input[1]]
        w = numpy_helper.to_array(t).copy()
        co, cig, kh, kw = w.shape
        group = attr(node, "group", 1)
        ssc = family in ("ssc_prune", "ssc_rem") and idx > 0 and kh * kw > 1 and group == 1
        if ssc:
            w, full = ssc_block(w)
            if family == "ssc_rem":
                rng = rng_for(model_name, node.name)
                dropped = rng.permutation(cig)[: cig // 2]
                for i in dropped:
                    off = ~full[:, i]
                    w[off, i] = 0.0
        pruned: list[int] = []
        if family in ("prune", "ssc_prune"):
            w, pruned = prune_filters(w, ratio)
        if ssc and family == "ssc_prune":
            # The planted F kernels must stay exact after pruning: no accidental zero tap.
            nz = np.count_nonzero(w, axis=(2, 3))
            assert np.all((nz == kh * kw) | (nz <= 1)), node.name
        t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(w, dtype=np.float32), t.name))
        kept[node.name] = [o for o in range(co) if o not in set(pruned)]
    meta = {p.key: p.value for p in model.metadata_props}
    meta["structure_family"] = family
    meta["structure_generator"] = "scripts/make_pruned.py"
    del model.metadata_props[:]
    for k in sorted(meta):
        model.metadata_props.add(key=k, value=meta[k])
    model.doc_string = (src.doc_string + f" `{model_name}` planted by scripts/make_pruned.py.").strip()
    return model, kept


def producer_reads(model: onnx.ModelProto, tensor: str, kept: dict[str, list[int]]) -> int | None:
    """How many channels a reader of ``tensor`` needs by the end-to-end ideal: the producing
    conv's kept filters when nothing ties the channels on the way, else ``None`` (all)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    outputs = {o.name for o in model.graph.output}
    t = tensor
    while True:
        if t in outputs or any(r.op_type in TYING for r in readers.get(t, [])):
            return None
        p = producer.get(t)
        if p is None:
            return None
        if p.op_type == "Conv":
            return len(kept[p.name])
        if p.op_type in CHANNELWISE or p.op_type in ("GlobalAveragePool", "Flatten"):
            t = p.input[0]
            continue
        return None


def manifest_entry(model_name: str, family: str, model: onnx.ModelProto,
                   kept: dict[str, list[int]]) -> dict:
    shapes = shapes_of(model)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    layers = {}
    for node in model.graph.node:
        if node.op_type == "Conv":
            w = inits[node.input[1]]
            co, cig = w.shape[:2]
            taps = int(np.prod(w.shape[2:]))
            group = attr(node, "group", 1)
            hwo = int(np.prod(shapes[node.output[0]][2:]))
            dense = co * cig * taps * hwo
            k = len(kept[node.name])
            if family == "prune":
                depthwise = group > 1 and cig == 1
                if depthwise:
                    reads = 1
                else:
                    r = producer_reads(model, node.input[0], kept)
                    reads = cig if r is None else r // group
                ideal = k * reads * taps * hwo
            else:
                ideal = int(np.count_nonzero(w)) * hwo
            layers[node.name] = {"op": "Conv", "weight": list(w.shape), "group": group,
                                 "out_hw": shapes[node.output[0]][2:], "kept_filters": k,
                                 "dense_macs": dense, "ideal_macs": ideal}
        elif node.op_type == "Gemm":
            b = inits[node.input[1]]
            n_out, k_in = (b.shape[0], b.shape[1]) if attr(node, "transB", 0) else (b.shape[1], b.shape[0])
            dense = n_out * k_in
            reads = k_in
            if family == "prune":
                r = producer_reads(model, node.input[0], kept)
                reads = k_in if r is None else r
            layers[node.name] = {"op": "Gemm", "weight": list(b.shape), "dense_macs": dense,
                                 "ideal_macs": n_out * reads}
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    return {
        "family": family,
        "dense_macs": sum(v["dense_macs"] for v in layers.values()),
        "ideal_macs": sum(v["ideal_macs"] for v in layers.values()),
        "ideal": "end-to-end channel ideal" if family == "prune" else "non-zero-weight MACs",
        "params": params,
        "layers": layers,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=["small", "full"], default="small")
    ap.add_argument("--src-dir", default=os.path.join(REPO, "tests/models"),
                    help="small: directory with <arch>_bn.onnx (default: tests/models)")
    ap.add_argument("--out", help="output dir (default: tests/models/pruned for small, "
                                  "bench-out/pruned for full)")
    ap.add_argument("--only", action="append", default=[], help="only this model; repeatable")
    ap.add_argument("--check", dest="check", action="store_true", default=True,
                    help="run every model in onnxruntime (default)")
    ap.add_argument("--no-check", dest="check", action="store_false")
    args = ap.parse_args(argv)

    names = [n for n in MODELS if not args.only or n in args.only]
    if not names:
        print(f"no model matches {args.only}; known: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    if args.out is None:
        args.out = os.path.join(REPO, "tests/models/pruned" if args.size == "small" else "bench-out/pruned")
    os.makedirs(args.out, exist_ok=True)
    manifest_path = os.path.join(args.out, "manifest.json")
    manifest: dict = {"models": {}}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
    manifest.update({"generator": "scripts/make_pruned.py",
                     "mac_definition": "see the docstring of scripts/make_pruned.py"})
    sources: dict[str, str] = {}
    paths = {}
    for name in names:
        arch, family, ratio = MODELS[name]
        if args.size == "small":
            with open(os.path.join(args.src_dir, f"{arch}_bn.onnx"), "rb") as f:
                src_bytes = f.read()
        else:
            import make_models  # noqa: PLC0415 - only the full size needs the builder

            src_bytes = make_models.serialize(make_models.build(arch, "bn", "full"))
        sources[arch] = hashlib.sha256(src_bytes).hexdigest()
        model, kept = plant(name, family, ratio, onnx.load_from_string(src_bytes))
        entry = manifest_entry(name, family, model, kept)
        entry["source"] = f"{arch}_bn.onnx"
        entry["source_sha256"] = sources[arch]
        entry["file"] = name + ".onnx"
        entry["mac_check"] = args.size == "full"
        path = os.path.join(args.out, name + ".onnx")
        data = model.SerializeToString(deterministic=True)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        manifest["models"][name] = entry
        paths[name] = path
        print(f"{path}: {len(data):,} bytes, ideal/dense MACs "
              f"{entry['ideal_macs'] / entry['dense_macs']:.3f} "
              f"({entry['ideal_macs'] / 1e9:.3f} / {entry['dense_macs'] / 1e9:.3f} G)", file=sys.stderr)
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    if args.check and not run_check(paths):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
