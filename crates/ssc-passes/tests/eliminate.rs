//! Identity and Dropout removal, especially the name-preserving cases at graph outputs and
//! subgraph captures.

mod common;

use common::{floats, ints, G};
use ssc_ir::Attribute;
use ssc_ir::Tensor;

#[test]
fn identity_in_the_middle_goes() {
    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.op("Relu", &["x"], &["y"]);
    g.op("Identity", &["y"], &["z"]);
    g.op("Add", &["z", "z"], &["out"]);
    g.outputs(&["out"]);
    assert_eq!(g.run("eliminate_identity").get("removed_identity"), 1);
    assert_eq!(g.ops(), ["Relu", "Add"]);
    assert!(!g.has("z"));
}

#[test]
fn identity_feeding_a_graph_output_renames_the_producer_output() {
    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.op("Relu", &["x"], &["y"]);
    g.op("Identity", &["y"], &["out"]);
    g.op("Neg", &["y"], &["other"]);
    g.outputs(&["out", "other"]);
    g.declare("y", "float[2]");
    assert_eq!(g.run("eliminate_identity").get("removed_identity"), 1);
    assert_eq!(g.ops(), ["Relu", "Neg"]);
    assert_eq!(g.producer_type("out").as_deref(), Some("Relu"));
    assert!(
        !g.has("y"),
        "the intermediate name is gone, the output name survives"
    );
    assert_eq!(g.output_names(), ["out", "other"]);
    assert_eq!(
        g.ty_of("out"),
        "float[2]",
        "type carried over from the intermediate"
    );
    let neg_in = {
        let gr = &g.m.graph;
        let (op, _) = gr.producer(gr.value_by_name("other").unwrap()).unwrap();
        gr.value(gr.op(op).input(0).unwrap()).name.clone()
    };
    assert_eq!(neg_in, "out");
}

#[test]
fn identity_stays_where_it_creates_a_needed_name() {
    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.init("w", floats(&[2], &[1.0, 2.0]));
    g.op("Relu", &["x"], &["y"]);
    g.op("Identity", &["x"], &["x_out"]);
    g.op("Identity", &["w"], &["w_out"]);
    g.op("Identity", &["y"], &["y_copy"]);
    g.outputs(&["y", "y_copy", "x_out", "w_out"]);
    assert_eq!(g.run("eliminate_identity").total(), 0);
    assert_eq!(g.ops().iter().filter(|o| *o == "Identity").count(), 3);
}

#[test]
fn identity_read_by_a_subgraph_stays() {
    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.input("cond", "bool[]");
    g.op("Relu", &["x"], &["y"]);
    g.op("Identity", &["y"], &["z"]);
    let if_op = g.op("If", &["cond"], &["out"]);
    let z = g.v("z");
    g.g().add_capture(if_op, z);
    g.outputs(&["out"]);
    assert_eq!(g.run("eliminate_identity").total(), 0);
    assert!(g.ops().contains(&"Identity".to_string()));
}

#[test]
fn inference_dropout_goes() {
    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.init("ratio", floats(&[], &[0.5]));
    g.init(
        "off",
        Tensor::from_f64_as(ssc_ir::DataType::Bool, vec![], &[0.0]).unwrap(),
    );
    g.op("Relu", &["x"], &["y"]);
    g.op("Dropout", &["y", "ratio"], &["d1", "mask1"]);
    g.op("Dropout", &["d1", "ratio", "off"], &["d2"]);
    g.op("Neg", &["d2"], &["out"]);
    g.outputs(&["out"]);
    assert_eq!(g.run("eliminate_dropout").get("removed_dropout"), 2);
    assert_eq!(g.ops(), ["Relu", "Neg"]);
    assert!(!g.has("mask1"), "the unused mask value goes with its op");
}

#[test]
fn dropout_in_training_or_with_a_used_mask_stays() {
    let mut g = G::new(13);
    g.input("x", "float[2]");
    g.input("flag", "bool[]");
    g.init(
        "on",
        Tensor::from_f64_as(ssc_ir::DataType::Bool, vec![], &[1.0]).unwrap(),
    );
    g.op("Dropout", &["x", "", "on"], &["a"]);
    g.op("Dropout", &["x", "", "flag"], &["b"]);
    g.op("Dropout", &["x"], &["c", "mask"]);
    g.outputs(&["a", "b", "c", "mask"]);
    assert_eq!(g.run("eliminate_dropout").total(), 0);
    assert_eq!(g.ops().len(), 3);
}

#[test]
fn old_dropout_is_inference_whatever_is_test_says() {
    let mut g = G::new(6);
    g.input("x", "float[2]");
    g.op("Relu", &["x"], &["y"]);
    g.op_a(
        "Dropout",
        &["y"],
        &["out", "mask"],
        vec![Attribute::int("is_test", 0)],
    );
    g.outputs(&["out"]);
    assert_eq!(g.run("eliminate_dropout").get("removed_dropout"), 1);
    assert_eq!(g.producer_type("out").as_deref(), Some("Relu"));
    let _ = ints(&[1], &[0]);
}
