//! Shape and type inference: overrides, per-op rules (opset-dependent forms included), symbolic
//! dims, value propagation through shape arithmetic, and conflicts with declared types.

mod common;

use common::{floats, ints, shape, G};
use ssc_ir::{AttrValue, Attribute, DataType, Tensor};
use ssc_passes::{infer_shapes, infer_shapes_with, InferOptions, PassError};

/// One input of a single-op check.
enum In<'a> {
    /// A graph input of this type.
    T(&'a str),
    /// An initializer.
    C(Tensor),
    /// An empty optional slot.
    Skip,
}
use In::{Skip, C, T};

/// Infers one op on fresh inputs and returns its output types in text form, or the error.
fn infer1(
    opset: i64,
    op: &str,
    attrs: Vec<Attribute>,
    ins: Vec<In>,
    n_out: usize,
) -> Result<Vec<String>, String> {
    let mut g = G::new(opset);
    let mut names = Vec::new();
    for (i, x) in ins.into_iter().enumerate() {
        let n = format!("i{i}");
        match x {
            T(t) => {
                g.input(&n, t);
            }
            C(t) => {
                g.init(&n, t);
            }
            Skip => {
                names.push(String::new());
                continue;
            }
        }
        names.push(n);
    }
    let outs: Vec<String> = (0..n_out).map(|i| format!("o{i}")).collect();
    let in_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let out_refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    g.op_a(op, &in_refs, &out_refs, attrs);
    g.outputs(&out_refs);
    infer_shapes(&mut g.m, &[]).map_err(|e| e.to_string())?;
    Ok(outs.iter().map(|o| g.ty_of(o)).collect())
}

/// The single output type of a single-op check.
fn one(opset: i64, op: &str, attrs: Vec<Attribute>, ins: Vec<In>) -> String {
    match infer1(opset, op, attrs, ins, 1) {
        Ok(mut v) => v.remove(0),
        Err(e) => format!("error: {e}"),
    }
}

fn ia(name: &str, v: &[i64]) -> Attribute {
    Attribute::ints(name, v.to_vec())
}
fn i(name: &str, v: i64) -> Attribute {
    Attribute::int(name, v)
}
fn s(name: &str, v: &str) -> Attribute {
    Attribute::string(name, v)
}
fn c1(v: &[i64]) -> In<'static> {
    C(ints(&[v.len()], v))
}

#[test]
fn overrides_fix_symbols_everywhere() {
    let mut g = G::new(17);
    g.input("x", "float[N,3,H,W]");
    g.op("Relu", &["x"], &["y"]);
    g.declare("y", "float[N,3,H,W]");
    g.outputs(&["y"]);
    let rep = infer_shapes(&mut g.m, &[("x".into(), shape("1,3,224,224"))]).unwrap();
    assert_eq!(g.ty_of("x"), "float[1,3,224,224]");
    assert_eq!(g.ty_of("y"), "float[1,3,224,224]");
    let b: Vec<(String, usize)> = rep.bindings.into_iter().collect();
    assert_eq!(b, [("H".into(), 224), ("N".into(), 1), ("W".into(), 224)]);
}

#[test]
fn override_errors_are_specific() {
    let base = || {
        let mut g = G::new(17);
        g.input("x", "float[N,3,8,8]");
        g.input("z", "float[N,4]");
        g.op("Relu", &["x"], &["y"]);
        g.outputs(&["y"]);
        g
    };
    let err = |o: &[(&str, &str)]| {
        let o: Vec<_> = o.iter().map(|(n, s)| (n.to_string(), shape(s))).collect();
        infer_shapes(&mut base().m, &o).unwrap_err()
    };
    let e = err(&[("nope", "1,3,8,8")]);
    assert!(matches!(e, PassError::UnknownInput { .. }));
    assert!(e.to_string().contains("inputs: x, z"), "{e}");
    assert!(matches!(
        err(&[("x", "1,3,8")]),
        PassError::OverrideRank {
            declared: 4,
            given: 3,
            ..
        }
    ));
    assert!(matches!(
        err(&[("x", "1,3,9,8")]),
        PassError::OverrideConflict {
            axis: 2,
            declared: 8,
            given: 9,
            ..
        }
    ));
    // One symbol given two sizes is not an error (ONNX Runtime does not tie a symbol to one
    // size; Paddle2ONNX names every unknown dim `?`): each axis keeps its own size, with a
    // warning, and the symbol is not substituted elsewhere.
    let mut g = base();
    g.declare("y", "float[N,3,8,8]");
    let o = [
        ("x".to_string(), shape("1,3,8,8")),
        ("z".to_string(), shape("2,4")),
    ];
    let rep = infer_shapes(&mut g.m, &o).unwrap();
    assert_eq!(g.ty_of("x"), "float[1,3,8,8]");
    assert_eq!(g.ty_of("z"), "float[2,4]");
    assert_eq!(g.ty_of("y"), "float[1,3,8,8]");
    assert!(rep.bindings.is_empty());
    assert_eq!(
        rep.warnings,
        ["symbolic dimension `N` is given the sizes 1 and 2; its uses are taken as independent"]
    );
    // `?` and symbols in an override keep the declared dim.
    let mut g = base();
    infer_shapes(&mut g.m, &[("x".into(), shape("?,3,8,8"))]).unwrap();
    assert_eq!(g.ty_of("y"), "float[N,3,8,8]");
}

#[test]
fn initializer_inputs_can_be_overridden_but_legacy_ones_cannot() {
    let mut g = G::new(17);
    g.input("x", "float[N]");
    g.init("x", floats(&[2], &[1.0, 2.0]));
    g.op("Relu", &["x"], &["y"]);
    g.outputs(&["y"]);
    // IR >= 4: an initializer behind an input is only a default, which says nothing of the
    // shape a caller may feed.
    infer_shapes(&mut g.m, &[("x".into(), shape("5"))]).unwrap();
    assert_eq!(g.ty_of("y"), "float[5]");
    let mut g = G::with_ir(9, 3);
    g.init("w", floats(&[2], &[1.0, 2.0]));
    g.declare("w", "float[2]");
    let e = infer_shapes(&mut g.m, &[("w".into(), shape("2"))]).unwrap_err();
    assert!(matches!(e, PassError::UnknownInput { .. }));
}

#[test]
fn cnn_chain_is_static_end_to_end() {
    let mut g = G::new(13);
    g.input("x", "float[N,3,32,32]");
    g.init("w", floats(&[16, 3, 3, 3], &[0.0; 432]));
    g.init("b", floats(&[16], &[0.0; 16]));
    for p in ["s", "bb", "m", "var"] {
        g.init(p, floats(&[16], &[1.0; 16]));
    }
    g.init("fw", floats(&[10, 16], &[0.0; 160]));
    g.op_a(
        "Conv",
        &["x", "w", "b"],
        &["c"],
        vec![ia("pads", &[1, 1, 1, 1]), ia("strides", &[2, 2])],
    );
    g.op("BatchNormalization", &["c", "s", "bb", "m", "var"], &["n"]);
    g.op("Relu", &["n"], &["r"]);
    g.op_a(
        "MaxPool",
        &["r"],
        &["p"],
        vec![
            ia("kernel_shape", &[3, 3]),
            ia("strides", &[2, 2]),
            i("ceil_mode", 1),
        ],
    );
    g.op("GlobalAveragePool", &["p"], &["gap"]);
    g.op("Flatten", &["gap"], &["f"]);
    g.op_a("Gemm", &["f", "fw"], &["logits"], vec![i("transB", 1)]);
    g.op("Softmax", &["logits"], &["out"]);
    g.outputs(&["out"]);
    infer_shapes(&mut g.m, &[("x".into(), shape("2,3,32,32"))]).unwrap();
    let got: Vec<String> = ["c", "n", "p", "gap", "f", "out"]
        .iter()
        .map(|n| g.ty_of(n))
        .collect();
    assert_eq!(
        got,
        [
            "float[2,16,16,16]",
            "float[2,16,16,16]",
            "float[2,16,8,8]",
            "float[2,16,1,1]",
            "float[2,16]",
            "float[2,10]"
        ]
    );
}

#[test]
fn symbolic_batch_survives_conv_and_reshape() {
    let mut g = G::new(13);
    g.input("x", "float[N,3,8,8]");
    g.init("w", floats(&[4, 3, 1, 1], &[0.0; 12]));
    g.init("shape", ints(&[2], &[0, -1]));
    g.op("Conv", &["x", "w"], &["c"]);
    g.op("Reshape", &["c", "shape"], &["r"]);
    g.outputs(&["r"]);
    let rep = infer_shapes(&mut g.m, &[]).unwrap();
    assert_eq!(g.ty_of("c"), "float[N,4,8,8]");
    assert_eq!(g.ty_of("r"), "float[N,256]");
    assert_eq!(rep.newly_typed, 4, "w, shape, c and r");
}

#[test]
fn computed_reshape_targets_are_seen_through() {
    // PyTorch's x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
    let mut g = G::new(13);
    g.input("x", "float[N,8,2,2]");
    g.init("zero", ints(&[], &[0]));
    g.init("axes", ints(&[1], &[0]));
    g.init("m1", ints(&[1], &[-1]));
    g.op("Shape", &["x"], &["s"]);
    g.op_a("Gather", &["s", "zero"], &["n"], vec![i("axis", 0)]);
    g.op("Unsqueeze", &["n", "axes"], &["n1"]);
    g.op_a("Concat", &["n1", "m1"], &["target"], vec![i("axis", 0)]);
    g.op("Reshape", &["x", "target"], &["y"]);
    g.outputs(&["y"]);
    let mut g2 = G { m: g.m.clone() };
    infer_shapes(&mut g.m, &[]).unwrap();
    // Symbolic batch: the target shape is not known, only its length.
    assert_eq!(g.ty_of("target"), "int64[2]");
    assert_eq!(g.ty_of("y"), "float[?,?]");
    infer_shapes(&mut g2.m, &[("x".into(), shape("3,8,2,2"))]).unwrap();
    assert_eq!(g2.ty_of("y"), "float[3,32]");
}

#[test]
fn declared_types_are_refined_and_wrong_shapes_overridden() {
    let mut g = G::new(13);
    g.input("x", "float[1,3,8,8]");
    g.op_a(
        "MaxPool",
        &["x"],
        &["y"],
        vec![ia("kernel_shape", &[2, 2]), ia("strides", &[2, 2])],
    );
    g.declare("y", "float[?,3,batch,4]");
    g.outputs(&["y"]);
    let rep = infer_shapes(&mut g.m, &[]).unwrap();
    assert_eq!(g.ty_of("y"), "float[1,3,4,4]");
    assert_eq!(rep.refined, 1);

    let mut g = G::new(13);
    g.input("x", "float[1,3,8,8]");
    g.op_a("MaxPool", &["x"], &["y"], vec![ia("kernel_shape", &[2, 2])]);
    g.declare("y", "float[1,3,4,4]");
    g.outputs(&["y"]);
    // A wrong declared shape (ONNX Runtime warns and runs): the computed type wins, the
    // declaration is kept for export, and the warning names the value.
    let rep = infer_shapes(&mut g.m, &[]).unwrap();
    assert_eq!(
        rep.warnings,
        ["value `y`: declared type float[1,3,4,4] disagrees with the inferred float[1,3,7,7] (from node `y`); using the inferred type"]
    );
    assert_eq!(rep.declarations_overridden, 1);
    assert_eq!(g.ty_of("y"), "float[1,3,7,7]");
    let y = g.m.graph.value_by_name("y").unwrap();
    assert!(g.m.graph.value(y).declared.is_some());
    // Inference again finds nothing new to say; fixing the types drops the declaration.
    assert!(infer_shapes(&mut g.m, &[]).unwrap().warnings.is_empty());
    assert_eq!(g.m.graph.fix_declared_types(), 1);
    assert!(g.m.graph.value(y).declared.is_none());

    // A wrong declared rank (the ddddocr recogniser declares float[1,seqlen] for a rank-3
    // output): the same.
    let mut g = G::new(13);
    g.input("x", "float[1,3,8,8]");
    g.op("Relu", &["x"], &["y"]);
    g.declare("y", "float[1,seqlen]");
    g.outputs(&["y"]);
    let rep = infer_shapes(&mut g.m, &[]).unwrap();
    assert_eq!(rep.declarations_overridden, 1);
    assert_eq!(g.ty_of("y"), "float[1,3,8,8]");

    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.op("Relu", &["x"], &["y"]);
    g.declare("y", "double[2]");
    g.outputs(&["y"]);
    // A wrong element type stays an error, as in ONNX Runtime.
    assert!(matches!(
        infer_shapes(&mut g.m, &[]),
        Err(PassError::TypeConflict { .. })
    ));
}

#[test]
fn unknown_ops_are_skipped_and_reported() {
    let mut g = G::new(13);
    g.input("x", "float[2,3]");
    g.op("FancyOp", &["x"], &["y"]);
    g.declare("y", "float[5]");
    let custom = g.op("Relu", &["y"], &["z"]);
    g.g().desc_mut(custom).domain = "com.example".into();
    g.op("Relu", &["z"], &["w"]);
    g.outputs(&["w"]);
    let rep = infer_shapes(&mut g.m, &[]).unwrap();
    assert_eq!(g.ty_of("y"), "float[5]");
    assert_eq!(g.ty_of("z"), "-");
    assert_eq!(g.ty_of("w"), "-");
    assert_eq!(
        rep.to_string(),
        "typed 0 values, refined 0; no rule for FancyOp x1, com.example::Relu x1"
    );
    let u: Vec<(String, usize)> = rep.unhandled_ops.into_iter().collect();
    assert_eq!(u, [("FancyOp".into(), 1), ("com.example::Relu".into(), 1)]);
}

#[test]
fn value_info_marking_is_opt_in() {
    let build = || {
        let mut g = G::new(13);
        g.input("x", "float[2]");
        g.op("Relu", &["x"], &["y"]);
        g.op("Relu", &["y"], &["z"]);
        g.outputs(&["z"]);
        g
    };
    let marked = |g: &G| {
        let gr = &g.m.graph;
        gr.value_ids()
            .into_iter()
            .filter(|&v| gr.value(v).in_value_info)
            .count()
    };
    let mut g = build();
    infer_shapes(&mut g.m, &[]).unwrap();
    assert_eq!(marked(&g), 0);
    let mut g = build();
    let rep = infer_shapes_with(
        &mut g.m,
        &[],
        &InferOptions {
            mark_value_info: true,
        },
    )
    .unwrap();
    assert_eq!(
        (marked(&g), rep.marked_value_info),
        (1, 1),
        "only the intermediate y"
    );
}

#[test]
fn impossible_shapes_name_the_node() {
    let e = one(13, "Add", vec![], vec![T("float[1,3]"), T("float[1,4]")]);
    assert_eq!(e, "error: node `o0` (Add): dims 3 and 4 do not broadcast");
    let e = one(
        13,
        "Conv",
        vec![i("group", 2)],
        vec![T("float[1,6,5,5]"), C(floats(&[4, 2, 3, 3], &[0.0; 72]))],
    );
    assert!(
        e.contains("input has 6 channels but weight expects 2 x group 2"),
        "{e}"
    );
    let e = one(13, "MatMul", vec![], vec![T("float[2,3]"), T("float[4,5]")]);
    assert!(e.contains("inner dimensions differ"), "{e}");
    let e = one(13, "Reshape", vec![], vec![T("float[2,5]"), c1(&[3, -1])]);
    assert!(e.contains("cannot be split"), "{e}");
}

#[test]
fn convolutions() {
    let w = |d: &[usize]| C(floats(d, &vec![0.0; d.iter().product()]));
    let same = vec![s("auto_pad", "SAME_UPPER"), ia("strides", &[2, 2])];
    assert_eq!(
        one(
            13,
            "Conv",
            same,
            vec![T("float[1,3,7,7]"), w(&[8, 3, 3, 3])]
        ),
        "float[1,8,4,4]"
    );
    let dil = vec![ia("dilations", &[2]), ia("pads", &[0, 0])];
    assert_eq!(
        one(13, "Conv", dil, vec![T("float[1,3,10]"), w(&[8, 3, 3])]),
        "float[1,8,6]"
    );
    let grouped = vec![i("group", 4), ia("pads", &[1, 1, 1, 1, 1, 1])];
    assert_eq!(
        one(
            13,
            "Conv",
            grouped,
            vec![T("float[N,8,4,4,4]"), w(&[16, 2, 3, 3, 3])]
        ),
        "float[N,16,4,4,4]"
    );
    let valid = vec![s("auto_pad", "VALID"), ia("strides", &[2, 2])];
    assert_eq!(
        one(
            13,
            "Conv",
            valid,
            vec![T("float[1,3,8,8]"), w(&[4, 3, 3, 3])]
        ),
        "float[1,4,3,3]"
    );
    let up = vec![
        ia("strides", &[2, 2]),
        ia("pads", &[1, 1, 1, 1]),
        ia("output_padding", &[1, 1]),
    ];
    assert_eq!(
        one(
            13,
            "ConvTranspose",
            up,
            vec![T("float[1,8,4,4]"), w(&[8, 2, 3, 3])]
        ),
        "float[1,2,8,8]"
    );
    let os = vec![ia("strides", &[2, 2]), ia("output_shape", &[9, 9])];
    assert_eq!(
        one(
            13,
            "ConvTranspose",
            os,
            vec![T("float[1,8,4,4]"), w(&[8, 2, 3, 3])]
        ),
        "float[1,2,9,9]"
    );
}

#[test]
fn pooling() {
    let k = |v: &[i64]| ia("kernel_shape", v);
    // ceil_mode with the last-window rule: (5 + 2 - 2) / 2 = 2.5 -> 4 windows, but the 4th
    // would start in the tail padding, so 3 (as ONNX Runtime and PyTorch compute it).
    let attrs = vec![
        k(&[2, 2]),
        ia("strides", &[2, 2]),
        ia("pads", &[1, 1, 1, 1]),
        i("ceil_mode", 1),
    ];
    assert_eq!(
        one(13, "MaxPool", attrs, vec![T("float[1,1,5,5]")]),
        "float[1,1,3,3]"
    );
    let attrs = vec![k(&[3, 3]), ia("strides", &[2, 2]), i("ceil_mode", 1)];
    assert_eq!(
        one(13, "MaxPool", attrs, vec![T("float[1,1,8,8]")]),
        "float[1,1,4,4]"
    );
    let attrs = vec![k(&[3, 3]), ia("strides", &[2, 2])];
    assert_eq!(
        one(13, "MaxPool", attrs, vec![T("float[1,1,8,8]")]),
        "float[1,1,3,3]"
    );
    let attrs = vec![k(&[2, 2]), ia("dilations", &[2, 2])];
    assert_eq!(
        one(13, "MaxPool", attrs, vec![T("float[1,1,8,8]")]),
        "float[1,1,6,6]"
    );
    let attrs = vec![
        k(&[3, 3]),
        s("auto_pad", "SAME_LOWER"),
        ia("strides", &[2, 2]),
    ];
    assert_eq!(
        one(13, "AveragePool", attrs, vec![T("float[1,1,7,7]")]),
        "float[1,1,4,4]"
    );
    let two = infer1(13, "MaxPool", vec![k(&[2])], vec![T("float[1,2,6]")], 2).unwrap();
    assert_eq!(two, ["float[1,2,5]", "int64[1,2,5]"]);
    assert_eq!(
        one(13, "GlobalMaxPool", vec![], vec![T("float[N,5,3,3,3]")]),
        "float[N,5,1,1,1]"
    );
}

#[test]
fn elementwise_and_broadcasting() {
    assert_eq!(
        one(13, "Add", vec![], vec![T("float[N,1,4]"), T("float[3,1]")]),
        "float[N,3,4]"
    );
    assert_eq!(
        one(13, "Equal", vec![], vec![T("int64[2]"), T("int64[1]")]),
        "bool[2]"
    );
    assert_eq!(
        one(
            13,
            "Where",
            vec![],
            vec![T("bool[2,1]"), T("float[3]"), T("float[1]")]
        ),
        "float[2,3]"
    );
    assert_eq!(
        one(
            13,
            "Max",
            vec![],
            vec![T("float[2,1]"), T("float[3]"), T("float[1,1,1]")]
        ),
        "float[1,2,3]"
    );
    assert_eq!(
        one(
            13,
            "PRelu",
            vec![],
            vec![T("float[1,4,5,5]"), T("float[4,1,1]")]
        ),
        "float[1,4,5,5]"
    );
    assert_eq!(one(13, "Not", vec![], vec![T("bool[3]")]), "bool[3]");
    // Opset 6 broadcasting is B onto A only: A's shape.
    let legacy = vec![i("broadcast", 1), i("axis", 1)];
    assert_eq!(
        one(6, "Mul", legacy, vec![T("float[1,3,4,4]"), T("float[3]")]),
        "float[1,3,4,4]"
    );
    assert_eq!(
        one(13, "Cast", vec![i("to", 7)], vec![T("float[2,N]")]),
        "int64[2,N]"
    );
    assert_eq!(
        one(5, "Cast", vec![s("to", "FLOAT16")], vec![T("float[2]")]),
        "float16[2]"
    );
    let d = infer1(13, "Dropout", vec![], vec![T("float[4]")], 2).unwrap();
    assert_eq!(d, ["float[4]", "bool[4]"]);
    let d = infer1(7, "Dropout", vec![], vec![T("float[4]")], 2).unwrap();
    assert_eq!(d, ["float[4]", "float[4]"]);
}

#[test]
fn linear_algebra() {
    assert_eq!(
        one(
            13,
            "MatMul",
            vec![],
            vec![T("float[N,1,4,5]"), T("float[3,5,6]")]
        ),
        "float[N,3,4,6]"
    );
    assert_eq!(
        one(13, "MatMul", vec![], vec![T("float[5]"), T("float[2,5,6]")]),
        "float[2,6]"
    );
    assert_eq!(
        one(13, "MatMul", vec![], vec![T("float[4,5]"), T("float[5]")]),
        "float[4]"
    );
    let t = vec![i("transA", 1), i("transB", 1)];
    assert_eq!(
        one(13, "Gemm", t, vec![T("float[5,4]"), T("float[6,5]")]),
        "float[4,6]"
    );
}

#[test]
fn movement_ops() {
    assert_eq!(
        one(
            13,
            "Transpose",
            vec![ia("perm", &[0, 2, 3, 1])],
            vec![T("float[N,3,4,5]")]
        ),
        "float[N,4,5,3]"
    );
    assert_eq!(
        one(13, "Transpose", vec![], vec![T("float[2,3]")]),
        "float[3,2]"
    );
    assert_eq!(
        one(13, "Flatten", vec![i("axis", 2)], vec![T("float[N,3,4,5]")]),
        "float[?,20]"
    );
    assert_eq!(
        one(13, "Flatten", vec![i("axis", 0)], vec![T("float[2,3]")]),
        "float[1,6]"
    );
    assert_eq!(
        one(
            13,
            "Concat",
            vec![i("axis", -1)],
            vec![T("float[N,2]"), T("float[N,3]")]
        ),
        "float[N,5]"
    );
    assert_eq!(
        one(
            13,
            "Gather",
            vec![i("axis", 1)],
            vec![T("float[2,5,3]"), T("int64[4,1]")]
        ),
        "float[2,4,1,3]"
    );
    assert_eq!(
        one(13, "Expand", vec![], vec![T("float[3,1]"), c1(&[2, 1, 4])]),
        "float[2,3,4]"
    );
    assert_eq!(
        one(13, "Tile", vec![], vec![T("float[N,3]"), c1(&[1, 2])]),
        "float[N,6]"
    );
    assert_eq!(
        one(
            13,
            "Reshape",
            vec![],
            vec![T("float[2,3,4]"), c1(&[4, 0, -1])]
        ),
        "float[4,3,2]"
    );
    let az = vec![i("allowzero", 1)];
    assert_eq!(
        one(14, "Reshape", az, vec![T("float[0,3]"), c1(&[3, 0])]),
        "float[3,0]"
    );
    assert_eq!(
        one(4, "Reshape", vec![ia("shape", &[6])], vec![T("float[2,3]")]),
        "float[6]"
    );
    let dts = vec![i("blocksize", 2)];
    assert_eq!(
        one(13, "DepthToSpace", dts, vec![T("float[1,8,3,3]")]),
        "float[1,2,6,6]"
    );
}

#[test]
fn axes_move_from_attributes_to_inputs() {
    assert_eq!(
        one(
            11,
            "Unsqueeze",
            vec![ia("axes", &[0, -1])],
            vec![T("float[3]")]
        ),
        "float[1,3,1]"
    );
    assert_eq!(
        one(13, "Unsqueeze", vec![], vec![T("float[3]"), c1(&[1])]),
        "float[3,1]"
    );
    assert_eq!(
        one(
            11,
            "Squeeze",
            vec![ia("axes", &[1])],
            vec![T("float[N,1,3]")]
        ),
        "float[N,3]"
    );
    assert_eq!(
        one(13, "Squeeze", vec![], vec![T("float[2,1,3,1]")]),
        "float[2,3]"
    );
    assert_eq!(
        one(13, "Squeeze", vec![], vec![T("float[N,1]")]),
        "float[*]"
    );
    assert!(one(13, "Squeeze", vec![], vec![T("float[2,3]"), c1(&[1])])
        .contains("cannot squeeze axis 1"));
    let r = vec![ia("axes", &[2, 3])];
    assert_eq!(
        one(13, "ReduceMean", r, vec![T("float[N,8,4,4]")]),
        "float[N,8,1,1]"
    );
    assert_eq!(
        one(
            18,
            "ReduceMean",
            vec![i("keepdims", 0)],
            vec![T("float[N,8,4,4]"), c1(&[-1, -2])]
        ),
        "float[N,8]"
    );
    assert_eq!(
        one(13, "ReduceSum", vec![], vec![T("float[2,3]"), c1(&[1])]),
        "float[2,1]"
    );
    assert_eq!(
        one(13, "ReduceSum", vec![], vec![T("float[2,3]")]),
        "float[1,1]"
    );
    let noop = vec![i("noop_with_empty_axes", 1)];
    assert_eq!(
        one(13, "ReduceSum", noop, vec![T("float[2,3]")]),
        "float[2,3]"
    );
    assert_eq!(
        one(
            13,
            "ArgMax",
            vec![i("axis", 1), i("keepdims", 0)],
            vec![T("float[2,3,4]")]
        ),
        "int64[2,4]"
    );
    let split11 = infer1(
        11,
        "Split",
        vec![i("axis", 1), ia("split", &[1, 3])],
        vec![T("float[2,4]")],
        2,
    )
    .unwrap();
    assert_eq!(split11, ["float[2,1]", "float[2,3]"]);
    let split13 = infer1(13, "Split", vec![], vec![T("float[6]"), c1(&[2, 4])], 2).unwrap();
    assert_eq!(split13, ["float[2]", "float[4]"]);
    let even = infer1(13, "Split", vec![], vec![T("float[6,N]")], 3).unwrap();
    assert_eq!(even, ["float[2,N]", "float[2,N]", "float[2,N]"]);
    let uneven = infer1(
        18,
        "Split",
        vec![i("num_outputs", 3)],
        vec![T("float[7]")],
        3,
    )
    .unwrap();
    assert_eq!(uneven, ["float[3]", "float[3]", "float[1]"]);
    assert!(infer1(13, "Split", vec![], vec![T("float[7]")], 3).is_err());
}

#[test]
fn slices_in_both_forms() {
    let sl9 = vec![
        ia("starts", &[1, 0]),
        ia("ends", &[i64::MAX, -1]),
        ia("axes", &[1, 2]),
    ];
    assert_eq!(
        one(9, "Slice", sl9, vec![T("float[N,5,4]")]),
        "float[N,4,3]"
    );
    let ins = vec![
        T("float[10,N]"),
        c1(&[-1]),
        c1(&[i64::MIN]),
        c1(&[0]),
        c1(&[-3]),
    ];
    assert_eq!(one(13, "Slice", vec![], ins), "float[4,N]");
    // Unknown bounds: only the sliced axis becomes unknown.
    let ins = vec![T("float[10,N]"), T("int64[1]"), c1(&[5]), c1(&[0])];
    assert_eq!(one(13, "Slice", vec![], ins), "float[?,N]");
}

#[test]
fn padding_and_resizing() {
    assert_eq!(
        one(
            11,
            "Pad",
            vec![],
            vec![T("float[1,3,4,4]"), c1(&[0, 0, 1, 2, 0, 0, 1, 2])]
        ),
        "float[1,3,6,8]"
    );
    assert_eq!(
        one(
            2,
            "Pad",
            vec![ia("pads", &[0, 1, 0, 1])],
            vec![T("float[N,4]")]
        ),
        "float[N,6]"
    );
    let ax = vec![T("float[1,3,4,4]"), c1(&[1, 1]), Skip, c1(&[-1])];
    assert_eq!(one(18, "Pad", vec![], ax), "float[1,3,4,6]");
    let scales = C(floats(&[4], &[1.0, 1.0, 2.0, 1.5]));
    assert_eq!(
        one(
            13,
            "Resize",
            vec![],
            vec![T("float[N,3,4,5]"), Skip, scales]
        ),
        "float[N,3,8,7]"
    );
    let sizes = vec![
        T("float[1,3,4,5]"),
        C(floats(&[0], &[])),
        C(floats(&[0], &[])),
        c1(&[1, 3, 9, 9]),
    ];
    assert_eq!(one(11, "Resize", vec![], sizes), "float[1,3,9,9]");
    let scales = C(floats(&[4], &[1.0, 1.0, 2.0, 2.0]));
    assert_eq!(
        one(10, "Resize", vec![], vec![T("float[1,3,4,5]"), scales]),
        "float[1,3,8,10]"
    );
    let scales = C(floats(&[4], &[1.0, 1.0, 2.0, 2.0]));
    assert_eq!(
        one(9, "Upsample", vec![], vec![T("float[1,3,4,5]"), scales]),
        "float[1,3,8,10]"
    );
    let a7 = vec![Attribute::new(
        "scales",
        AttrValue::Floats(vec![1.0, 1.0, 3.0, 3.0]),
    )];
    assert_eq!(
        one(7, "Upsample", a7, vec![T("float[1,3,4,5]")]),
        "float[1,3,12,15]"
    );
}

#[test]
fn constants_and_generators() {
    let mut g = G::new(13);
    g.op_a("Constant", &[], &["c"], vec![ia("value_ints", &[1, 2, 3])]);
    g.op_a(
        "Constant",
        &[],
        &["f"],
        vec![Attribute::float("value_float", 1.0)],
    );
    g.op_a(
        "ConstantOfShape",
        &["c"],
        &["z"],
        vec![Attribute::new("value", AttrValue::Tensor(ints(&[1], &[7])))],
    );
    g.op("Shape", &["z"], &["s"]);
    g.op_a("Shape", &["z"], &["s15"], vec![i("start", 1)]);
    g.op("Size", &["z"], &["n"]);
    g.outputs(&["f", "s", "s15", "n"]);
    infer_shapes(&mut g.m, &[]).unwrap();
    let got: Vec<String> = ["c", "f", "z", "s", "s15", "n"]
        .iter()
        .map(|n| g.ty_of(n))
        .collect();
    // Opset 13 ignores `start`, which only exists from opset 15.
    assert_eq!(
        got,
        [
            "int64[3]",
            "float[]",
            "int64[1,2,3]",
            "int64[3]",
            "int64[3]",
            "int64[]"
        ]
    );
    let scalar = |v: i64| C(ints(&[], &[v]));
    assert_eq!(
        one(13, "Range", vec![], vec![scalar(10), scalar(0), scalar(-3)]),
        "int64[4]"
    );
    let f = |v: f32| C(floats(&[], &[v]));
    assert_eq!(
        one(13, "Range", vec![], vec![f(0.0), f(1.0), f(0.3)]),
        "float[4]"
    );
    assert_eq!(
        one(
            13,
            "Range",
            vec![],
            vec![T("int64[]"), scalar(5), scalar(1)]
        ),
        "int64[?]"
    );
    assert_eq!(
        one(
            15,
            "Shape",
            vec![i("start", 1), i("end", -1)],
            vec![T("float[N,3,4,5]")]
        ),
        "int64[2]"
    );
    assert_eq!(
        one(13, "NonZero", vec![], vec![T("float[3,4]")]),
        "int64[2,?]"
    );
    let _ = DataType::Float;
}

#[test]
fn recurrent_layers() {
    let lstm = infer1(
        14,
        "LSTM",
        vec![s("direction", "bidirectional"), i("hidden_size", 6)],
        vec![T("float[T,N,4]"), T("float[2,24,4]"), T("float[2,24,6]")],
        3,
    );
    assert_eq!(
        lstm.unwrap(),
        ["float[T,2,N,6]", "float[2,N,6]", "float[2,N,6]"]
    );
    // Batch-major layout, hidden size read from R.
    let gru = infer1(
        14,
        "GRU",
        vec![i("layout", 1)],
        vec![T("float[N,T,4]"), T("float[1,15,4]"), T("float[1,15,5]")],
        2,
    );
    assert_eq!(gru.unwrap(), ["float[N,T,1,5]", "float[N,1,5]"]);
    assert_eq!(
        one(
            7,
            "RNN",
            vec![],
            vec![T("double[3,2,4]"), T("float[1,5,4]"), T("float[1,5,5]")]
        ),
        "double[3,1,2,5]"
    );
    assert!(one(
        14,
        "RNN",
        vec![s("direction", "bidirectional")],
        vec![T("float[3,2,4]"), T("float[1,5,4]"), T("float[1,5,5]")]
    )
    .contains("W: dims 2 and 1 must be equal"));
}

#[test]
fn quantised_ops() {
    assert_eq!(
        one(
            13,
            "QuantizeLinear",
            vec![],
            vec![T("float[N,3]"), T("float[]"), T("int8[]")]
        ),
        "int8[N,3]"
    );
    assert_eq!(
        one(
            21,
            "QuantizeLinear",
            vec![i("output_dtype", 4)],
            vec![T("float[N,3]"), T("float[]")]
        ),
        "uint16[N,3]"
    );
    assert_eq!(
        one(
            13,
            "QuantizeLinear",
            vec![],
            vec![T("float[N,3]"), T("float[]")]
        ),
        "uint8[N,3]"
    );
    assert_eq!(
        one(
            19,
            "DequantizeLinear",
            vec![],
            vec![T("int8[N,3]"), T("float16[3]")]
        ),
        "float16[N,3]"
    );
    assert_eq!(
        infer1(
            11,
            "DynamicQuantizeLinear",
            vec![],
            vec![T("float[N,7]")],
            3
        )
        .unwrap(),
        ["uint8[N,7]", "float[]", "uint8[]"]
    );
    let pads = || vec![ia("pads", &[1, 1, 1, 1])];
    assert_eq!(
        one(
            10,
            "ConvInteger",
            pads(),
            vec![T("uint8[N,4,8,8]"), T("int8[6,4,3,3]")]
        ),
        "int32[N,6,8,8]"
    );
    assert_eq!(
        one(
            10,
            "QLinearConv",
            vec![ia("strides", &[2, 2])],
            vec![
                T("uint8[1,4,8,8]"),
                T("float[]"),
                T("uint8[]"),
                T("int8[6,4,3,3]"),
                T("float[6]"),
                T("int8[6]"),
                T("float[]"),
                T("int8[]"),
            ]
        ),
        "int8[1,6,3,3]"
    );
    assert_eq!(
        one(
            10,
            "MatMulInteger",
            vec![],
            vec![T("uint8[N,3,4]"), T("int8[4,5]")]
        ),
        "int32[N,3,5]"
    );
    assert_eq!(
        one(
            10,
            "QLinearMatMul",
            vec![],
            vec![
                T("uint8[3,4]"),
                T("float[]"),
                T("uint8[]"),
                T("uint8[4,5]"),
                T("float[]"),
                T("uint8[]"),
                T("float[]"),
                T("uint8[]"),
            ]
        ),
        "uint8[3,5]"
    );
}

#[test]
fn detection_ops() {
    let k = || C(ints(&[1], &[3]));
    assert_eq!(
        infer1(
            11,
            "TopK",
            vec![i("axis", 1)],
            vec![T("float[N,10,4]"), k()],
            2
        )
        .unwrap(),
        ["float[N,3,4]", "int64[N,3,4]"]
    );
    assert_eq!(
        infer1(11, "TopK", vec![], vec![T("float[N,10]"), T("int64[1]")], 2).unwrap(),
        ["float[N,?]", "int64[N,?]"]
    );
    assert_eq!(
        one(
            11,
            "NonMaxSuppression",
            vec![],
            vec![T("float[1,30,4]"), T("float[1,3,30]")]
        ),
        "int64[?,3]"
    );
    assert_eq!(
        one(
            12,
            "GatherND",
            vec![i("batch_dims", 1)],
            vec![T("float[2,3,4]"), T("int64[2,5,1]")]
        ),
        "float[2,5,4]"
    );
    assert_eq!(
        one(
            11,
            "OneHot",
            vec![i("axis", 1)],
            vec![T("int64[N,3]"), C(ints(&[], &[5])), T("float[2]")]
        ),
        "float[N,5,3]"
    );
    assert_eq!(
        one(
            12,
            "Einsum",
            vec![s("equation", "...ij,...jk->...ik")],
            vec![T("float[2,1,3,4]"), T("float[5,4,6]")]
        ),
        "float[2,5,3,6]"
    );
    assert_eq!(
        one(
            12,
            "Einsum",
            vec![s("equation", "kj,ji")],
            vec![T("float[3,4]"), T("float[4,2]")]
        ),
        "float[2,3]"
    );
    assert!(one(
        12,
        "Einsum",
        vec![s("equation", "ij,jk->ik")],
        vec![T("float[3,4]"), T("float[5,2]")]
    )
    .contains("dims 4 and 5 must be equal"));
    assert_eq!(
        one(
            16,
            "GridSample",
            vec![],
            vec![T("float[N,3,5,6]"), T("float[N,7,8,2]")]
        ),
        "float[N,3,7,8]"
    );
    assert_eq!(
        one(
            14,
            "Trilu",
            vec![],
            vec![T("float[N,4,4]"), C(ints(&[], &[1]))]
        ),
        "float[N,4,4]"
    );
}
