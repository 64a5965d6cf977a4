//! Differential verification of an optimisation: run the original and the optimised model on
//! the same seeded inputs with the reference executor and measure how far their outputs drift.

use ssc_ir::{Dim, Model};

use crate::run::random_inputs;
use crate::Error;

/// How to verify.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Random input sets to run (0 turns verification off).
    pub samples: usize,
    /// Largest accepted norm-wise relative error, max|a-b| / max|a| per output.
    ///
    /// The default, 1e-4, is the bar the optimised model is held to against ONNX Runtime. Exact
    /// rewrites differ from the original only by one rounding of folded constants and by
    /// summation order (about 1e-7 per layer, around 1e-6 through a deep network), while real
    /// mistakes (a wrong pad, a dropped bias, a permuted channel) move outputs by a large
    /// fraction of their scale. Element-wise relative error is not used: it is ill-conditioned
    /// where an output cancels to about zero.
    pub tolerance: f64,
    pub seed: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            samples: 2,
            tolerance: 1e-4,
            seed: 0x5eed,
        }
    }
}

/// The outcome of verification.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Verification {
    pub samples: usize,
    /// Worst norm-wise relative error over all outputs and samples.
    pub max_rel_err: f64,
    /// The output where it occurred.
    pub worst_output: String,
    pub tolerance: f64,
    /// Why verification could not run (for example, ops the executor does not support).
    pub skipped: Option<String>,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.skipped.is_some() || self.max_rel_err <= self.tolerance
    }

    /// One line for humans.
    pub fn summary(&self) -> String {
        match &self.skipped {
            Some(why) => format!("verification skipped: {why}"),
            None => format!(
                "verified on {} random input sets: max rel err {:.2e} at `{}` (tolerance {:.0e})",
                self.samples, self.max_rel_err, self.worst_output, self.tolerance
            ),
        }
    }
}

/// Norm-wise relative error of `got` against `want`: max|a-b| / max|a| (0 when both are all
/// zero; infinite when shapes differ or only one side is finite).
pub fn rel_err(want: &ssc_ir::Tensor, got: &ssc_ir::Tensor) -> f64 {
    if want.dims != got.dims || want.dtype != got.dtype {
        return f64::INFINITY;
    }
    match (want.to_f64_vec(), got.to_f64_vec()) {
        (Some(a), Some(b)) => {
            let mut num = 0.0f64;
            let mut den = 0.0f64;
            for (x, y) in a.iter().zip(&b) {
                if x.is_finite() != y.is_finite() || (x.is_nan() != y.is_nan()) {
                    return f64::INFINITY;
                }
                if x.is_finite() {
                    num = num.max((x - y).abs());
                    den = den.max(x.abs());
                } else if !x.is_nan() && x != y {
                    return f64::INFINITY;
                }
            }
            if num == 0.0 {
                0.0
            } else {
                num / den.max(f64::MIN_POSITIVE)
            }
        }
        // Non-numeric outputs (strings) must match exactly.
        _ => {
            if want == got {
                0.0
            } else {
                f64::INFINITY
            }
        }
    }
}

/// Runs both models on `opts.samples` seeded random input sets and compares every output.
pub fn verify(
    original: &Model,
    optimized: &Model,
    input_shapes: &[(String, Vec<Dim>)],
    opts: &VerifyOptions,
) -> Result<Verification, Error> {
    let mut v = Verification {
        tolerance: opts.tolerance,
        ..Verification::default()
    };
    let before = match ssc_exec::Executor::new(original) {
        Ok(e) => e,
        Err(e @ ssc_exec::ExecError::Unsupported(_)) => {
            v.skipped = Some(e.to_string());
            return Ok(v);
        }
        Err(e) => return Err(e.into()),
    };
    let after = ssc_exec::Executor::new(optimized)?;
    for s in 0..opts.samples {
        let inputs = match random_inputs(original, input_shapes, opts.seed.wrapping_add(s as u64)) {
            Ok(i) => i,
            Err(e) => {
                v.skipped = Some(format!("no random inputs: {e}"));
                return Ok(v);
            }
        };
        // Random data is not valid for every model (indices, shapes): if the original itself
        // rejects it there is nothing to compare, which is a skip, not a failure.
        let want = match before.run(&inputs) {
            Ok(w) => w,
            Err(e) => {
                v.skipped = Some(format!("the original model rejects random inputs: {e}"));
                return Ok(v);
            }
        };
        // The optimised model failing where the original ran is a broken rewrite.
        let got = match after.run(&inputs) {
            Ok(g) => g,
            Err(e) => {
                v.max_rel_err = f64::INFINITY;
                v.worst_output = format!("(the optimised model fails: {e})");
                v.samples += 1;
                return Ok(v);
            }
        };
        for ((name, a), (_, b)) in want.iter().zip(&got) {
            let e = rel_err(a, b);
            if e > v.max_rel_err || v.worst_output.is_empty() {
                v.max_rel_err = v.max_rel_err.max(e);
                v.worst_output = name.clone();
            }
        }
        v.samples += 1;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssc_ir::Tensor;

    #[test]
    fn rel_err_is_normwise() {
        let a = Tensor::from_f32(vec![3], &[1.0, -2.0, 1e-9]);
        let b = Tensor::from_f32(vec![3], &[1.0, -2.0, 2e-9]);
        assert!(rel_err(&a, &b) < 1e-8);
        let c = Tensor::from_f32(vec![3], &[1.0, -2.2, 0.0]);
        assert!((rel_err(&a, &c) - 0.1).abs() < 1e-6);
        let d = Tensor::from_f32(vec![1, 3], &[1.0, -2.0, 1e-9]);
        assert_eq!(rel_err(&a, &d), f64::INFINITY);
        let n = Tensor::from_f32(vec![1], &[f32::NAN]);
        assert_eq!(rel_err(&n, &n), 0.0);
    }
}
