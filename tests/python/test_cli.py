"""The wheel's `ssc-opt` command (the same program as the Rust binary), inspect/analyze, and the
type stubs against the runtime module."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import ssc_opt
from conftest import STRUCTURED, TINY, cli, rust_binary


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([cli(), *args], capture_output=True, text=True)


def test_help_version_and_usage_errors():
    h = run("--help")
    assert h.returncode == 0 and "Usage: ssc-opt" in h.stdout and "inspect" in h.stdout
    v = run("--version")
    assert v.returncode == 0 and v.stdout.strip() == f"ssc-opt {ssc_opt.__version__}"
    bad = run("--no-such-flag")
    assert bad.returncode == 2 and "--no-such-flag" in bad.stderr
    exe = rust_binary()
    if exe:
        for args in (["--help"], ["bench", "--help"], ["--no-such-flag"]):
            a = run(*args)
            b = subprocess.run([exe, *args], capture_output=True, text=True)
            assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), args


def test_cli_optimise_and_run(tmp_path):
    out = tmp_path / "t.opt.onnx"
    p = run(str(TINY), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == ssc_opt.optimize(TINY).model_bytes
    assert "verified on 2 random input sets" in p.stderr
    r = run("run", str(out), "--output-dir", str(tmp_path), "--quiet")
    assert r.returncode == 0 and (tmp_path / "output.npy").exists()
    # Verification failure: exit 1 and nothing written.
    f = run(str(STRUCTURED / "resnet18_ssc_block.onnx"), "-o", str(tmp_path / "x.onnx"),
            "--verify-tol", "0", "--cost-model", "macs")
    assert f.returncode == 1 and "verification failed" in f.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_inspect_is_the_cli_json():
    path = STRUCTURED / "resnet18_ssc_block.onnx"
    doc = ssc_opt.inspect(path)
    p = run("inspect", str(path), "--json")
    assert p.returncode == 0
    assert doc == json.loads(p.stdout)
    assert doc["total_macs"] > 0 and doc["inputs"][0]["name"] == "input"
    assert {"node", "op_type", "macs"} <= set(doc["layers"][0])


def test_analyze_reports_structure():
    doc = ssc_opt.analyze(STRUCTURED / "resnet18_ssc_block.onnx")
    nodes = doc["nodes"]
    assert len(nodes) >= 20
    convs = [n for n in nodes.values() if n["kind"] == "Conv"]

    def ssc_groups(n) -> int:
        blocks = ((n.get("ssc") or {}).get("spatial") or {}).get("blocks") or {}
        return blocks.get("groups", 1)

    # The block-grouped SSC layers: F kernels in 4 diagonal blocks, P kernels elsewhere.
    ssc = [n for n in convs if ssc_groups(n) == 4 and n["kernels"]["point"] > 0]
    assert len(ssc) >= 10, len(ssc)
    assert all(not n["approximate"] for n in convs)
    dense = ssc_opt.analyze(STRUCTURED / "resnet18_dense.onnx")["nodes"]
    assert not any(ssc_groups(n) > 1 for n in dense.values())
    approx = ssc_opt.analyze(TINY, epsilon=1e-3)
    assert approx["nodes"] and all(n["approximate"] for n in approx["nodes"].values())


def _stub_names(tree: ast.Module) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
            }
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = set()
    return names


def test_stubs_match_the_module():
    stub = Path(ssc_opt.__file__).with_name("__init__.pyi")
    assert stub.exists() and Path(ssc_opt.__file__).with_name("py.typed").exists()
    names = _stub_names(ast.parse(stub.read_text()))
    public = {n for n in ssc_opt.__all__ if not n.startswith("_")}
    assert public == set(names), public ^ set(names)
    for cls, methods in names.items():
        obj = getattr(ssc_opt, cls)
        runtime = {m for m in dir(obj) if not m.startswith("_")} if isinstance(obj, type) else set()
        if isinstance(obj, type) and not issubclass(obj, BaseException):
            assert methods == runtime, (cls, methods ^ runtime)
        assert obj.__doc__, cls
