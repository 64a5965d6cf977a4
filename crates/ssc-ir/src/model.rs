//! A whole model: the main graph plus the model-level fields that must survive a round trip.

use bytes::Bytes;

use crate::Graph;

/// An operator-set import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpsetImport {
    /// `""` is the default ONNX domain.
    pub domain: String,
    pub version: i64,
}

/// A model. Fields the IR does not interpret (functions, training info, device configurations)
/// are the I/O layer's encoded messages, written back unchanged.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub ir_version: i64,
    pub opset_imports: Vec<OpsetImport>,
    pub producer_name: Option<String>,
    pub producer_version: Option<String>,
    pub domain: Option<String>,
    pub model_version: Option<i64>,
    pub doc_string: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub graph: Graph,
    pub functions: Vec<Bytes>,
    pub training_info: Vec<Bytes>,
    pub configuration: Vec<Bytes>,
}

impl Model {
    /// The opset version imported for the default ONNX domain (1 if none is declared, as the
    /// spec's oldest readers assumed).
    pub fn onnx_opset(&self) -> i64 {
        self.opset_imports
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .unwrap_or(1)
    }
}
