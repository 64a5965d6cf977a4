//! Constant folding phases: Constant, Cast, Shape, shape arithmetic, ConstantOfShape and the
//! general executor-backed fold, including the size limit and legacy (IR < 4) initializers.

mod common;

use common::{floats, ints, G};
use ssc_ir::{AttrValue, Attribute, DataType, Tensor};
use ssc_passes::{run_cleanups, run_phase, PassOptions};

#[test]
fn constants_of_every_attribute_form_become_initializers() {
    let mut g = G::new(13);
    g.op_a(
        "Constant",
        &[],
        &["t"],
        vec![Attribute::new(
            "value",
            AttrValue::Tensor(floats(&[2], &[1.0, 2.0])),
        )],
    );
    g.op_a(
        "Constant",
        &[],
        &["f"],
        vec![Attribute::float("value_float", 0.5)],
    );
    g.op_a(
        "Constant",
        &[],
        &["fs"],
        vec![Attribute::new(
            "value_floats",
            AttrValue::Floats(vec![1.0, 2.0]),
        )],
    );
    g.op_a(
        "Constant",
        &[],
        &["i"],
        vec![Attribute::int("value_int", 3)],
    );
    g.op_a(
        "Constant",
        &[],
        &["is"],
        vec![Attribute::ints("value_ints", vec![4, 5])],
    );
    g.op_a(
        "Constant",
        &[],
        &["s"],
        vec![Attribute::string("value_string", "hi")],
    );
    g.op_a(
        "Constant",
        &[],
        &["sp"],
        vec![Attribute::new("sparse_value", AttrValue::Ints(vec![]))],
    );
    g.outputs(&["t", "f", "fs", "i", "is", "s", "sp"]);
    let rep = g.run("fold_constant");
    assert_eq!(rep.get("folded_constant"), 6);
    assert_eq!(g.ops(), ["Constant"], "the sparse one stays");
    assert_eq!(g.ty_of("f"), "float[]");
    assert_eq!(g.ty_of("is"), "int64[2]");
    assert_eq!(g.ty_of("s"), "string[]");
    assert_eq!(g.init_of("is").unwrap().to_i64_vec().unwrap(), vec![4, 5]);
    assert_eq!(
        g.output_names(),
        ["t", "f", "fs", "i", "is", "s", "sp"],
        "names survive"
    );
    assert!(g.input_names().is_empty());
}

#[test]
fn legacy_ir_lists_new_initializers_as_inputs() {
    let mut g = G::with_ir(6, 3);
    g.input("x", "float[2]");
    g.op_a(
        "Constant",
        &[],
        &["c"],
        vec![Attribute::new(
            "value",
            AttrValue::Tensor(floats(&[2], &[1.0, 2.0])),
        )],
    );
    g.op("Add", &["x", "c"], &["y"]);
    g.outputs(&["y"]);
    g.run("fold_constant");
    assert_eq!(g.input_names(), ["x", "c"]);
    assert_eq!(g.ty_of("c"), "float[2]");
    // And the legacy initializer-input is a constant for the next folds.
    let mut g = G::with_ir(6, 3);
    g.init("w", floats(&[2], &[1.5, -2.5]));
    g.op_a("Cast", &["w"], &["y"], vec![Attribute::int("to", 7)]);
    g.outputs(&["y"]);
    assert_eq!(g.run("fold_cast").get("folded_cast"), 1);
    assert_eq!(g.input_names(), ["w", "y"]);
}

#[test]
fn casts_fold_exactly_or_not_at_all() {
    let mut g = G::new(13);
    g.init("w", floats(&[4], &[1.9, -1.9, 0.0, 2.5]));
    g.init("nan", floats(&[1], &[f32::NAN]));
    g.op_a("Cast", &["w"], &["i"], vec![Attribute::int("to", 7)]);
    g.op_a("Cast", &["w"], &["b"], vec![Attribute::int("to", 9)]);
    g.op_a("Cast", &["nan"], &["n"], vec![Attribute::int("to", 6)]);
    g.outputs(&["i", "b", "n"]);
    let rep = g.run("fold_cast");
    assert_eq!(rep.get("folded_cast"), 2);
    assert_eq!(
        g.init_of("i").unwrap().to_i64_vec().unwrap(),
        vec![1, -1, 0, 2]
    );
    assert_eq!(
        g.init_of("b").unwrap().to_i64_vec().unwrap(),
        vec![1, 1, 0, 1]
    );
    assert_eq!(g.init_of("b").unwrap().dtype, DataType::Bool);
    assert_eq!(g.ops(), ["Cast"], "NaN to int32 is undefined and stays");
}

#[test]
fn initializers_behind_inputs_are_not_constants() {
    let mut g = G::new(13);
    g.input("w", "float[2]");
    g.init("w", floats(&[2], &[1.0, 2.0]));
    g.op_a("Cast", &["w"], &["y"], vec![Attribute::int("to", 7)]);
    g.op("Shape", &["w"], &["s"]);
    g.outputs(&["y", "s"]);
    let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    assert_eq!(rep.get("folded_cast"), 0);
    // Shape does fold: the declared input type is static, whatever value is fed.
    assert_eq!(rep.get("folded_shape"), 1);
    assert_eq!(g.ops(), ["Cast"]);
    assert!(g.init_of("w").is_some(), "the default stays with its input");
}

#[test]
fn shapes_fold_when_static_with_opset_15_ranges() {
    let mut g = G::new(15);
    g.input("x", "float[1,64,7,7]");
    g.input("d", "float[N,3]");
    g.op("Shape", &["x"], &["s"]);
    g.op_a(
        "Shape",
        &["x"],
        &["mid"],
        vec![Attribute::int("start", 1), Attribute::int("end", -1)],
    );
    g.op_a(
        "Shape",
        &["d"],
        &["tail"],
        vec![Attribute::int("start", -1)],
    );
    g.op("Shape", &["d"], &["dyn"]);
    g.outputs(&["s", "mid", "tail", "dyn"]);
    assert_eq!(g.run("fold_shape").get("folded_shape"), 2);
    assert_eq!(
        g.init_of("s").unwrap().to_i64_vec().unwrap(),
        vec![1, 64, 7, 7]
    );
    assert_eq!(g.init_of("mid").unwrap().to_i64_vec().unwrap(), vec![64, 7]);
    // `d` has a symbolic dim, so neither of its Shapes folds (even the static tail: that
    // would need partial shapes, which the pass does not attempt).
    assert_eq!(g.ops(), ["Shape", "Shape"]);
}

#[test]
fn shape_arithmetic_chains_collapse() {
    let mut g = G::new(13);
    g.input("x", "float[2,8,2,2]");
    g.init("zero", ints(&[], &[0]));
    g.init("axes", ints(&[1], &[0]));
    g.init("m1", ints(&[1], &[-1]));
    g.op("Shape", &["x"], &["s"]);
    g.op_a(
        "Gather",
        &["s", "zero"],
        &["n"],
        vec![Attribute::int("axis", 0)],
    );
    g.op("Unsqueeze", &["n", "axes"], &["n1"]);
    g.op_a(
        "Concat",
        &["n1", "m1"],
        &["target"],
        vec![Attribute::int("axis", 0)],
    );
    g.op("Reshape", &["x", "target"], &["y"]);
    g.outputs(&["y"]);
    let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    assert_eq!(g.ops(), ["Reshape"]);
    assert_eq!(
        g.init_of("target").unwrap().to_i64_vec().unwrap(),
        vec![2, -1]
    );
    assert_eq!(rep.get("folded_shape_arith"), 3);
    assert!(
        !g.has("s") && !g.has("zero"),
        "intermediates and used-up constants are gone"
    );
}

#[test]
fn ambiguous_integer_division_is_left_alone() {
    let mut g = G::new(13);
    g.init("a", ints(&[2], &[-7, 8]));
    g.init("b", ints(&[], &[2]));
    g.op("Div", &["a", "b"], &["q"]);
    g.outputs(&["q"]);
    // Neither the exact phase nor the general one folds -7 / 2 (C truncates, numpy floors).
    let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    assert_eq!(rep.total(), 0);
    assert_eq!(g.ops(), ["Div"]);
}

#[test]
fn constant_of_shape_respects_the_size_limit() {
    let build = || {
        let mut g = G::new(13);
        g.init("small", ints(&[2], &[2, 3]));
        g.init("big", ints(&[2], &[1024, 1024]));
        let fill = Attribute::new("value", AttrValue::Tensor(floats(&[1], &[1.5])));
        g.op_a("ConstantOfShape", &["small"], &["a"], vec![fill.clone()]);
        g.op_a("ConstantOfShape", &["big"], &["b"], vec![fill]);
        g.outputs(&["a", "b"]);
        g
    };
    let mut g = build();
    assert_eq!(
        g.run("fold_constant_of_shape")
            .get("folded_constant_of_shape"),
        1
    );
    assert_eq!(g.init_of("a").unwrap().to_f32_vec().unwrap(), vec![1.5; 6]);
    assert_eq!(
        g.producer_type("b").as_deref(),
        Some("ConstantOfShape"),
        "4 MiB > 1 MiB"
    );
    let mut g = build();
    let opts = PassOptions {
        fold_size_limit: 8 << 20,
        ..PassOptions::default()
    };
    run_phase(&mut g.m, "fold_constant_of_shape", &opts).unwrap();
    assert_eq!(g.init_of("b").unwrap().dims, vec![1024, 1024]);
}

#[test]
fn general_folding_runs_the_reference_executor() {
    let mut g = G::new(13);
    g.input("x", "float[3,2]");
    g.init("w", floats(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    g.init("two", floats(&[], &[2.0]));
    g.init("huge", ints(&[3], &[1000, 1000, 1000]));
    g.op_a(
        "Transpose",
        &["w"],
        &["wt"],
        vec![Attribute::ints("perm", vec![1, 0])],
    );
    g.op("Mul", &["wt", "two"], &["w2"]);
    g.op("Add", &["x", "w2"], &["y"]);
    g.op("Expand", &["two", "huge"], &["e"]);
    g.outputs(&["y", "e"]);
    let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    assert_eq!(rep.get("folded_eval"), 2);
    assert_eq!(
        g.init_of("w2").unwrap().to_f32_vec().unwrap(),
        vec![2.0, 8.0, 4.0, 10.0, 6.0, 12.0]
    );
    // 4 GB of Expand output is never computed.
    assert_eq!(g.ops(), ["Add", "Expand"]);
}

#[test]
fn folded_graph_outputs_keep_their_names() {
    let mut g = G::new(13);
    g.op_a(
        "Constant",
        &[],
        &["c"],
        vec![Attribute::ints("value_ints", vec![1])],
    );
    g.op_a("Cast", &["c"], &["out"], vec![Attribute::int("to", 1)]);
    g.outputs(&["out"]);
    run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    assert!(g.ops().is_empty());
    assert_eq!(g.output_names(), ["out"]);
    assert_eq!(
        g.init_of("out").unwrap(),
        &Tensor::from_f32(vec![1], &[1.0])
    );
    assert!(!g.has("c"));
}

#[test]
fn quantisation_structure_is_never_folded() {
    // A QDQ conv: the int8 weight's DequantizeLinear and a QuantizeLinear of a constant both
    // stay, so a runtime still sees an int8 layer (folding would write a float weight four
    // times the size). The constant Mul beside them folds as usual.
    let mut g = G::new(13);
    g.input("x", "float[1,2,4,4]");
    g.init(
        "wq",
        Tensor::from_f64_as(
            DataType::Int8,
            vec![3, 2, 1, 1],
            &[1., -2., 3., -4., 5., -6.],
        )
        .unwrap(),
    );
    g.init("ws", floats(&[], &[0.1]));
    g.init(
        "wz",
        Tensor::from_f64_as(DataType::Int8, vec![], &[0.]).unwrap(),
    );
    g.init("c", floats(&[2], &[1.0, 2.0]));
    g.init("two", floats(&[], &[2.0]));
    g.op("DequantizeLinear", &["wq", "ws", "wz"], &["w"]);
    g.op("QuantizeLinear", &["c", "ws", "wz"], &["cq"]);
    g.op("Mul", &["two", "two"], &["four"]);
    g.op("Conv", &["x", "w"], &["y"]);
    g.outputs(&["y", "cq", "four"]);
    let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    assert_eq!(rep.get("folded_eval"), 1);
    assert_eq!(g.ops(), ["DequantizeLinear", "QuantizeLinear", "Conv"]);
}
