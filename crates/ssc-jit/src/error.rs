//! The JIT's typed errors.

use thiserror::Error;

/// Everything compiling or running a model with the JIT can fail with.
#[derive(Debug, Error)]
pub enum JitError {
    /// Cranelift rejected or failed to compile a generated function.
    #[error("code generation failed for {kernel}: {msg}")]
    Codegen { kernel: String, msg: String },
    /// The host CPU lacks a feature the generated code needs.
    #[error("unsupported host: {0}")]
    Host(String),
}
