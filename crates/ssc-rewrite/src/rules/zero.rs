//! Rule family d, pruning (PAPERS.md section 4): zero input columns are work the conv need not
//! do. Whole zero (or pruned, constant) output filters are channel removal's business
//! ([`crate::channels`]): it removes them from the conv and from every reader across layers.
//!
//! # Zero input columns ([`zero_inputs_rule`])
//!
//! **Matches** `Conv(x, W, b)` with `group = 1` over an original or a derived weight.
//! **Fires when** some but not all input columns `W[:, i]` are entirely zero (`zero_inputs`):
//! those channels contribute nothing.
//! **Adds** `Conv(Gather(x, nonzero), W[:, nonzero], b)`.
//!
//! ```text
//! Conv 8->8 3x3, W[:, 2] = 0   =>   Conv 7->8 3x3 ∘ Gather[0,1,3,4,5,6,7]
//! ```

use egg::{EGraph, Id, Rewrite};

use super::{conv_rule, gather_channels, weight_op, ConvMatch, ConvRewrite};
use crate::analysis::SscAnalysis;
use crate::lang::{Indices, SscNode, WeightOp};

/// The zero-inputs rule's name in reports.
pub const ZERO_INPUTS: &str = "zero-inputs-sliced";

/// Zero input columns sliced away.
pub fn zero_inputs_rule() -> Rewrite<SscNode, SscAnalysis> {
    conv_rule(ZeroInputs)
}

/// The conditional rewrite of [`zero_inputs_rule`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ZeroInputs;

impl ConvRewrite for ZeroInputs {
    fn name(&self) -> &'static str {
        ZERO_INPUTS
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        let u = &m.facts.unified;
        let ci = m.facts.weight_shape[1];
        if m.attrs.group != 1
            || m.x_shape[1] != ci
            || u.zero_inputs.is_empty()
            || u.zero_inputs.len() >= ci
        {
            return None;
        }
        let mut is_zero = vec![false; ci];
        for &i in &u.zero_inputs {
            match is_zero.get_mut(i as usize) {
                Some(z @ false) => *z = true,
                _ => return None,
            }
        }
        let keep: Vec<u32> = (0..ci as u32).filter(|&i| !is_zero[i as usize]).collect();
        let xin = gather_channels(egraph, m.x, &keep);
        let w = weight_op(
            egraph,
            WeightOp::Gather1 {
                idx: Indices::from(&keep[..]),
            },
            m.w,
        );
        let a = egraph.add(SscNode::ConvAttrs(Box::new(m.attrs.clone())));
        let new = egraph.add(SscNode::Conv([a, xin, w, m.b]));
        Some(new)
    }
}
