//! Fuzz target `import`: arbitrary bytes must never make the ONNX importer or exporter panic.
//!
//! Anything that decodes is exported again and re-decoded: export must succeed and its output
//! must import, since import then export is meant to be the identity on a model's meaning.
#![no_main]

use std::path::Path;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.onnx");
    let Ok(loaded) = ssc_onnx::decode(Bytes::copy_from_slice(data), path, None) else {
        return;
    };
    let bytes = ssc_onnx::encode_model(&loaded.model).expect("an imported model exports");
    let again = ssc_onnx::decode(Bytes::from(bytes.clone()), path, None)
        .unwrap_or_else(|e| panic!("an exported model re-imports: {e}"));
    // A second export is a fixed point: the same bytes.
    let twice = ssc_onnx::encode_model(&again.model).expect("a re-imported model exports");
    assert!(twice == bytes, "export is not a fixed point");
});
