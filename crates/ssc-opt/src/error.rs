//! What kind of failure an [`Error`] is, and its one-line message: the CLI's exit codes and
//! the Python exception classes are both chosen from [`Error::kind`], and both print
//! [`one_line`], so the two front ends never disagree about a failure.

use crate::Error;

/// The class of a failure, as a front end reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ErrorKind {
    /// The model is unreadable, truncated or inconsistent (a protobuf that does not decode, a
    /// dangling input, a shape that cannot be, an external-data file that is missing).
    BadModel,
    /// The model is valid but uses an op (or an attribute value, or an opset) that the engine
    /// asked for cannot run.
    UnsupportedOp,
    /// The optimised model's outputs drifted past the tolerance; nothing was written.
    VerificationFailed,
    /// The caller's request does not fit the model: an unknown or missing input, a fed tensor of
    /// the wrong type or shape, a bad input-shape override, a bad option value.
    InvalidArgument,
    /// Reading or writing a file failed (permissions, a missing directory, a full disk).
    Io,
    /// Anything else: code generation, the thread pool, a rewrite that could not be
    /// materialised. These are bugs or host limits, not the caller's fault.
    Internal,
}

impl Error {
    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        use ssc_exec::ExecError as X;
        use ssc_jit::JitError as J;
        use ssc_onnx::OnnxError as O;
        use ssc_passes::PassError as P;
        let exec = |e: &X| match e {
            X::Unsupported(_) => ErrorKind::UnsupportedOp,
            X::MissingInput(_)
            | X::UnknownInput(_)
            | X::DuplicateInput { .. }
            | X::BadInput { .. } => ErrorKind::InvalidArgument,
            X::Node { .. } | X::Undefined(_) | X::BadValue { .. } | X::Ir(_) => ErrorKind::BadModel,
        };
        match self {
            Error::Onnx(O::Io { .. } | O::Output { .. }) => ErrorKind::Io,
            Error::Onnx(_) | Error::Ir(_) | Error::Structure(_) => ErrorKind::BadModel,
            Error::Exec(e) => exec(e),
            // Input-shape overrides and phase names are the caller's; contradictory shapes and
            // types are the model's.
            Error::Pass(
                P::UnknownInput { .. }
                | P::OverrideRank { .. }
                | P::OverrideConflict { .. }
                | P::OverrideUntyped { .. }
                | P::UnknownPhase { .. },
            ) => ErrorKind::InvalidArgument,
            Error::Pass(_) => ErrorKind::BadModel,
            Error::Rewrite(ssc_rewrite::RewriteError::Epsilon(_)) => ErrorKind::InvalidArgument,
            Error::Rewrite(ssc_rewrite::RewriteError::Ir(_)) => ErrorKind::BadModel,
            Error::Rewrite(_) => ErrorKind::Internal,
            Error::Jit(J::Exec(e)) => exec(e),
            Error::Jit(J::MissingInput(_) | J::UnknownInput(_) | J::BadInput { .. }) => {
                ErrorKind::InvalidArgument
            }
            Error::Jit(J::Model(_) | J::Shape(_)) => ErrorKind::BadModel,
            Error::Jit(J::NotCovered(_) | J::Unsupported(_)) => ErrorKind::UnsupportedOp,
            Error::Jit(_) => ErrorKind::Internal,
            Error::Npy(crate::NpyError::Io { .. }) => ErrorKind::Io,
            Error::Npy(_) | Error::Usage(_) | Error::CostModel { .. } => ErrorKind::InvalidArgument,
            Error::VerificationFailed(_) => ErrorKind::VerificationFailed,
        }
    }
}

/// An error and its causes on one line, outermost first, leaving out a cause whose text an
/// outer message already contains (wrapping errors often repeat their source).
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn kinds_of_common_failures() {
        let garbage = crate::load_bytes(b"\x08\x07\x12garbage".to_vec(), "m.onnx").unwrap_err();
        assert_eq!(garbage.kind(), ErrorKind::BadModel);
        let missing = crate::load(Path::new("/nonexistent/m.onnx")).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::Io);
        let v = Error::VerificationFailed(crate::Verification::default());
        assert_eq!(v.kind(), ErrorKind::VerificationFailed);
        assert_eq!(Error::Usage("x".into()).kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn one_line_drops_repeated_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone\nreally");
        let e = crate::Error::Onnx(ssc_onnx::OnnxError::Io {
            path: "a.onnx".into(),
            source: io,
        });
        // The Io variant prints its source itself, so the source is not repeated.
        assert_eq!(one_line(&e), "a.onnx: gone really");
    }
}
