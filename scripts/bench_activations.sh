#!/usr/bin/env bash
# Why this exists: the JIT's Sigmoid computes onnxruntime's MLAS arithmetic (ssc_exec::mlas) so
# quantised models agree with ORT bit for bit; this times that kernel against ORT on single-op
# models (Sigmoid, SiLU = x * Sigmoid(x), and a fused Sigmoid -> Mul -> Add chain over a
# 1x64x112x112 activation), so a change to the activation arithmetic shows its cost.
# Usage: scripts/bench_activations.sh [--bin PATH] [--rounds N] [--iters N]
# Writes bench-out/activations.md (bench_jit.py's table, 1 thread).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
bin="${CARGO_TARGET_DIR:-$repo/target}/release/ssc-opt"
rounds=5
iters=20
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --iters) iters="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
PY="$(bash scripts/venv.sh | tail -n1)"
out="$repo/bench-out/activations"
mkdir -p "$out"
"$PY" - "$out" <<'PYEOF'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper

out = sys.argv[1]
shape = [1, 64, 112, 112]


def save(name, nodes, inits=()):
    g = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    onnx.save(m, f"{out}/{name}.onnx")


save("sigmoid", [helper.make_node("Sigmoid", ["x"], ["y"])])
save("silu", [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])])
k = [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in (("a", 1.5), ("b", -0.25))]
save("sigmoid_chain", [helper.make_node("Sigmoid", ["x"], ["s"]),
                       helper.make_node("Mul", ["s", "a"], ["t"]),
                       helper.make_node("Add", ["t", "b"], ["y"])], k)
PYEOF
"$PY" scripts/bench_jit.py --bin "$bin" --rounds "$rounds" --iters "$iters" --threads 1 --markdown \
    "sigmoid=$out/sigmoid.onnx" "silu=$out/silu.onnx" "sigmoid_chain=$out/sigmoid_chain.onnx" \
    | tee "$repo/bench-out/activations.md"
