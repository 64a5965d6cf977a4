//! Rule family d, pruning (PAPERS.md section 4): whole zero filters and zero input columns are
//! work the conv need not do. Two rules, each adding one alternative per matched conv; neither
//! changes the conv's neighbours (propagating a removed channel into consumers is not done here).
//!
//! # Zero output filters ([`zero_outputs_rule`])
//!
//! **Matches** `Conv(x, W, b)` with `group = 1` over an original weight.
//! **Fires when** some but not all filters are entirely zero (`zero_outputs`, exactly 0.0 in
//! exact mode): those outputs are their bias (0 without one), constant over the output, and
//! the constant plane `[N, n_zero, H', W']` is at most [`MAX_PLANE_BYTES`].
//! **Adds** `Gather(idx) ∘ Concat(Conv(x, W[nz], b[nz]), plane(b[zero]))`, `idx` putting every
//! channel back in place. The extractor keeps it only where the saved MACs pay for the copy.
//!
//! ```text
//! Conv 8->8 3x3, W[1] = W[5] = 0   =>   Gather ∘ Concat(Conv 8->6 3x3, const[1,2,H,W])
//! ```
//!
//! # Zero input columns ([`zero_inputs_rule`])
//!
//! **Matches** `Conv(x, W, b)` with `group = 1` over an original weight.
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
use crate::lang::{Indices, Literal, SscNode, WeightOp};

/// The zero-outputs rule's name in reports.
pub const ZERO_OUTPUTS: &str = "zero-filters-to-constant";
/// The zero-inputs rule's name in reports.
pub const ZERO_INPUTS: &str = "zero-inputs-sliced";

/// The largest constant plane the zero-outputs rule materialises (1 MiB).
pub const MAX_PLANE_BYTES: usize = 1 << 20;

/// Zero filters replaced by their constant bias plane.
pub fn zero_outputs_rule() -> Rewrite<SscNode, SscAnalysis> {
    conv_rule(ZeroOutputs)
}

/// Zero input columns sliced away.
pub fn zero_inputs_rule() -> Rewrite<SscNode, SscAnalysis> {
    conv_rule(ZeroInputs)
}

/// The conditional rewrite of [`zero_outputs_rule`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ZeroOutputs;

impl ConvRewrite for ZeroOutputs {
    fn name(&self) -> &'static str {
        ZERO_OUTPUTS
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        let u = &m.facts.unified;
        let co = m.facts.weight_shape[0];
        if m.attrs.group != 1 || u.zero_outputs.is_empty() || u.zero_outputs.len() >= co {
            return None;
        }
        let mut is_zero = vec![false; co];
        for &o in &u.zero_outputs {
            match is_zero.get_mut(o as usize) {
                Some(z @ false) => *z = true,
                _ => return None,
            }
        }
        let out_sp = m.attrs.output_spatial(&m.x_shape[2..])?;
        let batch = m.x_shape[0];
        let plane = batch * u.zero_outputs.len() * out_sp.iter().product::<usize>();
        if plane.saturating_mul(4) > MAX_PLANE_BYTES {
            return None;
        }
        let nz: Vec<u32> = (0..co as u32).filter(|&o| !is_zero[o as usize]).collect();
        let zeros: Vec<u32> = (0..co as u32).filter(|&o| is_zero[o as usize]).collect();
        // Position of each channel in Concat(nz, zeros).
        let mut idx = vec![0u32; co];
        for (p, &o) in nz.iter().chain(&zeros).enumerate() {
            idx[o as usize] = p as u32;
        }
        let nz: Indices = Indices::from(&nz[..]);
        let w = weight_op(egraph, WeightOp::Gather0 { idx: nz.clone() }, m.w);
        let (b, consts) = if m.has_bias {
            let b = weight_op(egraph, WeightOp::Gather0 { idx: nz }, m.b);
            let c = weight_op(
                egraph,
                WeightOp::Gather0 {
                    idx: Indices::from(&zeros[..]),
                },
                m.b,
            );
            (b, c)
        } else {
            let lit = Literal::new(vec![zeros.len()], &vec![0.0; zeros.len()]);
            (
                egraph.add(SscNode::NoBias),
                egraph.add(SscNode::Literal(Box::new(lit))),
            )
        };
        let a = egraph.add(SscNode::ConvAttrs(Box::new(m.attrs.clone())));
        let y = egraph.add(SscNode::Conv([a, m.x, w, b]));
        let c = weight_op(
            egraph,
            WeightOp::Channel {
                batch,
                spatial: out_sp,
            },
            consts,
        );
        let cat = egraph.add(SscNode::Concat([y, c]));
        let new = gather_channels(egraph, cat, &idx);
        Some(new)
    }
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
