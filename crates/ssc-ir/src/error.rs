//! Errors raised by IR construction and attribute access.

use crate::DataType;

/// What can go wrong building or reading the IR.
#[derive(Debug, thiserror::Error)]
pub enum IrError {
    #[error("value name is empty")]
    EmptyName,
    #[error("value `{0}` is defined twice")]
    DuplicateName(String),
    #[error("value `{value}` is produced by both `{first}` and `{second}`")]
    MultipleProducers {
        value: String,
        first: String,
        second: String,
    },
    #[error("the graph has a cycle through node `{0}`")]
    Cycle(String),
    #[error("dims {0:?} overflow the address space")]
    ShapeOverflow(Vec<usize>),
    #[error("{dtype} tensor with dims {dims:?} needs {expected} bytes of data but has {actual}")]
    DataLength {
        dtype: DataType,
        dims: Vec<usize>,
        expected: usize,
        actual: usize,
    },
    #[error("node `{node}`: attribute `{attr}` should be {expected} but is {found}")]
    AttrKind {
        node: String,
        attr: String,
        expected: &'static str,
        found: &'static str,
    },
}
