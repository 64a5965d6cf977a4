//! Which nodes of a model get analysed, under which label, and what is skipped and why.

use ssc_ir::{Attribute, Graph, Model, OpDesc, Tensor};
use ssc_structure::{analyze_model, analyze_op, AnalysisOptions, NodeStructure, StructureError};

fn model() -> Model {
    let mut g = Graph::new("m");
    let x = g.add_value("x", None).unwrap();
    let init = |g: &mut Graph, name: &str, t: Tensor| {
        let v = g.add_value(name, None).unwrap();
        g.set_initializer(v, t);
        v
    };
    let w1 = init(&mut g, "w1", Tensor::from_f32(vec![2, 1, 3, 3], &[1.0; 18]));
    let w2 = init(&mut g, "w2", Tensor::from_f32(vec![2, 2, 1, 1], &[1.0; 4]));
    let fc = init(
        &mut g,
        "fc_w",
        Tensor::from_f32(vec![3, 2], &[1.0, 0.0, 0.0, 0.0, -1.0, 0.0]),
    );
    let mm = init(&mut g, "mm_w", Tensor::from_f32(vec![1, 2, 2], &[1.0; 4]));
    let iw = init(&mut g, "int_w", Tensor::from_i64(vec![1, 1, 1, 1], &[1]));
    let vals: Vec<_> = (0..6)
        .map(|n| g.add_value(format!("y{n}"), None).unwrap())
        .collect();
    let conv = |name: &str| OpDesc::new("Conv").with_name(name);
    g.add_op(
        conv("c1").with_attr(Attribute::int("group", 2)),
        vec![Some(x), Some(w1)],
        vec![Some(vals[0])],
    )
    .unwrap();
    g.add_op(
        conv("c2"),
        vec![Some(vals[0]), Some(w2)],
        vec![Some(vals[1])],
    )
    .unwrap();
    g.add_op(
        OpDesc::new("Conv"),
        vec![Some(vals[1]), Some(w1)],
        vec![Some(vals[2])],
    )
    .unwrap();
    g.add_op(
        OpDesc::new("Gemm")
            .with_name("fc")
            .with_attr(Attribute::int("transB", 1)),
        vec![Some(vals[2]), Some(fc)],
        vec![Some(vals[3])],
    )
    .unwrap();
    g.add_op(
        OpDesc::new("MatMul").with_name("mm"),
        vec![Some(vals[3]), Some(mm)],
        vec![Some(vals[4])],
    )
    .unwrap();
    g.add_op(
        conv("ci"),
        vec![Some(vals[4]), Some(iw)],
        vec![Some(vals[5])],
    )
    .unwrap();
    g.add_op(
        OpDesc::new("Relu").with_name("r"),
        vec![Some(vals[5])],
        vec![None],
    )
    .unwrap();
    // w2 is overridable: not a constant.
    g.set_inputs(vec![x, w2]);
    Model {
        graph: g,
        ..Model::default()
    }
}

#[test]
fn finds_convs_and_matrices_and_explains_skips() {
    let m = model();
    let s = analyze_model(&m, &AnalysisOptions::exact()).unwrap();
    let keys: Vec<&str> = s.nodes.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.contains(&"c1") && keys.contains(&"fc"));
    assert!(keys.iter().any(|k| k.starts_with("Conv#")));
    match &s.nodes["c1"] {
        NodeStructure::Conv(c) => {
            assert_eq!(c.group, 2);
            assert_eq!(c.connectivity.depthwise_multiplier, Some(1));
            assert!(c.unified.all_kernels_constant);
        }
        other => panic!("{other:?}"),
    }
    match &s.nodes["fc"] {
        // transB: the stored [3, 2] is B^T, so B is [2, 3]: column 1 is zero, column 2 = -column 0, row 1 is zero.
        NodeStructure::Matrix(mx) => {
            assert_eq!((mx.rows, mx.cols), (2, 3));
            assert_eq!(mx.zero_cols, vec![1]);
            assert_eq!(mx.zero_rows, vec![1]);
            let m1 = mx.column_classes[0].members[1];
            assert!(m1.channel == 2 && m1.negated);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.skipped["c2"].contains("not a constant"));
    assert!(s.skipped["mm"].contains("2-D"));
    assert!(s.skipped["ci"].contains("int64"));
    assert!(!s.skipped.contains_key("r"));
    let text = s.to_string();
    assert!(text.starts_with("Conv#"), "{text}");
    assert!(
        text.contains("c2: skipped (weight `w2` is not a constant)"),
        "{text}"
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["nodes"]["fc"]["kind"], "Matrix");
    // Per-op entry point agrees.
    let c1 = m.graph.op_ids()[0];
    assert!(matches!(
        analyze_op(&m.graph, c1, &AnalysisOptions::exact()).unwrap(),
        Some(NodeStructure::Conv(_))
    ));
}

#[test]
fn malformed_weights_name_the_node() {
    let mut m = model();
    let c1 = m.graph.op_ids()[0];
    m.graph.desc_mut(c1).set_attr(Attribute::int("group", 3));
    let err = analyze_model(&m, &AnalysisOptions::exact()).unwrap_err();
    assert!(matches!(&err, StructureError::Node { node, .. } if node == "c1"));
    assert_eq!(
        err.to_string(),
        "node `c1`: group 3 does not divide the 2 output channels"
    );
}
