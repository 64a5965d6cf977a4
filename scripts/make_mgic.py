#!/usr/bin/env python3
"""Generate MGIC (multigrid-in-channels) ResNets, exported with BatchNorm folded.

Why this exists: MGIC networks (Eliasof, Ephrath, Ruthotto, Treister; SISC 2023; see
shared/PAPERS.md section 3) replace each CNN block by a V-cycle of grouped convolutions of a small
fixed group size g. An exported MGIC model is what ssc-opt must handle well: grouped 1x1 and 3x3
convs everywhere, BN folded into them, an averaging restriction that is one constant, residual
Adds and Subs reading each level three times. No MGIC model exists in any package we can install,
so this script builds them from the paper's reference-code description with onnx.helper and
numpy (the same Builder as scripts/make_models.py), with seeded random weights.

The block (ResNet flavour, group size g, threshold F = 32), as the reference code builds it:
  * levels halve the width c -> c/2 while c/2 >= F; a level of width c has G = max(c/g, 1) groups;
  * down: r[l+1] = R_l(r[l]), R_l a grouped 1x1 conv (G_l groups, no bias, no activation);
  * coarsest level: a dense residual block y = relu(r + bn(conv3x3(relu(bn(conv3x3(r))))));
  * up, l = L-1 .. 0: z = r[l] + bn(P_l(y - r[l+1])), P_l a grouped 1x1 conv (G_l groups), then
    the grouped residual smoother y = relu(bn(conv3x3_G(relu(bn(conv3x3_G(z))))) + z);
  * a stride or width change happens before the cycle, in a connector
    conv3x3(stride s, groups = c_in) + bn + relu.
Exported in eval mode every BN folds into the conv before it, so a block is Conv (grouped 1x1 and
3x3), Relu, Add and Sub only.

The network: stem conv 7x7/2 + BN + ReLU + maxpool 3x3/2 (ResNet's), four stages of widths
W = [64, 128, 256, 512] (full) with a connector where the width or the stride changes, `blocks`
MGIC blocks per stage, global average pool, FC.

Variants (--only picks some):
  mgic_g32, mgic_g16          group size 32 / 16, restriction and prolongation weights as
                              trained (random, He-scaled);
  mgic_g32_avg, mgic_g16_avg  the averaging initialisation kept, R = P = 1/g: R's weights are
                              one constant, so each group's g/2 outputs are the same channel
                              sum (P is followed by a BN, so folded it is 1/g times a
                              per-output scale).
Sizes:
  --size small  widths [32, 64, 128] (three stages), one block per stage, 64x64 input, 10 classes: a
                few hundred KB each, committed under tests/models/mgic/ (with manifest.json:
                variant, g, widths, levels per stage, MACs, parameters).
  --size full   widths [64, 128, 256, 512], two blocks per stage, 224x224, 1000 classes:
                bench-out/mgic/ (gitignored), for scripts/bench_mgic.sh.
Output is byte-for-byte deterministic (seeds from the variant name). --check (default) runs each
model in onnxruntime and fails on non-finite or degenerate outputs.

Usage:
  python scripts/make_mgic.py --size small            # -> tests/models/mgic/
  python scripts/make_mgic.py --size full --only mgic_g32_avg
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import zlib

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import Builder, serialize  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THRESHOLD = 32   # F: the coarsest level is the first whose half would be below it
VARIANTS = {"mgic_g32": (32, False), "mgic_g16": (16, False),
            "mgic_g32_avg": (32, True), "mgic_g16_avg": (16, True)}
SIZES = {"small": dict(widths=[32, 64, 128], blocks=1, hw=64, classes=10,
                       out=os.path.join(REPO, "tests", "models", "mgic")),
         "full": dict(widths=[64, 128, 256, 512], blocks=2, hw=224, classes=1000,
                      out=os.path.join(REPO, "bench-out", "mgic"))}


def levels(c: int) -> list[int]:
    """Widths of the V-cycle's levels, finest first."""
    out = [c]
    while out[-1] // 2 >= THRESHOLD and out[-1] % 2 == 0:
        out.append(out[-1] // 2)
    return out


def groups(c: int, g: int) -> int:
    return max(c // g, 1)


class Mgic:
    def __init__(self, b: Builder, g: int, avg: bool):
        self.b, self.g, self.avg = b, g, avg

    def transfer(self, x: str, path: str, cout: int, groups_: int, bn: bool) -> str:
        """A grouped 1x1 restriction (no BN) or prolongation (then BN, folded)."""
        b = self.b
        if not self.avg:
            if bn:
                return b.conv_bn(x, f"{path}/conv", f"{path}/bn", cout, 1, groups=groups_, act=None)
            return b.conv(x, path, cout, 1, groups=groups_)[0]
        # Averaging kept: every weight 1/g (the paper's initialisation, never trained away).
        cin = b.shape[x][1]
        w = np.full((cout, cin // groups_, 1, 1), 1.0 / self.g, np.float32)
        if not bn:
            wn = b.init(f"{path[1:].replace('/', '.')}.weight", w)
            _, _, h, ww = b.shape[x]
            return b.node("Conv", [x, wn], path, (1, cout, h, ww), dilations=[1, 1], group=groups_,
                          kernel_shape=[1, 1], pads=[0, 0, 0, 0], strides=[1, 1])
        # conv_bn draws its own He weight; replace it by the constant before BN folding.
        saved = b.he
        b.he = lambda shape, fan_in, xx: np.full(shape, 1.0 / self.g, np.float32)
        try:
            return b.conv_bn(x, f"{path}/conv", f"{path}/bn", cout, 1, groups=groups_, act=None)
        finally:
            b.he = saved

    def smoother(self, z: str, path: str, groups_: int) -> str:
        """y = relu(bn(conv3x3_G(relu(bn(conv3x3_G(z))))) + z)."""
        b = self.b
        c = b.shape[z][1]
        y = b.conv_bn(z, f"{path}/conv1", f"{path}/bn1", c, 3, groups=groups_, act_path=f"{path}/relu")
        y = b.conv_bn(y, f"{path}/conv2", f"{path}/bn2", c, 3, groups=groups_, act=None, gamma_scale=0.25)
        return b.act(b.add(y, z, f"{path}/add"), f"{path}/relu_1", "relu")

    def block(self, x: str, path: str) -> str:
        b = self.b
        widths = levels(b.shape[x][1])
        r = [x]
        for l in range(len(widths) - 1):   # restriction, finest to coarsest
            r.append(self.transfer(r[l], f"{path}/restrict{l}", widths[l + 1],
                                   groups(widths[l], self.g), bn=False))
        y = self.smoother(r[-1], f"{path}/coarse", 1)   # the dense coarsest level
        for l in range(len(widths) - 2, -1, -1):   # prolongation, coarsest to finest
            d = b.node("Sub", [y, r[l + 1]], f"{path}/up{l}/sub", b.shape[y])
            p = self.transfer(d, f"{path}/up{l}/prolong", widths[l], groups(widths[l], self.g), bn=True)
            z = b.add(r[l], p, f"{path}/up{l}/correct")
            y = self.smoother(z, f"{path}/up{l}/smooth", groups(widths[l], self.g))
        return y

    def connector(self, x: str, path: str, cout: int, stride: int) -> str:
        cin = self.b.shape[x][1]
        return self.b.conv_bn(x, f"{path}/conv", f"{path}/bn", cout, 3, stride, groups=cin,
                              act_path=f"{path}/relu")


def build(name: str, size: str) -> tuple[onnx.ModelProto, dict]:
    g, avg = VARIANTS[name]
    cfg = SIZES[size]
    seed = zlib.crc32(f"{name}/{size}".encode())
    b = Builder(name, "folded", seed, cfg["hw"])
    m = Mgic(b, g, avg)
    x = b.conv_bn("input", "/conv1", "/bn1", cfg["widths"][0], 7, stride=2, act_path="/relu")
    x = b.maxpool(x, "/maxpool", 3, 2, 1)
    stages = []
    for si, c in enumerate(cfg["widths"]):
        stride = 1 if si == 0 else 2
        if stride != 1 or b.shape[x][1] != c:
            x = m.connector(x, f"/stage{si}/connector", c, stride)
        for bi in range(cfg["blocks"]):
            x = m.block(x, f"/stage{si}/block{bi}")
        stages.append({"width": c, "levels": levels(c), "groups": [groups(w, g) for w in levels(c)]})
    x = b.gap(x, "/avgpool")
    x = b.flatten(x, "")
    b.gemm(x, "/fc", cfg["classes"], out="output")
    doc = (f"MGIC ResNet (scripts/make_mgic.py --size {size}): group size {g}, threshold {THRESHOLD}, "
           f"{'averaging restriction/prolongation kept' if avg else 'trained restriction/prolongation'}, "
           f"BN folded")
    model = b.finish("output", {"generator": "scripts/make_mgic.py", "variant": name, "size": size,
                                "group_size": str(g), "averaging": str(avg).lower()}, doc)
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    macs = count_macs(model)
    # family / dense_macs / ideal_macs: what tests/conformance/structured.py reads. MGIC has no
    # structural MAC target (its convs are already grouped); the output must simply not cost more.
    info = {"file": f"{name}.onnx", "family": name, "dense_macs": macs, "ideal_macs": macs,
            "group_size": g, "averaging": avg, "widths": cfg["widths"],
            "blocks_per_stage": cfg["blocks"], "input": [1, 3, cfg["hw"], cfg["hw"]], "stages": stages,
            "params": params, "macs": macs}
    return model, info


def count_macs(model: onnx.ModelProto) -> int:
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input)}
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0
    for n in model.graph.node:
        if n.op_type == "Conv":
            w = inits[n.input[1]]
            total += int(np.prod(shapes[n.output[0]])) * w[1] * int(np.prod(w[2:]))
        elif n.op_type == "Gemm":
            w = inits[n.input[1]]
            total += w[0] * w[1]
    return total


def check(model: onnx.ModelProto, name: str) -> None:
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = sess.run(None, {"input": x})[0]
    if not np.isfinite(y).all() or np.abs(y).max() < 1e-3 or np.abs(y).max() > 1e4 or y.std() < 1e-4:
        raise SystemExit(f"{name}: degenerate output (max |y| {np.abs(y).max():.3g}, std {y.std():.3g})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=SIZES, default="small")
    ap.add_argument("--only", action="append", choices=list(VARIANTS))
    ap.add_argument("--out", help="output directory (default: per --size)")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args(argv)
    out = args.out or SIZES[args.size]["out"]
    os.makedirs(out, exist_ok=True)
    manifest = {"generator": "scripts/make_mgic.py", "size": args.size, "threshold": THRESHOLD,
                "models": {}}
    for name in args.only or list(VARIANTS):
        model, info = build(name, args.size)
        if not args.no_check:
            check(model, name)
        path = os.path.join(out, info["file"])
        with open(path, "wb") as f:
            f.write(serialize(model))
        manifest["models"][name] = info
        print(f"{path}: {info['params']:,} params, {info['macs'] / 1e6:.1f} MMACs, "
              f"levels {[s['levels'] for s in info['stages']]}", file=sys.stderr)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
