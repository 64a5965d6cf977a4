//! Rule family d (unified weights, PAPERS.md section 2, MSWU): weights that share values let the
//! conv do the shared part once. Three rules, each adding one alternative per matched conv.
//!
//! # Constant kernels ([`const_kernel_rule`])
//!
//! **Matches** `Conv(x, W, b)` (any group) over an original or a derived weight.
//! **Fires when** every kernel is constant, `W[o, i, :] = a[o, i]` (`all_kernels_constant`,
//! zero kernels included, more than one tap), every dilation is 1, every pad is smaller
//! than its kernel axis (what ONNX runtimes accept for pooling), and the model's opset is at
//! least 7 (`count_include_pad`). Then `y[o] = b[o] + Σ_i a[o, i] · Σ_window x[i]`, and
//! `AveragePool(count_include_pad = 1)` (`ceil_mode` left at its default 0: the attribute only
//! exists from opset 10) with the conv's kernel, strides and pads computes `Σ_window x[i] / k²` over
//! exactly the conv's windows (padding contributes 0 to both and the divisor is always `k²`;
//! the output size formula is the conv's).
//! **Adds** `Conv_1x1(group, AveragePool(x), a · k², b)` (stride 1, no pads): the `k²` is folded
//! into the 1x1 weights. MACs `Ci·HW·k²` (pool) `+ Co·Ci/G·HW` instead of `Co·Ci/G·HW·k²`.
//!
//! ```text
//! Conv 8->8 3x3 pads 1, W[o,i,:,:] = a[o,i]   =>   Conv 1x1 (a·9) ∘ AveragePool 3x3 pads 1
//! ```
//!
//! # Equal input channels ([`input_classes_rule`])
//!
//! **Matches** `Conv(x, W, b)` with `group = 1` over an original or a derived weight.
//! **Fires when** some input channels have identical columns `W[:, i, taps]` (`input_classes`
//! non-empty, bitwise-equal values in exact mode). Then `Σ_i W[o, i] * x[i] = Σ_c W[o, rep(c)] *
//! Σ_{i in c} x[i]`; zero input columns (`zero_inputs`) are dropped.
//! **Adds** `Conv(x', W[:, reps], b)` where `x'` sums each class: when every class has the same
//! size `s`, `x' = Conv_1x1(group = n_classes, ones[n, s]) ∘ Gather(members)` (`Ci` adds per
//! pixel, no gather when the members are already contiguous); otherwise a dense 0/1 selector
//! `Conv_1x1(S[n_classes, Ci])`.
//!
//! ```text
//! Conv 8->8 3x3, W[:,0..4] equal, W[:,4..8] equal   =>   Conv 3x3 (2 inputs) ∘ Conv 1x1 G=2 (ones)
//! ```
//!
//! # Duplicate / negated filters ([`output_classes_rule`])
//!
//! **Matches** `Conv(x, W, b)` with `group = 1` over an original or a derived weight.
//! **Fires when** some non-zero filters are equal up to sign (`output_classes` non-empty,
//! exact equality). Member `o` of the class of `r` computes `±(y_r - b[r]) + b[o]`; all zero
//! filters share one (zero) unique filter.
//! **Adds**, with `U` the unique filters in channel order and `idx[o]` the position of `o`'s
//! representative in `U`: `Gather(idx) ∘ Conv(x, W[U], b[U])` when no member is negated and
//! every member's bias equals its representative's (or there is no bias); otherwise
//! `Add(Mul(Gather(idx) ∘ Conv(x, W[U]), sign[1, Co, 1, 1]), b[1, Co, 1, 1])`, the `Mul`
//! only when some member is negated and the `Add` only when there is a bias.
//!
//! ```text
//! Conv 8->8 3x3, W[4..8] = -W[0..4]   =>   Add(Mul(Gather[0,1,2,3,0,1,2,3] ∘ Conv 4 outputs, ±1), b)
//! ```

use egg::{EGraph, Id, Rewrite};

use super::{conv_rule, gather_channels, weight_op, ConvMatch, ConvRewrite};
use crate::analysis::SscAnalysis;
use crate::lang::{ConvAttrs, Indices, Literal, SscNode, WeightOp};

/// The constant-kernel rule's name in reports.
pub const CONST_KERNEL: &str = "const-kernel-to-sumpool";
/// The input-classes rule's name in reports.
pub const INPUT_CLASSES: &str = "equal-inputs-summed";
/// The output-classes rule's name in reports.
pub const OUTPUT_CLASSES: &str = "duplicate-filters-gathered";

/// Constant kernels to sum-pool + 1x1 conv.
pub fn const_kernel_rule() -> Rewrite<SscNode, SscAnalysis> {
    conv_rule(ConstKernel)
}

/// Equal input channels summed before the conv.
pub fn input_classes_rule() -> Rewrite<SscNode, SscAnalysis> {
    conv_rule(InputClasses)
}

/// Duplicate / negated filters computed once.
pub fn output_classes_rule() -> Rewrite<SscNode, SscAnalysis> {
    conv_rule(OutputClasses)
}

/// A 1x1 conv's attributes for spatial rank `rank`: stride 1, no pads.
pub(crate) fn pointwise_attrs(rank: usize, group: usize) -> ConvAttrs {
    ConvAttrs {
        group,
        kernel: vec![1; rank],
        strides: vec![1; rank],
        dilations: vec![1; rank],
        pads_begin: vec![0; rank],
        pads_end: vec![0; rank],
    }
}

/// The conditional rewrite of [`const_kernel_rule`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ConstKernel;

impl ConvRewrite for ConstKernel {
    fn name(&self) -> &'static str {
        CONST_KERNEL
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        let u = &m.facts.unified;
        // AveragePool's `count_include_pad`, which makes it a scaled sum, exists from opset 7.
        if egraph.analysis.opset < 7 || !u.all_kernels_constant || u.kernel_values.is_none() {
            return None;
        }
        let at = &m.attrs;
        let rank = at.kernel.len();
        let taps: usize = at.kernel.iter().product();
        if taps < 2
            || at.dilations.iter().any(|&d| d != 1)
            || (0..rank).any(|d| at.pads_begin[d] >= at.kernel[d] || at.pads_end[d] >= at.kernel[d])
            || at.output_spatial(&m.x_shape[2..]).is_none()
        {
            return None;
        }
        let scale = u32::try_from(taps).ok()?;
        let pool_attrs = ConvAttrs {
            group: 1,
            ..at.clone()
        };
        let pa = egraph.add(SscNode::ConvAttrs(Box::new(pool_attrs)));
        let pooled = egraph.add(SscNode::AvgPool([pa, m.x]));
        let w = weight_op(egraph, WeightOp::KernelMean { scale }, m.w);
        let ca = egraph.add(SscNode::ConvAttrs(Box::new(pointwise_attrs(
            rank, at.group,
        ))));
        let new = egraph.add(SscNode::Conv([ca, pooled, w, m.b]));
        Some(new)
    }
}

/// The conditional rewrite of [`input_classes_rule`].
#[derive(Clone, Copy, Debug, Default)]
pub struct InputClasses;

impl ConvRewrite for InputClasses {
    fn name(&self) -> &'static str {
        INPUT_CLASSES
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        let u = &m.facts.unified;
        let ci = m.facts.weight_shape[1];
        if m.attrs.group != 1 || u.input_classes.is_empty() || m.x_shape[1] != ci {
            return None;
        }
        // Every non-zero input in exactly one class: the listed ones plus singletons.
        let mut class_of = vec![None; ci];
        for (c, members) in u.input_classes.iter().enumerate() {
            for &i in members {
                match class_of.get_mut(i as usize) {
                    Some(slot @ None) => *slot = Some(c),
                    _ => return None, // malformed facts
                }
            }
        }
        for &i in &u.zero_inputs {
            match class_of.get(i as usize) {
                Some(None) => {}
                _ => return None,
            }
        }
        let mut classes: Vec<Vec<u32>> = u.input_classes.clone();
        for i in 0..ci as u32 {
            if class_of[i as usize].is_none() && !u.zero_inputs.contains(&i) {
                classes.push(vec![i]);
            }
        }
        classes.sort_by_key(|c| c[0]);
        let n = classes.len();
        if n == 0 || n >= ci {
            return None;
        }
        let rank = m.attrs.kernel.len();
        let size = classes[0].len();
        let summed = if classes.iter().all(|c| c.len() == size) {
            // Equal sizes: gather the members class by class, then one grouped ones conv.
            let members: Vec<u32> = classes.iter().flatten().copied().collect();
            let xin = gather_channels(egraph, m.x, &members);
            let mut dims = vec![n, size];
            dims.resize(rank + 2, 1);
            let ones = Literal::new(dims, &vec![1.0; n * size]);
            let w = egraph.add(SscNode::Literal(Box::new(ones)));
            let a = egraph.add(SscNode::ConvAttrs(Box::new(pointwise_attrs(rank, n))));
            let nb = egraph.add(SscNode::NoBias);
            egraph.add(SscNode::Conv([a, xin, w, nb]))
        } else {
            let mut sel = vec![0.0f32; n * ci];
            for (c, members) in classes.iter().enumerate() {
                for &i in members {
                    sel[c * ci + i as usize] = 1.0;
                }
            }
            let mut dims = vec![n, ci];
            dims.resize(rank + 2, 1);
            let w = egraph.add(SscNode::Literal(Box::new(Literal::new(dims, &sel))));
            let a = egraph.add(SscNode::ConvAttrs(Box::new(pointwise_attrs(rank, 1))));
            let nb = egraph.add(SscNode::NoBias);
            egraph.add(SscNode::Conv([a, m.x, w, nb]))
        };
        let reps: Indices = classes.iter().map(|c| c[0]).collect();
        let w = weight_op(egraph, WeightOp::Gather1 { idx: reps }, m.w);
        let a = egraph.add(SscNode::ConvAttrs(Box::new(m.attrs.clone())));
        let new = egraph.add(SscNode::Conv([a, summed, w, m.b]));
        Some(new)
    }
}

/// The conditional rewrite of [`output_classes_rule`].
#[derive(Clone, Copy, Debug, Default)]
pub struct OutputClasses;

impl ConvRewrite for OutputClasses {
    fn name(&self) -> &'static str {
        OUTPUT_CLASSES
    }

    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id> {
        let u = &m.facts.unified;
        let co = m.facts.weight_shape[0];
        // The sign Mul and bias Add broadcast a [1, Co, 1, 1] tensor, which before opset 7
        // needs the legacy `broadcast` attribute; such old models are left alone.
        if egraph.analysis.opset < 7 || m.attrs.group != 1 || u.output_classes.is_empty() {
            return None;
        }
        // (representative, negated) per output.
        let mut rep: Vec<Option<(u32, bool)>> = vec![None; co];
        for class in &u.output_classes {
            for member in &class.members {
                match rep.get_mut(member.channel as usize) {
                    Some(slot @ None) => *slot = Some((class.representative, member.negated)),
                    _ => return None,
                }
            }
        }
        let zero_rep = u.zero_outputs.first().copied();
        for &o in &u.zero_outputs {
            match rep.get_mut(o as usize) {
                Some(slot @ None) => *slot = Some((zero_rep.unwrap_or(o), false)),
                _ => return None,
            }
        }
        let mut unique: Vec<u32> = Vec::new();
        let mut pos = vec![usize::MAX; co];
        let mut idx = Vec::with_capacity(co);
        let mut signs = Vec::with_capacity(co);
        for (o, r) in rep.iter().enumerate() {
            let (r, neg) = r.unwrap_or((o as u32, false));
            if pos[r as usize] == usize::MAX {
                if r as usize > o {
                    return None; // representatives are the smallest members
                }
                pos[r as usize] = unique.len();
                unique.push(r);
            }
            idx.push(pos[r as usize] as u32);
            signs.push(if neg { -1.0f32 } else { 1.0 });
        }
        if unique.len() >= co {
            return None;
        }
        let any_neg = signs.iter().any(|&s| s < 0.0);
        let bias = if m.has_bias {
            let bidx = egraph[m.b].data.weight?;
            match egraph.analysis.weights[bidx as usize].tensor.to_f32_vec() {
                Some(v) if v.len() == co => Some(v),
                _ => return None,
            }
        } else {
            None
        };
        let bias_shared = bias.as_ref().is_none_or(|b| {
            (0..co).all(|o| b[o].to_bits() == b[unique[idx[o] as usize] as usize].to_bits())
        });
        let uniq: Indices = Indices::from(&unique[..]);
        let w = weight_op(egraph, WeightOp::Gather0 { idx: uniq.clone() }, m.w);
        let a = egraph.add(SscNode::ConvAttrs(Box::new(m.attrs.clone())));
        let rank = m.attrs.kernel.len();
        let new = if !any_neg && bias_shared {
            let b = if m.has_bias {
                weight_op(egraph, WeightOp::Gather0 { idx: uniq }, m.b)
            } else {
                m.b
            };
            let y = egraph.add(SscNode::Conv([a, m.x, w, b]));
            gather_channels(egraph, y, &idx)
        } else {
            let nb = egraph.add(SscNode::NoBias);
            let y = egraph.add(SscNode::Conv([a, m.x, w, nb]));
            let mut out = gather_channels(egraph, y, &idx);
            if any_neg {
                let mut dims = vec![1, co];
                dims.resize(rank + 2, 1);
                let s = egraph.add(SscNode::Literal(Box::new(Literal::new(dims, &signs))));
                out = egraph.add(SscNode::Mul([out, s]));
            }
            if m.has_bias {
                let b = weight_op(
                    egraph,
                    WeightOp::Channel {
                        batch: 1,
                        spatial: vec![1; rank],
                    },
                    m.b,
                );
                out = egraph.add(SscNode::Add([out, b]));
            }
            out
        };
        Some(new)
    }
}
