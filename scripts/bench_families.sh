#!/usr/bin/env bash
# scripts/bench_families.sh — ORT speed of ssc-opt's output vs the original, for every
# weight-structure family planted into a full-size (224x224) ResNet-18.
#
# Why: the structured families (scripts/make_structured.py) are what trained SSC / MSWU /
# pruned networks export. This is the end-to-end number ssc-opt exists for: how much faster
# ONNX Runtime runs the optimised model, with the same outputs. The harness works whether or
# not the optimiser rewrites anything (then every row is ~1.00x).
#
# Steps:
#   1. bench-out/models/resnet18_folded.onnx   (scripts/make_models.py --size full, if missing)
#   2. bench-out/families/resnet18_<family>.onnx + manifest.json   (scripts/make_structured.py)
#   3. bench-out/families/opt/resnet18_<family>.onnx   (ssc-opt IN -o OUT)
#   4. scripts/bench_ort.py over all pairs (interleaved runs, 1 thread, MACs, output check);
#      the markdown table goes to stdout and bench-out/families.md (JSON: bench-out/families.json)
#
# Usage:
#   cargo build --release -p ssc-opt-cli      # the binary under test
#   bash scripts/bench_families.sh [--runs N] [--only FAMILY]... [--bin PATH] [-- SSC_OPT_ARGS...]
# Defaults: 20 interleaved runs per model; every family; target/release/ssc-opt.
# Arguments after `--` are passed to ssc-opt (e.g. -- --verify 0).
# Takes ~3-6 minutes on 2 cores (ResNet-18 at 224x224 runs ~70-110 ms in ORT on one thread).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

runs=20
bin="${SSC_OPT_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ssc-opt}"
only=()
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --only) only+=(--only "$2"); shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
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

src="$models/resnet18_folded.onnx"
if [[ ! -f "$src" ]]; then
    echo "generating $src ..." >&2
    "$PY" scripts/make_models.py --size full --only resnet18_folded --out "$models" >&2
fi
echo "planting structure families into $src ..." >&2
"$PY" scripts/make_structured.py --src "$src" --out "$fam" --no-check "${only[@]}" >&2

# The families written this time, in the manifest's (sorted) order.
mapfile -t names < <("$PY" - "$fam/manifest.json" "${only[@]}" <<'EOF'
import json, sys
manifest = json.load(open(sys.argv[1]))["models"]
only = sys.argv[2:][1::2]
for name, entry in sorted(manifest.items()):
    if not only or entry["family"] in only:
        print(name)
EOF
)

pairs=()
failed=()
for name in "${names[@]}"; do
    in="$fam/$name.onnx"
    out="$fam/opt/$name.onnx"
    echo "ssc-opt $name ..." >&2
    if "$bin" "$in" -o "$out" --overwrite "${extra[@]}" >&2; then
        pairs+=("$name=$in:$out")
    else
        failed+=("$name")
        echo "warning: ssc-opt failed on $name; left out of the table" >&2
    fi
done
if [[ ${#pairs[@]} -eq 0 ]]; then
    echo "error: no model to benchmark" >&2
    exit 1
fi

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty=""
[[ -n "$(git status --porcelain 2>/dev/null)" ]] && dirty=" (work tree has uncommitted changes)"
set +e
{
    echo "Structured families, full-size ResNet-18 (1x3x224x224), ssc-opt output vs original."
    echo "Measured $(date -u +%Y-%m-%d) at commit $commit$dirty; $("$bin" --version 2>/dev/null || echo ssc-opt);"
    echo "ONNX Runtime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)'), 1 thread, $runs interleaved runs per model."
    if [[ ${#failed[@]} -gt 0 ]]; then echo "ssc-opt failed on: ${failed[*]}"; fi
    echo
    "$PY" scripts/bench_ort.py "${pairs[@]}" --runs "$runs" --macs --markdown --json "$repo/bench-out/families.json"
} | tee "$repo/bench-out/families.md"
status=${PIPESTATUS[0]}
set -e
echo "table written to bench-out/families.md" >&2
if [[ ${#failed[@]} -gt 0 && $status -eq 0 ]]; then status=1; fi
exit "$status"
