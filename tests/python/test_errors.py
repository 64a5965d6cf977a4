"""Errors at the boundary: every malformed model of tests/malformed/ raises an ssc_opt.Error
subclass whose message is the line the `ssc-opt` command prints for the same file (the wheel's
console script and, when built, the Rust binary), and a Rust panic becomes InternalError."""

from __future__ import annotations

import subprocess

import pytest

import ssc_opt
from conftest import MALFORMED, TINY, cli, rust_binary

PREFIX = "ssc-opt: error: "


def corpus() -> list[tuple[str, str, str]]:
    rows = []
    for line in (MALFORMED / "expected.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        rows.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    assert len(rows) >= 20
    return rows


def cli_error_line(exe: str, path, out) -> tuple[int, str]:
    p = subprocess.run([exe, str(path), "-o", str(out), "--quiet"], capture_output=True, text=True)
    lines = [l for l in p.stderr.splitlines() if l.startswith(PREFIX)]
    return p.returncode, lines[0][len(PREFIX):] if lines else ""


@pytest.mark.parametrize("name,outcome,fragment", corpus())
def test_malformed_models(tmp_path, name, outcome, fragment):
    path = MALFORMED / name
    if outcome in ("ok", "warn", "data"):
        if outcome != "data":
            assert ssc_opt.optimize(str(path)).model_bytes
        return
    with pytest.raises(ssc_opt.Error) as e:
        ssc_opt.optimize(str(path))
    msg = str(e.value)
    assert fragment in msg and str(path) in msg and "\n" not in msg
    assert isinstance(e.value, (ssc_opt.BadModelError, ssc_opt.FileError)), type(e.value)
    # The same line from the console script and from the Rust binary, with exit code 2.
    for exe in filter(None, [cli(), rust_binary()]):
        code, line = cli_error_line(exe, path, tmp_path / "out.onnx")
        assert code == 2 and line == msg, (exe, code, line, msg)
    assert not (tmp_path / "out.onnx").exists()
    # The other entry points raise the same class.
    with pytest.raises(type(e.value)):
        ssc_opt.InferenceSession(str(path))
    with pytest.raises(type(e.value)):
        ssc_opt.inspect(str(path))


def test_bytes_errors_name_the_source():
    with pytest.raises(ssc_opt.BadModelError, match="<bytes>: not an ONNX model"):
        ssc_opt.optimize(b"\x08\x07\x12garbage")
    with pytest.raises(ssc_opt.BadModelError, match="<bytes>: file is empty"):
        ssc_opt.InferenceSession(b"")


def test_missing_file_is_a_file_error():
    with pytest.raises(ssc_opt.FileError, match="/no/such/model.onnx") as e:
        ssc_opt.optimize("/no/such/model.onnx")
    assert isinstance(e.value, OSError) and isinstance(e.value, ssc_opt.Error)


def test_unsupported_op(tmp_path):
    from onnx import TensorProto, helper

    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="com.example", name="mystery")
    g = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    m.ir_version = 8
    data = m.SerializeToString()
    # The optimiser keeps what it does not know (verification is skipped, and says so)...
    opt = ssc_opt.optimize(data)
    assert "skipped" in opt.summary()
    # ...but no engine can run it: the session says so when it is made, naming the node.
    for engine in ("auto", "jit", "reference"):
        with pytest.raises(ssc_opt.UnsupportedOpError, match="mystery") as e:
            ssc_opt.InferenceSession(data, engine=engine)
        assert isinstance(e.value, NotImplementedError)


def test_panic_becomes_internal_error():
    from ssc_opt import _native

    with pytest.raises(ssc_opt.InternalError, match="internal error .*: boom"):
        _native._panic_for_tests("boom")
    # The interpreter is fine afterwards.
    assert ssc_opt.optimize(TINY).model_bytes


def test_hierarchy():
    for cls in (ssc_opt.BadModelError, ssc_opt.UnsupportedOpError, ssc_opt.VerificationError,
                ssc_opt.InvalidArgumentError, ssc_opt.FileError, ssc_opt.InternalError):
        assert issubclass(cls, ssc_opt.Error) and issubclass(cls, Exception)
    assert issubclass(ssc_opt.BadModelError, ValueError)
    assert issubclass(ssc_opt.InvalidArgumentError, ValueError)
