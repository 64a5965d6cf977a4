#!/usr/bin/env bash
# scripts/fuzz_long.sh — the long differential-fuzzing run (issue 15: >= 100,000 graphs),
# in chunks of a few minutes, each under /work/bin/hv when it exists (so benchmarks under
# /work/bin/quiet can take the machine between chunks), resumable.
#
# Why: CI runs a seeded batch of 2,000 graphs (tests/conformance/fuzz.py in scripts/test.sh);
# rarer bugs need far more. This runs seeds A..B through the same harness, with a snapshot of
# the binaries (so rebuilding the work tree mid-run does not change what is tested), and sums
# the chunks' results.
#
# Usage: bash scripts/fuzz_long.sh [--seeds A:B] [--chunk N] [--out DIR]
#   defaults: --seeds 0:100000 --chunk 2500 --out bench-out/fuzz-long
#   needs: cargo build --release --workspace && cargo build --release -p ssc-opt --example fuzz_helper
# Output: DIR/chunk-<start>.json per chunk (a chunk already there is skipped), DIR/failures/
# (shrunk failing graphs), and the summary DIR/summary.txt (also printed at the end).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
seeds="0:100000"
chunk=2500
out="$repo/bench-out/fuzz-long"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seeds) seeds="$2"; shift 2 ;;
        --chunk) chunk="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
a="${seeds%%:*}"
b="${seeds##*:}"
PY="$(bash scripts/venv.sh | tail -n1)"
target="${CARGO_TARGET_DIR:-$repo/target}/release"
commit="$(git rev-parse --short HEAD)$([[ -n "$(git status --porcelain -uno)" ]] && echo "-dirty" || true)"
bin="$out/bin-$commit"
mkdir -p "$bin" "$out/failures"
[[ -x "$bin/ssc-opt" ]] || cp "$target/ssc-opt" "$bin/ssc-opt"
mkdir -p "$bin/examples"
[[ -x "$bin/examples/fuzz_helper" ]] || cp "$target/examples/fuzz_helper" "$bin/examples/fuzz_helper"
echo "$commit" >"$out/commit"

hv=()
[[ -x /work/bin/hv ]] && hv=(/work/bin/hv)
for ((s = a; s < b; s += chunk)); do
    e=$((s + chunk < b ? s + chunk : b))
    json="$out/chunk-$s.json"
    [[ -f "$json" ]] && continue
    "${hv[@]}" "$PY" tests/conformance/fuzz.py --ssc-opt "$bin/ssc-opt" --seeds "$s:$e" --cli-check 0 \
        --max-shrink 2 --failures-dir "$out/failures" --json "$json.tmp" >"$out/chunk-$s.log" 2>&1 || true
    if [[ -f "$json.tmp" ]]; then
        mv "$json.tmp" "$json"
        tail -n 1 "$out/chunk-$s.log"
    else
        echo "chunk $s:$e did not finish (see $out/chunk-$s.log); rerun to retry it" >&2
    fi
done

"$PY" - "$out" "$a" "$b" <<'PYEOF' | tee "$out/summary.txt"
import collections, glob, json, os, sys
out, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
counts, elapsed, seeds, worst, bad = collections.Counter(), 0.0, 0, 0.0, []
rules = collections.Counter()
for f in sorted(glob.glob(os.path.join(out, "chunk-*.json"))):
    d = json.load(open(f))
    lo, hi = d["seeds"]
    if lo < a or hi > b:
        continue
    elapsed += d["elapsed"]
    for r in d["results"]:
        if "regression" in r:
            continue
        seeds += 1
        counts[r["status"]] += 1
        rules.update(r.get("rules", []))
        if r.get("errors"):
            worst = max(worst, max(r["errors"].values()))
        if r["status"] not in ("pass", "ill-conditioned"):
            bad.append((r["seed"], r["status"], r["why"][:160]))
commit = open(os.path.join(out, "commit")).read().strip()
print(f"fuzz_long: seeds {a}:{b} at commit {commit}: {seeds} graphs in {elapsed / 3600:.2f} h of run time "
      f"({elapsed / max(seeds, 1) * 1e3:.1f} ms/graph)")
print(f"statuses: {dict(sorted(counts.items()))}")
print(f"worst relative error (ORT original vs ORT optimised / JIT / OpenVINO): {worst:.2e}")
print(f"forms chosen, by rule: {dict(rules.most_common())}")
for s, st, why in bad[:50]:
    print(f"  seed {s}: {st}: {why}")
print(f"fuzz_long: {seeds - len(bad)} passed, {len(bad)} failed")
PYEOF
