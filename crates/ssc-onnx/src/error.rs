//! Errors of ONNX import and export, each naming the file and the node, tensor or field at fault.

use std::path::{Path, PathBuf};

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
    /// `reason` is prost's message with a deep field path elided (see `OnnxError::decode`),
    /// so that a maliciously nested file still gets a one-line, bounded message.
    #[error("{path}: not an ONNX model (protobuf decoding failed: {reason})")]
    Decode { path: PathBuf, reason: String },
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

impl OnnxError {
    /// A [`OnnxError::Decode`] for `path`. prost names every message on the way to the fault
    /// (`GraphProto.node: AttributeProto.g: ...`), which for a deeply nested file runs to
    /// kilobytes; the outermost two and innermost two steps are kept.
    pub(crate) fn decode(path: &Path, e: &prost::DecodeError) -> OnnxError {
        let full = e.to_string();
        let msg = full
            .strip_prefix("failed to decode Protobuf message: ")
            .unwrap_or(&full);
        let parts: Vec<&str> = msg.split(": ").collect();
        const KEEP: usize = 2;
        let reason = if parts.len() > 2 * KEEP + 2 {
            // The last part is the description; the rest is the field path.
            let (path_parts, desc) = parts.split_at(parts.len() - 1);
            format!(
                "{}: ... {} more ...: {}: {}",
                path_parts[..KEEP].join(": "),
                path_parts.len() - 2 * KEEP,
                path_parts[path_parts.len() - KEEP..].join(": "),
                desc[0]
            )
        } else {
            msg.to_string()
        };
        OnnxError::Decode {
            path: path.to_path_buf(),
            reason,
        }
    }
}
