#!/usr/bin/env bash
# scripts/venv.sh — create (idempotently) the Python virtualenv used by the
# test and benchmark tooling: model generation (scripts/make_models.py), the
# round-trip conformance test (tests/conformance/roundtrip.py) and the Rust
# tests that shell out to Python (they find it through $SSC_OPT_PYTHON).
#
# Why: ssc-opt itself is pure Rust, but its correctness is checked against the
# reference `onnx` package and onnxruntime. Those must be pinned (see
# scripts/requirements.txt) and must be installable on a fresh machine/CI
# clone where only python3 + pip exist, so the repo installs them itself.
#
# Usage:
#     PY="$(bash scripts/venv.sh | tail -n1)"     # creates .venv/ if needed
#     "$PY" scripts/make_models.py ...
#
# Contract: the LAST line on stdout is the absolute path of the venv's python.
# All progress / pip output goes to stderr. The install is skipped when the
# stamp file .venv/.requirements.stamp matches the current requirements file
# and python version, so repeated calls cost well under a second.
#
# Environment:
#     SSC_VENV_DIR   venv location (default: <repo>/.venv)
#     PYTHON         base interpreter used to create the venv (default: python3)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SSC_VENV_DIR:-$repo/.venv}"
req="$repo/scripts/requirements.txt"
base_python="${PYTHON:-python3}"
stamp="$venv/.requirements.stamp"
vpy="$venv/bin/python"

log() { echo "venv.sh: $*" >&2; }

command -v "$base_python" >/dev/null 2>&1 || {
    log "error: '$base_python' not found (need python3 >= 3.10 with the venv module)"
    exit 1
}

# The stamp records what was installed: requirements content + interpreter.
want_stamp="$(
    {
        cat "$req"
        "$base_python" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
)"

# A venv whose interpreter no longer runs (base python moved/upgraded) is
# rebuilt from scratch.
if [[ -d "$venv" ]] && ! "$vpy" -c 'pass' >/dev/null 2>&1; then
    log "existing venv at $venv is broken; recreating"
    rm -rf "$venv"
fi

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" ]]; then
    echo "$vpy"
    exit 0
fi

if [[ ! -x "$vpy" ]]; then
    log "creating venv at $venv"
    "$base_python" -m venv "$venv" >&2
fi

log "installing pinned requirements from $req"
# --no-input: never prompt (CI has no stdin). Output to stderr so that the
# last stdout line stays the interpreter path.
PIP_DISABLE_PIP_VERSION_CHECK=1 "$vpy" -m pip install --no-input -q -r "$req" 1>&2

# Sanity-check that the pinned packages import before writing the stamp.
"$vpy" - >&2 <<'EOF'
import numpy, onnx, onnxruntime, openvino
print(f"venv.sh: onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, numpy {numpy.__version__}, openvino {openvino.__version__}")
EOF

echo "$want_stamp" >"$stamp"
echo "$vpy"
