#!/usr/bin/env python3
"""Generate the CNN test/benchmark models for ssc-opt.

Why this exists: ssc-opt has to be tested and benchmarked on realistic ONNX
graphs (the shapes PyTorch's exporter produces for the classic vision
architectures), but torch is not installable here and no model may be
downloaded. So the architectures are rebuilt directly with ``onnx.helper`` and
numpy, following the torchvision definitions layer by layer, with seeded
random weights.

Architectures (torchvision names):
    resnet18, resnet50, mobilenet_v2, squeezenet1_1, shufflenet_v2_x1_0,
    densenet121, efficientnet_b0, regnet_x_400mf, mobilenet_v3_large,
    resnext50_32x4d, vgg11, convnext_tiny

Each one is written in two variants:
    <arch>_bn.onnx      BatchNormalization left in the graph, Conv without
                        bias (what ``torch.onnx.export`` of an eval-mode model
                        without constant folding looks like).
    <arch>_folded.onnx  every Conv->BatchNormalization pair folded into a Conv
                        with bias, computed from the *same* weights (in float64,
                        then rounded to float32), so both variants compute the
                        same function up to float32 rounding. BatchNormalization
                        nodes that cannot be folded into a preceding Conv (the
                        pre-activation BNs after a Concat in DenseNet) stay.
    torchvision's squeezenet1_1 has no BatchNormalization at all: its
    ``_folded`` variant is exactly that topology (Conv with bias), and its
    ``_bn`` variant inserts a BN after every Conv (as "SqueezeNet-BN" variants
    do) so that it is the unfolded form of the same weights.

Weights use realistic initialisation scales (He-normal convs, BN with gamma
around 1, random positive running var, small beta/mean, and a small gamma on
the last BN of every residual branch, as trained residual nets have), so the
activations stay O(1) through the deep nets. ``--check`` (default) runs every
model in onnxruntime and fails if an output is non-finite, all zero or huge,
and checks that ``_bn`` and ``_folded`` agree.

Sizes:
    --size small  the same topology (same blocks, depths, group counts where
                  possible) with channel widths divided (per architecture, so
                  each file is a few hundred KB), min 8 channels, 64x64 input,
                  10 classes. Committed under tests/models/.
    --size full   standard torchvision widths at 224x224, 1000 classes
                  (ResNet-50 ~100 MB). Written to bench-out/models/
                  (gitignored) by default; used by benchmark scripts.

All models: opset 17, ir_version 8, one input ``input`` float32 [1,3,H,W],
one output ``output`` float32 [1,classes], value_info from ONNX shape
inference, metadata_props describing the model. Output is byte-for-byte
deterministic (fixed seeds derived from the architecture name, no timestamps,
deterministic protobuf serialisation).

Usage:
    python scripts/make_models.py --size small            # -> tests/models/
    python scripts/make_models.py --size full --only resnet50
    python scripts/make_models.py --out DIR --only resnet18_bn --no-check
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import zlib
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
PRODUCER = "ssc-opt scripts/make_models.py"
PRODUCER_VERSION = "1"

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's _make_divisible: round to a multiple, never go >10% down."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def pname(path: str) -> str:
    """Parameter name from a node scope path, the way PyTorch names them.

    Scope components are either full dotted module names ("features.0.0")
    or local attribute names ("conv1"):
        /features/features.0/features.0.0  -> features.0.0
        /layer1/layer1.0/conv1              -> layer1.0.conv1
        /features/features.1/features.1.0/block/block.0/block.0.1
                                            -> features.1.0.block.0.1
    """
    parts: list[str] = []
    for comp in path.strip("/").split("/"):
        if not comp:
            continue
        if parts and comp.startswith(parts[-1] + "."):
            parts[-1] = comp  # "block" followed by "block.0": same module, deeper
        else:
            parts.append(comp)
    return ".".join(parts)


class Widths:
    """Maps a standard (full-size) channel count to the one actually used."""

    def __init__(self, div: int):
        self.div = div

    def __call__(self, c: int, multiple: int = 8) -> int:
        if self.div == 1:
            return c
        return max(8, make_divisible(c / self.div, multiple))


class Builder:
    """Tiny graph builder that tracks NCHW shapes (batch is always 1)."""

    SHAPE_OPS = ("MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Split", "Reshape",
                 "Transpose")

    def __init__(self, arch: str, variant: str, seed: int, hw: int):
        assert variant in ("bn", "folded")
        self.arch = arch
        self.fold = variant == "folded"
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.init_names: set[str] = set()
        self.node_names: set[str] = set()
        self.shape: dict[str, tuple[int, ...]] = {"input": (1, 3, hw, hw)}
        self._shared: dict[str, str] = {}
        # Tensors that are (pools/concats/reshapes of) ReLU-like activation
        # outputs. A conv reading such a tensor gets He init (gain 2, which
        # compensates the half of the signal a ReLU removes); a conv reading a
        # linear tensor (the image, a BN without activation) gets gain 1, so the
        # pre-BN variance stays ~constant through the depth of the network.
        self.rectified: set[str] = set()

    # ---- primitives -----------------------------------------------------
    def init(self, name: str, arr: np.ndarray) -> str:
        assert name not in self.init_names, name
        self.init_names.add(name)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def shared_init(self, name: str, arr: np.ndarray) -> str:
        if name not in self._shared:
            self._shared[name] = self.init(name, arr)
        return self._shared[name]

    def node(
        self,
        op: str,
        inputs: list[str],
        path: str,
        shape: tuple[int, ...] | list[tuple[int, ...]],
        n_out: int = 1,
        out: str | None = None,
        **attrs,
    ):
        name = f"{path}/{op}"
        base = name
        k = 1
        while name in self.node_names:
            name = f"{base}_{k}"
            k += 1
        self.node_names.add(name)
        if out is not None:
            assert n_out == 1
            outputs = [out]
        else:
            outputs = [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))
        shapes = shape if isinstance(shape, list) else [shape]
        for o, s in zip(outputs, shapes):
            self.shape[o] = tuple(s)
        data_in = inputs if op == "Concat" else inputs[:1]
        if op in ("Relu", "Clip") or (
            op in self.SHAPE_OPS and all(i in self.rectified for i in data_in)
        ):
            self.rectified.update(outputs)
        return outputs[0] if n_out == 1 else outputs

    # ---- random parameters ----------------------------------------------
    def he(self, shape: tuple[int, ...], fan_in: int, x: str) -> np.ndarray:
        gain = 2.0 if x in self.rectified else 1.0
        return (self.rng.standard_normal(shape) * math.sqrt(gain / fan_in)).astype(np.float32)

    def bn_params(self, c: int, gamma_scale: float = 1.0):
        r = self.rng
        gamma = r.uniform(0.8, 1.2, c) * gamma_scale
        beta = r.normal(0.0, 0.1, c)
        mean = r.normal(0.0, 0.1, c)
        var = r.uniform(0.5, 1.5, c)
        return (
            gamma.astype(np.float32),
            beta.astype(np.float32),
            mean.astype(np.float32),
            var.astype(np.float32),
        )

    # ---- layers -----------------------------------------------------------
    def act(self, x: str, path: str, kind: str | None) -> str:
        s = self.shape[x]
        if kind is None:
            return x
        if kind == "relu":
            return self.node("Relu", [x], path, s)
        if kind == "relu6":
            lo = self.shared_init("relu6.min", np.array(0.0, np.float32))
            hi = self.shared_init("relu6.max", np.array(6.0, np.float32))
            return self.node("Clip", [x, lo, hi], path, s)
        if kind == "hardswish":  # nn.Hardswish exports as HardSwish (opset 14+)
            y = self.node("HardSwish", [x], path, s)
            self.rectified.add(y)
            return y
        if kind == "hardsigmoid":  # nn.Hardsigmoid exports as HardSigmoid(alpha=1/6)
            return self.node("HardSigmoid", [x], path, s, alpha=1.0 / 6.0, beta=0.5)
        if kind == "gelu":
            # nn.GELU() as torch.onnx exports it at opset 17: x * (erf(x / sqrt 2) + 1) * 0.5
            c2 = self.shared_init("gelu.sqrt2", np.array(math.sqrt(2.0), np.float32))
            one = self.shared_init("gelu.one", np.array(1.0, np.float32))
            half = self.shared_init("gelu.half", np.array(0.5, np.float32))
            d = self.node("Div", [x, c2], path, s)
            e = self.node("Erf", [d], path, s)
            a = self.node("Add", [e, one], path, s)
            m = self.node("Mul", [x, a], path, s)
            y = self.node("Mul", [m, half], path, s)
            self.rectified.add(y)
            return y
        if kind == "silu":  # SiLU as PyTorch exports it: x * Sigmoid(x)
            sg = self.node("Sigmoid", [x], path, s)
            y = self.node("Mul", [x, sg], path, s)
            self.rectified.add(y)
            return y
        raise ValueError(kind)

    def conv(
        self,
        x: str,
        path: str,
        cout: int,
        k: int,
        stride: int = 1,
        pad: int | None = None,
        groups: int = 1,
        bias: bool = False,
        wname: str | None = None,
    ) -> tuple[str, str, str | None]:
        """Plain Conv. Returns (output, weight_name, bias_name)."""
        _, cin, h, w = self.shape[x]
        assert cin % groups == 0 and cout % groups == 0, (path, cin, cout, groups)
        if pad is None:
            pad = (k - 1) // 2
        wname = wname or f"{pname(path)}.weight"
        weight = self.he((cout, cin // groups, k, k), (cin // groups) * k * k, x)
        inputs = [self.init(wname, weight)]
        bname = None
        if bias:
            bname = wname[: -len("weight")] + "bias"
            inputs.append(self.init(bname, self.rng.normal(0.0, 0.05, cout).astype(np.float32)))
        ho = (h + 2 * pad - k) // stride + 1
        wo = (w + 2 * pad - k) // stride + 1
        y = self.node(
            "Conv",
            [x] + inputs,
            path,
            (1, cout, ho, wo),
            dilations=[1, 1],
            group=groups,
            kernel_shape=[k, k],
            pads=[pad, pad, pad, pad],
            strides=[stride, stride],
        )
        return y, wname, bname

    def bn(self, x: str, path: str, eps: float = 1e-5, gamma_scale: float = 1.0) -> str:
        """A standalone BatchNormalization (kept in both variants)."""
        c = self.shape[x][1]
        g, b, m, v = self.bn_params(c, gamma_scale)
        p = pname(path)
        names = [
            self.init(f"{p}.weight", g),
            self.init(f"{p}.bias", b),
            self.init(f"{p}.running_mean", m),
            self.init(f"{p}.running_var", v),
        ]
        return self.node(
            "BatchNormalization", [x] + names, path, self.shape[x], epsilon=eps, momentum=0.9
        )

    def conv_bn(
        self,
        x: str,
        conv_path: str,
        bn_path: str,
        cout: int,
        k: int,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "relu",
        act_path: str | None = None,
        eps: float = 1e-5,
        gamma_scale: float = 1.0,
        pad: int | None = None,
    ) -> str:
        """Conv -> BN (-> activation); in the folded variant Conv(+bias) -> act."""
        _, cin, h, w = self.shape[x]
        if pad is None:
            pad = (k - 1) // 2
        cpath = pname(conv_path)
        weight = self.he((cout, cin // groups, k, k), (cin // groups) * k * k, x)
        g, b, m, v = self.bn_params(cout, gamma_scale)
        ho = (h + 2 * pad - k) // stride + 1
        wo = (w + 2 * pad - k) // stride + 1
        conv_attrs = dict(
            dilations=[1, 1],
            group=groups,
            kernel_shape=[k, k],
            pads=[pad, pad, pad, pad],
            strides=[stride, stride],
        )
        if self.fold:
            s = g.astype(np.float64) / np.sqrt(v.astype(np.float64) + eps)
            wf = (weight.astype(np.float64) * s[:, None, None, None]).astype(np.float32)
            bf = (b.astype(np.float64) - m.astype(np.float64) * s).astype(np.float32)
            wn = self.init(f"{cpath}.weight", wf)
            bn_ = self.init(f"{cpath}.bias", bf)
            y = self.node("Conv", [x, wn, bn_], conv_path, (1, cout, ho, wo), **conv_attrs)
        else:
            wn = self.init(f"{cpath}.weight", weight)
            y = self.node("Conv", [x, wn], conv_path, (1, cout, ho, wo), **conv_attrs)
            p = pname(bn_path)
            names = [
                self.init(f"{p}.weight", g),
                self.init(f"{p}.bias", b),
                self.init(f"{p}.running_mean", m),
                self.init(f"{p}.running_var", v),
            ]
            y = self.node(
                "BatchNormalization", [y] + names, bn_path, self.shape[y], epsilon=eps, momentum=0.9
            )
        return self.act(y, act_path or bn_path, act)

    def maxpool(self, x: str, path: str, k: int, s: int, p: int = 0, ceil: bool = False) -> str:
        n, c, h, w = self.shape[x]
        rnd = math.ceil if ceil else math.floor
        ho = rnd((h + 2 * p - k) / s) + 1
        wo = rnd((w + 2 * p - k) / s) + 1
        attrs = dict(kernel_shape=[k, k], pads=[p, p, p, p], strides=[s, s])
        if ceil:
            attrs["ceil_mode"] = 1
        return self.node("MaxPool", [x], path, (n, c, ho, wo), **attrs)

    def avgpool(self, x: str, path: str, k: int, s: int) -> str:
        n, c, h, w = self.shape[x]
        return self.node(
            "AveragePool",
            [x],
            path,
            (n, c, (h - k) // s + 1, (w - k) // s + 1),
            ceil_mode=0,
            count_include_pad=1,
            kernel_shape=[k, k],
            pads=[0, 0, 0, 0],
            strides=[s, s],
        )

    def gap(self, x: str, path: str) -> str:
        n, c, _, _ = self.shape[x]
        return self.node("GlobalAveragePool", [x], path, (n, c, 1, 1))

    def flatten(self, x: str, path: str) -> str:
        n = self.shape[x][0]
        return self.node("Flatten", [x], path, (n, math.prod(self.shape[x][1:])), axis=1)

    def gemm(self, x: str, path: str, nout: int, out: str | None = None) -> str:
        n, cin = self.shape[x]
        p = pname(path)
        bound = 1.0 / math.sqrt(cin)  # torch.nn.Linear default init
        wt = self.rng.uniform(-bound, bound, (nout, cin)).astype(np.float32)
        bs = self.rng.uniform(-bound, bound, nout).astype(np.float32)
        return self.node(
            "Gemm",
            [x, self.init(f"{p}.weight", wt), self.init(f"{p}.bias", bs)],
            path,
            (n, nout),
            out=out,
            alpha=1.0,
            beta=1.0,
            transB=1,
        )

    def add(self, a: str, b: str, path: str) -> str:
        assert self.shape[a] == self.shape[b], (path, self.shape[a], self.shape[b])
        return self.node("Add", [a, b], path, self.shape[a])

    def mul(self, a: str, b: str, path: str) -> str:
        return self.node("Mul", [a, b], path, self.shape[a])

    def concat(self, xs: list[str], path: str) -> str:
        n, _, h, w = self.shape[xs[0]]
        c = sum(self.shape[x][1] for x in xs)
        return self.node("Concat", xs, path, (n, c, h, w), axis=1)

    def transpose(self, x: str, path: str, perm: list[int]) -> str:
        s = self.shape[x]
        return self.node("Transpose", [x], path, tuple(s[i] for i in perm), perm=perm)

    def layernorm(self, x: str, path: str, eps: float = 1e-6) -> str:
        """nn.LayerNorm over the last axis (LayerNormalization, opset 17)."""
        c = self.shape[x][-1]
        p = pname(path)
        gamma = self.rng.uniform(0.8, 1.2, c).astype(np.float32)
        beta = self.rng.normal(0.0, 0.1, c).astype(np.float32)
        names = [self.init(f"{p}.weight", gamma), self.init(f"{p}.bias", beta)]
        return self.node("LayerNormalization", [x] + names, path, self.shape[x], axis=-1,
                         epsilon=eps)

    def layernorm2d(self, x: str, path: str, eps: float = 1e-6) -> str:
        """torchvision's LayerNorm2d (channels of NCHW): permute, LayerNorm, permute back."""
        y = self.transpose(x, path, [0, 2, 3, 1])
        y = self.layernorm(y, path, eps)
        return self.transpose(y, path, [0, 3, 1, 2])

    def linear_nd(self, x: str, path: str, nout: int, gain: float = 1.0) -> str:
        """nn.Linear on an N-D input, as torch.onnx exports it: MatMul by W^T, then Add(bias)."""
        s = self.shape[x]
        cin = s[-1]
        p = pname(path)
        wt = (self.rng.standard_normal((cin, nout)) * math.sqrt(gain / cin)).astype(np.float32)
        bs = self.rng.normal(0.0, 0.05, nout).astype(np.float32)
        out_shape = tuple(s[:-1]) + (nout,)
        y = self.node("MatMul", [x, self.init(f"{p}.weight_t", wt)], path, out_shape)
        return self.node("Add", [y, self.init(f"{p}.bias", bs)], path, out_shape)

    # ---- model ------------------------------------------------------------
    def finish(self, out: str, meta: dict[str, str], doc: str) -> onnx.ModelProto:
        assert out == "output"
        inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, list(self.shape["input"]))
        outp = helper.make_tensor_value_info("output", TensorProto.FLOAT, list(self.shape["output"]))
        graph = helper.make_graph(
            self.nodes, f"{self.arch}", [inp], [outp], initializer=self.inits
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name=PRODUCER,
            producer_version=PRODUCER_VERSION,
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        for k, v in meta.items():
            e = model.metadata_props.add()
            e.key, e.value = k, v
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        # Sanity: our own shape tracking agrees with ONNX shape inference.
        inferred = {
            vi.name: tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
            for vi in model.graph.value_info
            if all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim)
        }
        for name, s in inferred.items():
            if name in self.shape and self.shape[name] != s:
                raise AssertionError(f"shape mismatch for {name}: {self.shape[name]} vs {s}")
        onnx.checker.check_model(model, full_check=True)
        return model


# ==========================================================================
# Architectures. Each function builds the graph into `b` and returns the name
# of the final output. `W` maps torchvision channel counts to the used ones.
# ==========================================================================


def resnet(b: Builder, W: Widths, classes: int, bottleneck: bool, layers: list[int],
           groups: int = 1, width_per_group: int = 64) -> str:
    x = b.conv_bn("input", "/conv1", "/bn1", W(64), 7, stride=2, act_path="/relu")
    x = b.maxpool(x, "/maxpool", 3, 2, 1)
    expansion = 4 if bottleneck else 1
    inplanes = 64  # standard widths decide the topology (see mobilenet_v2)
    for li, (planes, n) in enumerate(zip([64, 128, 256, 512], layers), start=1):
        for bi in range(n):
            stride = 2 if (li > 1 and bi == 0) else 1
            p = f"/layer{li}/layer{li}.{bi}"
            need_downsample = stride != 1 or inplanes != planes * expansion
            inplanes = planes * expansion
            cout = W(planes * expansion)
            if bottleneck:
                # torchvision: width = planes * (width_per_group / 64) * groups (ResNeXt)
                width = W(int(planes * (width_per_group / 64.0)) * groups)
                g = groups if W.div == 1 else min(groups, 4)  # small: 4 groups (2-16 ch/group)
                y = b.conv_bn(x, f"{p}/conv1", f"{p}/bn1", width, 1, act_path=f"{p}/relu")
                y = b.conv_bn(y, f"{p}/conv2", f"{p}/bn2", width, 3, stride, groups=g,
                              act_path=f"{p}/relu_1")
                y = b.conv_bn(y, f"{p}/conv3", f"{p}/bn3", cout, 1, act=None, gamma_scale=0.25)
            else:
                y = b.conv_bn(x, f"{p}/conv1", f"{p}/bn1", W(planes), 3, stride, act_path=f"{p}/relu")
                y = b.conv_bn(y, f"{p}/conv2", f"{p}/bn2", cout, 3, act=None, gamma_scale=0.25)
            sc = x
            if need_downsample:
                sc = b.conv_bn(
                    x, f"{p}/downsample/downsample.0", f"{p}/downsample/downsample.1", cout, 1, stride,
                    act=None,
                )
            x = b.add(y, sc, f"{p}")
            x = b.act(x, f"{p}/relu_2" if bottleneck else f"{p}/relu_1", "relu")
    x = b.gap(x, "/avgpool")
    x = b.flatten(x, "")
    return b.gemm(x, "/fc", classes, out="output")


def resnet18(b, W, classes):
    return resnet(b, W, classes, False, [2, 2, 2, 2])


def resnet50(b, W, classes):
    return resnet(b, W, classes, True, [3, 4, 6, 3])


def resnext50_32x4d(b, W, classes):
    return resnet(b, W, classes, True, [3, 4, 6, 3], groups=32, width_per_group=4)


def mobilenet_v2(b: Builder, W: Widths, classes: int) -> str:
    settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
    x = b.conv_bn("input", "/features/features.0/features.0.0", "/features/features.0/features.0.1",
                  W(32), 3, 2, act="relu6", act_path="/features/features.0/features.0.2")
    fi = 1
    cin_std = 32
    for t, c, n, s in settings:
        for i in range(n):
            stride = s if i == 0 else 1
            cin = b.shape[x][1]
            # residual decided on the standard widths, so that clamping small
            # widths to 8 cannot add residual connections torchvision lacks
            res = stride == 1 and cin_std == c
            cin_std = c
            cout = W(c)
            hidden = int(round(cin * t))
            p = f"/features/features.{fi}/conv"
            y = x
            j = 0
            if t != 1:
                y = b.conv_bn(y, f"{p}/conv.0/conv.0.0", f"{p}/conv.0/conv.0.1", hidden, 1,
                              act="relu6", act_path=f"{p}/conv.0/conv.0.2")
                j = 1
            y = b.conv_bn(y, f"{p}/conv.{j}/conv.{j}.0", f"{p}/conv.{j}/conv.{j}.1", hidden, 3, stride,
                          groups=hidden, act="relu6", act_path=f"{p}/conv.{j}/conv.{j}.2")
            y = b.conv_bn(y, f"{p}/conv.{j + 1}", f"{p}/conv.{j + 2}", cout, 1, act=None,
                          gamma_scale=0.25 if res else 1.0)
            x = b.add(x, y, f"/features/features.{fi}") if res else y
            fi += 1
    x = b.conv_bn(x, f"/features/features.{fi}/features.{fi}.0", f"/features/features.{fi}/features.{fi}.1",
                  W(1280), 1, act="relu6", act_path=f"/features/features.{fi}/features.{fi}.2")
    x = b.gap(x, "")
    x = b.flatten(x, "")
    return b.gemm(x, "/classifier/classifier.1", classes, out="output")


def squeezenet1_1(b: Builder, W: Widths, classes: int) -> str:
    def cbr(x, idx, cout, k, stride=1, pad=None):
        # torchvision: Conv(bias=True) -> ReLU. In the _bn variant: Conv -> BN -> ReLU.
        return b.conv_bn(x, idx, idx + "_bn", cout, k, stride, pad=pad, act_path=idx + "_activation")

    def fire(x, idx, sq, e1, e3):
        p = f"/features/features.{idx}"
        s = cbr(x, f"{p}/squeeze", W(sq), 1)
        a = cbr(s, f"{p}/expand1x1", W(e1), 1)
        c = cbr(s, f"{p}/expand3x3", W(e3), 3)
        return b.concat([a, c], p)

    x = cbr("input", "/features/features.0", W(64), 3, 2, pad=0)
    x = b.maxpool(x, "/features/features.2", 3, 2, ceil=True)
    x = fire(x, 3, 16, 64, 64)
    x = fire(x, 4, 16, 64, 64)
    x = b.maxpool(x, "/features/features.5", 3, 2, ceil=True)
    x = fire(x, 6, 32, 128, 128)
    x = fire(x, 7, 32, 128, 128)
    x = b.maxpool(x, "/features/features.8", 3, 2, ceil=True)
    x = fire(x, 9, 48, 192, 192)
    x = fire(x, 10, 48, 192, 192)
    x = fire(x, 11, 64, 256, 256)
    x = fire(x, 12, 64, 256, 256)
    # classifier: Dropout (not exported in eval) -> final_conv (bias) -> ReLU -> avgpool
    x, _, _ = b.conv(x, "/classifier/classifier.1", classes, 1, bias=True)
    x = b.act(x, "/classifier/classifier.2", "relu")
    x = b.gap(x, "/classifier/classifier.3")
    return b.node("Flatten", [x], "", (1, classes), out="output", axis=1)


def shufflenet_v2_x1_0(b: Builder, W: Widths, classes: int) -> str:
    stages_repeats = [4, 8, 4]
    stages_out = [24, 116, 232, 464, 1024]

    def channel_shuffle(x, path):
        n, c, h, w = b.shape[x]
        s1 = b.init(f"{pname(path)}.shape1", np.array([n, 2, c // 2, h, w], np.int64))
        y = b.node("Reshape", [x, s1], path, (n, 2, c // 2, h, w))
        y = b.node("Transpose", [y], path, (n, c // 2, 2, h, w), perm=[0, 2, 1, 3, 4])
        s2 = b.init(f"{pname(path)}.shape2", np.array([n, -1, h, w], np.int64))
        return b.node("Reshape", [y, s2], path, (n, c, h, w))

    def unit(x, p, oup, stride):
        n, cin, h, w = b.shape[x]
        bf = oup // 2
        if stride == 1:
            split = b.init(f"{pname(p)}.split", np.array([cin // 2, cin // 2], np.int64))
            x1, x2 = b.node("Split", [x, split], p, [(n, cin // 2, h, w)] * 2, n_out=2, axis=1)
            left = x1
            rin = x2
        else:
            left = b.conv_bn(x, f"{p}/branch1/branch1.0", f"{p}/branch1/branch1.1", cin, 3, stride,
                             groups=cin, act=None)
            left = b.conv_bn(left, f"{p}/branch1/branch1.2", f"{p}/branch1/branch1.3", bf, 1,
                             act_path=f"{p}/branch1/branch1.4")
            rin = x
        r = b.conv_bn(rin, f"{p}/branch2/branch2.0", f"{p}/branch2/branch2.1", bf, 1,
                      act_path=f"{p}/branch2/branch2.2")
        r = b.conv_bn(r, f"{p}/branch2/branch2.3", f"{p}/branch2/branch2.4", bf, 3, stride, groups=bf,
                      act=None)
        r = b.conv_bn(r, f"{p}/branch2/branch2.5", f"{p}/branch2/branch2.6", bf, 1,
                      act_path=f"{p}/branch2/branch2.7")
        out = b.concat([left, r], p)
        return channel_shuffle(out, p)

    x = b.conv_bn("input", "/conv1/conv1.0", "/conv1/conv1.1", W(stages_out[0]), 3, 2,
                  act_path="/conv1/conv1.2")
    x = b.maxpool(x, "/maxpool", 3, 2, 1)
    for si, (rep, c) in enumerate(zip(stages_repeats, stages_out[1:4]), start=2):
        oup = W(c)
        assert oup % 2 == 0
        for i in range(rep):
            x = unit(x, f"/stage{si}/stage{si}.{i}", oup, 2 if i == 0 else 1)
    x = b.conv_bn(x, "/conv5/conv5.0", "/conv5/conv5.1", W(stages_out[4]), 1, act_path="/conv5/conv5.2")
    x = b.node("ReduceMean", [x], "", (1, b.shape[x][1]), axes=[2, 3], keepdims=0)
    return b.gemm(x, "/fc", classes, out="output")


def densenet121(b: Builder, W: Widths, classes: int) -> str:
    # In the small size the growth rate is 6 rather than the usual min of 8
    # channels: every dense layer's output is concatenated into all later
    # layers' inputs, so growth 8 gives a ~930 KB file; 6 keeps it ~600 KB.
    growth = 32 if W.div == 1 else 6
    block_config = (6, 12, 24, 16)
    bn_size = 4
    x = b.conv_bn("input", "/features/conv0", "/features/norm0", W(64), 7, 2, act_path="/features/relu0",
                  pad=3)
    x = b.maxpool(x, "/features/pool0", 3, 2, 1)
    for bi, nl in enumerate(block_config, start=1):
        feats = [x]
        for li in range(1, nl + 1):
            p = f"/features/denseblock{bi}/denselayer{li}"
            cat = b.concat(feats, p) if len(feats) > 1 else feats[0]
            y = b.bn(cat, f"{p}/norm1")  # pre-activation BN: not foldable
            y = b.act(y, f"{p}/relu1", "relu")
            y = b.conv_bn(y, f"{p}/conv1", f"{p}/norm2", W(bn_size * 32), 1, act_path=f"{p}/relu2")
            y, _, _ = b.conv(y, f"{p}/conv2", growth, 3)
            feats.append(y)
        x = b.concat(feats, f"/features/denseblock{bi}")
        if bi != len(block_config):
            p = f"/features/transition{bi}"
            x = b.bn(x, f"{p}/norm")
            x = b.act(x, f"{p}/relu", "relu")
            x, _, _ = b.conv(x, f"{p}/conv", b.shape[x][1] // 2, 1)
            x = b.avgpool(x, f"{p}/pool", 2, 2)
    x = b.bn(x, "/features/norm5")
    x = b.act(x, "", "relu")
    x = b.gap(x, "")
    x = b.flatten(x, "")
    return b.gemm(x, "/classifier", classes, out="output")


def efficientnet_b0(b: Builder, W: Widths, classes: int) -> str:
    eps = 1e-3
    # expand_ratio, kernel, stride, in, out, layers
    cfg = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
           (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
    x = b.conv_bn("input", "/features/features.0/features.0.0", "/features/features.0/features.0.1",
                  W(32), 3, 2, act="silu", act_path="/features/features.0/features.0.2", eps=eps)
    for si, (t, k, s, cin_std, cout_std, n) in enumerate(cfg, start=1):
        for i in range(n):
            stride = s if i == 0 else 1
            # residual decided on the standard widths (see mobilenet_v2)
            res = stride == 1 and (cin_std if i == 0 else cout_std) == cout_std
            p = f"/features/features.{si}/features.{si}.{i}/block"
            cin = b.shape[x][1]
            cout = W(cout_std)
            hidden = make_divisible(cin * t, 8)
            y = x
            j = 0
            if hidden != cin:
                y = b.conv_bn(y, f"{p}/block.0/block.0.0", f"{p}/block.0/block.0.1", hidden, 1,
                              act="silu", act_path=f"{p}/block.0/block.0.2", eps=eps)
                j = 1
            y = b.conv_bn(y, f"{p}/block.{j}/block.{j}.0", f"{p}/block.{j}/block.{j}.1", hidden, k, stride,
                          groups=hidden, act="silu", act_path=f"{p}/block.{j}/block.{j}.2", eps=eps)
            # squeeze-excitation
            sp = f"{p}/block.{j + 1}"
            sq = max(1, cin // 4)
            se = b.gap(y, f"{sp}/avgpool")
            se, _, _ = b.conv(se, f"{sp}/fc1", sq, 1, bias=True)
            se = b.act(se, f"{sp}/activation", "silu")
            se, _, _ = b.conv(se, f"{sp}/fc2", hidden, 1, bias=True)
            se = b.node("Sigmoid", [se], f"{sp}/scale_activation", b.shape[se])
            y = b.mul(y, se, sp)
            y = b.conv_bn(y, f"{p}/block.{j + 2}/block.{j + 2}.0", f"{p}/block.{j + 2}/block.{j + 2}.1",
                          cout, 1, act=None, eps=eps, gamma_scale=0.25 if res else 1.0)
            x = b.add(y, x, f"/features/features.{si}/features.{si}.{i}") if res else y
    x = b.conv_bn(x, "/features/features.8/features.8.0", "/features/features.8/features.8.1",
                  W(1280), 1, act="silu", act_path="/features/features.8/features.8.2", eps=eps)
    x = b.gap(x, "/avgpool")
    x = b.flatten(x, "")
    return b.gemm(x, "/classifier/classifier.1", classes, out="output")


def regnet_x_400mf(b: Builder, W: Widths, classes: int) -> str:
    depths = [1, 2, 7, 12]
    widths_std = [32, 64, 160, 400]
    gw_std = 16
    gw = gw_std if W.div == 1 else 4
    widths = [W(w, multiple=gw) for w in widths_std]
    x = b.conv_bn("input", "/stem/stem.0", "/stem/stem.1", W(32), 3, 2, act_path="/stem/stem.2")
    for si, (d, wout) in enumerate(zip(depths, widths), start=1):
        for bi in range(d):
            stride = 2 if bi == 0 else 1
            p = f"/trunk_output/block{si}/block{si}-{bi}"
            cin = b.shape[x][1]
            wb = wout  # bottleneck multiplier 1.0
            g = wb // gw
            f = f"{p}/f"
            y = b.conv_bn(x, f"{f}/a/a.0", f"{f}/a/a.1", wb, 1, act_path=f"{f}/a/a.2")
            y = b.conv_bn(y, f"{f}/b/b.0", f"{f}/b/b.1", wb, 3, stride, groups=g, act_path=f"{f}/b/b.2")
            y = b.conv_bn(y, f"{f}/c/c.0", f"{f}/c/c.1", wout, 1, act=None, gamma_scale=0.25)
            sc = x
            if cin != wout or stride != 1:
                sc = b.conv_bn(x, f"{p}/proj/proj.0", f"{p}/proj/proj.1", wout, 1, stride, act=None)
            x = b.add(sc, y, p)
            x = b.act(x, f"{p}/activation", "relu")
    x = b.gap(x, "/avgpool")
    x = b.flatten(x, "")
    return b.gemm(x, "/fc", classes, out="output")


def mobilenet_v3_large(b: Builder, W: Widths, classes: int) -> str:
    eps = 1e-3
    # input_c, kernel, expanded_c, out_c, use_se, activation, stride (torchvision's table)
    cfg = [(16, 3, 16, 16, False, "relu", 1), (16, 3, 64, 24, False, "relu", 2),
           (24, 3, 72, 24, False, "relu", 1), (24, 5, 72, 40, True, "relu", 2),
           (40, 5, 120, 40, True, "relu", 1), (40, 5, 120, 40, True, "relu", 1),
           (40, 3, 240, 80, False, "hardswish", 2), (80, 3, 200, 80, False, "hardswish", 1),
           (80, 3, 184, 80, False, "hardswish", 1), (80, 3, 184, 80, False, "hardswish", 1),
           (80, 3, 480, 112, True, "hardswish", 1), (112, 3, 672, 112, True, "hardswish", 1),
           (112, 5, 672, 160, True, "hardswish", 2), (160, 5, 960, 160, True, "hardswish", 1),
           (160, 5, 960, 160, True, "hardswish", 1)]
    x = b.conv_bn("input", "/features/features.0/features.0.0", "/features/features.0/features.0.1",
                  W(16), 3, 2, act="hardswish", act_path="/features/features.0/features.0.2", eps=eps)
    for fi, (cin_std, k, exp_std, cout_std, se, act, stride) in enumerate(cfg, start=1):
        p = f"/features/features.{fi}/block"
        cin = b.shape[x][1]
        hidden = W(exp_std)
        cout = W(cout_std)
        res = stride == 1 and cin_std == cout_std
        y = x
        j = 0
        if exp_std != cin_std:
            y = b.conv_bn(y, f"{p}/block.0/block.0.0", f"{p}/block.0/block.0.1", hidden, 1, act=act,
                          act_path=f"{p}/block.0/block.0.2", eps=eps)
            j = 1
        else:
            hidden = cin
        y = b.conv_bn(y, f"{p}/block.{j}/block.{j}.0", f"{p}/block.{j}/block.{j}.1", hidden, k, stride,
                      groups=hidden, act=act, act_path=f"{p}/block.{j}/block.{j}.2", eps=eps)
        if se:
            j += 1
            sp = f"{p}/block.{j}"
            sq = make_divisible(hidden // 4, 8)
            s_ = b.gap(y, f"{sp}/avgpool")
            s_, _, _ = b.conv(s_, f"{sp}/fc1", sq, 1, bias=True)
            s_ = b.act(s_, f"{sp}/activation", "relu")
            s_, _, _ = b.conv(s_, f"{sp}/fc2", hidden, 1, bias=True)
            s_ = b.act(s_, f"{sp}/scale_activation", "hardsigmoid")
            y = b.mul(y, s_, sp)
        j += 1
        y = b.conv_bn(y, f"{p}/block.{j}/block.{j}.0", f"{p}/block.{j}/block.{j}.1", cout, 1, act=None,
                      eps=eps, gamma_scale=0.25 if res else 1.0)
        x = b.add(y, x, f"/features/features.{fi}") if res else y
    fi = len(cfg) + 1
    x = b.conv_bn(x, f"/features/features.{fi}/features.{fi}.0", f"/features/features.{fi}/features.{fi}.1",
                  W(960), 1, act="hardswish", act_path=f"/features/features.{fi}/features.{fi}.2", eps=eps)
    x = b.gap(x, "/avgpool")
    x = b.flatten(x, "")
    x = b.gemm(x, "/classifier/classifier.0", W(1280))
    x = b.act(x, "/classifier/classifier.1", "hardswish")
    return b.gemm(x, "/classifier/classifier.3", classes, out="output")


def vgg11(b: Builder, W: Widths, classes: int) -> str:
    cfg = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
    x = "input"
    i = 0
    for v in cfg:
        if v == "M":
            x = b.maxpool(x, f"/features/features.{i}", 2, 2)
            i += 1
        else:
            # vgg11: Conv(bias) -> ReLU; the _bn variant is vgg11_bn (Conv -> BN -> ReLU), whose
            # folded form has vgg11's topology (as squeezenet1_1 above)
            idx = f"/features/features.{i}"
            x = b.conv_bn(x, idx, idx + "_bn", W(v), 3, act_path=f"/features/features.{i + 1}")
            i += 2
    n, c, h, w = b.shape[x]
    if h % 7 == 0:
        # AdaptiveAvgPool2d((7, 7)) on a divisible input exports as an AveragePool (kernel 1 at 224)
        x = b.avgpool(x, "/avgpool", h // 7, h // 7)
    else:
        # the small size (2x2 maps) cannot pool to 7x7; it pools to 1x1 instead
        x = b.gap(x, "/avgpool")
    x = b.flatten(x, "")
    hidden = W(4096)
    x = b.gemm(x, "/classifier/classifier.0", hidden)
    x = b.act(x, "/classifier/classifier.1", "relu")
    x = b.gemm(x, "/classifier/classifier.3", hidden)
    x = b.act(x, "/classifier/classifier.4", "relu")
    return b.gemm(x, "/classifier/classifier.6", classes, out="output")


def convnext_tiny(b: Builder, W: Widths, classes: int) -> str:
    depths = [3, 3, 9, 3]
    dims = [W(d) for d in (96, 192, 384, 768)]
    x, _, _ = b.conv("input", "/features/features.0/features.0.0", dims[0], 4, stride=4, pad=0, bias=True)
    x = b.layernorm2d(x, "/features/features.0/features.0.1")
    for si, (depth, dim) in enumerate(zip(depths, dims)):
        fi = 1 + 2 * si
        if si > 0:
            p = f"/features/features.{fi - 1}"
            x = b.layernorm2d(x, f"{p}/features.{fi - 1}.0")
            x, _, _ = b.conv(x, f"{p}/features.{fi - 1}.1", dim, 2, stride=2, pad=0, bias=True)
        for bi in range(depth):
            p = f"/features/features.{fi}/features.{fi}.{bi}"
            y, _, _ = b.conv(x, f"{p}/block/block.0", dim, 7, pad=3, groups=dim, bias=True)
            y = b.transpose(y, f"{p}/block/block.1", [0, 2, 3, 1])
            y = b.layernorm(y, f"{p}/block/block.2")
            y = b.linear_nd(y, f"{p}/block/block.3", 4 * dim)
            y = b.act(y, f"{p}/block/block.4", "gelu")
            y = b.linear_nd(y, f"{p}/block/block.5", dim, gain=2.0)
            y = b.transpose(y, f"{p}/block/block.6", [0, 3, 1, 2])
            # layer_scale (trained values; torchvision initialises it at 1e-6)
            ls = b.init(f"{pname(p)}.layer_scale",
                        b.rng.uniform(0.05, 0.3, (dim, 1, 1)).astype(np.float32))
            y = b.node("Mul", [ls, y], p, b.shape[y])
            x = b.add(y, x, p)
    x = b.gap(x, "/avgpool")
    x = b.layernorm2d(x, "/classifier/classifier.0")
    x = b.flatten(x, "/classifier/classifier.1")
    return b.gemm(x, "/classifier/classifier.2", classes, out="output")


# name -> (builder, width divisor used for --size small)
ARCHS: dict[str, tuple[Callable[[Builder, Widths, int], str], int]] = {
    "resnet18": (resnet18, 16),
    "resnet50": (resnet50, 16),
    "mobilenet_v2": (mobilenet_v2, 8),
    "squeezenet1_1": (squeezenet1_1, 4),
    "shufflenet_v2_x1_0": (shufflenet_v2_x1_0, 4),
    "densenet121": (densenet121, 16),
    "efficientnet_b0": (efficientnet_b0, 8),
    "regnet_x_400mf": (regnet_x_400mf, 8),
    "mobilenet_v3_large": (mobilenet_v3_large, 8),
    "resnext50_32x4d": (resnext50_32x4d, 16),
    "vgg11": (vgg11, 16),
    "convnext_tiny": (convnext_tiny, 16),
}
VARIANTS = ("bn", "folded")
# Architectures without BatchNormalization in any form (ConvNeXt uses LayerNorm): only the
# _folded variant is written, under that name, so that every zoo model has a `_folded` file.
NO_BN = {"convnext_tiny"}


def build(arch: str, variant: str, size: str) -> onnx.ModelProto:
    fn, small_div = ARCHS[arch]
    if size == "full":
        div, hw, classes = 1, 224, 1000
    else:
        div, hw, classes = small_div, 64, 10
    # Same seed for both variants: the folded model is the folded _bn model.
    seed = zlib.crc32(f"{arch}/{size}".encode())
    b = Builder(arch, variant, seed, hw)
    out = fn(b, Widths(div), classes)
    meta = {
        "architecture": arch,
        "variant": variant,
        "size": size,
        "width_divisor": str(div),
        "seed": str(seed),
    }
    doc = (
        f"{arch} ({'BatchNormalization unfolded' if variant == 'bn' else 'BatchNormalization folded into Conv'}),"
        f" {size} size, seeded random weights; generated by {PRODUCER}."
    )
    return b.finish(out, meta, doc)


def serialize(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString(deterministic=True)


def check_models(paths: dict[str, str]) -> bool:
    """Run every model in onnxruntime and sanity-check the outputs."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ok = True
    outs: dict[str, np.ndarray] = {}
    for name, path in paths.items():
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        shape = [d if isinstance(d, int) else 1 for d in sess.get_inputs()[0].shape]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        y = sess.run(["output"], {"input": x})[0]
        outs[name] = y
        amax = float(np.max(np.abs(y)))
        bad = []
        if not np.all(np.isfinite(y)):
            bad.append("non-finite values")
        if amax == 0.0 or float(np.std(y)) < 1e-6:
            bad.append("all zero / constant")
        if amax > 1e4:
            bad.append("huge values")
        ok &= not bad
        print(
            f"  {name:32s} out{list(y.shape)} mean={y.mean():+.4f} std={y.std():.4f} "
            f"max|y|={amax:.4f} {'OK' if not bad else 'BAD: ' + ', '.join(bad)}",
            file=sys.stderr,
        )
    for name in outs:
        if name.endswith("_bn") and name[:-3] + "_folded" in outs:
            a, f = outs[name], outs[name[:-3] + "_folded"]
            rel = float(np.max(np.abs(a - f)) / max(float(np.max(np.abs(a))), 1e-30))
            good = rel < 1e-4
            ok &= good
            print(f"  {name[:-3]:32s} bn vs folded: max rel err {rel:.2e} {'OK' if good else 'BAD'}",
                  file=sys.stderr)
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=["small", "full"], default="small")
    ap.add_argument("--out", help="output dir (default: tests/models for small, bench-out/models for full)")
    ap.add_argument("--only", action="append", default=[],
                    help="only models whose name (e.g. resnet50, resnet50_bn) equals or starts with this; "
                         "repeatable")
    ap.add_argument("--check", dest="check", action="store_true", default=True,
                    help="run every model in onnxruntime and sanity-check outputs (default)")
    ap.add_argument("--no-check", dest="check", action="store_false")
    ap.add_argument("--list", action="store_true", help="list model names and exit")
    args = ap.parse_args(argv)

    out_dir = args.out or os.path.join(REPO, "tests/models" if args.size == "small" else "bench-out/models")
    names = [(a, v) for a in ARCHS for v in VARIANTS if not (a in NO_BN and v == "bn")]
    if args.only:
        names = [
            (a, v) for a, v in names
            if any(f"{a}_{v}" == o or a == o or f"{a}_{v}".startswith(o) for o in args.only)
        ]
        if not names:
            print(f"no model matches {args.only}; known: {', '.join(ARCHS)}", file=sys.stderr)
            return 2
    if args.list:
        for a, v in names:
            print(f"{a}_{v}")
        return 0
    os.makedirs(out_dir, exist_ok=True)
    written: dict[str, str] = {}
    for arch, variant in names:
        name = f"{arch}_{variant}"
        model = build(arch, variant, args.size)
        data = serialize(model)
        path = os.path.join(out_dir, f"{name}.onnx")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        written[name] = path
        print(f"{path}: {len(data):,} bytes, {len(model.graph.node)} nodes, "
              f"{len(model.graph.initializer)} initializers")
    if args.check:
        print("checking with onnxruntime:", file=sys.stderr)
        if not check_models(written):
            print("error: model sanity check failed", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
