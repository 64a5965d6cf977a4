//! Regenerates the committed prost types for ONNX, so no build of ssc-opt ever needs `protoc`.
//!
//! Run from the repository root: `cargo run --manifest-path tools/gen-proto/Cargo.toml`.
//! It parses `crates/onnx-proto/proto/onnx-ml.proto` and `onnx-data.proto` (the test-data
//! messages: SequenceProto, OptionalProto, MapProto; its import of `onnx/onnx-ml.proto` is
//! shortened to `onnx-ml.proto`) with protox (a pure-Rust protobuf compiler) and writes
//! `crates/onnx-proto/src/onnx.rs` with prost-build.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = Path::new("crates/onnx-proto/proto");
    let out_dir = Path::new("crates/onnx-proto/src");
    let fds = protox::compile(
        [proto_dir.join("onnx-ml.proto"), proto_dir.join("onnx-data.proto")],
        [proto_dir],
    )?;
    let tmp = std::env::temp_dir().join("ssc-opt-gen-proto");
    std::fs::create_dir_all(&tmp)?;
    prost_build::Config::new()
        // `bytes::Bytes` lets the decoder slice tensor payloads out of the file buffer
        // instead of copying them, which keeps peak memory near the file size.
        .bytes(["."])
        .out_dir(&tmp)
        .compile_fds(fds)?;
    let generated = std::fs::read_to_string(tmp.join("onnx.rs"))?;
    let header = "//! Prost types for ONNX, generated from `proto/onnx-ml.proto` and `proto/onnx-data.proto` by `tools/gen-proto`; do not edit.\n\n";
    std::fs::write(out_dir.join("onnx.rs"), format!("{header}{generated}"))?;
    eprintln!("wrote {}", out_dir.join("onnx.rs").display());
    Ok(())
}
