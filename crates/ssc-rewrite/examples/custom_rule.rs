//! How another compiler plugs into ssc-rewrite: one custom rule and one custom cost model,
//! passed through `RewriteOptions { extra_rules, cost, .. }`. Run it with
//! `cargo run -p ssc-rewrite --example custom_rule`; `tests/example.rs` runs the same [`run`].
//!
//! The rule, `group-and-crop`, composes families a and c, which the default rules never do
//! (they match original convs only, so one conv gets one alternative per rule): a conv that is
//! block-diagonal after permutation *and* uses only some taps becomes a grouped conv on the
//! cropped kernel between two channel gathers. It is built like the default rules: the public
//! [`ConvSearcher`](ssc_rewrite::ConvSearcher) finds convs over original weights, [`ConvMatch`]
//! collects the guard data (the weight's structure facts), and the rule's
//! [`ConvRewrite::alternative`] adds one alternative to the conv's e-class with symbolic weight
//! operations ([`conv_rule`] pairs the two and records the rule for the report). The cost model,
//! [`NodePenaltyCost`], prices MACs plus a fixed penalty per run-time node, so an alternative
//! that saves fewer MACs than its extra nodes cost loses.

use std::fmt::Write as _;
use std::sync::Arc;

use egg::{EGraph, Id, Rewrite};
use ssc_ir::{Model, Tensor};
use ssc_rewrite::lang::{ConvAttrs, Indices, WeightOp};
use ssc_rewrite::{
    conv_rule, rewrite_model, ConvMatch, ConvRewrite, CostModel, MacCost, NodeCostInput,
    RewriteOptions, RewriteReport, SscAnalysis, SscNode,
};

/// The custom rule's name in reports.
pub const GROUP_AND_CROP: &str = "group-and-crop";

/// `Conv(x, W, b) => Gather(out⁻¹) ∘ Conv(group = G, crop(blocks(W)), b[out]) ∘ Gather(in)`
/// when `W` is block-diagonal after permutation (family a's guard) and its used taps fit a
/// smaller kernel whose pads stay non-negative (family c's guard). Exact for the same reasons
/// as each: the dropped weights are all zero, and the cropped conv reads the same positions.
pub fn group_and_crop() -> Rewrite<SscNode, SscAnalysis> {
    conv_rule(GroupAndCrop)
}

/// The conditional rewrite of [`group_and_crop`].
#[derive(Clone, Copy, Debug)]
pub struct GroupAndCrop;

/// `Gather(x, idx, axis = 1)`, or `x` itself for the identity.
fn gather(egraph: &mut EGraph<SscNode, SscAnalysis>, x: Id, idx: &[u32]) -> Id {
    if idx.iter().enumerate().all(|(j, &i)| i as usize == j) {
        return x;
    }
    egraph.add(SscNode::Gather {
        idx: Indices::from(idx),
        arg: [x],
    })
}

impl ConvRewrite for GroupAndCrop {
    fn name(&self) -> &'static str {
        GROUP_AND_CROP
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        // Family a's guard: equal blocks covering every channel.
        let blocks = m.facts.connectivity.blocks.clone()?;
        if m.attrs.group != 1 || blocks.groups < 2 || blocks.padded {
            return None;
        }
        // Family c's guard: a smaller tap box, and pads that stay non-negative.
        let extent = m
            .facts
            .taps
            .extent
            .as_ref()
            .filter(|_| m.facts.taps.shrinkable)?;
        let begin: Vec<usize> = extent.iter().map(|e| e.begin).collect();
        let end: Vec<usize> = extent.iter().map(|e| e.end).collect();
        let cropped = m.attrs.cropped(&begin, &end)?;
        let attrs = ConvAttrs {
            group: blocks.groups,
            ..cropped
        };
        let (out_perm, in_perm) = (
            Indices::from(&blocks.output_perm[..]),
            Indices::from(&blocks.input_perm[..]),
        );
        let xin = gather(egraph, m.x, &in_perm);
        let grouped = egraph.add(SscNode::WeightOp {
            op: WeightOp::Blocks {
                groups: blocks.groups,
                out_perm: out_perm.clone(),
                in_perm,
            },
            arg: [m.w],
        });
        let w = egraph.add(SscNode::WeightOp {
            op: WeightOp::Crop { begin, end },
            arg: [grouped],
        });
        let b = if m.has_bias {
            egraph.add(SscNode::WeightOp {
                op: WeightOp::Gather0 { idx: out_perm },
                arg: [m.b],
            })
        } else {
            egraph.add(SscNode::NoBias)
        };
        let a = egraph.add(SscNode::ConvAttrs(Box::new(attrs)));
        let y = egraph.add(SscNode::Conv([a, xin, w, b]));
        Some(gather(egraph, y, &blocks.output_unperm()))
    }
}

/// MACs plus [`NodePenaltyCost::macs_per_node`] per run-time node, plus a tiny per-weight-byte
/// tie-break. Unit: MAC-equivalents (only the ordering matters to the extractor).
#[derive(Clone, Copy, Debug)]
pub struct NodePenaltyCost {
    /// What launching one more node is worth, in MACs.
    pub macs_per_node: f64,
}

impl CostModel for NodePenaltyCost {
    fn node_cost(&self, n: &NodeCostInput) -> f64 {
        // The tie-break (1e-6 MAC per byte) only separates forms of equal MACs and node count.
        n.macs as f64 + self.macs_per_node + n.weight_bytes as f64 * 1e-6
    }
}

/// One conv whose 3x3 kernels use only the centre tap, and only where `o % 2 == i % 2`: two
/// interleaved 4x4 blocks of point kernels. Family a alone gives a grouped 3x3 conv, family c
/// alone a dense 1x1 conv, the custom rule a grouped 1x1 conv.
pub fn model() -> Model {
    let mut w = Vec::new();
    for o in 0..8 {
        for i in 0..8 {
            for t in 0..9 {
                let v = ((o * 8 + i) % 13) as f32 / 8.0 - 0.8125; // never zero
                let used = o % 2 == i % 2 && t == 4;
                w.push(if used { v.to_string() } else { "0".into() });
            }
        }
    }
    let text = format!(
        r#"
graph main(%x: float[1,8,6,6]) -> (%y) {{
  init %w: float[8,8,3,3] = [{}]
  init %b: float[8] = [0.5, -0.25, 0.125, 1, -1, 0.75, 0, 2]
  %y = Conv(%x, %w, %b) {{kernel_shape=[3, 3], pads=[1, 1, 1, 1]}} name="conv"
}}
"#,
        w.join(", ")
    );
    let mut m = ssc_ir::parse_model(&text).expect("the example model parses");
    ssc_passes::infer_shapes(&mut m, &[]).expect("shapes infer");
    m
}

/// One report line per matched conv.
fn describe(report: &RewriteReport) -> String {
    let mut s = String::new();
    for l in &report.layers {
        let _ = writeln!(
            s,
            "  {}: {} -> {} (macs {} -> {}, params {} -> {}, fired {:?}, {})",
            l.node,
            l.form_before,
            l.form_after,
            l.macs_before,
            l.macs_after,
            l.params_before,
            l.params_after,
            l.rules_fired,
            if l.rewritten { "rewritten" } else { "kept" }
        );
    }
    s
}

/// The largest `|after - before|` over the model's output on one fixed input.
fn max_abs_diff(before: &Model, after: &Model) -> f64 {
    let x: Vec<f32> = (0..8 * 6 * 6)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let feeds = [("x".to_string(), Tensor::from_f32(vec![1, 8, 6, 6], &x))];
    let ya = ssc_exec::run_model(before, &feeds).expect("original runs");
    let yb = ssc_exec::run_model(after, &feeds).expect("rewritten runs");
    let (a, b) = (ya[0].1.to_f64_vec().unwrap(), yb[0].1.to_f64_vec().unwrap());
    a.iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max)
}

/// Rewrites [`model`] with the default rules plus the custom rule, once under [`MacCost`] and
/// once under [`NodePenaltyCost`]; returns the reports and both rewritten IRs.
pub fn run() -> String {
    let original = model();
    let mut out = String::new();
    let costs: [(&str, Arc<dyn CostModel>); 2] = [
        ("MacCost", Arc::new(MacCost)),
        (
            "NodePenaltyCost { macs_per_node: 1000 }",
            Arc::new(NodePenaltyCost {
                macs_per_node: 1_000.0,
            }),
        ),
    ];
    for (name, cost) in costs {
        let opts = RewriteOptions {
            cost,
            extra_rules: vec![group_and_crop()],
            ..RewriteOptions::default()
        };
        let mut m = original.clone();
        let report = rewrite_model(&mut m, &opts).expect("rewrite succeeds");
        let diff = max_abs_diff(&original, &m);
        assert!(diff < 1e-4, "the rewrite changed the output by {diff}");
        let _ = writeln!(
            out,
            "with {name}: {} of {} matched convs rewritten, MACs {} -> {}, max |diff| {diff:.1e}",
            report.rewritten,
            report.layers.len(),
            report.macs_before,
            report.macs_after
        );
        out.push_str(&describe(&report));
        out.push_str(&ssc_ir::print_model(&m));
        out.push('\n');
    }
    out
}

#[allow(dead_code)] // tests/example.rs includes this file for `run` and has its own entry point
fn main() {
    print!("{}", run());
}
