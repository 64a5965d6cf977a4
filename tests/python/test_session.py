"""ssc_opt.InferenceSession against onnxruntime: the committed models, onnxruntime's calling
conventions, input handling (borrowed arrays, conversions, errors), two threads on one session,
the GIL released during a run, and a leak check over 2,000 runs."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ssc_opt
from conftest import RTOL, STRUCTURED, TINY, feeds_for, ort_session, rel_err


def check_against_ort(model, threads=1, engine="auto", seeds=(0,)):
    ref = ort_session(str(model))
    sess = ssc_opt.InferenceSession(str(model), threads=threads, engine=engine)
    assert [i.name for i in sess.get_inputs()] == [i.name for i in ref.get_inputs()]
    assert [o.name for o in sess.get_outputs()] == [o.name for o in ref.get_outputs()]
    worst = 0.0
    for seed in seeds:
        feeds = feeds_for(ref, seed)
        want = ref.run(None, feeds)
        got = sess.run(None, feeds)
        assert len(got) == len(want)
        for w, g in zip(want, got):
            assert g.dtype == w.dtype and g.shape == w.shape
            worst = max(worst, rel_err(w, g))
    return sess, worst


def test_zoo_and_structured_models_match_ort(zoo_models, structured_models):
    for path in zoo_models + structured_models:
        sess, err = check_against_ort(path)
        assert sess.engine == "jit", path.name
        assert err <= RTOL, f"{path.name}: {err:.2e}"


def test_optimised_model_and_two_threads_match_ort():
    path = STRUCTURED / "resnet18_ssc_block.onnx"
    opt = ssc_opt.optimize(path, cost_model="macs")
    assert opt.report["optimize"]["rewrite"]["rewritten"] > 0
    ref = ort_session(str(path))
    for threads in (1, 2):
        sess = ssc_opt.InferenceSession(opt.model_bytes, threads=threads)
        feeds = feeds_for(ref, seed=threads)
        (want,) = ref.run(None, feeds)
        (got,) = sess.run(None, feeds)
        assert rel_err(want, got) <= RTOL


def test_reference_engine_matches_ort():
    sess, err = check_against_ort(TINY, engine="reference")
    assert sess.engine == "reference"
    assert err <= RTOL


def test_onnxruntime_calling_conventions():
    ref = ort_session(str(TINY))
    # Code written for onnxruntime: positional sess_options, providers, run_options.
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ssc_opt.InferenceSession(str(TINY), so, providers=["CPUExecutionProvider"])
    feeds = feeds_for(ref)
    want = ref.run(["output"], feeds)
    got = sess.run(["output"], feeds, None)
    assert isinstance(got, list) and rel_err(want[0], got[0]) <= RTOL
    (i,) = sess.get_inputs()
    (o,) = sess.get_outputs()
    assert (i.name, i.shape, i.type) == ("input", [1, 3, 32, 32], "tensor(float)")
    ri, ro = ref.get_inputs()[0], ref.get_outputs()[0]
    assert (i.name, i.shape, i.type) == (ri.name, ri.shape, ri.type)
    assert (o.name, o.shape, o.type) == (ro.name, ro.shape, ro.type)
    assert "NodeArg(name='input'" in repr(i)
    assert "engine=jit" in repr(sess)
    assert sess.fallback_nodes == []


def dynamic_model() -> bytes:
    """Conv + Relu + a second output, with a symbolic batch `N`."""
    rng = np.random.default_rng(3)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 2, 3, 3], rng.standard_normal(72).astype(np.float32))
    b = helper.make_tensor("b", TensorProto.FLOAT, [4], rng.standard_normal(4).astype(np.float32))
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
        helper.make_node("ReduceMean", ["y"], ["m"], axes=[2, 3], keepdims=0, name="mean"),
    ]
    g = helper.make_graph(
        nodes, "dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 5, 5]),
         helper.make_tensor_value_info("m", TensorProto.FLOAT, ["N", 4])],
        [w, b],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def test_symbolic_batch_and_output_selection():
    data = dynamic_model()
    ref = ort_session(data)
    sess = ssc_opt.InferenceSession(data)
    assert sess.get_inputs()[0].shape == ["N", 2, 5, 5]
    for n in (1, 3, 2, 3):
        feeds = feeds_for(ref, seed=n, batch=n)
        want = ref.run(["m"], feeds)
        got = sess.run(["m"], feeds)
        assert len(got) == 1 and got[0].shape == (n, 4)
        assert rel_err(want[0], got[0]) <= RTOL
        both = sess.run(["m", "y"], feeds)
        assert [a.shape for a in both] == [(n, 4), (n, 4, 5, 5)]
    fixed = ssc_opt.InferenceSession(data, input_shapes={"x": [2, 2, 5, 5]})
    assert fixed.get_inputs()[0].shape == [2, 2, 5, 5]
    assert fixed.get_outputs()[1].shape == [2, 4]
    with pytest.raises(ssc_opt.InvalidArgumentError, match="shape \\[3, 2, 5, 5\\] does not fit"):
        fixed.run(None, feeds_for(ref, batch=3))
    with pytest.raises(ssc_opt.InvalidArgumentError, match="`z` is not an output"):
        sess.run(["z"], feeds_for(ref))


def test_inputs_are_borrowed_converted_or_refused():
    ref = ort_session(str(TINY))
    sess = ssc_opt.InferenceSession(str(TINY), threads=1)
    x = feeds_for(ref)["input"]
    (want,) = sess.run(None, {"input": x})
    # A C-contiguous float32 array is borrowed: the run leaves no extra reference behind.
    before = sys.getrefcount(x)
    for _ in range(20):
        sess.run(None, {"input": x})
    assert sys.getrefcount(x) == before
    # A non-contiguous view of float32 data is made contiguous first.
    wide = np.zeros((1, 3, 32, 64), np.float32)
    wide[..., ::2] = x
    view = wide[..., ::2]
    assert not view.flags.c_contiguous
    (got,) = sess.run(None, {"input": view})
    assert np.array_equal(got, want)
    # Fortran order too; nested lists are converted to the input's dtype.
    (got,) = sess.run(None, {"input": np.asfortranarray(x)})
    assert np.array_equal(got, want)
    (got,) = sess.run(None, {"input": x.tolist()})
    assert np.array_equal(got, want)
    # Another dtype is refused, as onnxruntime refuses it.
    with pytest.raises(ssc_opt.InvalidArgumentError, match="expected an array of float32"):
        sess.run(None, {"input": x.astype(np.float64)})
    with pytest.raises(ssc_opt.InvalidArgumentError, match="`nope` is not an input of the model"):
        sess.run(None, {"nope": x})
    with pytest.raises(ssc_opt.InvalidArgumentError, match="input"):
        sess.run(None, {})
    with pytest.raises(ssc_opt.InvalidArgumentError, match="does not fit"):
        sess.run(None, {"input": x[:, :2]})
    with pytest.raises(ssc_opt.InvalidArgumentError, match="engine must be"):
        ssc_opt.InferenceSession(str(TINY), engine="gpu")
    # Outputs are fresh, writable arrays owned by Python.
    (a,) = sess.run(None, {"input": x})
    (b,) = sess.run(None, {"input": x})
    assert a.flags.writeable and a.flags.owndata and not np.shares_memory(a, b)


def test_two_threads_share_one_session():
    """Two Python threads run one session at once, each on its own inputs, and get exactly what
    a lone run gives."""
    sess = ssc_opt.InferenceSession(str(STRUCTURED / "resnet18_ssc_block.onnx"), threads=1)
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal((1, 3, 64, 64)).astype(np.float32) for _ in range(4)]
    want = [sess.run(None, {"input": x})[0] for x in xs]
    errors: list[str] = []
    barrier = threading.Barrier(2)

    def work(k: int):
        barrier.wait()
        for i in range(40):
            j = (k + i) % len(xs)
            (got,) = sess.run(None, {"input": xs[j]})
            if not np.array_equal(got, want[j]):
                errors.append(f"thread {k} run {i}: differs")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_run_releases_the_gil():
    """While one thread is inside `run`, another Python thread makes progress: the main thread
    stamps the time in a loop, and stamps fall inside the other thread's `run` calls. Were the
    GIL held through `run`, none could (a stamp needs the GIL)."""
    sess = ssc_opt.InferenceSession(str(STRUCTURED / "resnet18_dense.onnx"), threads=1)
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    sess.run(None, {"input": x})
    runs = 20
    intervals: list[tuple[float, float]] = []
    done = threading.Event()

    def runner():
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run(None, {"input": x})
            intervals.append((t0, time.perf_counter()))
        done.set()

    stamps: list[float] = []
    t = threading.Thread(target=runner)
    t.start()
    while not done.is_set():
        stamps.append(time.perf_counter())
    t.join()
    inside = sum(1 for s in stamps if any(a < s < b for a, b in intervals))
    assert inside >= runs, (inside, len(stamps), runs)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_rss_stable_over_2000_runs():
    """2,000 runs leave RSS where 200 warm-up runs left it. Each run feeds a 12 KiB input and
    returns a new array, so leaking either per run would add >= 24 MB; the bound is 4 MiB for
    allocator noise."""
    sess = ssc_opt.InferenceSession(str(TINY), threads=1)
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    for _ in range(200):
        sess.run(None, {"input": x})
    start = rss_bytes()
    for _ in range(2000):
        (y,) = sess.run(None, {"input": x})
    grown = rss_bytes() - start
    assert y.shape == (1, 10)
    assert grown < 4 << 20, f"RSS grew by {grown / 2**20:.1f} MiB over 2,000 runs"

