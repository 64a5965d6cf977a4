#!/usr/bin/env bash
# scripts/bench_jit.sh — the JIT's acceptance benchmarks against ONNX Runtime, in one run.
#
# Why: issue #5's claims are ratios against ORT on this machine: dense ResNet-18, MobileNetV2
# and SqueezeNet at 224x224 on 1 thread; the JIT on ssc-opt's block-grouped SSC ResNet-18
# against ORT on the same optimised file; the JIT on ResNet-18 with 90% unstructured zeros
# against ORT on the original; and the JIT's 1 -> 2 thread scaling on ResNet-18. Every ratio
# comes from scripts/bench_jit.py, which interleaves `ssc-opt bench` with ORT runs on the same
# inputs and checks that both engines agree within 1e-4.
#
# Steps (models are generated on first use; nothing large is committed):
#   1. bench-out/models/{resnet18,mobilenet_v2,squeezenet1_1}_folded.onnx (make_models.py --size full)
#   2. bench-out/families/resnet18_{ssc_block,sparse90}.onnx (make_structured.py) and their
#      ssc-opt outputs in bench-out/families/opt/
#   3. bench_jit.py: every case on 1 thread, then ResNet-18 on 1 and 2 threads; the markdown
#      tables go to stdout and bench-out/jit.md (JSON: bench-out/jit*.json)
#
# Usage:
#   cargo build --release -p ssc-opt-cli
#   bash scripts/bench_jit.sh [--rounds N] [--iters N] [--bin PATH]
# Defaults: 5 rounds x 10 runs per engine. Takes ~5-10 minutes on 2 cores; run it on an idle
# machine (the 2-thread case needs both cores).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

rounds=5
iters=10
bin="${SSC_OPT_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ssc-opt}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --iters) iters="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
if [[ ! -x "$bin" ]]; then
    echo "error: ssc-opt binary not found at $bin (run: cargo build --release -p ssc-opt-cli)" >&2
    exit 1
fi

PY="$(bash scripts/venv.sh | tail -n1)"
models="$repo/bench-out/models"
fam="$repo/bench-out/families"
mkdir -p "$models" "$fam/opt"

for m in resnet18_folded mobilenet_v2_folded squeezenet1_1_folded; do
    if [[ ! -f "$models/$m.onnx" ]]; then
        echo "generating $models/$m.onnx ..." >&2
        "$PY" scripts/make_models.py --size full --only "$m" --out "$models" >&2
    fi
done
for f in ssc_block sparse90; do
    if [[ ! -f "$fam/resnet18_$f.onnx" ]]; then
        "$PY" scripts/make_structured.py --src "$models/resnet18_folded.onnx" --out "$fam" \
            --no-check --only "$f" >&2
    fi
    "$bin" "$fam/resnet18_$f.onnx" -o "$fam/opt/resnet18_$f.onnx" --overwrite -q >&2
done

common=(--bin "$bin" --rounds "$rounds" --iters "$iters" --markdown)
out="$repo/bench-out/jit.md"
{
    echo "### 1 thread"
    echo
    "$PY" scripts/bench_jit.py "${common[@]}" --threads 1 --json bench-out/jit.json \
        "resnet18=$models/resnet18_folded.onnx" \
        "mobilenet_v2=$models/mobilenet_v2_folded.onnx" \
        "squeezenet1_1=$models/squeezenet1_1_folded.onnx" \
        "ssc_block (JIT and ORT both on ssc-opt's output)=$fam/opt/resnet18_ssc_block.onnx" \
        "sparse90 (JIT on ssc-opt's output, ORT on the original)=$fam/opt/resnet18_sparse90.onnx:$fam/resnet18_sparse90.onnx"
    echo
    echo "### Thread scaling (ResNet-18)"
    echo
    "$PY" scripts/bench_jit.py "${common[@]}" --threads 1,2 --json bench-out/jit_threads.json \
        "resnet18=$models/resnet18_folded.onnx"
} | tee "$out"
