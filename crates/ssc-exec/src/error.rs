//! Typed errors: every failure names the node (or graph input) and the problem.

use std::collections::BTreeMap;
use std::fmt;

use ssc_ir::IrError;

/// One op the executor cannot run, and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unsupported {
    /// The op's label: its name, or `OpType#index` when unnamed.
    pub node: String,
    pub op_type: String,
    /// `""` for the default ONNX domain.
    pub domain: String,
    /// Empty when the op type itself is unknown; otherwise the unsupported attribute value or
    /// opset.
    pub reason: String,
}

/// What can go wrong preparing or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Every unsupported op of the model, found in one pass (or, for a condition only a run
    /// can see, such as a Dropout whose `training_mode` input is true, the op that met it).
    #[error("unsupported ops: {}", DisplayUnsupported(.0))]
    Unsupported(Vec<Unsupported>),
    /// An op failed at run time (bad shapes, types or attribute values).
    #[error("node `{node}` ({op_type}): {msg}")]
    Node {
        node: String,
        op_type: String,
        msg: String,
    },
    #[error("graph input `{0}` was not fed and has no initializer")]
    MissingInput(String),
    #[error("`{0}` is not an input of the graph")]
    UnknownInput(String),
    #[error("input `{name}` was fed twice")]
    DuplicateInput { name: String },
    /// A fed input does not match the graph input's declared type.
    #[error("input `{name}`: {msg}")]
    BadInput { name: String, msg: String },
    /// A value the graph needs is neither fed, an initializer, nor produced by an op.
    #[error("value `{0}` is read but never defined")]
    Undefined(String),
    /// An initializer or constant that the executor cannot decode.
    #[error("value `{name}`: {msg}")]
    BadValue { name: String, msg: String },
    #[error(transparent)]
    Ir(#[from] IrError),
}

impl ExecError {
    /// The unsupported ops, when this is an [`ExecError::Unsupported`].
    pub fn unsupported(&self) -> Option<&[Unsupported]> {
        match self {
            ExecError::Unsupported(v) => Some(v),
            _ => None,
        }
    }
}

/// Groups unsupported ops by (domain, type, reason) and lists the nodes of each group.
struct DisplayUnsupported<'a>(&'a [Unsupported]);

impl fmt::Display for DisplayUnsupported<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut groups: BTreeMap<(&str, &str, &str), Vec<&str>> = BTreeMap::new();
        for u in self.0 {
            groups
                .entry((&u.domain, &u.op_type, &u.reason))
                .or_default()
                .push(&u.node);
        }
        for (i, ((domain, op, reason), nodes)) in groups.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if domain.is_empty() {
                write!(f, "{op}")?;
            } else {
                write!(f, "{domain}::{op}")?;
            }
            if !reason.is_empty() {
                write!(f, " ({reason})")?;
            }
            write!(f, " at {}", nodes.join(", "))?;
        }
        Ok(())
    }
}
