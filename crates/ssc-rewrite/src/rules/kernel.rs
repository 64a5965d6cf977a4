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
//! would go negative the rule does not fire. The crop keeps zero taps where cutting them would
//! leave output windows lying wholly in the padding that the original conv did not have
//! (`keep_windows_on_the_input`; OpenVINO crashes on such one-tap convs with a bias).
//! **Adds** `Conv(cropped attrs, x, crop(W), b)`.
//!
//! ```text
//! Conv 3x3 pads 1 with zero ring   =>   Conv 1x1 pads 0 (same stride)
//! Conv 5x5 pads 2, taps in 3x3     =>   Conv 3x3 pads 1
//! ```

use egg::{EGraph, Id, Rewrite};

use super::{conv_rule, weight_op, ConvMatch, ConvRewrite};
use crate::analysis::SscAnalysis;
use crate::lang::{ConvAttrs, SscNode, WeightOp};

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
        let mut begin: Vec<usize> = extent.iter().map(|e| e.begin).collect();
        let mut end: Vec<usize> = extent.iter().map(|e| e.end).collect();
        keep_windows_on_the_input(&m.attrs, &mut begin, &mut end);
        if begin.iter().all(|&b| b == 0) && end == m.attrs.kernel {
            return None;
        }
        let attrs = m.attrs.cropped(&begin, &end)?;
        let w = weight_op(egraph, WeightOp::Crop { begin, end }, m.w);
        let a = egraph.add(SscNode::ConvAttrs(Box::new(attrs)));
        Some(egraph.add(SscNode::Conv([a, m.x, w, m.b])))
    }
}

/// Widens the crop `begin..end` so that the cropped conv has no more output windows lying
/// wholly in the padding than the original: on each axis its pads stay within its dilated
/// kernel span (`pad <= d (k' - 1)`), or within the original's where the original's pads
/// already exceed its span. A window in the padding alone computes only the bias, which is
/// exact, but OpenVINO 2026.4 crashes on such padded one-tap convs with a bias
/// (`docs/openvino_conv1x1_pad_crash.py`, fuzz seeds 80 and 5396). Per axis,
/// `pad_begin' - d (k' - 1) = pad_begin - d (end - 1)` and `pad_end' - d (k' - 1) = pad_end -
/// d (k - begin - 1)`, so `end` moves up and `begin` down just far enough (kept zero taps).
fn keep_windows_on_the_input(a: &ConvAttrs, begin: &mut [usize], end: &mut [usize]) {
    for d in 0..a.kernel.len() {
        let (k, dil) = (a.kernel[d], a.dilations[d].max(1));
        if k == 0 {
            continue;
        }
        let span = dil * (k - 1);
        let (pb, pe) = (a.pads_begin[d].min(span), a.pads_end[d].min(span));
        end[d] = end[d].max(pb.div_ceil(dil) + 1).min(k);
        begin[d] = begin[d].min(k - 1 - pe.div_ceil(dil));
    }
}
