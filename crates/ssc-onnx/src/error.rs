//! Errors of ONNX import and export, each naming the file and the node, tensor or field at fault.

use std::path::PathBuf;

/// What can go wrong reading or writing an ONNX file.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: not an ONNX model (protobuf decoding failed: {source})")]
    Decode {
        path: PathBuf,
        #[source]
        source: prost::DecodeError,
    },
    /// The protobuf decoded but the model breaks an ONNX rule; `what` names the field or node.
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error("{path}: tensor `{tensor}`: external data: {what}")]
    ExternalData {
        path: PathBuf,
        tensor: String,
        what: String,
    },
    #[error("{path}: refusing to write: {what}")]
    Output { path: PathBuf, what: String },
}
