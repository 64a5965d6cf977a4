"""Shared fixtures of the Python package's tests (tests/python/): paths to the committed models,
an onnxruntime runner, seeded inputs, and the norm-wise error every suite in this repository
uses.

The suite runs against the *installed* ``ssc_opt`` package (scripts/test.sh builds it into the
venv with ``maturin develop --release`` first); it never imports from the source tree.

Tolerance: 1e-4 norm-wise (max|a-b| / max|a|), the project's bar against onnxruntime. The JIT
and ORT both compute in f32 with different summation orders (and the JIT's Winograd
transforms), which moves a ResNet-18's outputs by ~1e-6 relative; a real bug (a wrong
permutation, a dropped bias) moves them by a large fraction of their scale.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "models"
STRUCTURED = MODELS / "structured"
MALFORMED = REPO / "tests" / "malformed"
TINY = REPO / "examples" / "tiny_resnet.onnx"
RTOL = 1e-4


def rel_err(want: np.ndarray, got: np.ndarray) -> float:
    """max|a-b| / max|a| (0 when both are all zero); shapes must match."""
    assert want.shape == got.shape, (want.shape, got.shape)
    want = want.astype(np.float64)
    got = got.astype(np.float64)
    num = float(np.max(np.abs(want - got))) if want.size else 0.0
    den = float(np.max(np.abs(want))) if want.size else 0.0
    return 0.0 if num == 0.0 else num / max(den, np.finfo(np.float64).tiny)


def ort_session(model, threads: int = 1) -> ort.InferenceSession:
    """onnxruntime on one thread, with its default (full) graph optimisation."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def feeds_for(sess, seed: int = 0, batch: int = 1) -> dict[str, np.ndarray]:
    """Seeded standard-normal inputs for every input of an ORT (or ssc_opt) session; symbolic
    dimensions become `batch`."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else batch for d in i.shape]
        assert i.type == "tensor(float)", i.type
        out[i.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def cli() -> str:
    """The `ssc-opt` console script installed beside this interpreter."""
    exe = Path(sys.executable).with_name("ssc-opt")
    assert exe.exists(), f"{exe} missing: is the package installed into this venv?"
    return str(exe)


def rust_binary() -> str | None:
    """The Rust binary (scripts/test.sh's SSC_OPT_BIN, else target/release), if built."""
    env = os.environ.get("SSC_OPT_BIN")
    if env and Path(env).exists():
        return env
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    exe = target / "release" / "ssc-opt"
    return str(exe) if exe.exists() else None


@pytest.fixture(scope="session")
def structured_models() -> list[Path]:
    files = sorted(STRUCTURED.glob("*.onnx"))
    assert len(files) >= 10, files
    return files


@pytest.fixture(scope="session")
def zoo_models() -> list[Path]:
    files = sorted(MODELS.glob("*.onnx"))
    assert len(files) >= 10, files
    return files
