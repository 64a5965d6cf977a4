#!/usr/bin/env bash
# scripts/bench_passthrough.sh — wall time and peak memory of ssc-opt on a
# large model (full-size ResNet-50, ~100 MB of weights).
#
# Why: the pass-through path (load -> IR -> save, `--no-optimize`) should be
# I/O-bound and should not hold many copies of the weights in memory. This
# script measures exactly that, plus the default optimising mode for
# comparison, and reports peak RSS relative to the model's file size (a
# ratio near 1-2 means no needless copies of the weight data).
#
# Usage:
#   bash scripts/bench_passthrough.sh [--runs N] [--model PATH] [--bin PATH]
# Defaults: 5 runs per mode; model bench-out/models/resnet50_bn.onnx (made by
# scripts/make_models.py --size full if missing; bench-out/ is gitignored);
# binary target/release/ssc-opt (build it first: cargo build --release).
#
# Measurement: /usr/bin/time -v (GNU time) for peak RSS when it is installed;
# otherwise a tiny Python wrapper that reads the child's rusage via os.wait4
# (Linux keeps the pre-exec high-water mark, so that fallback overstates peak
# RSS by the forked wrapper's few MB: irrelevant next to a 100 MB model).
# (SSC_BENCH_METER=python forces the fallback.) Wall time is measured around
# each run; the median of N runs is reported.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

runs=5
model=""
bin="${SSC_OPT_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ssc-opt}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

if [[ ! -x "$bin" ]]; then
    echo "error: ssc-opt binary not found at $bin (run: cargo build --release)" >&2
    exit 1
fi

PY="$(bash scripts/venv.sh | tail -n1)"
out_dir="$repo/bench-out/passthrough"
mkdir -p "$out_dir"

if [[ -z "$model" ]]; then
    model="$repo/bench-out/models/resnet50_bn.onnx"
    if [[ ! -f "$model" ]]; then
        echo "generating $model ..." >&2
        "$PY" scripts/make_models.py --size full --only resnet50_bn --out "$repo/bench-out/models" >&2
    fi
fi
size=$(stat -c %s "$model")

# measure CMD... -> prints "<wall seconds> <peak RSS KiB>"
if [[ "${SSC_BENCH_METER:-}" != python ]] && [[ -x /usr/bin/time ]] && /usr/bin/time -v true >/dev/null 2>&1; then
    meter="GNU time (/usr/bin/time -v)"
    measure() {
        local tf t0 t1 rss
        tf="$(mktemp)"
        t0=$(date +%s.%N)
        /usr/bin/time -v -o "$tf" "$@" >/dev/null || { rm -f "$tf"; return 1; }
        t1=$(date +%s.%N)
        rss=$(awk -F': *' '/Maximum resident set size/ {print $2}' "$tf")
        rm -f "$tf"
        echo "$(echo "$t1 - $t0" | awk '{print $1 - $3}') $rss"
    }
else
    meter="python os.wait4 rusage"
    measure() {
        "$PY" - "$@" <<'EOF'
import os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
code = os.waitstatus_to_exitcode(status)
if code != 0:
    sys.exit(code)
print(f"{wall:.4f} {ru.ru_maxrss}")  # ru_maxrss is in KiB on Linux
EOF
    }
fi

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "model:  $model ($(awk -v s="$size" 'BEGIN{printf "%.1f MB", s/1e6}'))"
echo "binary: $bin"
echo "runs:   $runs per mode; peak RSS via $meter"
cat "$model" >/dev/null   # warm the page cache so run 1 is not an outlier

printf '\n%-14s %12s %10s %10s %14s %12s\n' mode "median wall" min max "median RSS" "RSS/file"
for mode in no-optimize default; do
    extra=()
    [[ $mode == no-optimize ]] && extra=(--no-optimize)
    out="$out_dir/out_$mode.onnx"
    walls=()
    rsss=()
    for ((i = 0; i < runs; i++)); do
        rm -f "$out"   # ssc-opt refuses to replace an existing file without --overwrite
        if ! measure "$bin" "$model" -o "$out" --quiet "${extra[@]}" >"$out_dir/measure.txt"; then
            echo "error: ssc-opt failed in mode $mode (run: $bin $model -o $out ${extra[*]})" >&2
            exit 1
        fi
        read -r w r <"$out_dir/measure.txt"
        walls+=("$w")
        rsss+=("$r")
    done
    mw=$(printf '%s\n' "${walls[@]}" | median)
    mn=$(printf '%s\n' "${walls[@]}" | sort -g | head -n1)
    mx=$(printf '%s\n' "${walls[@]}" | sort -g | tail -n1)
    mr=$(printf '%s\n' "${rsss[@]}" | median)
    awk -v m="$mode" -v mw="$mw" -v mn="$mn" -v mx="$mx" -v mr="$mr" -v s="$size" 'BEGIN {
        printf "%-14s %11.3fs %9.3fs %9.3fs %11.1f MB %12.2f\n", m, mw, mn, mx, mr * 1024 / 1e6, mr * 1024 / s }'
done
echo
echo "outputs in $out_dir"
