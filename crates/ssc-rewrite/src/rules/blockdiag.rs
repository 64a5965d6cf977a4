//! Rule family a: a dense conv whose weight is block-diagonal after channel permutations is a
//! grouped conv between two channel gathers.
//!
//! **Matches** `Conv(x, W, b)` with `group = 1` over an original or a derived weight.
//! **Fires when** the non-zero kernels form `G > 1` equal-sized components covering every
//! channel (`BlockDiagonal` present, not padded): then `W'[j, l] = W[out_perm[j],
//! in_perm[(j / bo) * bi + l]]` holds every non-zero weight.
//! **Adds** `Gather(out_perm⁻¹) ∘ Conv(group = G, W', b[out_perm]) ∘ Gather(in_perm)` (gathers on
//! the channel axis; an identity permutation adds no gather).
//!
//! ```text
//! Conv 8->8 3x3, W[o,i] != 0 iff o%2 == i%2   =>   Gather[0,4,1,5,..] ∘ Conv g=2 ∘ Gather[0,2,4,6,1,..]
//! ```

use egg::{EGraph, Id, Rewrite};

use super::{conv_rule, grouped_branch, ConvMatch, ConvRewrite};
use crate::analysis::SscAnalysis;
use crate::lang::SscNode;

/// The rule's name in reports.
pub const NAME: &str = "block-diagonal-to-grouped";

/// The rewrite.
pub fn rule() -> Rewrite<SscNode, SscAnalysis> {
    conv_rule(BlockDiag)
}

/// The conditional rewrite of [`rule`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockDiag;

impl ConvRewrite for BlockDiag {
    fn name(&self) -> &'static str {
        NAME
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        if m.attrs.group != 1 {
            return None;
        }
        let blocks = m.facts.connectivity.blocks.clone()?;
        if blocks.groups < 2 || blocks.padded {
            return None;
        }
        Some(grouped_branch(egraph, m, &blocks, true))
    }
}
