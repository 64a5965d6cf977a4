//! Constant matrix weights of Gemm and MatMul: which inputs and outputs matter, which outputs
//! repeat, and whether the matrix is block-diagonal under permutations.

use std::fmt;

use serde::Serialize;
use ssc_ir::Tensor;

use crate::classes::{channel_classes, filter_classes, plain_classes, FilterClass};
use crate::connectivity::Connectivity;
use crate::decode::{check_channels, with_values};
use crate::elem::Elem;
use crate::report::{conn_str, pct, unified_str, ChannelSummary};
use crate::scan::{Dims, Layout, Scan};
use crate::{AnalysisOptions, StructureError};

/// Everything the analysis found in a matrix `B[K, N]` used as `Y = X @ B` (rows are inputs,
/// columns are outputs).
#[derive(Clone, Debug, Serialize)]
pub struct MatrixStructure {
    /// K, the input features.
    pub rows: usize,
    /// N, the output features.
    pub cols: usize,
    /// The tolerance used; 0 means exact.
    pub epsilon: f32,
    /// Facts hold only up to `epsilon`.
    pub approximate: bool,
    /// Entries, `K * N`.
    pub numel: u64,
    /// Non-zero entries: MACs per output row of `Y`.
    pub nnz: u64,
    /// `1 - nnz / numel`.
    pub zero_fraction: f64,
    /// Inputs that contribute nothing (all-zero rows).
    pub zero_rows: Vec<u32>,
    /// Outputs that are constant (all-zero columns: the output is the bias).
    pub zero_cols: Vec<u32>,
    /// Classes of two or more non-zero identical rows (inputs that can be summed first).
    pub row_classes: Vec<Vec<u32>>,
    /// Classes of non-zero rows, singletons included.
    pub distinct_rows: usize,
    /// Classes of two or more non-zero columns equal up to sign (outputs computed once).
    pub column_classes: Vec<FilterClass>,
    /// Classes of non-zero columns, singletons included.
    pub distinct_cols: usize,
    /// Components of the non-zero pattern; `outputs` are columns, `inputs` are rows.
    pub connectivity: Connectivity,
}

/// Analyses a matrix `B[K, N]` (the second operand of MatMul, or of Gemm with `transB = 0`).
///
/// ```
/// use ssc_ir::Tensor;
/// use ssc_structure::{analyze_matrix, AnalysisOptions};
///
/// // Column 1 is column 0 negated, column 2 is zero, row 2 is unused.
/// let b = Tensor::from_f32(vec![3, 3], &[1.0, -1.0, 0.0, 2.0, -2.0, 0.0, 0.0, 0.0, 0.0]);
/// let m = analyze_matrix(&b, &AnalysisOptions::default())?;
/// assert_eq!(m.zero_cols, vec![2]);
/// assert_eq!(m.zero_rows, vec![2]);
/// assert!(m.column_classes[0].members[1].negated);
/// # Ok::<(), ssc_structure::StructureError>(())
/// ```
pub fn analyze_matrix(
    b: &Tensor,
    opts: &AnalysisOptions,
) -> Result<MatrixStructure, StructureError> {
    analyze(b, false, opts)
}

/// Analyses a matrix stored transposed, `Bt[N, K]` (Gemm with `transB = 1`); the result is
/// the same as [`analyze_matrix`] of its transpose.
pub fn analyze_matrix_transposed(
    bt: &Tensor,
    opts: &AnalysisOptions,
) -> Result<MatrixStructure, StructureError> {
    analyze(bt, true, opts)
}

fn analyze(
    t: &Tensor,
    transposed: bool,
    opts: &AnalysisOptions,
) -> Result<MatrixStructure, StructureError> {
    opts.validate()?;
    if t.dims.len() != 2 {
        return Err(StructureError::MatrixRank(t.dims.clone()));
    }
    let (k, n) = if transposed {
        (t.dims[1], t.dims[0])
    } else {
        (t.dims[0], t.dims[1])
    };
    check_channels(k)?;
    check_channels(n)?;
    let d = Dims {
        co: n,
        cig: k,
        groups: 1,
        taps: 1,
        centre: Some(0),
        layout: if transposed { Layout::Oik } else { Layout::Io },
    };
    with_values(
        t,
        |v| build(v, &d, opts.epsilon),
        |v| build(v, &d, opts.epsilon),
    )
}

fn build<T: Elem>(w: &[T], d: &Dims, epsilon: f32) -> MatrixStructure {
    let approx = epsilon > 0.0;
    let eps = T::from_f32(epsilon);
    let mut s = if approx {
        Scan::run::<T, true>(w, d, eps)
    } else {
        Scan::run::<T, false>(w, d, eps)
    };
    let connectivity = Connectivity::build(&mut s.uf_all, d.co, d.ci(), &s.out_nz, &s.in_nz);
    let classes = channel_classes(w, d, &s, eps, approx);
    let numel = w.len() as u64;
    MatrixStructure {
        rows: d.cig,
        cols: d.co,
        epsilon,
        approximate: approx,
        numel,
        nnz: s.nnz,
        zero_fraction: if numel == 0 {
            0.0
        } else {
            1.0 - s.nnz as f64 / numel as f64
        },
        zero_rows: connectivity.isolated_inputs.clone(),
        zero_cols: connectivity.isolated_outputs.clone(),
        row_classes: plain_classes(&classes.inputs),
        distinct_rows: classes.inputs.len(),
        column_classes: filter_classes(&classes.outputs),
        distinct_cols: classes.outputs.len(),
        connectivity,
    }
}

/// One line: `Matrix 512x1000: Z 0%; dense; cols 10/12 distinct (±)`.
impl fmt::Display for MatrixStructure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Matrix {}x{}", self.rows, self.cols)?;
        if self.approximate {
            write!(f, " eps={}", self.epsilon)?;
        }
        write!(
            f,
            ": Z {}; {}",
            pct(self.zero_fraction),
            conn_str(&self.connectivity, "dense")
        )?;
        let extra = unified_str(&ChannelSummary {
            input_classes: &self.row_classes,
            distinct_inputs: self.distinct_rows,
            output_classes: &self.column_classes,
            distinct_outputs: self.distinct_cols,
            zero_outputs: self.zero_cols.len(),
            zero_inputs: self.zero_rows.len(),
            names: ("cols", "rows"),
        });
        if !extra.is_empty() {
            write!(f, "; {}", extra.join(", "))?;
        }
        Ok(())
    }
}
