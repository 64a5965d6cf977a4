//! The ssc-opt reference executor: plain, obviously-correct Rust that runs an [`ssc_ir::Model`].
//!
//! It is the oracle that rewrites and the JIT are checked against, and it backs `ssc-opt run`.
//! Clarity comes first, then enough speed for real CNNs (ResNet-50 at 224x224 in seconds, on
//! one thread).
//!
//! * [`Executor`] prepares a model once (support check, topological order, decoded
//!   initializers, last uses so intermediates are freed early) and runs it on
//!   [`ssc_ir::Tensor`] feeds; [`run_model`] does both.
//! * [`mlas`] holds onnxruntime's f32 activation arithmetic, which the JIT shares.
//! * [`check_supported`] lists every op the executor cannot run, without running anything.
//! * [`eval_node`] evaluates one node on constant inputs, for constant folding;
//!   [`eval_node_with`] also feeds the values its subgraphs capture (the JIT's fallback).
//!
//! Precision policy: every output keeps its input's element type; f16 and bf16 compute
//! through f32/f64 and round back once. Elementwise float math is done in f64 and rounded once,
//! which for `+ - * /` gives exactly the native f32 result (and is closer than native f32 for
//! exp, tanh, erf...). Reductions, Softmax sums, Sum/Mean, pooling averages and normalisation
//! statistics accumulate in f64. Conv, ConvTranspose, Gemm and MatMul accumulate dot products
//! fully in f64 (see `linalg`: f32 products are exact in f64), so their f32 results are almost
//! always correctly rounded. Integer arithmetic goes through i128 and wraps to the element type
//! like C; integer division truncates toward zero. (Integer Gemm/MatMul results pass through
//! f64 and are exact only below 2^53.)
//!
//! Where the ONNX spec text, onnxruntime and the ONNX reference implementation disagree
//! (ConvTranspose `output_shape` padding, Resize's real-valued resized length), the executor
//! follows the reference implementation, which produced the conformance test data.
//!
//! Architecture invariant: depends only on `ssc-ir` (plus `half` and `thiserror`); it knows
//! nothing of protobuf, passes or the JIT. One op family per file under `ops/`, all registered
//! in one table (`ops::OPS`) that both the support check and evaluation read.

mod ctx;
mod error;
mod executor;
mod layout;
mod linalg;
pub mod mlas;
mod ops;
mod support;
mod value;

#[cfg(test)]
mod tests;

pub use error::{ExecError, Unsupported};
pub use executor::{
    dynamic_quantize_lstm_with, eval_node, eval_node_values, eval_node_with, resize_taps,
    run_model, Executor,
};
pub use ops::contrib::LstmProducts;
pub use ops::quant::dynamic_quant_params;
pub use ops::resize::{ResizeTaps, Taps as ResizeDimTaps};
pub use support::check_supported;

/// Every op type the executor implements (in the default ONNX domain), sorted.
pub fn supported_op_types() -> impl Iterator<Item = &'static str> {
    ops::OPS.iter().map(|(name, ..)| *name)
}
