//! The JIT's own kernel-cost table, the calibration `plan::choice` prices layers with: written
//! by `scripts/calibrate_jit.py` from `calibrate_jit` (`plan::choice` tests) on this machine.
//! Do not edit by hand; re-run the script (it rewrites this file).
//!
//! Samples (G/s, 1 thread):
//! - dense f4 r18-l1-64-3x3-56: 117.94
//! - spmm r18-l1-64-3x3-56 at 0.2: 23.15
//! - spmm r18-l1-64-3x3-56 at 0.3: 25.01
//! - dense f4 r18-l2-128-3x3-28: 124.24
//! - spmm r18-l2-128-3x3-28 at 0.2: 24.84
//! - spmm r18-l2-128-3x3-28 at 0.3: 26.88
//! - dense f2 r18-l3-256-3x3-14: 82.54
//! - spmm r18-l3-256-3x3-14 at 0.2: 27.34
//! - spmm r18-l3-256-3x3-14 at 0.3: 27.31
//! - dense f2 r18-l4-512-3x3-7: 46.88
//! - spmm r18-l4-512-3x3-7 at 0.2: 23.15
//! - spmm r18-l4-512-3x3-7 at 0.3: 24.57
//! - dense direct r18-l2.0-64-128-s2: 49.43
//! - spmm r18-l2.0-64-128-s2 at 0.2: 18.75
//! - spmm r18-l2.0-64-128-s2 at 0.3: 21.06
//! - dense direct r18-l4.0-256-512-s2: 52.40
//! - spmm r18-l4.0-256-512-s2 at 0.2: 18.54
//! - spmm r18-l4.0-256-512-s2 at 0.3: 19.94
//! - dense direct r18-ds-128-256-1x1-s2: 42.90
//! - spmm r18-ds-128-256-1x1-s2 at 0.2: 13.41
//! - spmm r18-ds-128-256-1x1-s2 at 0.3: 14.63
//! - dense direct mb2-1x1-144-24-56: 54.55
//! - spmm mb2-1x1-144-24-56 at 0.2: 14.98
//! - spmm mb2-1x1-144-24-56 at 0.3: 16.04
//! - dense direct mb2-1x1-32-192-28: 46.55
//! - spmm mb2-1x1-32-192-28 at 0.2: 11.11
//! - spmm mb2-1x1-32-192-28 at 0.3: 14.29
//! - dense direct mb2-1x1-384-64-14: 54.44
//! - spmm mb2-1x1-384-64-14 at 0.2: 21.24
//! - spmm mb2-1x1-384-64-14 at 0.3: 22.94
//! - dense direct mb2-1x1-960-320-7: 54.03
//! - spmm mb2-1x1-960-320-7 at 0.2: 21.67
//! - spmm mb2-1x1-960-320-7 at 0.3: 22.59
//! - gemv r18-fc: 18.73
//! - sprow r18-fc at 0.1: 2.98
//! - sprow r18-fc at 0.2: 3.08
//! - sprow r18-fc at 0.3: 3.03
//! - gemv mb2-fc: 18.87
//! - sprow mb2-fc at 0.1: 3.00
//! - sprow mb2-fc at 0.2: 3.05
//! - sprow mb2-fc at 0.3: 3.02
//! - gemm mlp-fc1: 57.79
//! - splin mlp-fc1 at 0.1: 12.07
//! - splin mlp-fc1 at 0.2: 13.51
//! - splin mlp-fc1 at 0.3: 14.82
//! - gemm mlp-fc2: 52.79
//! - splin mlp-fc2 at 0.1: 16.00
//! - splin mlp-fc2 at 0.2: 21.07
//! - splin mlp-fc2 at 0.3: 21.33
//! - gemm crnn-20: 58.19
//! - splin crnn-20 at 0.1: 19.85
//! - splin crnn-20 at 0.2: 20.62
//! - splin crnn-20 at 0.3: 19.90
//! - gemm tok-64: 58.07
//! - splin tok-64 at 0.1: 12.73
//! - splin tok-64 at 0.2: 16.80
//! - splin tok-64 at 0.3: 18.47

/// `SpmmConv`'s rate in unblocked column entries per ns (G/s): the median over the
/// calibration layers of unstructured weights at 20% and 30% density, blocks of one channel.
pub(super) const SPMM_RATE: f64 = 21.0;
/// The dense kernels' rates in multiply-adds of the direct conv per ns (G/s), by the form
/// `DenseConv::new` gives a layer: Winograd F(4x4) (3x3 stride 1 on large planes).
pub(super) const DENSE_RATE_F4: f64 = 121.0;
/// Winograd F(2x2) (3x3 stride 1 on 14x14 and smaller planes) and the phase-split stem.
pub(super) const DENSE_RATE_F2: f64 = 65.0;
/// The direct, wide and GEMM kernels (strided and 1x1 layers).
pub(super) const DENSE_RATE_DIRECT: f64 = 52.0;
/// What one `SpmmConv` column costs beyond its multiply-adds, in multiply-adds (its load, its
/// table words, the loop): a model parameter the script carries (`--column-cost`), chosen
/// against the per-layer check of `scripts/bench_sparse.sh` (see `plan::choice`).
pub(super) const COLUMN_COST: usize = 2;
/// `kernels::sparse_linear`'s rate in FMAs of one non-zero on one row lane of A per ns
/// (G/s; rows padded to its 16-row vectors): the median over the linear calibration shapes
/// at 10-30% density, after the transpose term.
pub(super) const SPARSE_LINEAR_RATE: f64 = 18.0;
/// Its rate for a single row of A, in non-zeros per ns.
pub(super) const SPARSE_ROW_RATE: f64 = 3.0;
/// Its transpose of A, in elements per ns (a model parameter, `--transpose-rate`).
pub(super) const SPARSE_TRANSPOSE_RATE: f64 = 1.0;
/// The dense product of several rows (`kernels::packed_gemm`), multiply-adds per ns.
pub(super) const DENSE_GEMM_RATE: f64 = 58.0;
/// The dense product of one row (the `gemm` crate on the transposed weights), weights per ns.
pub(super) const DENSE_GEMV_RATE: f64 = 19.0;
