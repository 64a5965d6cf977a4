//! Rule family b: the SSC split (PAPERS.md section 1). A conv whose spatial kernels are
//! block-diagonal after permutation, with point kernels (centre tap only) elsewhere, is a
//! grouped `k x k` conv plus a dense 1x1 conv on the centre taps.
//!
//! **Matches** `Conv(x, W, b)` with `group = 1` over an original or a derived weight.
//! **Fires when** the SSC facts are present (spatial and point kernels mixed, some point
//! kernels outside the spatial blocks), the spatial components are `G > 1` blocks, and the
//! centre crop is exact: every kernel axis is odd and each pad is at least `(k/2) * dilation`
//! (then a 1x1 conv with the same stride and pads reduced by `(k/2) * dilation` reads exactly
//! the centre-tap positions of every output, see
//! [`ConvAttrs::cropped`](crate::lang::ConvAttrs::cropped)).
//! **Adds**, for equal blocks covering every channel, `Add(grouped_branch(W, b),
//! Conv_1x1(x, centre(offblocks(W))))`; the grouped branch is family a's construction (its
//! blocks also keep the point kernels that fall inside them); the bias goes on the grouped
//! branch only. Depthwise (+ pointwise) and the HetConv-shifted pattern are the cases `bi = 1`
//! and a non-identity permutation.
//!
//! **Unequal blocks** (an SSC conv that also lost filters: after channel removal its blocks
//! hold 10-13 channels, some outputs have no spatial kernel, and a carrier column joins every
//! block): the components left after setting aside hub columns are padded to equal blocks
//! ([`ssc_structure::PaddedBlocks`]). Then `Add(Add(G, P), H)`: `G` the grouped conv over the
//! padded slots (pad slots have zero weights; its output gathered back by slot), `P` the 1x1
//! remainder with the bias and the hub columns zeroed (so it reads `x` without a gather;
//! `zero-inputs-sliced` offers the sliced form on top), and `H` the `k x k` conv of the hub
//! columns (absent without hubs). Exact: every non-hub spatial kernel lies in a block, so what `P` crops
//! is centre taps only, and `G + P + H` adds each weight entry exactly once.
//!
//! ```text
//! Conv 16->16 3x3, F in 4 diagonal blocks, P elsewhere   =>   Add(Conv 3x3 g=4, Conv 1x1)
//! Conv 47->46 3x3, F in blocks of 11-13 + 1 hub column   =>   Add(Add(Conv 3x3 g=4 (52 slots),
//!                                                                Conv 1x1), Conv 3x3 on 1)
//! ```

use egg::{EGraph, Id, Rewrite};

use super::{conv_rule, gather_channels, grouped_branch, weight_op, ConvMatch, ConvRewrite};
use crate::analysis::SscAnalysis;
use crate::lang::{ConvAttrs, Indices, SscNode, WeightOp};
use ssc_structure::{PaddedBlocks, PAD};

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
        if m.attrs.kernel.iter().any(|k| k % 2 == 0) {
            return None;
        }
        let begin: Vec<usize> = m.attrs.kernel.iter().map(|k| k / 2).collect();
        let end: Vec<usize> = begin.iter().map(|c| c + 1).collect();
        let point_attrs = m.attrs.cropped(&begin, &end)?;
        let blocks = match &split.spatial.blocks {
            Some(b) if b.groups >= 2 && !b.padded => b.clone(),
            _ => return padded_split(egraph, m, split.padded.as_ref()?, point_attrs, begin, end),
        };
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

/// The unequal-block form (module docs): grouped conv over padded slots, the 1x1 remainder of
/// every input (with the bias; hub columns zeroed), and the hub columns' own `k x k` conv.
fn padded_split(
    egraph: &mut EGraph<SscNode, SscAnalysis>,
    m: &ConvMatch,
    p: &PaddedBlocks,
    point_attrs: ConvAttrs,
    begin: Vec<usize>,
    end: Vec<usize>,
) -> Option<Id> {
    let (co, ci) = (m.facts.outputs(), m.facts.inputs());
    if p.groups < 2 || m.x_shape[1] != ci {
        return None;
    }
    let slot_of = p.output_slot_of(co)?;
    let out_slots = Indices::from(&p.out_slots[..]);
    let in_slots = Indices::from(&p.in_slots[..]);
    // A pad input slot reads channel 0 (any channel: its weights are zero).
    let gather_in: Vec<u32> = p
        .in_slots
        .iter()
        .map(|&i| if i == PAD { 0 } else { i })
        .collect();
    let xin = gather_channels(egraph, m.x, &gather_in);
    let wg = weight_op(
        egraph,
        WeightOp::Blocks {
            groups: p.groups,
            out_perm: out_slots.clone(),
            in_perm: in_slots.clone(),
        },
        m.w,
    );
    let ga = egraph.add(SscNode::ConvAttrs(Box::new(ConvAttrs {
        group: p.groups,
        ..m.attrs.clone()
    })));
    let nb = egraph.add(SscNode::NoBias);
    let yg = egraph.add(SscNode::Conv([ga, xin, wg, nb]));
    let grouped = gather_channels(egraph, yg, &slot_of);

    let off = weight_op(
        egraph,
        WeightOp::MaskBlocks {
            groups: p.groups,
            out_perm: out_slots,
            in_perm: in_slots,
        },
        m.w,
    );
    // The hub columns are zeroed, not gathered away: the 1x1 keeps reading all of `x` (no
    // activation copy for a Gather), and `zero-inputs-sliced` offers the sliced form on top
    // (rules compose), so the cost model picks. One block over every output with the hubs as
    // its inputs is exactly "zero these columns".
    let off = if p.hubs.is_empty() {
        off
    } else {
        let all: Vec<u32> = (0..co as u32).collect();
        let cols = WeightOp::MaskBlocks {
            groups: 1,
            out_perm: Indices::from(&all[..]),
            in_perm: Indices::from(&p.hubs[..]),
        };
        weight_op(egraph, cols, off)
    };
    let centre = weight_op(egraph, WeightOp::Crop { begin, end }, off);
    let pa = egraph.add(SscNode::ConvAttrs(Box::new(point_attrs)));
    let pb = if m.has_bias { m.b } else { nb };
    let point = egraph.add(SscNode::Conv([pa, m.x, centre, pb]));
    let sum = egraph.add(SscNode::Add([grouped, point]));
    if p.hubs.is_empty() {
        return Some(sum);
    }
    let xh = gather_channels(egraph, m.x, &p.hubs);
    let wh = weight_op(
        egraph,
        WeightOp::Gather1 {
            idx: Indices::from(&p.hubs[..]),
        },
        m.w,
    );
    let ha = egraph.add(SscNode::ConvAttrs(Box::new(m.attrs.clone())));
    let hub = egraph.add(SscNode::Conv([ha, xh, wh, nb]));
    Some(egraph.add(SscNode::Add([sum, hub])))
}
