//! Dead-code elimination: dead ops, custom-domain ops, unused initializers (current and legacy
//! IR), dangling values and captured values.

mod common;

use common::{floats, G};

#[test]
fn dead_ops_and_their_constants_go() {
    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.init("w", floats(&[2], &[1.0, 2.0]));
    g.init("unused", floats(&[1], &[0.0]));
    g.op("Relu", &["x"], &["y"]);
    g.op("Mul", &["x", "w"], &["dead1"]);
    g.op("Neg", &["dead1"], &["dead2"]);
    g.v("stray");
    g.outputs(&["y"]);
    let rep = g.run("dce");
    assert_eq!(rep.get("removed_dead_op"), 2);
    assert_eq!(rep.get("removed_unused_initializer"), 2);
    assert_eq!(rep.get("removed_dangling_value"), 3, "dead1, dead2, stray");
    assert_eq!(g.ops(), ["Relu"]);
    assert_eq!(g.input_names(), ["x"]);
}

#[test]
fn custom_ops_and_what_they_read_are_kept() {
    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.op("Relu", &["x"], &["y"]);
    g.op("Neg", &["x"], &["n"]);
    let side = g.op("Print", &["n"], &[]);
    g.g().desc_mut(side).domain = "com.example".into();
    g.outputs(&["y"]);
    assert_eq!(g.run("dce").get("removed_dead_op"), 0);
    assert_eq!(g.ops(), ["Relu", "Neg", "Print"]);
}

#[test]
fn captured_values_keep_their_producers() {
    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.input("cond", "bool[]");
    g.op("Neg", &["x"], &["n"]);
    let if_op = g.op("If", &["cond"], &["out"]);
    let n = g.v("n");
    g.g().add_capture(if_op, n);
    g.outputs(&["out"]);
    assert_eq!(g.run("dce").total(), 0);
}

#[test]
fn overridable_initializers_stay_but_legacy_ones_go() {
    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.input("opt", "float[1]");
    g.init("opt", floats(&[1], &[0.0]));
    g.op("Relu", &["x"], &["y"]);
    g.outputs(&["y"]);
    assert_eq!(g.run("dce").total(), 0);
    assert_eq!(g.input_names(), ["x", "opt"]);

    let mut g = G::with_ir(6, 3);
    g.input("x", "float[2]");
    g.init("w", floats(&[1], &[0.0]));
    g.op("Relu", &["x"], &["y"]);
    g.outputs(&["y"]);
    assert_eq!(g.input_names(), ["x", "w"]);
    assert_eq!(g.run("dce").get("removed_unused_initializer"), 1);
    assert_eq!(g.input_names(), ["x"]);
}

#[test]
fn unused_graph_inputs_and_optional_outputs_stay() {
    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.input("spare", "float[2]");
    g.op("Dropout", &["x"], &["y", "mask"]);
    g.outputs(&["y"]);
    assert_eq!(g.run("dce").total(), 0);
    assert!(g.has("spare") && g.has("mask"));
}
