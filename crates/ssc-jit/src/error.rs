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
    /// The model is malformed for planning (a cycle, say).
    #[error("model: {0}")]
    Model(String),
    /// The model uses something the JIT cannot plan at all (sequence, optional or other
    /// non-tensor values); the reference executor may still run it.
    #[error("the JIT does not cover this model: {0}")]
    NotCovered(String),
    /// Shape inference failed, or an input's shape is not known at compile time.
    #[error("shapes: {0}")]
    Shape(String),
    #[error("graph input `{0}` was not fed and has no default")]
    MissingInput(String),
    #[error("`{0}` is not an input of the compiled model")]
    UnknownInput(String),
    #[error("input `{name}`: {msg}")]
    BadInput { name: String, msg: String },
    /// A fallback node failed in the reference kernel.
    #[error(transparent)]
    Exec(#[from] ssc_exec::ExecError),
    /// A run-time inconsistency (a fallback node produced another shape than inferred).
    #[error("run: {0}")]
    Run(String),
    #[error("could not start the thread pool: {0}")]
    Threads(String),
    /// A kernel description is inconsistent (weight length, geometry, bias length, ...).
    #[error("invalid kernel spec: {0}")]
    Invalid(String),
    /// A valid kernel description this generator does not handle (e.g. an image too large).
    #[error("unsupported kernel: {0}")]
    Unsupported(String),
}
