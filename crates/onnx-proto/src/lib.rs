//! ONNX protobuf messages (prost), committed pre-generated so that building needs no `protoc`.
//!
//! Regenerate with `cargo run --manifest-path tools/gen-proto/Cargo.toml` after updating
//! `proto/onnx-ml.proto` (copied from the `onnx` Python package).

// Generated code is kept exactly as prost-build writes it, so regenerating never shows a diff.
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
mod onnx;

pub use onnx::*;
pub use prost::Message;
