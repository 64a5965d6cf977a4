//! The JIT on the ONNX package's model test data (pytorch-converted, pytorch-operator, light,
//! simple): every case the reference executor supports must compile (input shapes from its
//! input .pb files) or be declined with `JitError::NotCovered` (counted and listed), and its
//! outputs must equal the executor's within 1e-4 norm-wise and the stored outputs within the
//! executor test's own rules. The loader and report are the executor test's
//! (`crates/ssc-exec/tests/common/mod.rs`, included below), so both check the same cases.
//!
//! Tolerance against the executor: `max|jit - ref| <= 1e-4 * max|ref|` per float output (see
//! `tests/models.rs` for why f32 accumulation stays far below that); outputs of other types
//! must be identical, and NaNs must sit in the same places.

#[path = "../../ssc-exec/tests/common/mod.rs"]
mod common;

use common::{
    compare_outputs, compare_value_outputs, run_failure, run_suite, Errors, Outcome, NORM_RTOL,
};
use ssc_ir::{DataType, Tensor};
use ssc_jit::{CompiledModel, JitError, JitOptions};

/// `got` against the executor's `want`: the norm-wise relative error, or why they differ.
fn vs_reference(got: &Tensor, want: &Tensor) -> Result<f64, String> {
    if got.dtype != want.dtype || got.dims != want.dims {
        return Err(format!(
            "got {} {:?}, reference {} {:?}",
            got.dtype, got.dims, want.dtype, want.dims
        ));
    }
    let float = matches!(
        want.dtype,
        DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16
    );
    if !float {
        return if got.data == want.data {
            Ok(0.0)
        } else {
            Err(format!("{} outputs differ from the reference", want.dtype))
        };
    }
    let (g, w) = (got.to_f64_vec().unwrap(), want.to_f64_vec().unwrap());
    let mut max_err = 0f64;
    let mut scale = 0f64;
    for (&a, &b) in g.iter().zip(&w) {
        if a.is_nan() || b.is_nan() {
            if a.is_nan() != b.is_nan() {
                return Err(format!("NaN mismatch: got {a}, reference {b}"));
            }
            continue;
        }
        max_err = max_err.max((a - b).abs());
        scale = scale.max(b.abs());
    }
    if max_err <= NORM_RTOL * scale {
        Ok(if scale > 0.0 { max_err / scale } else { 0.0 })
    } else {
        Err(format!(
            "max |jit - ref| {max_err:.3e} > {NORM_RTOL:e} * {scale:.3e}"
        ))
    }
}

/// A case with sequence or optional feeds: compiled with the shapes of its tensor feeds, run
/// through `run_values`, and compared with the executor's outputs (exactly: the values come
/// through the same reference kernels) and the stored ones.
fn run_values(case: &common::Case, set: &common::DataSet) -> Result<f64, Outcome> {
    let opts = JitOptions {
        input_shapes: set
            .feeds
            .iter()
            .filter_map(|(n, v)| Some((n.clone(), v.tensor()?.dims.clone())))
            .collect(),
        ..JitOptions::default()
    };
    let compiled = match CompiledModel::compile(&case.model, &opts) {
        Ok(c) => c,
        Err(JitError::NotCovered(why)) => return Err(Outcome::NotCovered(why)),
        Err(e) => return Err(Outcome::Failed(format!("{}: compile: {e}", set.name))),
    };
    let want = ssc_exec::Executor::new(&case.model)
        .and_then(|ex| ex.run_values(&set.feeds))
        .map_err(|e| run_failure(&format!("{}: reference", set.name), &e))?;
    let got = compiled
        .run_values(&set.feeds)
        .map_err(|e| Outcome::Failed(format!("{}: run: {e}", set.name)))?;
    if got != want {
        return Err(Outcome::Failed(format!(
            "{}: outputs differ from the reference",
            set.name
        )));
    }
    compare_value_outputs(&got, &set.expected, case.doc)
        .map_err(|e| Outcome::Failed(format!("{}: vs stored: {e}", set.name)))
}

#[test]
fn jit_on_onnx_backend_test_data() {
    // Steps of the compiled plans that ran natively / through the reference kernels.
    let (mut native, mut fallback) = (0usize, 0usize);
    run_suite("jit_on_onnx_backend_test_data", Some("JIT"), |case| {
        let mut errs = Errors::default();
        for set in &case.sets {
            // Cases with sequences or optionals at the interface run through `run_values`.
            let all_tensors = set.expected.iter().all(|v| v.tensor().is_some());
            let Some(feeds) = set.tensor_feeds().filter(|_| all_tensors) else {
                match run_values(case, set) {
                    Ok(e) => {
                        errs.vs_expected = errs.vs_expected.max(e);
                        continue;
                    }
                    Err(o) => return o,
                }
            };
            let opts = JitOptions {
                input_shapes: feeds
                    .iter()
                    .map(|(n, t)| (n.clone(), t.dims.clone()))
                    .collect(),
                ..JitOptions::default()
            };
            let compiled = match CompiledModel::compile(&case.model, &opts) {
                Ok(c) => c,
                Err(JitError::NotCovered(why)) => return Outcome::NotCovered(why),
                Err(e) => return Outcome::Failed(format!("{}: compile: {e}", set.name)),
            };
            for s in compiled.steps() {
                if s.fallback {
                    fallback += 1;
                } else {
                    native += 1;
                }
            }
            let want = match ssc_exec::run_model(&case.model, &feeds) {
                Ok(w) => w,
                Err(e) => return run_failure(&format!("{}: reference", set.name), &e),
            };
            let got = match compiled.run(&feeds) {
                Ok(g) => g,
                Err(e) => return Outcome::Failed(format!("{}: run: {e}", set.name)),
            };
            if got.len() != want.len() {
                return Outcome::Failed(format!(
                    "{}: {} outputs, reference has {}",
                    set.name,
                    got.len(),
                    want.len()
                ));
            }
            for ((gn, g), (wn, w)) in got.iter().zip(&want) {
                if gn != wn {
                    return Outcome::Failed(format!(
                        "{}: output `{gn}`, reference `{wn}`",
                        set.name
                    ));
                }
                match vs_reference(g, w) {
                    Ok(e) => errs.vs_reference = errs.vs_reference.max(e),
                    Err(e) => return Outcome::Failed(format!("{}: output `{gn}`: {e}", set.name)),
                }
            }
            match compare_outputs(&got, &set.expected, case.doc) {
                Ok(e) => errs.vs_expected = errs.vs_expected.max(e),
                Err(e) => return Outcome::Failed(format!("{}: vs stored: {e}", set.name)),
            }
        }
        Outcome::Passed(errs)
    });
    println!("JIT plan steps over all runs: {native} native, {fallback} through reference kernels");
}
