#!/usr/bin/env bash
# scripts/bench_mgic.sh — ORT speed of ssc-opt's output vs the original on full-size MGIC ResNets.
#
# Why: issue 15 asks that nothing ssc-opt writes runs slower in ONNX Runtime than its input, and
# MGIC nets (grouped V-cycles, scripts/make_mgic.py) are where a rewrite that densifies or splits
# a grouped conv would hurt: the output must run >= 0.98x as fast as the input, measured paired.
#
# Steps:
#   1. bench-out/mgic/<variant>.onnx   (scripts/make_mgic.py --size full, if missing)
#   2. bench-out/mgic/opt/<variant>.onnx   (ssc-opt IN -o OUT, default options)
#   3. scripts/bench_ort.py over all pairs (interleaved runs, 1 thread, MACs, output check);
#      the markdown table goes to stdout and bench-out/mgic.md (JSON: bench-out/mgic.json)
# Steps 1-2 are the heavy part; with --prepare-only they stop there, so they can run under
# /work/bin/hv and only step 3 under /work/bin/quiet.
#
# Usage:
#   cargo build --release -p ssc-opt-cli
#   bash scripts/bench_mgic.sh [--runs N] [--bin PATH] [--prepare-only | --bench-only]
# Defaults: 20 interleaved runs per model; target/release/ssc-opt.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

runs=20
bin="${SSC_OPT_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ssc-opt}"
prepare=1
bench=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        --prepare-only) bench=0; shift ;;
        --bench-only) prepare=0; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

PY="$(bash scripts/venv.sh | tail -n1)"
dir="$repo/bench-out/mgic"
variants=(mgic_g32 mgic_g16 mgic_g32_avg mgic_g16_avg)
mkdir -p "$dir/opt"

if [[ $prepare == 1 ]]; then
    if [[ ! -x "$bin" ]]; then
        echo "error: ssc-opt binary not found at $bin (run: cargo build --release -p ssc-opt-cli)" >&2
        exit 1
    fi
    for v in "${variants[@]}"; do
        [[ -f "$dir/$v.onnx" ]] || "$PY" scripts/make_mgic.py --size full --only "$v" --out "$dir" >&2
        echo "ssc-opt $v ..." >&2
        "$bin" "$dir/$v.onnx" -o "$dir/opt/$v.onnx" --overwrite >&2
    done
fi
[[ $bench == 1 ]] || exit 0

pairs=()
for v in "${variants[@]}"; do
    pairs+=("$v=$dir/$v.onnx:$dir/opt/$v.onnx")
done
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
set +e
{
    echo "MGIC ResNets (scripts/make_mgic.py --size full: 1x3x224x224, widths 64-512, 2 blocks per stage), ssc-opt output vs original."
    echo "Measured $(date -u +%Y-%m-%d) at commit $commit; ONNX Runtime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)'), 1 thread, $runs interleaved runs per model."
    echo
    "$PY" scripts/bench_ort.py "${pairs[@]}" --runs "$runs" --macs --markdown --json "$repo/bench-out/mgic.json"
} | tee "$repo/bench-out/mgic.md"
status=${PIPESTATUS[0]}
set -e
echo "table written to bench-out/mgic.md" >&2
exit "$status"
