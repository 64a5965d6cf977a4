//! Rule family c, second rule: `+`-shaped taps. A 2-D conv whose used taps all lie on the
//! centre row or the centre column of an odd kernel is a `k x 1` conv over the centre column
//! plus dilated `1 x n` convs over the rest of the centre row, which skip the centre tap.
//!
//! **Matches** `Conv(x, W, b)` (any group) over an original or a derived weight with a 2-D kernel.
//! **Fires when** both kernel axes are odd, every tap in the union over all kernels lies on the
//! centre row `ch = kh/2` or the centre column `cw = kw/2`, the union has a tap off the centre
//! row *and* one off the centre column (a row, a column or the centre alone is a box, which
//! `kernel-crop` already handles), and the column crop keeps every pad non-negative. The column
//! need not be fully used: it is cropped to the union's bounding box (`extent_h`).
//! **Adds** `Add(..Add(Conv(col attrs, x, crop_col(W), b), Conv(row attrs_1, x, taps_1(W), -))..,
//! Conv(row attrs_n, x, taps_n(W), -))`: `crop_col` keeps rows `extent_h` of column `cw` (the
//! centre included) with [`ConvAttrs::cropped`](crate::lang::ConvAttrs::cropped); the row taps
//! `R = {c != cw : (ch, c) used}` are split greedily (longest first) into arithmetic
//! progressions `c0, c0 + s, ..`, each a `1 x len` conv with dilation `s·d` over exactly those
//! taps ([`WeightOp::Taps`], [`ConvAttrs::picked`](crate::lang::ConvAttrs::picked): pads shrink
//! by the skipped leading and trailing taps times the dilation). Same stride and group; the bias
//! goes on the column branch only. A progression is usable only when its pads stay
//! non-negative, so with "same" pads it straddles the centre: the 3x3 row `{0, 2}` is one
//! `1 x 2` conv with dilation 2, the 5x5 row `{0, 1, 3, 4}` two (`{0, 3}`, `{1, 4}`). When no
//! such split exists (one-sided arms), the row branch is one `1 x len(extent_w)` conv over the
//! row cropped to its extent with the centre tap zeroed (`WeightOp::ZeroTap`), which multiplies
//! that zero too. MACs per `(o, i)` and output pixel: `kh·kw` becomes `len(extent_h) + |R|`
//! (`2k − 1` for a full `+`: exactly its non-zero taps), plus one Add per row conv and output
//! element.
//!
//! **Exact because** output `y[o, p]` of the original is `b[o] + Σ_i Σ_t W[o, i, t] · x̂(p, t)`
//! over the taps `t` in the union (all others multiply zero weights), where `x̂(p, t)` is the
//! (zero-padded) input read at `p·s − pad_begin + t·d`. The union splits into the column taps
//! `{(r, cw)}` and the row taps `{(ch, c) : c ≠ cw}`, disjoint and covering it. The column
//! branch sums exactly the column taps (plus the bias), the row branches partition the row
//! taps (or, in the fallback, sum the row with the centre weight zeroed), so their sum has
//! every term once. A conv over taps `c0 + j·s` with dilation `s·d` and begin pad
//! `pad_begin − c0·d` reads `p·s − pad_begin + c0·d + j·s·d`, the original's read for tap
//! `c0 + j·s`; its span shrinks by the taps before `c0` and after the last tap, as do the pads,
//! so the output length is unchanged and every branch has the original's output shape. When a
//! pad would go negative that progression is not used.
//!
//! ```text
//! Conv 3x3 pads 1, '+' taps     =>   Add(Conv 3x1 pads [1, 0, 1, 0],
//!                                        Conv 1x2 dilations [1, 2] pads [0, 1, 0, 1])
//! Conv 5x5 pads 2 s 2, '+' taps =>   Add(Add(Conv 5x1 pads [2, 0, 2, 0],
//!                                            Conv 1x2 dilations [1, 3] pads [0, 2, 0, 1]),
//!                                        Conv 1x2 dilations [1, 3] pads [0, 1, 0, 2])
//! ```

use egg::{EGraph, Id, Rewrite};

use super::{conv_rule, weight_op, ConvMatch, ConvRewrite};
use crate::analysis::SscAnalysis;
use crate::lang::{ConvAttrs, SscNode, WeightOp};

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
        let row_taps: Vec<usize> = taps
            .union
            .iter()
            .filter(|t| t / kw == ch && t % kw != cw)
            .map(|t| t % kw)
            .collect();
        let row_plan = match progressions(&row_taps, |p| m.attrs.picked(&[vec![ch], p.to_vec()])) {
            Some(parts) => RowPlan::Exact(parts),
            None => RowPlan::ZeroedCentre(m.attrs.cropped(&row_begin, &row_end)?),
        };

        let col_w = weight_op(
            egraph,
            WeightOp::Crop {
                begin: col_begin,
                end: col_end,
            },
            m.w,
        );
        let ca = egraph.add(SscNode::ConvAttrs(Box::new(col_attrs)));
        let mut sum = egraph.add(SscNode::Conv([ca, m.x, col_w, m.b]));
        let nb = egraph.add(SscNode::NoBias);
        let rows: Vec<(ConvAttrs, Id)> = match row_plan {
            // The exact form: each row conv multiplies only non-zero taps.
            RowPlan::Exact(parts) => parts
                .into_iter()
                .map(|(attrs, picked)| {
                    let taps = vec![vec![ch], picked];
                    (attrs, weight_op(egraph, WeightOp::Taps { taps }, m.w))
                })
                .collect(),
            // One-sided arms whose taps no pads reach: one row conv over the row's extent with
            // the centre zeroed, which multiplies that zero too.
            RowPlan::ZeroedCentre(attrs) => {
                let zeroed = weight_op(egraph, WeightOp::ZeroTap { tap: vec![ch, cw] }, m.w);
                let crop = WeightOp::Crop {
                    begin: row_begin,
                    end: row_end,
                };
                vec![(attrs, weight_op(egraph, crop, zeroed))]
            }
        };
        for (attrs, w) in rows {
            let ra = egraph.add(SscNode::ConvAttrs(Box::new(attrs)));
            let row = egraph.add(SscNode::Conv([ra, m.x, w, nb]));
            sum = egraph.add(SscNode::Add([sum, row]));
        }
        Some(sum)
    }
}

/// How the row branch is built.
enum RowPlan {
    /// One conv per progression of row taps: its attrs and taps.
    Exact(Vec<(ConvAttrs, Vec<usize>)>),
    /// One `1 x len(extent_w)` conv with the centre tap zeroed.
    ZeroedCentre(ConvAttrs),
}

/// Splits the sorted tap indices `taps` into arithmetic progressions that `conv_of` accepts
/// (it returns the attrs of a conv over exactly those taps, or `None` when its pads would go
/// negative), greedily taking the longest accepted progression first (ties: the one starting
/// at the smallest tap, then the smallest step). `None` when some tap fits in no accepted
/// progression. For a centred kernel with "same" pads every accepted progression straddles
/// the centre: the 3x3 row `{0, 2}` is one `1 x 2` conv with dilation 2, the 5x5 row
/// `{0, 1, 3, 4}` is `{0, 3}` and `{1, 4}`, the 7x7 row `{0, 2, 4, 6}` and `{1, 5}`.
fn progressions<A>(
    taps: &[usize],
    conv_of: impl Fn(&[usize]) -> Option<A>,
) -> Option<Vec<(A, Vec<usize>)>> {
    let mut left: Vec<usize> = taps.to_vec();
    let mut parts = Vec::new();
    while !left.is_empty() {
        let mut best: Option<(A, Vec<usize>)> = None;
        for (a, &first) in left.iter().enumerate() {
            // Singletons, then every step to a later tap.
            let steps = std::iter::once(None).chain(left[a + 1..].iter().map(|&b| Some(b - first)));
            for step in steps {
                let mut run = vec![first];
                if let Some(s) = step {
                    let mut next = first + s;
                    while left.contains(&next) {
                        run.push(next);
                        next += s;
                    }
                }
                if best.as_ref().is_some_and(|(_, b)| b.len() >= run.len()) {
                    continue;
                }
                if let Some(attrs) = conv_of(&run) {
                    best = Some((attrs, run));
                }
            }
        }
        let (attrs, run) = best?;
        left.retain(|t| !run.contains(t));
        parts.push((attrs, run));
    }
    Some(parts)
}
