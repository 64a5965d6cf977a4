//! Runs the ONNX package's model test data (pytorch-converted, pytorch-operator, light, simple)
//! through the executor and compares with the stored outputs: the executor's conformance
//! check against real exporter output. The loader, tolerance rules and report live in
//! `common/mod.rs` (shared with the JIT's test of the same data).

mod common;

use common::{compare_value_outputs, run_failure, run_suite, Errors, Outcome};
use ssc_exec::Executor;

#[test]
fn onnx_backend_test_data() {
    run_suite("onnx_backend_test_data", None, |case| {
        let ex = match Executor::new(&case.model) {
            Ok(ex) => ex,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let mut worst = 0f64;
        for set in &case.sets {
            let out = match ex.run_values(&set.feeds) {
                Ok(out) => out,
                Err(e) => return run_failure(&set.name, &e),
            };
            match compare_value_outputs(&out, &set.expected, case.doc) {
                Ok(e) => worst = worst.max(e),
                Err(e) => return Outcome::Failed(format!("{}: {e}", set.name)),
            }
        }
        Outcome::Passed(Errors {
            vs_expected: worst,
            vs_reference: 0.0,
        })
    });
}
