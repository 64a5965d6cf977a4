//! Optional values (Optional, OptionalHasElement, OptionalGetElement) and sequence and optional
//! values at a model's interface, run through `Executor::run_values`.

use ssc_ir::{DataType, Graph, Model, OpDesc, OpsetImport, RunValue, TensorType, ValueType};

use super::f;
use crate::Executor;

fn seq_f32() -> ValueType {
    ValueType::Sequence(Box::new(ValueType::Tensor(TensorType {
        elem: DataType::Float,
        shape: None,
    })))
}

fn model(g: Graph, opset: i64) -> Model {
    Model {
        opset_imports: vec![OpsetImport {
            domain: String::new(),
            version: opset,
        }],
        graph: g,
        ..Model::default()
    }
}

/// `s: seq(float)` -> Optional -> (OptionalHasElement, OptionalGetElement -> SequenceInsert),
/// and the optional itself as an output.
fn wrap_and_unwrap(opset: i64) -> Model {
    let mut g = Graph::new("opt");
    let s = g.add_value("s", Some(seq_f32())).unwrap();
    let x = g.add_value("x", None).unwrap();
    let o = g
        .add_value("o", Some(ValueType::Optional(Box::new(seq_f32()))))
        .unwrap();
    let has = g.add_value("has", None).unwrap();
    let got = g.add_value("got", None).unwrap();
    let ins = g.add_value("ins", Some(seq_f32())).unwrap();
    g.add_op(OpDesc::new("Optional"), vec![Some(s)], vec![Some(o)])
        .unwrap();
    g.add_op(
        OpDesc::new("OptionalHasElement"),
        vec![Some(o)],
        vec![Some(has)],
    )
    .unwrap();
    g.add_op(
        OpDesc::new("OptionalGetElement"),
        vec![Some(o)],
        vec![Some(got)],
    )
    .unwrap();
    g.add_op(
        OpDesc::new("SequenceInsert"),
        vec![Some(got), Some(x)],
        vec![Some(ins)],
    )
    .unwrap();
    g.set_inputs(vec![s, x]);
    g.set_outputs(vec![o, has, ins]);
    model(g, opset)
}

#[test]
fn optional_wraps_and_unwraps_a_sequence() {
    let m = wrap_and_unwrap(15);
    let ex = Executor::new(&m).unwrap();
    let seq = RunValue::Sequence {
        elem: DataType::Float,
        items: vec![f(&[2], &[1., 2.])],
    };
    let out = ex
        .run_values(&[
            ("s".into(), seq.clone()),
            ("x".into(), f(&[1], &[3.]).into()),
        ])
        .unwrap();
    assert_eq!(out[0].1, RunValue::Optional(Some(Box::new(seq))));
    assert_eq!(
        out[1].1,
        RunValue::Tensor(super::t(DataType::Bool, &[], &[1.0]))
    );
    assert_eq!(
        out[2].1,
        RunValue::Sequence {
            elem: DataType::Float,
            items: vec![f(&[2], &[1., 2.]), f(&[1], &[3.])],
        }
    );
    // An empty sequence keeps its element type through the interface.
    let empty = RunValue::Sequence {
        elem: DataType::Float,
        items: vec![],
    };
    let out = ex
        .run_values(&[("s".into(), empty), ("x".into(), f(&[], &[7.]).into())])
        .unwrap();
    assert_eq!(
        out[2].1,
        RunValue::Sequence {
            elem: DataType::Float,
            items: vec![f(&[], &[7.])],
        }
    );
    // `run` returns tensors only, and says which output is not one.
    let err = ex
        .run(&[("x".into(), f(&[1], &[3.]))])
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains('s'), "{err}");
}

#[test]
fn empty_optionals_and_missing_inputs() {
    // An optional graph input fed as none: HasElement is false, GetElement fails clearly.
    let mut g = Graph::new("none");
    let o = g
        .add_value("o", Some(ValueType::Optional(Box::new(seq_f32()))))
        .unwrap();
    let has = g.add_value("has", None).unwrap();
    g.add_op(
        OpDesc::new("OptionalHasElement"),
        vec![Some(o)],
        vec![Some(has)],
    )
    .unwrap();
    g.set_inputs(vec![o]);
    g.set_outputs(vec![has]);
    let m = model(g, 18);
    let out = crate::Executor::new(&m)
        .unwrap()
        .run_values(&[("o".into(), RunValue::Optional(None))])
        .unwrap();
    assert_eq!(
        out[0].1,
        RunValue::Tensor(super::t(DataType::Bool, &[], &[0.0]))
    );

    let m = wrap_and_unwrap(15);
    let mut m2 = m.clone();
    // The same graph fed a tensor where a sequence is expected fails with the node named.
    let err = Executor::new(&m)
        .unwrap()
        .run_values(&[
            ("s".into(), f(&[1], &[1.]).into()),
            ("x".into(), f(&[1], &[3.]).into()),
        ])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a sequence"), "{err}");

    // Opset 18: a missing input to OptionalHasElement is none, and an Optional with no input
    // is an empty optional that OptionalGetElement refuses.
    let g = &mut m2.graph;
    let has = g.add_value("has18", None).unwrap();
    g.add_op(
        OpDesc::new("OptionalHasElement"),
        vec![None],
        vec![Some(has)],
    )
    .unwrap();
    let e = g.add_value("e", None).unwrap();
    g.add_op(OpDesc::new("Optional"), vec![], vec![Some(e)])
        .unwrap();
    let mut outs = g.outputs().to_vec();
    outs.push(has);
    g.set_outputs(outs.clone());
    m2.opset_imports[0].version = 18;
    let feeds = [
        (
            "s".to_string(),
            RunValue::Sequence {
                elem: DataType::Float,
                items: vec![],
            },
        ),
        ("x".to_string(), RunValue::from(f(&[1], &[3.]))),
    ];
    let out = Executor::new(&m2).unwrap().run_values(&feeds).unwrap();
    assert_eq!(
        out[3].1,
        RunValue::Tensor(super::t(DataType::Bool, &[], &[0.0]))
    );
    // (The executor runs every node, so the failing one is added only now.)
    let g = &mut m2.graph;
    let ge = g.add_value("ge", None).unwrap();
    g.add_op(
        OpDesc::new("OptionalGetElement"),
        vec![Some(e)],
        vec![Some(ge)],
    )
    .unwrap();
    outs.push(ge);
    g.set_outputs(outs);
    let err = Executor::new(&m2)
        .unwrap()
        .run_values(&feeds)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds no element"), "{err}");
}
