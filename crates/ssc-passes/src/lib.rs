//! Exact graph clean-ups and shape/type inference on the ssc-opt IR.
//!
//! Architecture invariant: every rewrite here is exact. A rewritten model computes the same
//! function as the original in real arithmetic; in floating point it differs at most by one
//! rounding of folded constants (computed in f64, rounded once to the weights' type) and by the
//! runtime's summation order. Anything a runtime might compute differently (an undefined Cast, a
//! negative integer division) is left in the graph.
//!
//! API boundary: [`infer_shapes`] / [`infer_shapes_with`] for types, [`run_cleanups`] /
//! [`run_cleanups_with`] / [`run_phase`] for the named phases in [`PHASES`],
//! [`annotate_for_jit`] for the JIT's IR-only hints (module [`annotate`]), [`PassError`] for
//! everything that can fail. Passes operate on [`ssc_ir::Model`] only; this crate knows nothing
//! of protobuf or of the executor.

pub mod annotate;
mod args;
mod cast;
mod const_eval;
mod error;
mod infer;
mod passes;
mod pipeline;
mod util;

pub use annotate::{
    activation_step, annotate_for_jit, epilogue_of, sparse_density_of, AnnotateReport,
    EpilogueAnnotation, EpilogueStep, SparseLayer,
};
pub use cast::cast_tensor;
pub use error::PassError;
pub use infer::{infer_shapes, infer_shapes_with, InferOptions, InferReport};
pub use pipeline::{
    run_cleanups, run_cleanups_with, run_phase, PassOptions, PassReport, DEFAULT_FOLD_SIZE_LIMIT,
    PHASES,
};
