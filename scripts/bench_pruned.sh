#!/usr/bin/env bash
# scripts/bench_pruned.sh — ORT speed of ssc-opt's output vs the original for the filter-pruned
# and two-structure networks of scripts/make_pruned.py at full size (224x224).
#
# Why: L1 filter pruning with BatchNorm kept leaves every pruned channel a live constant; channel
# removal (crates/ssc-rewrite/src/channels.rs) takes them out end to end. This is the number that
# says what that buys in ONNX Runtime, measured paired and interleaved with the original.
#
# Steps:
#   1. bench-out/pruned/<model>.onnx + manifest.json   (scripts/make_pruned.py --size full)
#   2. bench-out/pruned/opt/<model>.onnx               (ssc-opt IN -o OUT, default cost model)
#   3. scripts/bench_ort.py over all pairs (interleaved runs, 1 thread, MACs, output check);
#      the markdown table goes to stdout and bench-out/pruned.md (JSON: bench-out/pruned.json)
#
# Usage:
#   cargo build --release -p ssc-opt-cli
#   /work/bin/quiet bash scripts/bench_pruned.sh [--runs N] [--bin PATH] [-- SSC_OPT_ARGS...]
# Defaults: 20 interleaved runs per model; target/release/ssc-opt. About 3 minutes.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

runs=20
bin="${SSC_OPT_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ssc-opt}"
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
if [[ ! -x "$bin" ]]; then
    echo "error: ssc-opt binary not found at $bin (run: cargo build --release -p ssc-opt-cli)" >&2
    exit 1
fi

PY="$(bash scripts/venv.sh | tail -n1)"
dir="$repo/bench-out/pruned"
mkdir -p "$dir/opt"
"$PY" scripts/make_pruned.py --size full --out "$dir" --no-check >&2

pairs=()
for name in resnet18_prune40 mobilenet_v2_prune30 resnet18_ssc_prune30 resnet18_ssc_rem50; do
    echo "ssc-opt $name ..." >&2
    "$bin" "$dir/$name.onnx" -o "$dir/opt/$name.onnx" --overwrite "${extra[@]}" >&2
    pairs+=("$name=$dir/$name.onnx:$dir/opt/$name.onnx")
done

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
{
    echo "Filter-pruned and two-structure networks (scripts/make_pruned.py --size full), ssc-opt output vs original."
    echo "Measured $(date -u +%Y-%m-%d) at commit $commit; ONNX Runtime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)'), 1 thread, $runs interleaved runs per model."
    echo
    "$PY" scripts/bench_ort.py "${pairs[@]}" --runs "$runs" --macs --markdown --json "$repo/bench-out/pruned.json"
} | tee "$repo/bench-out/pruned.md"
