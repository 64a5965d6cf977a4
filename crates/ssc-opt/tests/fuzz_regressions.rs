//! Every graph the differential fuzzer found failing, shrunk and committed
//! (`tests/fuzz/regressions/NAME.{json,onnx}`, from `tests/conformance/fuzz.py`), must now go
//! through ssc-opt cleanly: optimised with the cost model it failed under, without a warning
//! (a dropped rewrite is a rule bug), computing the original function in the reference
//! executor and in the JIT within 1e-4 (norm-wise; see `tests/jit.rs` for why 1e-4). The ORT
//! and OpenVINO sides of the same graphs are replayed by `fuzz.py` itself.

use std::path::Path;
use std::sync::Arc;

use ssc_opt::ssc_jit::{CompiledModel, JitOptions};
use ssc_opt::ssc_rewrite::{CalibratedCost, CostModel, MacCost, RewriteOptions};
use ssc_opt::{optimize, random_inputs, rel_err, run_reference, Options};

const RTOL: f64 = 1e-4;

#[test]
fn committed_fuzz_regressions_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz/regressions");
    let mut specs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    specs.sort();
    assert!(!specs.is_empty());
    for json in specs {
        let name = json.file_stem().unwrap().to_string_lossy().to_string();
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let cost: Arc<dyn CostModel> = match doc["spec"]["cost"].as_str() {
            Some("macs") => Arc::new(MacCost),
            _ => Arc::new(CalibratedCost::default()),
        };
        let original = ssc_opt::load(&json.with_extension("onnx")).unwrap().model;
        let mut opt = original.clone();
        let opts = Options {
            rewrite_options: RewriteOptions {
                cost,
                ..RewriteOptions::default()
            },
            ..Options::default()
        };
        let report = optimize(&mut opt, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
        let feeds = random_inputs(&original, &[], 5).unwrap();
        let want = run_reference(&original, &feeds).unwrap();
        let got_ref = run_reference(&opt, &feeds).unwrap();
        let jit = CompiledModel::compile(&opt, &JitOptions::default()).unwrap();
        let got_jit = jit.run(&feeds).unwrap();
        for (what, got) in [("reference", &got_ref), ("JIT", &got_jit)] {
            for ((n, a), (_, b)) in want.iter().zip(got) {
                let e = rel_err(a, b);
                assert!(
                    e <= RTOL,
                    "{name}: {what} on the optimised model, output {n}: {e:.3e}"
                );
            }
        }
    }
}
