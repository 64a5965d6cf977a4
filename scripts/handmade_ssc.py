#!/usr/bin/env python3
"""Hand-made reference SSC rewrite: dense k x k Conv with block-diagonal F kernels and P
kernels elsewhere -> Conv(group=G, k x k) + Conv(1x1) + Add, exactly equivalent.

Why this exists: it is the bar the automatic rewrites of ssc-opt must meet. It rewrites the
``ssc_block`` family of ``scripts/make_structured.py`` by hand, in the plainest way, so that
``scripts/bench_ort.py`` can measure what the SSC rewrite buys in ONNX Runtime on this
machine, and so that the rewrite engine has a reference to compare its output with (node by
node: same decomposition, same weights).

For every Conv with group 1, a k x k kernel (k > 1), dilation 1 and symmetric "same" padding
``k // 2`` whose weight ``W[Co, Ci, kh, kw]`` is SSC group-wise with ``G`` blocks, i.e.

    every kernel (o, i) outside the diagonal blocks o // (Co/G) != i // (Ci/G) has at most its
    centre tap non-zero (a P or Z kernel),

the node ``Y = Conv(X, W, B)`` becomes

    A = Conv(X, Wg, B, group=G, same kernel/pads/strides)   Wg[o, j] = W[o, (o // (Co/G)) * Ci/G + j]
    P = Conv(X, Wp, kernel 1x1, same strides, no pads)      Wp[o, i] = W[o, i, c, c] off the blocks, 0 on them
    Y = Add(A, P)

(the centre taps inside the blocks stay in ``Wg``). The 1x1 conv with stride ``s`` reads input
pixel ``s * y`` for output ``y``, which is exactly the centre tap of a ``k // 2``-padded k x k
window, so the output sizes and values match. Other Convs are left alone (reported).

MACs per rewritten layer drop from ``Co*Ci*k^2`` to ``Co*Ci*(k^2/G + 1)`` per output pixel.

Usage:
    python scripts/handmade_ssc.py IN.onnx OUT.onnx [--groups 4] [--no-check]
``--check`` (default) runs both models in ORT on a seeded input and fails unless
max|a - b| / max|a| <= 1e-4.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def ssc_split(w: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(Wg, Wp) when ``w`` is SSC group-wise with ``groups`` blocks, else None."""
    co, ci, kh, kw = w.shape
    if co % groups or ci % groups:
        return None
    bo, bi = co // groups, ci // groups
    block = (np.arange(co)[:, None] // bo) == (np.arange(ci)[None, :] // bi)
    ch, cw = kh // 2, kw // 2
    off_centre = w.copy()
    off_centre[:, :, ch, cw] = 0.0
    if np.any(off_centre[~block] != 0.0):
        return None  # some off-block kernel has a non-centre tap: not SSC group-wise
    wg = np.stack([w[o, (o // bo) * bi:(o // bo + 1) * bi] for o in range(co)]).astype(np.float32)
    wp = np.where(block, 0.0, w[:, :, ch, cw]).astype(np.float32)[:, :, None, None]
    return wg, wp


def rewrite(model: onnx.ModelProto, groups: int) -> tuple[onnx.ModelProto, list[str], list[str]]:
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    new_nodes, new_inits, done, skipped = [], [], [], []
    for node in g.node:
        if node.op_type != "Conv" or node.input[1] not in inits:
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        k = list(w.shape[2:])
        pads = attr(node, "pads", [0] * 2 * len(k))
        same = all(p == kk // 2 for p, kk in zip(pads, k + k)) and all(kk % 2 == 1 for kk in k)
        ok = (attr(node, "group", 1) == 1 and len(k) == 2 and np.prod(k) > 1 and same
              and attr(node, "dilations", [1, 1]) == [1, 1] and attr(node, "auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"))
        split = ssc_split(w, groups) if ok else None
        if split is None:
            new_nodes.append(node)
            if ok:
                skipped.append(node.name)
            continue
        wg, wp = split
        name = node.name or node.output[0]
        strides = attr(node, "strides", [1, 1])
        wg_name, wp_name = f"{name}.ssc_grouped.W", f"{name}.ssc_pointwise.W"
        a_out, p_out = f"{node.output[0]}.ssc_grouped", f"{node.output[0]}.ssc_pointwise"
        new_inits += [numpy_helper.from_array(wg, wg_name), numpy_helper.from_array(wp, wp_name)]
        ins = [node.input[0], wg_name] + list(node.input[2:3])
        new_nodes += [
            helper.make_node("Conv", ins, [a_out], name=f"{name}.ssc_grouped", group=groups,
                             kernel_shape=k, pads=pads, strides=strides),
            helper.make_node("Conv", [node.input[0], wp_name], [p_out], name=f"{name}.ssc_pointwise",
                             kernel_shape=[1, 1], strides=strides),
            helper.make_node("Add", [a_out, p_out], [node.output[0]], name=f"{name}.ssc_add"),
        ]
        done.append(name)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    used = {i for n in new_nodes for i in n.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept + new_inits)
    # Intermediate shapes changed names: drop stale value_info and let inference redo it.
    del out.graph.value_info[:]
    out = onnx.shape_inference.infer_shapes(out)
    onnx.checker.check_model(out)
    return out, done, skipped


def check(a_path: str, b_path: str, tol: float) -> float:
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sa = ort.InferenceSession(a_path, so, providers=["CPUExecutionProvider"])
    sb = ort.InferenceSession(b_path, so, providers=["CPUExecutionProvider"])
    i = sa.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
    ya = sa.run(None, {i.name: x})
    yb = sb.run(None, {sb.get_inputs()[0].name: x})
    num = max(float(np.max(np.abs(p.astype(np.float64) - q))) for p, q in zip(ya, yb))
    den = max(float(np.max(np.abs(p))) for p in ya)
    return num / den


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--groups", type=int, default=4, help="number of diagonal blocks G (default 4)")
    ap.add_argument("--check", dest="check", action="store_true", default=True,
                    help="compare both models in onnxruntime (default)")
    ap.add_argument("--no-check", dest="check", action="store_false")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args(argv)

    model = onnx.load(args.input)
    out, done, skipped = rewrite(model, args.groups)
    with open(args.output, "wb") as f:
        f.write(out.SerializeToString(deterministic=True))
    print(f"{args.output}: rewrote {len(done)} convs into grouped({args.groups}) + 1x1 + Add"
          + (f"; {len(skipped)} k x k convs were not SSC group-wise: {', '.join(skipped)}" if skipped else ""),
          file=sys.stderr)
    if args.check:
        rel = check(args.input, args.output, args.tol)
        ok = rel <= args.tol
        print(f"  max|a - b| / max|a| = {rel:.2e} ({'OK' if ok else 'FAIL'}, tol {args.tol:g})", file=sys.stderr)
        if not ok:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
