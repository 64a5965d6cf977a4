//! The choice between the dense product (`kernels::packed_gemm`, or the `gemm` crate's
//! matrix-vector product for one row) and `kernels::sparse_linear` for a Gemm / MatMul with a
//! constant sparse B, from the rates of `plan::calibration` (the `calibrate_jit_linear` test
//! below, read by `scripts/calibrate_jit.py`).
//!
//! The model: the sparse kernel costs one FMA per non-zero and per 16-row vector of A's rows
//! (a single row: one scalar FMA per non-zero), at [`SPARSE_LINEAR_RATE`] (rows of a vector
//! count whether used or not; [`SPARSE_ROW_RATE`] for one row), plus the transpose of A at
//! [`SPARSE_TRANSPOSE_RATE`]; the dense product costs `m k n` multiply-adds at
//! [`DENSE_GEMM_RATE`], or for one row `k n` weights read at [`DENSE_GEMV_RATE`]. The sparse
//! kernel is taken when its time is at most [`MARGIN`] of the dense one's, and never above
//! [`MAX_DENSITY`] (so a dense model's plans are unchanged).

use super::super::calibration::{
    DENSE_GEMM_RATE, DENSE_GEMV_RATE, SPARSE_LINEAR_RATE, SPARSE_ROW_RATE, SPARSE_TRANSPOSE_RATE,
};
use super::MAX_DENSITY;

/// The sparse kernel's predicted time over the dense one's at or below which it is taken.
const MARGIN: f64 = 0.9;

/// Predicted times in ns of the dense and the sparse product (`m x k x n`, `nnz` non-zeros).
pub(crate) fn times(m: usize, k: usize, n: usize, nnz: usize) -> (f64, f64) {
    if m <= 1 {
        return (
            (k * n) as f64 / DENSE_GEMV_RATE,
            nnz as f64 / SPARSE_ROW_RATE,
        );
    }
    let v = m.div_ceil(16).clamp(1, 4);
    let lanes = m.div_ceil(16 * v) * 16 * v;
    (
        (m * k * n) as f64 / DENSE_GEMM_RATE,
        (nnz * lanes) as f64 / SPARSE_LINEAR_RATE + (m * k) as f64 / SPARSE_TRANSPOSE_RATE,
    )
}

/// Whether `kernels::sparse_linear` is predicted to beat the dense product (AVX-512 hosts;
/// see the module docs).
pub(crate) fn sparse_pays(m: usize, k: usize, n: usize, nnz: usize) -> bool {
    if !crate::kernels::par::has_avx512f() || k * n == 0 {
        return false;
    }
    if nnz as f64 > MAX_DENSITY as f64 * (k * n) as f64 {
        return false;
    }
    let (dense, sparse) = times(m, k, n, nnz);
    sparse <= MARGIN * dense
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_half_dense_matrices_stay_dense() {
        for &(m, k, n) in &[(1, 512, 1000), (32, 1024, 1024), (7, 100, 30)] {
            assert!(!sparse_pays(m, k, n, k * n));
            assert!(!sparse_pays(m, k, n, k * n * 4 / 5));
        }
    }

    #[test]
    fn the_crossover_is_monotone_in_the_non_zeros() {
        for &(m, k, n) in &[
            (1, 512, 1000),
            (32, 1024, 1024),
            (20, 256, 512),
            (100, 64, 64),
        ] {
            let first_dense = (0..=k * n)
                .step_by(k.max(1))
                .find(|&z| !sparse_pays(m, k, n, z));
            if let Some(z0) = first_dense {
                for z in (z0..=k * n).step_by(k) {
                    assert!(!sparse_pays(m, k, n, z), "{m}x{k}x{n}: {z} non-zeros");
                }
            }
        }
    }

    /// Calibration of the rates this model uses (run by `scripts/calibrate_jit.py` with
    /// `calibrate_jit`): per shape, the dense product the planner gives it and the sparse
    /// kernel at 10%, 20% and 30% density, 1 thread. Prints `CAL` lines.
    #[test]
    #[ignore]
    fn calibrate_jit_linear() {
        use crate::kernels::linear::Linear;
        use crate::kernels::packed_gemm::PackedB;
        use crate::kernels::sparse_linear::SparseB;
        use crate::testutil::{interleaved_ms, Rng};
        if !crate::kernels::par::has_avx512f() {
            return;
        }
        let shapes = [
            ("r18-fc", 1, 512, 1000),
            ("mb2-fc", 1, 1280, 1000),
            ("mlp-fc1", 32, 512, 1024),
            ("mlp-fc2", 32, 1024, 1024),
            ("crnn-20", 20, 512, 512),
            ("tok-64", 64, 256, 768),
        ];
        for (name, m, k, n) in shapes {
            let mut rng = Rng(7);
            let a: Vec<f32> = (0..m * k).map(|_| rng.unit()).collect();
            let mut y = vec![0f32; m * n];
            let b: Vec<f32> = (0..k * n).map(|_| rng.unit()).collect();
            // The dense product as `plan::linear` gives it: packed for several rows, the
            // transposed weights read in place for one.
            let dense = Linear {
                m,
                k,
                n,
                trans_a: false,
                trans_b: m == 1,
                alpha: 1.0,
                beta: 1.0,
                c_strides: None,
                batches: vec![],
                b_const: None,
                packed: (m > 1).then(|| PackedB::new(&b, (k, n), (n, 1))),
                sparse: None,
            };
            let [td] = interleaved_ms::<1>(15, |_| dense.run(&a, Some(&b), None, &mut y, &mut []));
            if m == 1 {
                println!("CAL gemv {name} {:.2}", (k * n) as f64 / td / 1e6);
            } else {
                println!("CAL gemm {name} {:.2}", (m * k * n) as f64 / td / 1e6);
            }
            for density in [0.1f32, 0.2, 0.3] {
                let bs: Vec<f32> = b
                    .iter()
                    .map(|&v| {
                        if rng.unit() * 0.5 + 0.5 < density {
                            v
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let s = SparseB::new(&bs, (k, n), (n, 1)).unwrap();
                let nnz = s.nnz();
                let mut scratch = vec![0f32; s.scratch_len(m)];
                let [ts] = interleaved_ms::<1>(15, |_| s.gemm(m, &a, &mut y, false, &mut scratch));
                if m == 1 {
                    println!("CAL sprow {name} {density} {:.2}", nnz as f64 / ts / 1e6);
                } else {
                    let (_, model) = times(m, k, n, nnz);
                    let v = m.div_ceil(16).clamp(1, 4);
                    let lanes = m.div_ceil(16 * v) * 16 * v;
                    // The rate the table's transpose term leaves for the FMAs.
                    let transpose = (m * k) as f64 / SPARSE_TRANSPOSE_RATE;
                    let fma_ns = (ts * 1e6 - transpose).max(1.0);
                    println!(
                        "CAL splin {name} {density} {:.2} (model {:.3} ms, measured {:.3})",
                        (nnz * lanes) as f64 / fma_ns,
                        model / 1e6,
                        ts
                    );
                }
            }
        }
    }
}
