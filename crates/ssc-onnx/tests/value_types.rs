//! Sequence and optional types through import and export, and sequence/optional test data
//! (`load_value_pb`): a `seq(T)`/`optional(T)` the IR holds comes back as the same `TypeProto`;
//! one it does not (a denotation, a map element) stays opaque and is written back verbatim.

use std::path::Path;

use bytes::Bytes;
use onnx_proto::type_proto::{Map, Optional, Sequence, Tensor, Value};
use onnx_proto::{
    GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, OptionalProto, SequenceProto,
    TensorProto, TypeProto, ValueInfoProto,
};
use ssc_ir::{DataType, RunValue, ValueType};

fn tensor_ty(elem: i32) -> TypeProto {
    TypeProto {
        value: Some(Value::TensorType(Tensor {
            elem_type: Some(elem),
            shape: None,
        })),
        ..Default::default()
    }
}

fn seq(e: TypeProto) -> TypeProto {
    TypeProto {
        value: Some(Value::SequenceType(Box::new(Sequence {
            elem_type: Some(Box::new(e)),
        }))),
        ..Default::default()
    }
}

fn opt(e: TypeProto) -> TypeProto {
    TypeProto {
        value: Some(Value::OptionalType(Box::new(Optional {
            elem_type: Some(Box::new(e)),
        }))),
        ..Default::default()
    }
}

fn vi(name: &str, ty: TypeProto) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(ty),
        ..Default::default()
    }
}

/// One Identity per input, so every type appears at both ends.
fn model(types: &[(&str, TypeProto)]) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(18),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: types
                .iter()
                .map(|(n, _)| NodeProto {
                    name: Some(format!("id_{n}")),
                    op_type: Some("Identity".into()),
                    input: vec![n.to_string()],
                    output: vec![format!("{n}_out")],
                    ..Default::default()
                })
                .collect(),
            input: types.iter().map(|(n, t)| vi(n, t.clone())).collect(),
            output: types
                .iter()
                .map(|(n, t)| vi(&format!("{n}_out"), t.clone()))
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn sequence_and_optional_types_round_trip() {
    let mut denoted = seq(tensor_ty(1));
    denoted.denotation = Some("TEXT".into());
    let map = TypeProto {
        value: Some(Value::MapType(Box::new(Map {
            key_type: Some(7),
            value_type: Some(Box::new(tensor_ty(1))),
        }))),
        ..Default::default()
    };
    let types = [
        ("s", seq(tensor_ty(1))),
        ("o", opt(seq(tensor_ty(7)))),
        ("t", opt(tensor_ty(10))),
        ("d", denoted),
        ("m", seq(map)),
    ];
    let m = model(&types);
    let loaded = ssc_onnx::decode(
        Bytes::from(m.encode_to_vec()),
        Path::new("types.onnx"),
        None,
    )
    .unwrap();
    let g = &loaded.model.graph;
    let ty = |i: usize| g.value(g.inputs()[i]).ty.clone().unwrap();
    assert!(matches!(ty(0), ValueType::Sequence(e) if e.tensor().unwrap().elem == DataType::Float));
    assert!(matches!(ty(1), ValueType::Optional(e) if matches!(*e, ValueType::Sequence(_))));
    assert!(matches!(ty(2), ValueType::Optional(e) if e.is_tensor()));
    assert!(
        matches!(ty(3), ValueType::Opaque(_)),
        "a denotation keeps it opaque"
    );
    assert!(
        matches!(ty(4), ValueType::Opaque(_)),
        "a sequence of maps is opaque"
    );
    let back =
        ModelProto::decode(Bytes::from(ssc_onnx::encode_model(&loaded.model).unwrap())).unwrap();
    let bg = back.graph.unwrap();
    let want = m.graph.unwrap();
    for (a, b) in bg
        .input
        .iter()
        .chain(&bg.output)
        .zip(want.input.iter().chain(&want.output))
    {
        assert_eq!(a.r#type, b.r#type, "{:?}", a.name);
    }
}

#[test]
fn sequence_and_optional_test_data_load() {
    let dir = std::env::temp_dir().join(format!("ssc-onnx-values-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = |v: f32| TensorProto {
        dims: vec![1],
        data_type: Some(1),
        raw_data: Some(Bytes::from(v.to_le_bytes().to_vec())),
        ..Default::default()
    };
    let sp = SequenceProto {
        name: Some("s".into()),
        elem_type: Some(1),
        tensor_values: vec![t(1.0), t(2.0)],
        ..Default::default()
    };
    let p = dir.join("input_0.pb");
    std::fs::write(&p, sp.encode_to_vec()).unwrap();
    let seq_ty = ValueType::Sequence(Box::new(ValueType::Tensor(ssc_ir::TensorType {
        elem: DataType::Float,
        shape: None,
    })));
    let (name, v) = ssc_onnx::load_value_pb(&p, Some(&seq_ty)).unwrap();
    assert_eq!(name, "s");
    let RunValue::Sequence { elem, items } = &v else {
        panic!("{v:?}")
    };
    assert_eq!((*elem, items.len()), (DataType::Float, 2));
    assert_eq!(items[1].to_f32_vec().unwrap(), vec![2.0]);

    // An empty optional, and one holding that sequence.
    let opt_ty = ValueType::Optional(Box::new(seq_ty.clone()));
    let op = OptionalProto {
        name: Some("o".into()),
        elem_type: Some(3),
        ..Default::default()
    };
    std::fs::write(&p, op.encode_to_vec()).unwrap();
    assert_eq!(
        ssc_onnx::load_value_pb(&p, Some(&opt_ty)).unwrap().1,
        RunValue::Optional(None)
    );
    let op = OptionalProto {
        sequence_value: Some(sp),
        ..op
    };
    std::fs::write(&p, op.encode_to_vec()).unwrap();
    assert_eq!(
        ssc_onnx::load_value_pb(&p, Some(&opt_ty)).unwrap().1,
        RunValue::Optional(Some(Box::new(v)))
    );
    // A sequence of sequences is refused with the file named.
    let nested = SequenceProto {
        elem_type: Some(3),
        sequence_values: vec![SequenceProto::default()],
        ..Default::default()
    };
    std::fs::write(&p, nested.encode_to_vec()).unwrap();
    let e = ssc_onnx::load_value_pb(&p, Some(&seq_ty))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("input_0.pb") && e.contains("sequences of tensors"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
