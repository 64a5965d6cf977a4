#!/usr/bin/env bash
# scripts/bench_deepsparse.sh — DeepSparse 1.8 against ONNX Runtime on issue 14's models.
#
# Why: issue 14 asks where ssc-opt's JIT stands against DeepSparse, the sparse CPU engine, on
# the same pruned models. DeepSparse 1.8 needs Python <= 3.11 and its own pins (onnx 1.14,
# numpy 1.26), so it lives in a separate, ignored venv (.venv-deepsparse/) that this script
# creates from scripts/requirements-deepsparse.txt; CI never installs it. Models are the
# originals that scripts/bench_sparse.sh generates (bench-out/sparse/NAME.onnx).
#
# Usage (after scripts/bench_sparse.sh --prepare-only; time it under /work/bin/quiet):
#   bash scripts/bench_deepsparse.sh [--only NAME]... [--rounds N] [--iters N] [--threads N]
# Environment: PYTHON311 (default python3.11) makes the venv.
# Output: the table on stdout and in bench-out/deepsparse.md, JSON in bench-out/deepsparse.json.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
only=()
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --only) only+=("$2"); shift 2 ;;
        --rounds|--iters|--threads) args+=("$1" "$2"); shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

venv="$repo/.venv-deepsparse"
req="$repo/scripts/requirements-deepsparse.txt"
stamp="$venv/.requirements.stamp"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    py311="${PYTHON311:-python3.11}"
    command -v "$py311" >/dev/null || { echo "error: $py311 not found (DeepSparse 1.8 needs Python 3.8-3.11)" >&2; exit 1; }
    [[ -x "$venv/bin/python" ]] || "$py311" -m venv "$venv" >&2
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --no-input -q -r "$req" >&2
    echo "$want" >"$stamp"
fi

if [[ ${#only[@]} -eq 0 ]]; then
    mapfile -t only < <("$venv/bin/python" -c 'import sys; sys.path.insert(0, "scripts"); import make_sparse; print("\n".join(make_sparse.ACCEPTANCE))' 2>/dev/null \
        || .venv/bin/python -c 'import sys; sys.path.insert(0, "scripts"); import make_sparse; print("\n".join(make_sparse.ACCEPTANCE))')
fi
cases=()
for m in "${only[@]}"; do
    f="$repo/bench-out/sparse/$m.onnx"
    [[ -f "$f" ]] || { echo "error: $f missing (run scripts/bench_sparse.sh --prepare-only)" >&2; exit 1; }
    cases+=("$m=$f")
done
NM_DISABLE_ANALYTICS=1 "$venv/bin/python" scripts/bench_deepsparse.py "${cases[@]}" "${args[@]}" \
    --markdown --json "$repo/bench-out/deepsparse.json" | tee "$repo/bench-out/deepsparse.md"
