//! The ssc-opt intermediate representation.
//!
//! A [`Model`] owns a [`Graph`]: a petgraph of op and value nodes, with initializers in a tensor
//! store keyed by value. Ops the IR has no special knowledge of are simply ops whose type no pass
//! recognises; every attribute, name and domain is kept, so they pass through untouched.
//!
//! Architecture invariant: this crate knows nothing of protobuf, egg or Cranelift. Fields it does
//! not interpret are carried as opaque byte strings that only the I/O layer encodes and decodes.

mod attr;
mod dtype;
mod error;
mod graph;
mod model;
mod run_value;
mod tensor;
pub mod text;
mod types;

pub use attr::{AttrValue, Attribute, OpaqueAttrKind};
pub use dtype::DataType;
pub use error::IrError;
pub use graph::{Edge, Graph, GraphExtras, Node, Op, OpDesc, OpId, Use, Value, ValueId};
pub use model::{Model, OpsetImport};
pub use run_value::RunValue;
pub use tensor::{checked_numel, Tensor, TensorData};
pub use text::{parse_graph, parse_model, print_graph, print_model, ParseError};
pub use types::{Dim, TensorType, ValueType};
