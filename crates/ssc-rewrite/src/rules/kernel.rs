//! Rule family c: kernel shape. Taps no kernel uses are cut away: centre-only kernels (all P)
//! become a 1x1 conv, a zero ring a smaller kernel.
//!
//! **Matches** `Conv(x, W, b)` (any group) over an original or a derived weight.
//! **Fires when** the union of used taps has a bounding box `begin..end` smaller than the
//! kernel on some axis, and every pad stays non-negative after removing `begin * dilation`
//! from the start and `(k - end) * dilation` from the end of its axis. Output position `y`
//! of the original reads input `y * s - pad_begin + t * d` for tap `t`; with tap `t = t' +
//! begin` and `pad_begin' = pad_begin - begin * d` the cropped conv reads the same positions,
//! and the output length `(L + pb + pe - d (k - 1) - 1) / s + 1` is unchanged. When a pad
//! would go negative the rule does not fire.
//! **Adds** `Conv(cropped attrs, x, crop(W), b)`.
//!
//! ```text
//! Conv 3x3 pads 1 with zero ring   =>   Conv 1x1 pads 0 (same stride)
//! Conv 5x5 pads 2, taps in 3x3     =>   Conv 3x3 pads 1
//! ```

use egg::{EGraph, Id, Rewrite};

use super::{conv_rule, weight_op, ConvMatch, ConvRewrite};
use crate::analysis::SscAnalysis;
use crate::lang::{SscNode, WeightOp};

/// The rule's name in reports.
pub const NAME: &str = "kernel-crop";

/// The rewrite.
pub fn rule() -> Rewrite<SscNode, SscAnalysis> {
    conv_rule(KernelCrop)
}

/// The conditional rewrite of [`rule`].
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelCrop;

impl ConvRewrite for KernelCrop {
    fn name(&self) -> &'static str {
        NAME
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        let taps = &m.facts.taps;
        if !taps.shrinkable {
            return None;
        }
        let extent = taps.extent.as_ref()?;
        let begin: Vec<usize> = extent.iter().map(|e| e.begin).collect();
        let end: Vec<usize> = extent.iter().map(|e| e.end).collect();
        let attrs = m.attrs.cropped(&begin, &end)?;
        let w = weight_op(egraph, WeightOp::Crop { begin, end }, m.w);
        let a = egraph.add(SscNode::ConvAttrs(Box::new(attrs)));
        Some(egraph.add(SscNode::Conv([a, m.x, w, m.b])))
    }
}
