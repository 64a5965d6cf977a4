//! An internal failure never blames the user's model: a rule whose output is malformed is
//! dropped with a warning naming it, and optimisation goes on with every other rule. The two
//! broken rules below stand in for rule bugs of either kind: one the rewriter's own check
//! catches as the alternative is added, one that passes it but cannot be emitted (so the facade
//! redoes the rewrite without it).

use std::sync::Arc;

use egg::{EGraph, Id};
use ssc_opt::ir::{Attribute, DataType, Dim, Model, OpDesc, Tensor, TensorType, ValueType};
use ssc_opt::ssc_rewrite::lang::{Indices, WeightOp};
use ssc_opt::ssc_rewrite::{
    conv_rule, ConvMatch, ConvRewrite, MacCost, RewriteOptions, SscAnalysis, SscNode,
};
use ssc_opt::{optimize, verify, Options, VerifyOptions};

/// `y = Conv(x, W, b)`, 8 -> 8 channels, 3x3, pads 1, on a 1x8x6x6 input; `W` is
/// block-diagonal (two blocks of 4), so `block-diagonal-to-grouped` fires on it.
fn model() -> Model {
    let mut model = Model {
        ir_version: 8,
        opset_imports: vec![ssc_opt::ir::OpsetImport {
            domain: String::new(),
            version: 17,
        }],
        ..Model::default()
    };
    let g = &mut model.graph;
    let ty = |c: usize| {
        Some(ValueType::Tensor(TensorType {
            elem: DataType::Float,
            shape: Some([1, c, 6, 6].map(Dim::Known).to_vec()),
        }))
    };
    let x = g.add_value("x", ty(8)).unwrap();
    let y = g.add_value("y", ty(8)).unwrap();
    let (w, b) = (
        g.add_value("w", None).unwrap(),
        g.add_value("b", None).unwrap(),
    );
    let mut wv = vec![0.0f32; 8 * 8 * 9];
    for o in 0..8 {
        for i in 0..8 {
            for t in 0..9 {
                if o / 4 == i / 4 {
                    wv[(o * 8 + i) * 9 + t] = ((o * 31 + i * 7 + t * 3) % 17) as f32 / 8.0 - 1.0;
                }
            }
        }
    }
    g.set_initializer(w, Tensor::from_f32(vec![8, 8, 3, 3], &wv));
    let bv: Vec<f32> = (0..8).map(|o| o as f32 / 4.0).collect();
    g.set_initializer(b, Tensor::from_f32(vec![8], &bv));
    g.add_op(
        OpDesc::new("Conv")
            .with_name("conv")
            .with_attr(Attribute::ints("pads", vec![1; 4])),
        vec![Some(x), Some(w), Some(b)],
        vec![Some(y)],
    )
    .unwrap();
    g.set_inputs(vec![x]);
    g.set_outputs(vec![y]);
    model
}

/// Reads only half the input channels but keeps the whole weight: the conv is malformed.
struct NarrowsInputOnly;

impl ConvRewrite for NarrowsInputOnly {
    fn name(&self) -> &'static str {
        "broken-narrow"
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        let half = (0..m.x_shape[1] as u32 / 2).collect::<Vec<_>>();
        let x = egraph.add(SscNode::Gather {
            idx: Indices::from(&half[..]),
            arg: [m.x],
        });
        let a = egraph.add(SscNode::ConvAttrs(Box::new(m.attrs.clone())));
        Some(egraph.add(SscNode::Conv([a, x, m.w, m.b])))
    }
}

/// Offers the bias broadcast to the output shape as the whole result: well-shaped (so the
/// rewriter's check passes, and it costs nothing, so extraction picks it), but a constant
/// cannot write the conv's output value.
struct BiasOnly;

impl ConvRewrite for BiasOnly {
    fn name(&self) -> &'static str {
        "broken-constant"
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        let spatial = m.attrs.output_spatial(&m.x_shape[2..])?;
        let op = WeightOp::Channel {
            batch: m.x_shape[0],
            spatial,
        };
        m.has_bias
            .then(|| egraph.add(SscNode::WeightOp { op, arg: [m.b] }))
    }
}

fn options(rule: impl ConvRewrite) -> Options {
    Options {
        rewrite_options: RewriteOptions {
            cost: Arc::new(MacCost),
            extra_rules: vec![conv_rule(rule)],
            ..RewriteOptions::default()
        },
        ..Options::default()
    }
}

/// Optimises [`model`] with `rule` added, checks the result still computes the original
/// function, and returns the warnings and the rules whose forms were chosen.
fn run(rule: impl ConvRewrite) -> (Vec<String>, Vec<Option<String>>) {
    let original = model();
    let mut m = original.clone();
    let report = optimize(&mut m, &options(rule)).expect("a broken rule is not the model's fault");
    let v = verify(&original, &m, &[], &VerifyOptions::default()).unwrap();
    assert!(v.passed(), "{}", v.summary());
    let rw = report.rewrite.expect("the rewriter ran");
    (
        report.warnings,
        rw.layers.iter().map(|l| l.rule.clone()).collect(),
    )
}

#[test]
fn a_malformed_alternative_is_dropped_with_a_warning_naming_the_rule() {
    let (warnings, chosen) = run(NarrowsInputOnly);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("`broken-narrow` on `conv`"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("input has 4 channels"), "{warnings:?}");
    // The other rules still ran: the block-diagonal conv became a grouped one.
    assert_eq!(chosen, [Some("block-diagonal-to-grouped".to_string())]);
}

#[test]
fn a_form_that_cannot_be_emitted_is_retried_without_its_rule() {
    let (warnings, chosen) = run(BiasOnly);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("`broken-constant` on `conv` produced an invalid graph"),
        "{warnings:?}"
    );
    assert_eq!(chosen, [Some("block-diagonal-to-grouped".to_string())]);
}
