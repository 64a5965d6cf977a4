#!/usr/bin/env bash
# scripts/test.sh — THE test command of ssc-opt (README: `bash scripts/test.sh`).
#
# Why: ssc-opt's correctness is checked at two levels, and both must pass:
#   1. the Rust unit/integration tests (`cargo test --workspace`, default test
#      profile: [profile.test] opt-level=1, dependencies at opt-level 2);
#   2. the Python conformance suites, which run the real release binary
#      against the reference `onnx` package and onnxruntime — starting with
#      tests/conformance/roundtrip.py (pass-through fidelity + numerics of the
#      optimising mode on onnx's backend test data and our exported CNNs).
# It also checks that the committed generated models (tests/models/,
# examples/) are exactly what the generator scripts produce, so the scripts
# and the binaries in git cannot drift apart.
#
# Steps: venv (scripts/venv.sh, pinned onnx/onnxruntime/numpy) -> generated
# models are fresh (fails fast, before the long build) -> cargo build
# --release -> cargo test -> conformance suites (results JSON written to
# <target>/roundtrip.json).
# SSC_OPT_PYTHON is exported (the venv's python) so Rust tests that need the
# reference implementation can find it.
#
# Environment:
#   SSC_OPT_BIN         binary to test (default: <target>/release/ssc-opt)
#   SSC_SKIP_CARGO=1    skip cargo build/test (iterate on the Python suites)
#   CARGO_TARGET_DIR    respected when locating the binary
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

step() { printf '\n==> %s\n' "$*"; }

step "python venv"
PY="$(bash scripts/venv.sh | tail -n1)"
export SSC_OPT_PYTHON="$PY"
echo "SSC_OPT_PYTHON=$SSC_OPT_PYTHON"

step "generated models are up to date"
gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT
"$PY" scripts/make_models.py --size small --out "$gen/models" --no-check >/dev/null
"$PY" scripts/make_examples.py --out "$gen/examples" --no-check >/dev/null
"$PY" scripts/make_mgic.py --size small --out "$gen/mgic" --no-check 2>/dev/null
stale=0
for pair in "tests/models:$gen/models" "examples:$gen/examples" "tests/models/mgic:$gen/mgic"; do
    committed="${pair%%:*}"
    fresh="${pair#*:}"
    for f in "$fresh"/*.onnx; do
        rel="$committed/$(basename "$f")"
        if ! cmp -s "$f" "$rel"; then
            echo "stale or missing: $rel" >&2
            stale=1
        fi
    done
done
if [[ $stale != 0 ]]; then
    echo "error: regenerate with: $PY scripts/make_models.py --size small && $PY scripts/make_examples.py && $PY scripts/make_mgic.py --size small" >&2
    exit 1
fi
echo "ok"

if [[ "${SSC_SKIP_CARGO:-0}" != 1 ]]; then
    step "cargo build --release --workspace"
    cargo build --release --workspace
    # The differential fuzzer's long-lived helper (tests/conformance/fuzz.py); it links the
    # release libraries just built, so this costs seconds.
    cargo build --release -p ssc-opt --example fuzz_helper

    step "cargo test --workspace"
    cargo test --workspace

    # The executor's ONNX test-data conformance runs inside `cargo test` above, where passing
    # tests' output is captured; run it again uncaptured so its per-folder table is in the log.
    step "conformance: reference executor on ONNX test data (table)"
    cargo test -q -p ssc-exec --test onnx_testdata -- --nocapture
fi

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
bin="${SSC_OPT_BIN:-$target_dir/release/ssc-opt}"
if [[ ! -x "$bin" ]]; then
    echo "error: ssc-opt binary not found at $bin" >&2
    exit 1
fi

step "conformance: round-trip (tests/conformance/roundtrip.py)"
mkdir -p "$target_dir"
"$PY" tests/conformance/roundtrip.py --ssc-opt "$bin" --json "$target_dir/roundtrip.json"

# ---------------------------------------------------------------------------
# HOOK: further Python conformance suites.
# Add a suite by appending its path below. Each one is run (if the file
# exists) as:  "$SSC_OPT_PYTHON" SUITE --ssc-opt BINARY
# and must exit non-zero on failure (set -e stops the script).
# ---------------------------------------------------------------------------
extra_suites=(
    tests/conformance/executor.py
    tests/conformance/structured.py
    tests/conformance/portability.py
    tests/conformance/fuzz.py
)
for suite in "${extra_suites[@]}"; do
    if [[ -f "$suite" ]]; then
        step "conformance: $suite"
        "$PY" "$suite" --ssc-opt "$bin"
    fi
done

step "all tests passed"
