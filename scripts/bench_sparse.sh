#!/usr/bin/env bash
# scripts/bench_sparse.sh — issue 14's acceptance benchmark, in one command.
#
# Why: issue 14 (sparse and micro-structured convolutions) is judged by the JIT on ssc-opt's
# output against ONNX Runtime 1.32 on the original model, 1 thread, 224x224, on every model
# of its acceptance table, plus 2-thread scaling on the 70% and 90% models, compile times,
# agreement within 1e-4 and the per-layer check (no layer's kernel slower than the dense
# kernel it replaced). scripts/bench_sparse.py measures all of that; this script prepares the
# models and calls it.
#
# Steps:
#   1. prepare (skipped with --skip-prepare): bench-out/sparse/NAME.onnx from
#      scripts/make_sparse.py --size full (only if missing), then ssc-opt NAME.onnx -o
#      bench-out/sparse/opt/NAME.onnx (default verification) for each model;
#   2. measure (skipped with --prepare-only): bench_sparse.py on every model; the table goes
#      to stdout and bench-out/sparse.md, per-layer details to bench-out/sparse_layers.md,
#      JSON to bench-out/sparse.json. Exit 1 if an agreement or a per-layer check fails.
#
# On the shared machine, prepare under hv and measure under quiet (each measure run must stay
# under ~5 minutes; split it with --only):
#   cargo build --release -p ssc-opt-cli
#   /work/bin/hv bash scripts/bench_sparse.sh --prepare-only
#   /work/bin/quiet bash scripts/bench_sparse.sh --skip-prepare
#
# Usage: bash scripts/bench_sparse.sh [--only NAME]... [--rounds N] [--iters N] [--bin PATH]
#            [--prepare-only | --skip-prepare] [--aa] [-- EXTRA bench_sparse.py ARGS]
# NAME: a make_sparse.py preset (default: its ACCEPTANCE list, issue 14's table).
# Defaults: 5 rounds x 10 runs per engine, ~3-4 minutes for the whole table.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

rounds=5
iters=10
prepare=1
measure=1
only=()
extra=()
bin="${SSC_OPT_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ssc-opt}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --only) only+=("$2"); shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --iters) iters="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        --prepare-only) measure=0; shift ;;
        --skip-prepare) prepare=0; shift ;;
        --aa) extra+=(--aa); shift ;;
        --) shift; extra+=("$@"); break ;;
        -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
if [[ ! -x "$bin" ]]; then
    echo "error: ssc-opt binary not found at $bin (run: cargo build --release -p ssc-opt-cli)" >&2
    exit 1
fi

PY="$(bash scripts/venv.sh | tail -n1)"
if [[ ${#only[@]} -eq 0 ]]; then
    mapfile -t only < <("$PY" -c 'import sys; sys.path.insert(0, "scripts"); import make_sparse; print("\n".join(make_sparse.ACCEPTANCE))')
fi
dir="$repo/bench-out/sparse"
mkdir -p "$dir/opt"

if [[ $prepare == 1 ]]; then
    for m in "${only[@]}"; do
        if [[ ! -f "$dir/$m.onnx" ]]; then
            echo "generating $dir/$m.onnx ..." >&2
            "$PY" scripts/make_sparse.py --size full --out "$dir" --only "$m" --no-check >&2
        fi
        echo "optimising $m ..." >&2
        "$bin" "$dir/$m.onnx" -o "$dir/opt/$m.onnx" --overwrite -q
    done
fi

if [[ $measure == 1 ]]; then
    cases=()
    threads=()
    for m in "${only[@]}"; do
        cases+=("$m=$dir/opt/$m.onnx:$dir/$m.onnx")
        case "$m" in
            resnet18_unstructured90|resnet18_global70) threads+=(--threads-for "$m") ;;
        esac
    done
    "$PY" scripts/bench_sparse.py "${cases[@]}" --bin "$bin" --rounds "$rounds" --iters "$iters" \
        --manifest "$dir/manifest.json" --json "$repo/bench-out/sparse.json" \
        --details "$repo/bench-out/sparse_layers.md" "${threads[@]}" "${extra[@]}" \
        | tee "$repo/bench-out/sparse.md"
fi
