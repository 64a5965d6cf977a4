#!/usr/bin/env bash
# scripts/fuzz.sh — fuzz the ONNX importer (the cargo-fuzz target `import` in fuzz/) for N
# seconds and print how many inputs it ran.
#
# Why: ssc-opt must never panic, abort or allocate without bound on a bad file (see
# tests/malformed/README.md). The committed corpus covers the failure modes we thought of;
# the fuzzer looks for the ones we did not. Any crash it finds is fixed at its root and the
# input added to tests/malformed/ (via scripts/make_malformed.py) as a regression.
#
# Usage: scripts/fuzz.sh [SECONDS]        (default 600)
# Env:   FUZZ_JOBS (default 1), FUZZ_MAX_LEN (default 65536), SSC_OPT_PYTHON (a python with
#        the `onnx` package, to seed from its backend test models; optional)
#
# Needs only the stable toolchain: the target is built with `--sanitizer none` (libFuzzer's
# coverage guidance still works; address sanitizing would need nightly). Debug assertions and
# overflow checks stay on (`-a`), so an arithmetic overflow is a crash too.
# Exit status: 0 when no crash was found, 1 otherwise. Crashing inputs land in
# fuzz/artifacts/import/. The last line is "fuzz: N execs in S s, C crashes".
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    ''|*[!0-9]*) [[ -z "${1:-}" ]] || { echo "fuzz.sh: SECONDS must be a number (got '$1'); see --help" >&2; exit 2; } ;;
esac
secs="${1:-600}"
max_len="${FUZZ_MAX_LEN:-65536}"
corpus="$repo/fuzz/corpus/import"
log="$repo/fuzz/artifacts/import-$(date +%Y%m%d-%H%M%S).log"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz >&2
fi

# Seed corpus: every malformed case, plus small valid models. libFuzzer adds what it finds.
mkdir -p "$corpus" "$repo/fuzz/artifacts/import"
seed() { [[ -f "$1" && $(stat -c %s "$1") -le $max_len ]] && cp -f "$1" "$corpus/seed-$2" || true; }
for f in "$repo"/tests/malformed/*; do
    seed "$f" "malformed-$(basename "$f")"
done
for f in "$repo"/tests/models/*.onnx "$repo"/examples/*.onnx; do
    seed "$f" "model-$(basename "$f")"
done
py="${SSC_OPT_PYTHON:-}"
[[ -z "$py" && -x "$repo/.venv/bin/python" ]] && py="$repo/.venv/bin/python"
if [[ -n "$py" ]] && data="$("$py" -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend/test/data"))' 2>/dev/null)"; then
    while IFS= read -r f; do
        seed "$f" "onnx-$(echo "${f#"$data"/}" | tr / _)"
    done < <(find "$data" -name '*.onnx' | sort)
fi
echo "fuzz.sh: $(find "$corpus" -type f | wc -l) corpus files; fuzzing for ${secs}s (log: $log)" >&2

jobs="${FUZZ_JOBS:-1}"
parallel=()
# -jobs (even -jobs=1) switches libFuzzer to worker processes logging to ./fuzz-N.log.
[[ "$jobs" -gt 1 ]] && parallel=(-jobs="$jobs" -workers="$jobs")

cd "$repo/fuzz"
rm -f fuzz-*.log
set +e
cargo fuzz run --sanitizer none -O -a import "$corpus" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len="$max_len" -timeout=20 \
    -print_final_stats=1 "${parallel[@]}" >"$log" 2>&1
status=$?
set -e

# With -jobs > 1 each worker writes its own fuzz-N.log; keep them with the log and sum them.
logs=("$log")
for f in fuzz-*.log; do
    [[ -f "$f" ]] || continue
    mv "$f" "${log%.log}-$f"
    logs+=("${log%.log}-$f")
done
execs=$(cat "${logs[@]}" 2>/dev/null | awk '/stat::number_of_executed_units:/ {n += $2} END {print n + 0}')
elapsed=$(cat "${logs[@]}" 2>/dev/null | awk '/Done [0-9]+ runs in/ {print $(NF-1)}' | sort -n | tail -1)
crashes=$({ grep -hcE 'panicked|^==[0-9]+== ERROR|deadly signal|out-of-memory|timeout after' "${logs[@]}" 2>/dev/null || true; } | awk '{n += $1} END {print n + 0}')
tail -n 25 "$log" >&2
echo "fuzz: ${execs} execs in ${elapsed:-$secs} s, ${crashes} crashes"
[[ $status -eq 0 && $crashes -eq 0 ]]
