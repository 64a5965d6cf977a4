//! Rule family c, second rule: `+`-shaped taps. A 2-D conv whose used taps all lie on the
//! centre row or the centre column of an odd kernel is a `k x 1` conv over the centre column
//! plus a `1 x k` conv over the centre row without its centre tap.
//!
//! **Matches** `Conv(x, W, b)` (any group) over an original weight with a 2-D kernel.
//! **Fires when** both kernel axes are odd, every tap in the union over all kernels lies on the
//! centre row `ch = kh/2` or the centre column `cw = kw/2`, the union has a tap off the centre
//! row *and* one off the centre column (a row, a column or the centre alone is a box, which
//! `kernel-crop` already handles), and both crops below keep every pad non-negative. The row and
//! column need not be fully used: each branch is also cropped to the union's bounding box
//! (`extent`) on its long axis.
//! **Adds** `Add(Conv(col attrs, x, crop_col(W), b), Conv(row attrs, x, crop_row(zerotap(W)), -))`
//! where `crop_col` keeps rows `extent_h` of column `cw` and `crop_row` keeps columns
//! `extent_w` of row `ch`, `zerotap` zeroes tap `(ch, cw)`, and the attrs are
//! [`ConvAttrs::cropped`](crate::lang::ConvAttrs::cropped) of the same boxes (same stride,
//! dilation and group; pads shrink by the cropped taps times the dilation). The bias goes on
//! the column branch only. MACs per `(o, i)` and output pixel: `kh·kw` becomes
//! `len(extent_h) + len(extent_w)` (`2k`: the zeroed centre still costs a MAC in the dense
//! `1 x k` conv; `2k − 1` taps are non-zero), plus one Add per output element.
//!
//! **Exact because** output `y[o, p]` of the original is `b[o] + Σ_i Σ_t W[o, i, t] · x̂(p, t)`
//! over the taps `t` in the union (all others multiply zero weights), where `x̂(p, t)` is the
//! (zero-padded) input read at `p·s − pad_begin + t·d`. The union splits into the column taps
//! `{(r, cw)}` and the row taps `{(ch, c) : c ≠ cw}`, disjoint and covering it. The column
//! branch sums exactly the column taps (plus the bias), the row branch exactly the row taps
//! except the centre (its weight is zeroed there), so their sum has every term once. Cropping
//! preserves the read positions as in `rules/kernel.rs`: with `t = t' + begin` and
//! `pad_begin' = pad_begin − begin·d` the cropped conv reads the same input for each kept tap,
//! and the output length is unchanged, so both branches have the original's output shape.
//! When a pad would go negative the rule does not fire.
//!
//! ```text
//! Conv 3x3 pads 1, '+' taps     =>   Add(Conv 3x1 pads [1, 0, 1, 0], Conv 1x3 pads [0, 1, 0, 1])
//! Conv 5x5 pads 2 s 2, '+' taps =>   Add(Conv 5x1 pads [2, 0, 2, 0], Conv 1x5 pads [0, 2, 0, 2])
//! ```

use egg::{EGraph, Id, Rewrite};

use super::{conv_rule, weight_op, ConvMatch, ConvRewrite};
use crate::analysis::SscAnalysis;
use crate::lang::{SscNode, WeightOp};

/// The rule's name in reports.
pub const NAME: &str = "plus-taps-split";

/// The rewrite.
pub fn rule() -> Rewrite<SscNode, SscAnalysis> {
    conv_rule(PlusTapsSplit)
}

/// The conditional rewrite of [`rule`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PlusTapsSplit;

impl ConvRewrite for PlusTapsSplit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        let taps = &m.facts.taps;
        let [kh, kw] = taps.kernel_shape[..] else {
            return None;
        };
        if kh % 2 == 0 || kw % 2 == 0 || m.attrs.kernel != [kh, kw] {
            return None;
        }
        let (ch, cw) = (kh / 2, kw / 2);
        let (mut off_row, mut off_col) = (false, false);
        for t in taps.union.iter() {
            let (r, c) = (t / kw, t % kw);
            if r != ch && c != cw {
                return None; // a tap off the '+'
            }
            off_row |= r != ch;
            off_col |= c != cw;
        }
        if !(off_row && off_col) {
            return None; // a row, a column or the centre: kernel-crop's box
        }
        let extent = taps.extent.as_ref()?;
        let (h, w) = (&extent[0], &extent[1]);
        let (col_begin, col_end) = (vec![h.begin, cw], vec![h.end, cw + 1]);
        let (row_begin, row_end) = (vec![ch, w.begin], vec![ch + 1, w.end]);
        let col_attrs = m.attrs.cropped(&col_begin, &col_end)?;
        let row_attrs = m.attrs.cropped(&row_begin, &row_end)?;

        let col_w = weight_op(
            egraph,
            WeightOp::Crop {
                begin: col_begin,
                end: col_end,
            },
            m.w,
        );
        let ca = egraph.add(SscNode::ConvAttrs(Box::new(col_attrs)));
        let col = egraph.add(SscNode::Conv([ca, m.x, col_w, m.b]));

        let zeroed = weight_op(egraph, WeightOp::ZeroTap { tap: vec![ch, cw] }, m.w);
        let row_w = weight_op(
            egraph,
            WeightOp::Crop {
                begin: row_begin,
                end: row_end,
            },
            zeroed,
        );
        let ra = egraph.add(SscNode::ConvAttrs(Box::new(row_attrs)));
        let nb = egraph.add(SscNode::NoBias);
        let row = egraph.add(SscNode::Conv([ra, m.x, row_w, nb]));
        Some(egraph.add(SscNode::Add([col, row])))
    }
}
