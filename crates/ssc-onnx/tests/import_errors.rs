//! The importer's error paths, driven programmatically, plus the external-data round trip.
//!
//! Each test builds a `ModelProto` with the prost types, breaks one ONNX rule, encodes it and
//! checks that `ssc_onnx::decode` returns an error naming the file and the node, tensor or field
//! at fault (and never panics or allocates what the input merely claims). The CLI-level twin of
//! these checks, on committed files, is `crates/ssc-opt-cli/tests/malformed.rs`.

use std::path::Path;

use bytes::Bytes;
use onnx_proto::tensor_proto::DataLocation;
use onnx_proto::{
    attribute_proto::AttributeType, AttributeProto, GraphProto, Message, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TypeProto, ValueInfoProto,
};
use ssc_ir::{DataType, TensorData};
use ssc_onnx::{decode, ExternalData, OnnxError, SaveOptions};

const FILE: &str = "bad.onnx";

fn vi(name: &str, dims: &[i64]) -> ValueInfoProto {
    use onnx_proto::tensor_shape_proto::{dimension::Value as D, Dimension};
    use onnx_proto::type_proto::{Tensor, Value};
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(Value::TensorType(Tensor {
                elem_type: Some(1),
                shape: Some(onnx_proto::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            denotation: None,
                            value: Some(D::DimValue(d)),
                        })
                        .collect(),
                }),
            })),
        }),
        ..Default::default()
    }
}

fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        name: Some(name.into()),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(1),
        dims: dims.to_vec(),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// X[1,3] @ W[3,2] -> Y[1,2].
fn base() -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![node("mm", "MatMul", &["X", "W"], &["Y"])],
            input: vec![vi("X", &[1, 3])],
            output: vec![vi("Y", &[1, 2])],
            initializer: vec![f32_tensor("W", &[3, 2], &[0., 1., 2., 3., 4., 5.])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn graph(m: &mut ModelProto) -> &mut GraphProto {
    m.graph.as_mut().unwrap()
}

fn with_w(t: TensorProto) -> ModelProto {
    let mut m = base();
    graph(&mut m).initializer = vec![t];
    m
}

fn decode_bytes(buf: Vec<u8>) -> Result<ssc_onnx::Loaded, OnnxError> {
    decode(Bytes::from(buf), Path::new(FILE), None)
}

/// Decodes `m` and returns the error's message, checking it names the file and is one line.
fn err_of(m: &ModelProto) -> String {
    err_bytes(m.encode_to_vec())
}

fn err_bytes(buf: Vec<u8>) -> String {
    match decode_bytes(buf) {
        Ok(_) => panic!("expected an error"),
        Err(e) => {
            let s = e.to_string();
            assert!(s.starts_with(FILE), "message does not name the file: {s}");
            assert!(!s.contains('\n'), "message is not one line: {s}");
            s
        }
    }
}

#[track_caller]
fn assert_has(msg: &str, fragment: &str) {
    assert!(msg.contains(fragment), "`{msg}` lacks `{fragment}`");
}

#[test]
fn the_base_model_loads() {
    let l = decode_bytes(base().encode_to_vec()).unwrap();
    assert!(l.warnings.is_empty());
    assert_eq!(l.model.graph.op_count(), 1);
}

#[test]
fn not_a_model() {
    assert_has(&err_bytes(Vec::new()), "file is empty");
    assert_has(
        &err_bytes(b"\xff\xff\xff\xff".to_vec()),
        "not an ONNX model",
    );
    let valid = base().encode_to_vec();
    assert_has(
        &err_bytes(valid[..valid.len() / 2].to_vec()),
        "not an ONNX model",
    );
    assert_has(
        &err_bytes(b"# README\nhello\n".to_vec()),
        "not an ONNX model",
    );
}

#[test]
fn model_fields() {
    let mut m = base();
    m.graph = None;
    assert_has(&err_of(&m), "ModelProto.graph is missing");
    let mut m = base();
    m.ir_version = None;
    assert_has(&err_of(&m), "ModelProto.ir_version is missing");
    let mut m = base();
    m.opset_import[0].version = None;
    assert_has(&err_of(&m), "opset_import for domain `` has no version");
}

/// What ONNX Runtime loads (with a warning at most), the importer reads with a warning.
#[test]
fn quirks_onnx_runtime_accepts_warn_and_load() {
    let warnings = |m: &ModelProto| {
        let l = decode_bytes(m.encode_to_vec()).unwrap();
        assert!(
            l.warnings.iter().all(|w| w.starts_with(FILE)),
            "{:?}",
            l.warnings
        );
        (l.warnings, l.model)
    };
    let mut m = base();
    m.ir_version = Some(0);
    let (w, model) = warnings(&m);
    assert_has(&w.join("\n"), "ModelProto.ir_version 0 is invalid");
    assert_eq!(model.ir_version, 0);

    // A negative dim in a type (Paddle2ONNX's -1 batch) is read as unknown; one warning
    // names every such value.
    let mut m = base();
    graph(&mut m).input[0] = vi("X", &[-1, 3]);
    graph(&mut m).output[0] = vi("Y", &[-1, 2]);
    let (w, model) = warnings(&m);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_has(
        &w[0],
        "graph input `X` (-1) and 1 more: negative dimension in a declared type, read as unknown",
    );
    let g = &model.graph;
    let x = g.value_by_name("X").unwrap();
    let shape = g
        .value(x)
        .ty
        .as_ref()
        .unwrap()
        .tensor()
        .unwrap()
        .shape
        .clone();
    assert_eq!(
        shape,
        Some(vec![ssc_ir::Dim::Unknown, ssc_ir::Dim::Known(3)])
    );

    // A value_info without a name describes nothing.
    let mut m = base();
    graph(&mut m).value_info.push(ValueInfoProto::default());
    let (w, _) = warnings(&m);
    assert_has(&w.join("\n"), "a value_info entry has no name; ignored");

    // Two initializers of one name: the later one wins, as in ONNX Runtime.
    let mut m = base();
    let mut w2 = graph(&mut m).initializer[0].clone();
    w2.raw_data = Some(Bytes::from(
        [7.0f32; 6]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    ));
    graph(&mut m).initializer.push(w2);
    let (w, model) = warnings(&m);
    assert_has(
        &w.join("\n"),
        "initializer `W` is defined twice; using the later definition",
    );
    let g = &model.graph;
    let t = g.initializer(g.value_by_name("W").unwrap()).unwrap();
    assert_eq!(t.to_f64_vec().unwrap(), vec![7.0; 6]);
}

#[test]
fn a_future_ir_version_warns_and_loads() {
    let mut m = base();
    m.ir_version = Some(99);
    let l = decode_bytes(m.encode_to_vec()).unwrap();
    assert_eq!(l.warnings.len(), 1);
    assert_has(&l.warnings[0], "IR version 99 is newer");
    assert_eq!(l.model.ir_version, 99);
}

#[test]
fn wiring() {
    let mut m = base();
    graph(&mut m).node = vec![
        node("mm", "MatMul", &["X", "W"], &["h"]),
        node("add", "Add", &["h", "ghost"], &["Y"]),
    ];
    assert_has(&err_of(&m), "node `add` (Add) reads `ghost`");

    let mut m = base();
    graph(&mut m)
        .node
        .push(node("relu", "Relu", &["X"], &["Y"]));
    assert_has(
        &err_of(&m),
        "node `relu` writes `Y`, which is already defined",
    );

    let mut m = base();
    graph(&mut m)
        .node
        .push(node("relu", "Relu", &["X"], &["X"]));
    assert_has(
        &err_of(&m),
        "node `relu` writes `X`, which is already defined",
    );

    let mut m = base();
    graph(&mut m).output = vec![vi("Z", &[1, 2])];
    assert_has(&err_of(&m), "graph output `Z` is not produced");

    let mut m = base();
    graph(&mut m).node = vec![
        node("p", "Add", &["X", "b"], &["a"]),
        node("q", "Relu", &["a"], &["b"]),
        node("mm", "MatMul", &["a", "W"], &["Y"]),
    ];
    assert_has(&err_of(&m), "cycle through node `p`");

    let mut m = base();
    graph(&mut m).node[0].op_type = None;
    assert_has(&err_of(&m), "node `mm` has no op_type");

    let mut m = base();
    graph(&mut m).node[0].name = None;
    graph(&mut m).node[0].input[1] = "nope".into();
    assert_has(&err_of(&m), "node #0 (MatMul) reads `nope`");

    let mut m = base();
    let x = graph(&mut m).input[0].clone();
    graph(&mut m).input.push(x);
    assert_has(&err_of(&m), "graph input `X` is listed twice");

    let mut m = base();
    graph(&mut m).input.push(ValueInfoProto::default());
    assert_has(&err_of(&m), "graph input has no name");
}

#[test]
fn initializers() {
    let mut m = base();
    graph(&mut m).initializer[0].name = None;
    assert_has(&err_of(&m), "an initializer has no name");

    let mut t = f32_tensor("W", &[3, 2], &[]);
    t.raw_data = Some(Bytes::from_static(&[0; 8]));
    assert_has(
        &err_of(&with_w(t)),
        "initializer `W`: float tensor with dims [3, 2] needs 24 bytes of data but has 8",
    );

    let mut t = f32_tensor("W", &[3, 2], &[]);
    t.raw_data = None;
    t.float_data = vec![1.0; 5];
    assert_has(
        &err_of(&with_w(t)),
        "initializer `W`: float tensor with 6 elements has 5 typed values",
    );

    let mut t = f32_tensor("W", &[3, -2], &[0.0; 6]);
    t.raw_data = None;
    assert_has(
        &err_of(&with_w(t)),
        "initializer `W`: negative dimension -2",
    );

    let t = f32_tensor("W", &[1 << 32, 1 << 32], &[]);
    assert_has(
        &err_of(&with_w(t)),
        "initializer `W`: dims [4294967296, 4294967296] overflow",
    );

    let t = TensorProto {
        name: Some("W".into()),
        data_type: Some(8),
        dims: vec![3],
        string_data: vec![Bytes::from_static(b"a")],
        ..Default::default()
    };
    assert_has(
        &err_of(&with_w(t)),
        "initializer `W`: string tensor with dims [3] has 1 strings",
    );
}

/// Claimed sizes must be checked against the data present before anything is allocated: these
/// would abort the process (or overflow a multiply) if the importer trusted `dims`.
#[test]
fn huge_claims_do_not_allocate() {
    // 10^12 floats declared in the typed field, none present.
    let mut t = f32_tensor("W", &[1_000_000, 1_000_000], &[]);
    t.raw_data = None;
    assert_has(
        &err_of(&with_w(t)),
        "float tensor with 1000000000000 elements has 0 typed values",
    );
    // The same in raw_data.
    let t = f32_tensor("W", &[1_000_000, 1_000_000], &[]);
    assert_has(
        &err_of(&with_w(t)),
        "needs 4000000000000 bytes of data but has 0",
    );
    // The element count fits in usize but its byte size does not.
    let t = f32_tensor("W", &[1 << 62], &[]);
    assert_has(&err_of(&with_w(t)), "dims [4611686018427387904] overflow");
    // 2^63 complex elements: 2 floats each used to overflow a multiply.
    for code in [14, 15] {
        let t = TensorProto {
            name: Some("W".into()),
            data_type: Some(code),
            dims: vec![1 << 62, 2],
            ..Default::default()
        };
        assert_has(
            &err_of(&with_w(t)),
            "tensor with 9223372036854775808 elements has 0",
        );
    }
    // 6-bit floats are not repacked: a huge one stays opaque (as before), without allocating.
    let mut m = base();
    graph(&mut m).initializer.push(TensorProto {
        name: Some("F6".into()),
        data_type: Some(27),
        dims: vec![1_000_000, 1_000_000],
        ..Default::default()
    });
    let l = decode_bytes(m.encode_to_vec()).unwrap();
    let g = &l.model.graph;
    let t = g.initializer(g.value_by_name("F6").unwrap()).unwrap();
    assert!(matches!(t.data, TensorData::Opaque(_)));
    assert_eq!(t.dtype, DataType::Float6E2M3);
}

#[test]
fn attributes() {
    let mut m = base();
    let mut c = node("const", "Constant", &[], &["C"]);
    let mut bad = f32_tensor("", &[1, 2], &[]);
    bad.raw_data = Some(Bytes::from_static(&[0; 4]));
    c.attribute.push(AttributeProto {
        name: Some("value".into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(bad),
        ..Default::default()
    });
    graph(&mut m).node.push(c);
    assert_has(&err_of(&m), "node `const`: attribute `value`: float tensor");

    let mut m = base();
    graph(&mut m).node[0]
        .attribute
        .push(AttributeProto::default());
    assert_has(&err_of(&m), "node `mm` has an attribute with no name");

    let mut m = base();
    graph(&mut m).node[0].attribute.push(AttributeProto {
        name: Some("t".into()),
        r#type: Some(AttributeType::Tensor as i32),
        ..Default::default()
    });
    assert_has(&err_of(&m), "node `mm`: tensor attribute `t` has no tensor");
}

#[test]
fn subgraphs() {
    // A subgraph reading a name defined nowhere.
    let body = GraphProto {
        name: Some("then".into()),
        node: vec![node("inner", "Identity", &["nowhere"], &["o"])],
        output: vec![vi("o", &[1, 2])],
        ..Default::default()
    };
    let mut m = base();
    let mut iff = node("if", "If", &["X"], &["Z"]);
    iff.attribute.push(AttributeProto {
        name: Some("then_branch".into()),
        r#type: Some(AttributeType::Graph as i32),
        g: Some(body),
        ..Default::default()
    });
    graph(&mut m).node.push(iff);
    assert_has(
        &err_of(&m),
        "in subgraph `then_branch` of node `if`: node `inner` (Identity) reads `nowhere`, which no node, graph input or initializer produces",
    );
}

/// Nesting past prost's recursion limit is a decode error, not a stack overflow.
#[test]
fn deep_nesting_is_refused() {
    let mut g = GraphProto {
        name: Some("leaf".into()),
        ..Default::default()
    };
    for i in 0..60 {
        let mut n = node(&format!("if{i}"), "If", &["c"], &["o"]);
        n.attribute.push(AttributeProto {
            name: Some("then_branch".into()),
            r#type: Some(AttributeType::Graph as i32),
            g: Some(g),
            ..Default::default()
        });
        g = GraphProto {
            node: vec![n],
            ..Default::default()
        };
    }
    let mut m = base();
    graph(&mut m).node.push(g.node.pop().unwrap());
    let msg = err_of(&m);
    assert_has(&msg, "recursion limit reached");
    // prost's field path (one entry per level) is elided to keep the message short.
    assert_has(&msg, "GraphProto.node: AttributeProto.g: ... ");
    assert!(msg.len() < 250, "{} chars: {msg}", msg.len());
}

fn external(t: &mut TensorProto, kv: &[(&str, &str)]) {
    t.raw_data = None;
    t.data_location = Some(DataLocation::External as i32);
    t.external_data = kv
        .iter()
        .map(|(k, v)| StringStringEntryProto {
            key: Some(k.to_string()),
            value: Some(v.to_string()),
        })
        .collect();
}

#[test]
fn external_data_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.bin"), [0u8; 24]).unwrap();
    let run = |kv: &[(&str, &str)], base: Option<&Path>| {
        let mut t = f32_tensor("W", &[3, 2], &[]);
        external(&mut t, kv);
        let r = decode(
            Bytes::from(with_w(t).encode_to_vec()),
            Path::new(FILE),
            base,
        );
        match r {
            Ok(_) => String::from("<loaded>"),
            Err(e) => {
                assert!(matches!(e, OnnxError::ExternalData { .. }), "{e:?}");
                let s = e.to_string();
                assert!(
                    s.starts_with(FILE) && s.contains("tensor `W`: external data"),
                    "{s}"
                );
                s
            }
        }
    };
    let d = Some(dir.path());
    assert_eq!(run(&[("location", "w.bin")], d), "<loaded>");
    assert_has(&run(&[("location", "w.bin")], None), "not allowed here");
    assert_has(
        &run(&[("location", "missing.bin")], d),
        "missing.bin: No such file",
    );
    assert_has(
        &run(&[("location", "../x")], d),
        "location `../x` must be a relative path",
    );
    assert_has(
        &run(&[("location", "/etc/passwd")], d),
        "must be a relative path",
    );
    assert_has(&run(&[("offset", "0")], d), "no `location` key");
    assert_has(
        &run(
            &[("location", "w.bin"), ("offset", "16"), ("length", "24")],
            d,
        ),
        "bytes 16..40 requested but the file has 24",
    );
    assert_has(
        &run(
            &[
                ("location", "w.bin"),
                ("offset", "18446744073709551615"),
                ("length", "2"),
            ],
            d,
        ),
        "offset + length overflows",
    );
    assert_has(
        &run(&[("location", "w.bin"), ("offset", "-1")], d),
        "bad offset `-1`",
    );
    assert_has(
        &run(&[("location", "w.bin"), ("length", "x")], d),
        "bad length `x`",
    );
}

/// A model with initializers of several sizes, dtypes and awkward bit patterns.
fn weights_model() -> ModelProto {
    let mut m = base();
    let g = graph(&mut m);
    // NaN with a payload, -0.0, infinities and subnormals must survive bit-exactly.
    let mut big: Vec<f32> = (0..3000).map(|i| i as f32 * 0.37 - 500.0).collect();
    big[0] = f32::from_bits(0x7fc0_1234);
    big[1] = -0.0;
    big[2] = f32::INFINITY;
    big[3] = f32::from_bits(1);
    g.initializer.push(f32_tensor("big", &[3000], &big));
    g.initializer.push(TensorProto {
        name: Some("ints".into()),
        data_type: Some(7),
        dims: vec![700],
        int64_data: (0..700).map(|i| i * 1_000_003 - 7).collect(),
        ..Default::default()
    });
    g.initializer.push(TensorProto {
        name: Some("bytes".into()),
        data_type: Some(2),
        dims: vec![5000],
        raw_data: Some((0..5000u32).map(|i| (i * 7) as u8).collect()),
        ..Default::default()
    });
    g.initializer.push(f32_tensor("small", &[2], &[1.5, 2.5]));
    m
}

#[test]
fn external_data_round_trip() {
    let src = decode_bytes(weights_model().encode_to_vec()).unwrap().model;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    let threshold = 1000;
    let saved = ssc_onnx::save(
        &src,
        &path,
        &SaveOptions {
            external_data: ExternalData::Always { threshold },
            overwrite: false,
        },
    )
    .unwrap();
    let (data_path, data_len) = saved.external.clone().expect("external data written");
    assert_eq!(data_path, dir.path().join("m.onnx.data"));
    assert_eq!(
        std::fs::metadata(&data_path).unwrap().len() as usize,
        data_len
    );

    // The written protobuf: location/offset/length present and 4096-aligned.
    let proto = ModelProto::decode(Bytes::from(std::fs::read(&path).unwrap())).unwrap();
    let mut externalised = Vec::new();
    for t in &proto.graph.as_ref().unwrap().initializer {
        let name = t.name.clone().unwrap();
        let raw_len = src
            .graph
            .initializer(src.graph.value_by_name(&name).unwrap())
            .unwrap()
            .byte_len();
        if raw_len < threshold {
            assert!(
                t.raw_data.is_some() && t.external_data.is_empty(),
                "{name} inline"
            );
            continue;
        }
        assert_eq!(
            t.data_location,
            Some(DataLocation::External as i32),
            "{name}"
        );
        assert!(t.raw_data.is_none(), "{name}");
        let get = |k: &str| {
            t.external_data
                .iter()
                .find(|e| e.key.as_deref() == Some(k))
                .and_then(|e| e.value.clone())
                .unwrap_or_else(|| panic!("{name}: no `{k}`"))
        };
        assert_eq!(get("location"), "m.onnx.data");
        let offset: usize = get("offset").parse().unwrap();
        let length: usize = get("length").parse().unwrap();
        assert_eq!(
            offset % 4096,
            0,
            "{name}: offset {offset} is not 4096-aligned"
        );
        assert_eq!(length, raw_len, "{name}");
        assert!(offset + length <= data_len);
        externalised.push(name);
    }
    assert_eq!(externalised, ["big", "ints", "bytes"]);

    // Reloaded tensors are bit-identical to the originals.
    let back = ssc_onnx::load(&path).unwrap();
    assert!(back.warnings.is_empty());
    let (a, b) = (&src.graph, &back.model.graph);
    assert_eq!(a.initializer_ids().len(), b.initializer_ids().len());
    for id in a.initializer_ids() {
        let name = &a.value(id).name;
        let ta = a.initializer(id).unwrap();
        let tb = b.initializer(b.value_by_name(name).unwrap()).unwrap();
        assert_eq!(ta.dtype, tb.dtype, "{name}");
        assert_eq!(ta.dims, tb.dims, "{name}");
        assert_eq!(ta.raw().unwrap(), tb.raw().unwrap(), "{name}: bytes differ");
    }

    // Only the two outputs are left in the directory: no temporaries.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["m.onnx", "m.onnx.data"]);

    // Saving again is refused without overwrite, and leaves the files as they were.
    let before = std::fs::read(&path).unwrap();
    let e = ssc_onnx::save(
        &src,
        &path,
        &SaveOptions {
            external_data: ExternalData::Always { threshold },
            overwrite: false,
        },
    )
    .unwrap_err();
    assert_has(&e.to_string(), "pass --overwrite");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn save_into_a_missing_directory_writes_nothing() {
    let src = decode_bytes(base().encode_to_vec()).unwrap().model;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope").join("m.onnx");
    let e = ssc_onnx::save(&src, &path, &SaveOptions::default()).unwrap_err();
    assert_has(&e.to_string(), "does not exist");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Import, export and re-import give the same bytes: the export is a fixed point.
#[test]
fn export_is_deterministic_and_reimports() {
    let m = decode_bytes(weights_model().encode_to_vec()).unwrap().model;
    let once = ssc_onnx::encode_model(&m).unwrap();
    let again = decode_bytes(once.clone()).unwrap().model;
    assert_eq!(ssc_onnx::encode_model(&again).unwrap(), once);
}
