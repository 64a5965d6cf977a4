//! Rule family b: the SSC split (PAPERS.md section 1). A conv whose spatial kernels are
//! block-diagonal after permutation, with point kernels (centre tap only) elsewhere, is a
//! grouped `k x k` conv plus a dense 1x1 conv on the centre taps.
//!
//! **Matches** `Conv(x, W, b)` with `group = 1` over an original or a derived weight.
//! **Fires when** the SSC facts are present (spatial and point kernels mixed, some point
//! kernels outside the spatial blocks), the spatial components are `G > 1` equal blocks covering
//! every channel, and the centre crop is exact: every kernel axis is odd and each pad is at
//! least `(k/2) * dilation` (then a 1x1 conv with the same stride and pads reduced by
//! `(k/2) * dilation` reads exactly the centre-tap positions of every output, see
//! [`ConvAttrs::cropped`](crate::lang::ConvAttrs::cropped)).
//! **Adds** `Add(grouped_branch(W, b), Conv_1x1(x, centre(offblocks(W))))`; the grouped branch
//! is family a's construction (its blocks also keep the point kernels that fall inside them);
//! the bias goes on the grouped branch only. Depthwise (+ pointwise) and the HetConv-shifted
//! pattern are the cases `bi = 1` and a non-identity permutation.
//!
//! ```text
//! Conv 16->16 3x3, F in 4 diagonal blocks, P elsewhere   =>   Add(Conv 3x3 g=4, Conv 1x1)
//! ```

use egg::{EGraph, Id, Rewrite};

use super::{conv_rule, grouped_branch, weight_op, ConvMatch, ConvRewrite};
use crate::analysis::SscAnalysis;
use crate::lang::{Indices, SscNode, WeightOp};

/// The rule's name in reports.
pub const NAME: &str = "ssc-split";

/// The rewrite.
pub fn rule() -> Rewrite<SscNode, SscAnalysis> {
    conv_rule(SscSplit)
}

/// The conditional rewrite of [`rule`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SscSplit;

impl ConvRewrite for SscSplit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        if m.attrs.group != 1 {
            return None;
        }
        let split = m.facts.ssc.as_ref()?;
        let blocks = split.spatial.blocks.clone()?;
        if blocks.groups < 2 || blocks.padded {
            return None;
        }
        if m.attrs.kernel.iter().any(|k| k % 2 == 0) {
            return None;
        }
        let begin: Vec<usize> = m.attrs.kernel.iter().map(|k| k / 2).collect();
        let end: Vec<usize> = begin.iter().map(|c| c + 1).collect();
        let point_attrs = m.attrs.cropped(&begin, &end)?;
        let grouped = grouped_branch(egraph, m, &blocks, true);
        let off = weight_op(
            egraph,
            WeightOp::MaskBlocks {
                groups: blocks.groups,
                out_perm: Indices::from(&blocks.output_perm[..]),
                in_perm: Indices::from(&blocks.input_perm[..]),
            },
            m.w,
        );
        let centre = weight_op(egraph, WeightOp::Crop { begin, end }, off);
        let a = egraph.add(SscNode::ConvAttrs(Box::new(point_attrs)));
        let nb = egraph.add(SscNode::NoBias);
        let point = egraph.add(SscNode::Conv([a, m.x, centre, nb]));
        Some(egraph.add(SscNode::Add([grouped, point])))
    }
}
