//! The one error type of this crate, so callers see which pass failed and on which node or value.

use ssc_ir::IrError;

/// What can go wrong running inference or a clean-up pass.
///
/// Passes skip rewrites whose preconditions do not hold (a weird but valid model stays as it is);
/// these errors are for inputs that are impossible (inconsistent shapes, a cycle) or for requests
/// that cannot be honoured (an unknown phase, a bad `--input-shape`).
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Ir(#[from] IrError),

    #[error("--input-shape names `{name}`, which is not a graph input (inputs: {inputs})")]
    UnknownInput { name: String, inputs: String },

    #[error("--input-shape for `{name}` has rank {given}, but the input is declared with rank {declared}")]
    OverrideRank {
        name: String,
        declared: usize,
        given: usize,
    },

    #[error("--input-shape for `{name}`: dimension {axis} is declared as {declared}, cannot set it to {given}")]
    OverrideConflict {
        name: String,
        axis: usize,
        declared: usize,
        given: usize,
    },

    #[error("--input-shape for `{name}`: the input has no declared tensor element type")]
    OverrideUntyped { name: String },

    #[error("value `{value}`: declared type {declared} disagrees with the inferred {inferred} (from node `{node}`)")]
    TypeConflict {
        value: String,
        declared: String,
        inferred: String,
        node: String,
    },

    #[error("node `{node}` ({op_type}): {msg}")]
    Shape {
        node: String,
        op_type: String,
        msg: String,
    },

    #[error("unknown phase `{name}` (known phases: {known})")]
    UnknownPhase { name: String, known: String },
}
