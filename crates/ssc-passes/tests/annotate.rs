//! JIT annotations (`annotate_for_jit`): which chains after a conv become a fused epilogue,
//! which near misses must not (a second consumer, a broadcasting Add, a graph output), which
//! layers are marked sparse, and that the annotations survive the text form but never reach ONNX.
//! The snapshot (`snapshots/jit/` at the repository root) shows the annotated IR of a small
//! conv -> Add -> Relu block and a 90%-sparse conv.

use ssc_ir::{Model, OpDesc};
use ssc_passes::{
    annotate_for_jit, epilogue_of, sparse_density_of, AnnotateReport, EpilogueAnnotation,
    EpilogueStep,
};

/// Parses `text`, infers shapes and annotates.
fn annotated(text: &str) -> (Model, AnnotateReport) {
    let mut m = ssc_ir::parse_model(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    ssc_passes::infer_shapes(&mut m, &[]).unwrap();
    let r = annotate_for_jit(&mut m);
    (m, r)
}

/// The op named `name`.
fn op<'a>(m: &'a Model, name: &str) -> &'a OpDesc {
    let g = &m.graph;
    let id = g
        .op_ids()
        .into_iter()
        .find(|&o| g.op(o).desc.name == name)
        .unwrap_or_else(|| panic!("no op {name}"));
    &g.op(id).desc
}

fn epi(steps: Vec<EpilogueStep>, output: &str, absorbed: &[&str]) -> Option<EpilogueAnnotation> {
    Some(EpilogueAnnotation {
        steps,
        output: output.into(),
        absorbed: absorbed.iter().map(|s| s.to_string()).collect(),
    })
}

use EpilogueStep::{Add, Bias, Clip, LeakyRelu, Relu};

const RESNET_BLOCK: &str = r#"
model ir_version=8
opset 17
graph main(%x: float[1,4,6,6]) -> (%y: float[1,4,6,6], %s: float[1,5,6,6]) {
  init %w: float[4,4,3,3] = seeded(1)
  init %b: float[4] = [0.5, -0.25, 0.125, 1]
  init %ws: float[5,4,1,1] = [0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -2, 0, 0, 0, 0, 0, 0]
  %c = Conv(%x, %w, %b) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv"
  %a = Add(%c, %x) name="add"
  %y = Relu(%a) name="relu"
  %s = Conv(%y, %ws) {kernel_shape=[1, 1]} name="sparse_conv"
}
"#;

#[test]
fn resnet_block_fuses_bias_add_relu_and_marks_the_sparse_conv() {
    let (m, r) = annotated(RESNET_BLOCK);
    assert_eq!(r.epilogues, 1);
    assert_eq!(r.sparse.len(), 1);
    assert_eq!(r.sparse[0].node, "sparse_conv");
    assert!((r.sparse[0].density - 0.1).abs() < 1e-12);
    assert_eq!(
        epilogue_of(op(&m, "conv")),
        epi(vec![Bias, Add("x".into()), Relu], "y", &["add", "relu"])
    );
    assert_eq!(sparse_density_of(op(&m, "conv")), None);
    // No bias and nothing after it (its output is a graph output): no epilogue.
    assert_eq!(epilogue_of(op(&m, "sparse_conv")), None);
    assert_eq!(sparse_density_of(op(&m, "sparse_conv")), Some(0.1));
    assert_eq!(op(&m, "sparse_conv").annotation("sparse"), Some("0.1000"));

    let snap = format!(
        "# report\nepilogues {}, sparse {:?}\n\n# annotated\n{}",
        r.epilogues,
        r.sparse
            .iter()
            .map(|s| format!("{} {} {:.4}", s.node, s.op_type, s.density))
            .collect::<Vec<_>>(),
        ssc_ir::print_model(&m)
    );
    insta::with_settings!({
        snapshot_path => "../../../snapshots/jit",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("annotate_resnet_block_and_sparse_conv", snap);
    });
}

#[test]
fn annotations_round_trip_through_text_and_never_reach_onnx() {
    let (m, _) = annotated(RESNET_BLOCK);
    let full = ssc_ir::text::PrintOptions {
        max_inline_elements: usize::MAX,
    };
    let text = ssc_ir::text::print_model_with(&m, &full);
    let back = ssc_ir::parse_model(&text).unwrap();
    assert_eq!(ssc_ir::text::print_model_with(&back, &full), text);
    assert_eq!(epilogue_of(op(&back, "conv")), epilogue_of(op(&m, "conv")));

    let bytes = ssc_onnx::encode_model(&m).unwrap();
    let loaded = ssc_onnx::decode(bytes.into(), std::path::Path::new("mem.onnx"), None).unwrap();
    let g = &loaded.model.graph;
    assert!(g
        .op_ids()
        .iter()
        .all(|&o| g.op(o).desc.annotations.is_empty()));
}

#[test]
fn annotating_twice_gives_the_same_result() {
    let (mut m, r1) = annotated(RESNET_BLOCK);
    let once = ssc_ir::print_model(&m);
    let r2 = annotate_for_jit(&mut m);
    assert_eq!(r1, r2);
    assert_eq!(ssc_ir::print_model(&m), once);
}

/// A conv with bias on `%x: float[1,4,6,6]` writing `%c`, followed by `rest` (op lines).
fn conv_then(outputs: &str, rest: &str, opset: i64) -> String {
    format!(
        r#"
model ir_version=8
opset {opset}
graph main(%x: float[1,4,6,6], %r: float[1,4,6,6], %v: float[1,4,1,1]) -> ({outputs}) {{
  init %w: float[4,4,3,3] = seeded(2)
  init %b: float[4] = [0.5, -0.25, 0.125, 1]
  init %lo: float[] = [0]
  init %hi: float[] = [6]
  %c = Conv(%x, %w, %b) {{kernel_shape=[3, 3], pads=[1, 1, 1, 1]}} name="conv"
{rest}
}}
"#
    )
}

#[test]
fn near_miss_conv_output_with_two_consumers_keeps_only_the_bias() {
    // The Relu reads %c, but so does the Add: %c must be materialised, nothing is fused.
    let (m, r) = annotated(&conv_then(
        "%y, %z",
        "  %y = Relu(%c) name=\"relu\"\n  %z = Add(%c, %r) name=\"add\"",
        17,
    ));
    assert_eq!(r.epilogues, 1);
    assert_eq!(epilogue_of(op(&m, "conv")), epi(vec![Bias], "c", &[]));
}

#[test]
fn near_miss_add_output_with_two_consumers_stops_before_the_relu() {
    let (m, _) = annotated(&conv_then(
        "%y, %z",
        "  %a = Add(%c, %r) name=\"add\"\n  %y = Relu(%a) name=\"relu\"\n  %z = Sigmoid(%a) name=\"sig\"",
        17,
    ));
    assert_eq!(
        epilogue_of(op(&m, "conv")),
        epi(vec![Bias, Add("r".into())], "a", &["add"])
    );
}

#[test]
fn relu_whose_output_has_two_consumers_is_still_fused() {
    // Only the values *between* fused ops must have one consumer; the chain's output may have many.
    let (m, _) = annotated(&conv_then(
        "%y, %z",
        "  %y = Relu(%c) name=\"relu\"\n  %z = Sigmoid(%y) name=\"sig\"",
        17,
    ));
    assert_eq!(
        epilogue_of(op(&m, "conv")),
        epi(vec![Bias, Relu], "y", &["relu"])
    );
}

#[test]
fn near_miss_broadcasting_add_is_not_fused() {
    // %v is [1,4,1,1]: a broadcast, not a residual; and the Relu behind it is out of reach.
    let (m, _) = annotated(&conv_then(
        "%y",
        "  %a = Add(%c, %v) name=\"add\"\n  %y = Relu(%a) name=\"relu\"",
        17,
    ));
    assert_eq!(epilogue_of(op(&m, "conv")), epi(vec![Bias], "c", &[]));
}

#[test]
fn near_miss_conv_output_that_is_a_graph_output() {
    let (m, _) = annotated(&conv_then("%c, %y", "  %y = Relu(%c) name=\"relu\"", 17));
    assert_eq!(epilogue_of(op(&m, "conv")), epi(vec![Bias], "c", &[]));
}

#[test]
fn add_with_the_residual_first_is_fused() {
    let (m, _) = annotated(&conv_then(
        "%y",
        "  %a = Add(%r, %c) name=\"add\"\n  %y = Relu(%a) name=\"relu\"",
        17,
    ));
    assert_eq!(
        epilogue_of(op(&m, "conv")),
        epi(vec![Bias, Add("r".into()), Relu], "y", &["add", "relu"])
    );
}

#[test]
fn two_convs_meeting_in_one_add_only_the_later_fuses_it() {
    // As in a ResNet downsample block or a `plus-taps-split` pair: the first conv cannot fuse
    // the Add, whose other operand does not exist yet when it runs; the second one does.
    let (m, r) = annotated(&conv_then(
        "%y",
        "  %d = Conv(%r, %w) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name=\"down\"\n  %a = Add(%c, %d) name=\"add\"\n  %y = Relu(%a) name=\"relu\"",
        17,
    ));
    assert_eq!(r.epilogues, 2);
    assert_eq!(epilogue_of(op(&m, "conv")), epi(vec![Bias], "c", &[]));
    assert_eq!(
        epilogue_of(op(&m, "down")),
        epi(vec![Add("c".into()), Relu], "y", &["add", "relu"])
    );
}

#[test]
fn clip_and_leaky_relu_activations() {
    // Opset 11+: Clip bounds are constant inputs; an absent one is unbounded.
    let (m, _) = annotated(&conv_then(
        "%y",
        "  %y = Clip(%c, %lo, %hi) name=\"clip\"",
        17,
    ));
    assert_eq!(
        epilogue_of(op(&m, "conv")),
        epi(vec![Bias, Clip(0.0, 6.0)], "y", &["clip"])
    );
    assert_eq!(
        op(&m, "conv").annotation("epilogue"),
        Some("bias clip(0,6)")
    );
    let (m, _) = annotated(&conv_then(
        "%y",
        "  %y = Clip(%c, _, %hi) name=\"clip\"",
        17,
    ));
    assert_eq!(
        epilogue_of(op(&m, "conv")),
        epi(vec![Bias, Clip(f32::NEG_INFINITY, 6.0)], "y", &["clip"])
    );
    // A bound computed at run time cannot be baked into the kernel.
    let (m, _) = annotated(&conv_then(
        "%y",
        "  %m = ReduceMax(%r) {keepdims=0} name=\"max\"\n  %y = Clip(%c, %lo, %m) name=\"clip\"",
        17,
    ));
    assert_eq!(epilogue_of(op(&m, "conv")), epi(vec![Bias], "c", &[]));
    // Opset 6: attributes.
    let (m, _) = annotated(&conv_then(
        "%y",
        "  %y = Clip(%c) {max=6.0, min=0.0} name=\"clip\"",
        6,
    ));
    assert_eq!(
        epilogue_of(op(&m, "conv")),
        epi(vec![Bias, Clip(0.0, 6.0)], "y", &["clip"])
    );
    // Opset 6 without attributes: unbounded, as the reference executor computes it, and the
    // infinite bounds survive the annotation text.
    let (m, _) = annotated(&conv_then("%y", "  %y = Clip(%c) name=\"clip\"", 6));
    assert_eq!(
        epilogue_of(op(&m, "conv")),
        epi(
            vec![Bias, Clip(f32::NEG_INFINITY, f32::INFINITY)],
            "y",
            &["clip"]
        )
    );
    let (m, _) = annotated(&conv_then(
        "%y",
        "  %a = Add(%c, %r) name=\"add\"\n  %y = LeakyRelu(%a) {alpha=0.2} name=\"lrelu\"",
        17,
    ));
    assert_eq!(
        epilogue_of(op(&m, "conv")),
        epi(
            vec![Bias, Add("r".into()), LeakyRelu(0.2)],
            "y",
            &["add", "lrelu"]
        )
    );
}

#[test]
fn conv_without_bias_or_consumers_to_fuse_gets_no_epilogue() {
    let (m, r) = annotated(
        r#"
model ir_version=8
opset 17
graph main(%x: float[1,4,6,6]) -> (%y: float[1,4,6,6]) {
  init %w: float[4,4,3,3] = seeded(3)
  %c = Conv(%x, %w) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv"
  %y = Sigmoid(%c) name="sig"
}
"#,
    );
    assert_eq!(r.epilogues, 0);
    assert!(op(&m, "conv").annotations.is_empty());
}

#[test]
fn gemm_with_constant_weight_fuses_and_matmul_is_marked_sparse() {
    let (m, r) = annotated(
        r#"
model ir_version=8
opset 17
graph main(%x: float[2,4]) -> (%y: float[2,3], %z: float[2,2]) {
  init %wb: float[4,3] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0]
  init %c: float[3] = [1, 2, 3]
  init %wm: float[3,2] = [0, 0, 0, 1, 0, 0]
  %g = Gemm(%x, %wb, %c) name="gemm"
  %y = Relu(%g) name="relu"
  %z = MatMul(%y, %wm) name="matmul"
}
"#,
    );
    assert_eq!(
        epilogue_of(op(&m, "gemm")),
        epi(vec![Bias, Relu], "y", &["relu"])
    );
    assert_eq!(r.epilogues, 1);
    let marked: Vec<(&str, String)> = r
        .sparse
        .iter()
        .map(|s| (s.node.as_str(), format!("{:.4}", s.density)))
        .collect();
    assert_eq!(
        marked,
        [("gemm", "0.1667".to_string()), ("matmul", "0.1667".into())]
    );
}

#[test]
fn sparse_threshold_is_half_the_weights_exactly_zero() {
    let text = |w: &str| {
        format!(
            r#"
model ir_version=8
opset 17
graph main(%x: float[1,2,3,3]) -> (%y: float[1,2,3,3]) {{
  init %w: float[2,2,1,1] = {w}
  %y = Conv(%x, %w) {{kernel_shape=[1, 1]}} name="conv"
}}
"#
        )
    };
    // 2 of 4 zero (one of them -0.0): density 0.5, marked.
    let (m, _) = annotated(&text("[1, 0, -0.0, 3]"));
    assert_eq!(op(&m, "conv").annotation("sparse"), Some("0.5000"));
    // 1 of 4 zero; a tiny value is not zero.
    let (m, _) = annotated(&text("[1, 0, 1e-30, 3]"));
    assert_eq!(sparse_density_of(op(&m, "conv")), None);
}

#[test]
fn op_names_with_commas_survive_the_absorbed_list() {
    let (m, _) = annotated(&conv_then(
        "%y",
        "  %a = Add(%c, %r) name=\"add,1%\"\n  %y = Relu(%a) name=\"relu\"",
        17,
    ));
    assert_eq!(
        op(&m, "conv").annotation("epilogue.absorbed"),
        Some("add%2C1%25,relu")
    );
    assert_eq!(
        epilogue_of(op(&m, "conv")).unwrap().absorbed,
        ["add,1%", "relu"]
    );
}

#[test]
fn an_ssc_pair_fuses_the_branch_sum_and_the_skip_connection() {
    // SSC output form: grouped conv (g), pointwise conv (p), their sum, the block's skip
    // connection, Relu. The pointwise conv runs last, so it takes both Adds and the Relu; names
    // with commas survive the annotation's list encoding.
    let (m, r) = annotated(
        r#"
model ir_version=8
opset 17
graph main(%"x,0": float[1,4,6,6]) -> (%y: float[1,4,6,6]) {
  init %wg: float[4,2,3,3] = seeded(2)
  init %bg: float[4] = [0.5, -0.25, 0.125, 1]
  init %wp: float[4,4,1,1] = seeded(3)
  %g = Conv(%"x,0", %wg, %bg) {group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="grouped"
  %p = Conv(%"x,0", %wp) {kernel_shape=[1, 1]} name="pointwise"
  %"s,1" = Add(%g, %p) name="sum"
  %a = Add(%"s,1", %"x,0") name="skip"
  %y = Relu(%a) name="relu"
}
"#,
    );
    assert_eq!(r.epilogues, 2);
    assert_eq!(epilogue_of(op(&m, "grouped")), epi(vec![Bias], "g", &[]));
    assert_eq!(
        epilogue_of(op(&m, "pointwise")),
        epi(
            vec![Add("g".into()), Add("x,0".into()), Relu],
            "y",
            &["sum", "skip", "relu"]
        )
    );
}
