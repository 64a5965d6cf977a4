//! The deployment fixtures (`tests/models/deploy`, made by `scripts/make_deploy_models.py`):
//! QDQ and QOperator quantised nets, onnxruntime's dynamic quantisation, a CRNN with an LSTM.
//!
//! Each must optimise with its quantisation untouched (no rewrite reaches a quantised conv, no
//! DequantizeLinear is folded into a float weight, no initializer grows), verify, and run under
//! the JIT (through fallback kernels where it has no native one) as the reference executor
//! does. The quantised fixtures are exact by construction (power-of-two scales, every sum exact
//! in f32), so there the JIT must agree exactly; the LSTM model is held to the usual 1e-4.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ssc_opt::ir::{Model, Tensor};
use ssc_opt::ssc_jit::{CompiledModel, JitOptions};
use ssc_opt::{optimize, random_inputs, rel_err, run_reference, verify, Options, VerifyOptions};

const QUANT_OPS: &[&str] = &[
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
];

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/models/deploy");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "deploy fixtures are missing: {v:?}");
    v
}

/// How many ops of each type the model has.
fn op_counts(m: &Model) -> BTreeMap<String, usize> {
    let g = &m.graph;
    let mut c = BTreeMap::new();
    for op in g.op_ids() {
        *c.entry(g.op(op).desc.op_type.clone()).or_default() += 1;
    }
    c
}

fn initializer_bytes(m: &Model) -> usize {
    let g = &m.graph;
    g.initializer_ids()
        .into_iter()
        .map(|v| g.initializer(v).unwrap().byte_len())
        .sum()
}

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
fn quantisation_survives_optimisation_and_verifies() {
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let original = ssc_opt::load(&path).unwrap().model;
        let mut opt = original.clone();
        let report = optimize(&mut opt, &Options::default()).unwrap();
        let (before, after) = (op_counts(&original), op_counts(&opt));
        for q in QUANT_OPS {
            assert_eq!(before.get(*q), after.get(*q), "{name}: {q} count changed");
        }
        let rewritten = report.rewrite.as_ref().map_or(0, |r| r.layers.len());
        assert_eq!(rewritten, 0, "{name}: a quantised layer was rewritten");
        assert!(
            initializer_bytes(&opt) <= initializer_bytes(&original),
            "{name}: initializers grew"
        );
        let v = verify(&original, &opt, &[], &VerifyOptions::default()).unwrap();
        assert!(v.skipped.is_none(), "{name}: {:?}", v.skipped);
        assert!(v.passed(), "{name}: {}", v.summary());
    }
}

#[test]
fn jit_runs_deployment_models_as_the_reference_does() {
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let m = ssc_opt::load(&path).unwrap().model;
        let quantised = op_counts(&m)
            .keys()
            .any(|k| QUANT_OPS.contains(&k.as_str()));
        let feeds = random_inputs(&m, &[], 5).unwrap();
        let want = run_reference(&m, &feeds).unwrap();
        let c = CompiledModel::compile(&m, &JitOptions::default()).unwrap();
        let got = c.run(&feeds).unwrap();
        let e = worst(&want, &got);
        eprintln!(
            "{name}: JIT vs reference {e:.2e}, fallbacks {:?}",
            c.fallback_nodes()
        );
        let bound = if quantised { 0.0 } else { 1e-4 };
        assert!(e <= bound, "{name}: JIT vs reference {e:.3e} > {bound:e}");
    }
}
