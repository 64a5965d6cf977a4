//! The ssc-opt JIT: compiles an optimised model into native CPU kernels, once, and runs it many times.

pub mod codegen;
mod error;
pub mod spec;

pub use error::JitError;
