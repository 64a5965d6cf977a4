//! The JIT on ssc-opt's own output: every structured ResNet-18 family (`make_structured.py`),
//! every MGIC net (`make_mgic.py`) and every sparse / micro-structured family
//! (`make_sparse.py`), optimised (rewritten into grouped, pointwise, sum-pool, Gather...
//! forms), must give the reference executor's outputs of the optimised model and of the
//! original, on 1 and 2 threads.
//!
//! Tolerance 1e-4 norm-wise, as everywhere: the JIT accumulates in f32 (GEMM and stream
//! order) while the reference accumulates in f64; through an 18-layer network that difference
//! measures around 1e-7 (see `crates/ssc-jit/tests/models.rs`), so 1e-4 leaves three orders
//! of magnitude for rounding while any real bug moves outputs by a large fraction.

use std::path::Path;

use ssc_opt::ir::Tensor;
use ssc_opt::ssc_jit::{CompiledModel, JitOptions};
use ssc_opt::{optimize, random_inputs, rel_err, run_reference, Options};

const RTOL: f64 = 1e-4;

fn worst(want: &[(String, Tensor)], got: &[(String, Tensor)]) -> f64 {
    want.iter()
        .zip(got)
        .map(|((a, x), (b, y))| {
            assert_eq!(a, b);
            rel_err(x, y)
        })
        .fold(0.0, f64::max)
}

#[test]
fn jit_runs_optimised_structured_models_exactly() {
    check_family_dir("structured", 10);
}

/// The MGIC nets (grouped V-cycles, `scripts/make_mgic.py`).
#[test]
fn jit_runs_optimised_mgic_models_exactly() {
    check_family_dir("mgic", 4);
}

/// Issue 14's families (`scripts/make_sparse.py`: magnitude per layer and global, MSWU tiles,
/// N:M, SSC remainders, sparse MatMul/Gemm, MobileNetV2, the near-miss single convs), whatever
/// kernel the JIT picks for each layer.
#[test]
fn jit_runs_sparse_families_exactly() {
    check_family_dir("sparse", 20);
}

/// Every model in `tests/models/DIR`, optimised, through the JIT on 1 and 2 threads, against
/// the reference executor on the optimised and on the original model.
fn check_family_dir(dir: &str, at_least: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/models")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    assert!(
        files.len() >= at_least,
        "{} models in {}",
        files.len(),
        dir.display()
    );
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let original = ssc_opt::load(&path).unwrap().model;
        let mut opt = original.clone();
        optimize(&mut opt, &Options::default()).unwrap();
        let feeds = random_inputs(&original, &[], 3).unwrap();
        let want_orig = run_reference(&original, &feeds).unwrap();
        let want_opt = run_reference(&opt, &feeds).unwrap();
        for threads in [1, 2] {
            let c = CompiledModel::compile(
                &opt,
                &JitOptions {
                    threads,
                    ..JitOptions::default()
                },
            )
            .unwrap();
            let got = c.run(&feeds).unwrap();
            let (e_opt, e_orig) = (worst(&want_opt, &got), worst(&want_orig, &got));
            eprintln!("{name} [{threads}t]: vs optimised {e_opt:.2e}, vs original {e_orig:.2e}");
            assert!(
                e_opt <= RTOL,
                "{name}: JIT vs reference (optimised) {e_opt:.3e}"
            );
            assert!(
                e_orig <= RTOL,
                "{name}: JIT vs reference (original) {e_orig:.3e}"
            );
            assert!(
                c.fallback_nodes().is_empty(),
                "{name}: unexpected fallbacks {:?}",
                c.fallback_nodes()
            );
        }
    }
}

#[test]
fn bench_reports_latency_memory_and_fallbacks() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tiny_resnet.onnx");
    let m = ssc_opt::load(&path).unwrap().model;
    let r = ssc_opt::bench(
        &m,
        &ssc_opt::BenchOptions {
            iters: 3,
            warmup: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.times_ms.len(), 3);
    assert!(r.min_ms <= r.median_ms && r.median_ms <= r.max_ms);
    assert!(r.peak_activation_bytes > 0);
    assert!(r.fallback_nodes.is_empty(), "{:?}", r.fallback_nodes);
    assert_eq!(r.kernels.len(), r.steps);
    assert!(r.to_text().contains("fallback nodes: none"));
}
