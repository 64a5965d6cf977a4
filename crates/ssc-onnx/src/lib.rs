//! ONNX import and export for ssc-opt: ModelProto (prost) <-> [`ssc_ir::Model`].
//!
//! Architecture invariant: import then export is the identity on a model's meaning. Every
//! node, attribute, name, domain, opset import, metadata entry and value_info survives; tensor
//! data is normalised to `raw_data` (bit-identical values). Fields the IR does not interpret
//! travel as encoded bytes and are written back unchanged.
//!
//! Bad input yields an [`OnnxError`] naming the file and the node, tensor or field; nothing
//! here panics on malformed files, and [`save`] never leaves a partial output file.

mod error;
mod export;
mod import;
mod tensor;

pub use error::OnnxError;
pub use export::{
    encode_model, encode_tensor_pb, is_raw, save, to_proto, write_atomic, ExternalData,
    SaveOptions, Saved, DEFAULT_EXTERNAL_THRESHOLD, PROTOBUF_LIMIT,
};
pub use import::{
    decode, load, load_model, load_tensor_pb, load_value_pb, Loaded, MAX_KNOWN_IR_VERSION,
};
