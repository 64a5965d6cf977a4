//! Whole-graph behaviour: support errors list every op, feeds are validated, initializers act
//! as defaults, and intermediate values flow (and are freed) correctly.

use ssc_ir::{Dim, Graph, Model, OpDesc, OpsetImport, TensorType, ValueType};

use super::{f, one_node, A};
use crate::{check_supported, ExecError, Executor};

fn float_ty(dims: &[Dim]) -> Option<ValueType> {
    Some(ValueType::Tensor(TensorType {
        elem: ssc_ir::DataType::Float,
        shape: Some(dims.to_vec()),
    }))
}

/// x -> Relu -> Neg -> (+ w) -> y, with `w` an initializer that is also a graph input.
fn chain() -> Model {
    let mut g = Graph::new("chain");
    let x = g
        .add_value("x", float_ty(&[Dim::Param("n".into()), Dim::Known(2)]))
        .unwrap();
    let w = g.add_value("w", float_ty(&[Dim::Known(2)])).unwrap();
    let a = g.add_value("a", None).unwrap();
    let b = g.add_value("b", None).unwrap();
    let y = g.add_value("y", None).unwrap();
    g.add_op(OpDesc::new("Relu"), vec![Some(x)], vec![Some(a)])
        .unwrap();
    g.add_op(OpDesc::new("Neg"), vec![Some(a)], vec![Some(b)])
        .unwrap();
    g.add_op(
        OpDesc::new("Add").with_name("add"),
        vec![Some(b), Some(w)],
        vec![Some(y)],
    )
    .unwrap();
    g.set_initializer(w, f(&[2], &[10., 20.]));
    g.set_inputs(vec![x, w]);
    g.set_outputs(vec![y, a]);
    Model {
        ir_version: 8,
        opset_imports: vec![OpsetImport {
            domain: String::new(),
            version: 17,
        }],
        graph: g,
        ..Model::default()
    }
}

#[test]
fn initializer_inputs_are_defaults() {
    let m = chain();
    let ex = Executor::new(&m).unwrap();
    assert_eq!(ex.required_inputs(), ["x"]);
    let x = f(&[1, 2], &[-1., 2.]);
    let out = ex.run(&[("x".into(), x.clone())]).unwrap();
    assert_eq!(out[0].0, "y");
    assert_eq!(out[0].1, f(&[1, 2], &[10., 18.]));
    assert_eq!(out[1].1, f(&[1, 2], &[0., 2.]));
    // Feeding `w` overrides the initializer; the symbolic batch dim accepts any size.
    let x3 = f(&[3, 2], &[1.; 6]);
    let out = ex
        .run(&[("x".into(), x3), ("w".into(), f(&[2], &[0., 0.]))])
        .unwrap();
    assert_eq!(out[0].1, f(&[3, 2], &[-1.; 6]));
}

#[test]
fn feeds_are_validated() {
    let m = chain();
    let ex = Executor::new(&m).unwrap();
    let e = ex.run(&[]).unwrap_err();
    assert!(
        matches!(e, ExecError::MissingInput(ref n) if n == "x"),
        "{e}"
    );
    let e = ex.run(&[("z".into(), f(&[1], &[0.]))]).unwrap_err();
    assert!(matches!(e, ExecError::UnknownInput(_)), "{e}");
    let e = ex.run(&[("x".into(), f(&[1, 3], &[0.; 3]))]).unwrap_err();
    assert!(e.to_string().contains("dim 1 must be 2"), "{e}");
    let e = ex.run(&[("x".into(), f(&[2], &[0.; 2]))]).unwrap_err();
    assert!(e.to_string().contains("rank"), "{e}");
    let e = ex
        .run(&[("x".into(), super::i(&[1, 2], &[0; 2]))])
        .unwrap_err();
    assert!(e.to_string().contains("expected float"), "{e}");
    // A shape error inside the graph names the node.
    let e = ex.run(&[
        ("x".into(), f(&[1, 2], &[0.; 2])),
        ("w".into(), f(&[3], &[0.; 3])),
    ]);
    assert!(e.is_err());
}

#[test]
fn unsupported_ops_are_all_listed() {
    let mut m = one_node("Foo", 17, vec![], &[], 1);
    let g = &mut m.graph;
    let v = g.add_value("v", None).unwrap();
    let w = g.add_value("w", None).unwrap();
    let mut custom = OpDesc::new("Relu").with_name("custom");
    custom.domain = "com.example".into();
    g.add_op(custom, vec![], vec![Some(v)]).unwrap();
    g.add_op(
        OpDesc::new("Resize").with_attr(A::string("mode", "sinc")),
        vec![],
        vec![Some(w)],
    )
    .unwrap();
    let e = check_supported(&m).unwrap_err();
    let list = e.unsupported().unwrap();
    assert_eq!(list.len(), 3, "{e}");
    let msg = e.to_string();
    for part in [
        "Foo at n",
        "com.example::Relu at custom",
        "Resize (mode=sinc) at Resize#",
    ] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }
    assert!(Executor::new(&m).is_err());
    // Training-mode BatchNormalization is refused statically too.
    let bn = one_node(
        "BatchNormalization",
        15,
        vec![A::int("training_mode", 1)],
        &[],
        1,
    );
    assert!(check_supported(&bn)
        .unwrap_err()
        .to_string()
        .contains("training_mode=1"));
}

#[test]
fn undefined_values_are_reported() {
    let mut g = Graph::new("u");
    let x = g.add_value("ghost", None).unwrap();
    let y = g.add_value("y", None).unwrap();
    g.add_op(OpDesc::new("Relu"), vec![Some(x)], vec![Some(y)])
        .unwrap();
    g.set_outputs(vec![y]);
    let m = Model {
        graph: g,
        ..Model::default()
    };
    let e = Executor::new(&m).unwrap_err();
    assert!(
        matches!(e, ExecError::Undefined(ref n) if n == "ghost"),
        "{e}"
    );
}

#[test]
fn sequences_flow_inside_a_graph() {
    let mut g = Graph::new("s");
    let x = g
        .add_value("x", float_ty(&[Dim::Known(2), Dim::Known(2)]))
        .unwrap();
    let s = g.add_value("s", None).unwrap();
    let n = g.add_value("n", None).unwrap();
    let c = g.add_value("c", None).unwrap();
    g.add_op(OpDesc::new("SplitToSequence"), vec![Some(x)], vec![Some(s)])
        .unwrap();
    g.add_op(OpDesc::new("SequenceLength"), vec![Some(s)], vec![Some(n)])
        .unwrap();
    g.add_op(
        OpDesc::new("ConcatFromSequence").with_attr(A::int("axis", 1)),
        vec![Some(s)],
        vec![Some(c)],
    )
    .unwrap();
    g.set_inputs(vec![x]);
    g.set_outputs(vec![n, c]);
    let m = Model {
        opset_imports: vec![OpsetImport {
            domain: String::new(),
            version: 13,
        }],
        graph: g,
        ..Model::default()
    };
    let out = crate::run_model(&m, &[("x".into(), f(&[2, 2], &[1., 2., 3., 4.]))]).unwrap();
    assert_eq!(out[0].1, super::i(&[], &[2]));
    assert_eq!(out[1].1, f(&[1, 4], &[1., 2., 3., 4.]));
}

/// `chain()` plus `Add(a, bad)` with `bad` a `[3]` constant that does not broadcast against
/// `a` (`[n, 2]`): a node that fails whenever it runs. Its output `z` is a graph output only
/// when `z_is_output`.
fn chain_with_failing_branch(z_is_output: bool) -> Model {
    let mut m = chain();
    let g = &mut m.graph;
    let a = g.value_by_name("a").unwrap();
    let bad = g.add_value("bad", float_ty(&[Dim::Known(3)])).unwrap();
    g.set_initializer(bad, f(&[3], &[1., 2., 3.]));
    let z = g.add_value("z", None).unwrap();
    g.add_op(
        OpDesc::new("Add").with_name("dead_add"),
        vec![Some(a), Some(bad)],
        vec![Some(z)],
    )
    .unwrap();
    if z_is_output {
        let mut outs = g.outputs().to_vec();
        outs.push(z);
        g.set_outputs(outs);
    }
    m
}

#[test]
fn nodes_no_output_reads_do_not_run() {
    let x = f(&[1, 2], &[-1., 2.]);
    // Off every output path, the failing Add is not run: the outputs are those of `chain()`.
    let m = chain_with_failing_branch(false);
    let out = Executor::new(&m)
        .unwrap()
        .run(&[("x".into(), x.clone())])
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].1, f(&[1, 2], &[10., 18.]));
    // The same node on an output path runs, and fails naming itself.
    let m = chain_with_failing_branch(true);
    let e = Executor::new(&m)
        .unwrap()
        .run(&[("x".into(), x)])
        .unwrap_err();
    assert!(e.to_string().contains("dead_add"), "{e}");
}
