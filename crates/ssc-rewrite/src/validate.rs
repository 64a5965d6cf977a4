//! The well-formedness check every rule's alternative passes before it joins the e-graph, so a
//! bug in a rule costs that one rewrite (dropped with a warning naming the rule) instead of an
//! invalid model that the user would be told is malformed.
//!
//! The check is a type check over the e-graph's static shapes: every new node's operands must
//! have the shapes its ONNX op requires (a conv's input channels are its weight's inputs times
//! the groups, a gather's indices are in range, a concat's operands agree off the channel
//! axis, ...), every index a symbolic weight op reads must exist, and the alternative must
//! compute a tensor of the matched conv's shape. It does not check values: numerics are the
//! job of verification (`ssc_opt::verify`) and the differential fuzzer (`scripts/fuzz_graphs.py`).

use std::collections::HashSet;

use egg::{EGraph, Id, Language};
use ssc_structure::PAD;

use crate::analysis::{attrs_of, SscAnalysis};
use crate::lang::{ConvAttrs, SscNode, WeightOp};

/// Checks the alternative `new` offered for the conv whose class is `matched`, walking from
/// `new` down to the classes in `inputs` (the matched conv's own operands, which exist whatever
/// the rule did) and to leaves. `Err` says what is wrong, naming the op.
pub(crate) fn check_alternative(
    egraph: &EGraph<SscNode, SscAnalysis>,
    matched: Id,
    new: Id,
    inputs: &[Id],
) -> Result<(), String> {
    let want = egraph[matched].data.shape.as_ref();
    let got = egraph[new].data.shape.as_ref();
    if got.is_none() || got != want {
        return Err(format!(
            "it computes shape {} where the conv computes {}",
            fmt_shape(got),
            fmt_shape(want)
        ));
    }
    let matched = egraph.find(matched);
    if egraph.find(new) == matched {
        return Ok(()); // hash-consed onto the conv itself: nothing new
    }
    let stop: HashSet<Id> = inputs.iter().map(|&c| egraph.find(c)).collect();
    let mut seen = HashSet::new();
    let mut todo = vec![egraph.find(new)];
    while let Some(c) = todo.pop() {
        if stop.contains(&c) || !seen.insert(c) {
            continue;
        }
        if c == matched {
            return Err("it reads its own output".into());
        }
        for node in &egraph[c].nodes {
            check_node(egraph, node).map_err(|e| format!("{node}: {e}"))?;
            if !matches!(node, SscNode::Input(_) | SscNode::Opaque { .. }) {
                // Opaque nodes are values of the original graph, not part of what the rule built.
                todo.extend(node.children().iter().map(|&ch| egraph.find(ch)));
            }
        }
    }
    Ok(())
}

fn fmt_shape(s: Option<&Vec<usize>>) -> String {
    s.map_or("unknown".to_string(), |s| format!("{s:?}"))
}

fn shape(egraph: &EGraph<SscNode, SscAnalysis>, c: Id) -> Result<&[usize], String> {
    egraph[c]
        .data
        .shape
        .as_deref()
        .ok_or_else(|| "an operand has no static shape".to_string())
}

fn attrs(egraph: &EGraph<SscNode, SscAnalysis>, a: Id) -> Result<&ConvAttrs, String> {
    let at = attrs_of(egraph, a).ok_or("no attributes")?;
    let n = at.kernel.len();
    if at.strides.len() != n
        || at.dilations.len() != n
        || at.pads_begin.len() != n
        || at.pads_end.len() != n
    {
        return Err(format!("attribute lists do not all have rank {n}"));
    }
    if at.group == 0
        || at.kernel.contains(&0)
        || at.strides.contains(&0)
        || at.dilations.contains(&0)
    {
        return Err("a zero group, kernel, stride or dilation".into());
    }
    Ok(at)
}

fn check_node(egraph: &EGraph<SscNode, SscAnalysis>, node: &SscNode) -> Result<(), String> {
    match node {
        SscNode::Input(_)
        | SscNode::Opaque { .. }
        | SscNode::Weight(_)
        | SscNode::NoBias
        | SscNode::ConvAttrs(_) => Ok(()),
        SscNode::Literal(l) => {
            if l.dims.iter().product::<usize>() == l.bits.len() {
                Ok(())
            } else {
                Err(format!("{} values for shape {:?}", l.bits.len(), l.dims))
            }
        }
        SscNode::Conv([a, x, w, b]) => {
            let at = attrs(egraph, *a)?;
            let (xs, ws) = (shape(egraph, *x)?, shape(egraph, *w)?);
            let rank = at.kernel.len() + 2;
            if xs.len() != rank || ws.len() != rank {
                return Err(format!("input {xs:?} and weight {ws:?} need rank {rank}"));
            }
            if ws[2..] != at.kernel[..] {
                return Err(format!("weight {ws:?} for kernel {:?}", at.kernel));
            }
            if xs[1] != ws[1] * at.group || ws[0] % at.group != 0 {
                return Err(format!(
                    "input has {} channels but weight {ws:?} expects {} x group {}",
                    xs[1], ws[1], at.group
                ));
            }
            if !egraph[*b]
                .nodes
                .iter()
                .any(|n| matches!(n, SscNode::NoBias))
            {
                let bs = shape(egraph, *b)?;
                if bs != [ws[0]] {
                    return Err(format!("bias {bs:?} for {} outputs", ws[0]));
                }
            }
            at.output_spatial(&xs[2..])
                .map(|_| ())
                .ok_or_else(|| format!("kernel {:?} does not fit input {xs:?}", at.kernel))
        }
        SscNode::AvgPool([a, x]) => {
            let at = attrs(egraph, *a)?;
            let xs = shape(egraph, *x)?;
            if xs.len() != at.kernel.len() + 2 || at.dilations.iter().any(|&d| d != 1) {
                return Err(format!("input {xs:?}, kernel {:?}", at.kernel));
            }
            let pads_fit = (0..at.kernel.len())
                .all(|d| at.pads_begin[d] < at.kernel[d] && at.pads_end[d] < at.kernel[d]);
            if !pads_fit {
                return Err("a pad as large as the kernel".into());
            }
            at.output_spatial(&xs[2..])
                .map(|_| ())
                .ok_or_else(|| format!("kernel {:?} does not fit input {xs:?}", at.kernel))
        }
        SscNode::Add([l, r]) | SscNode::Mul([l, r]) => {
            let (ls, rs) = (shape(egraph, *l)?, shape(egraph, *r)?);
            let broadcasts =
                ls.len() == rs.len() && ls.iter().zip(rs).all(|(&a, &b)| a == b || b == 1);
            if broadcasts {
                Ok(())
            } else {
                Err(format!("{rs:?} does not broadcast to {ls:?}"))
            }
        }
        SscNode::Concat([l, r]) => {
            let (ls, rs) = (shape(egraph, *l)?, shape(egraph, *r)?);
            let agree = ls.len() == rs.len()
                && ls.len() >= 2
                && ls
                    .iter()
                    .zip(rs)
                    .enumerate()
                    .all(|(d, (a, b))| d == 1 || a == b);
            if agree {
                Ok(())
            } else {
                Err(format!("{ls:?} and {rs:?} differ off the channel axis"))
            }
        }
        SscNode::Gather { idx, arg } => {
            let xs = shape(egraph, arg[0])?;
            let c = *xs.get(1).ok_or("input of rank < 2")?;
            if idx.is_empty() || idx.iter().any(|&i| i as usize >= c) {
                return Err(format!("indices out of range for {c} channels"));
            }
            Ok(())
        }
        SscNode::WeightOp { op, arg } => {
            let s = shape(egraph, arg[0])?;
            check_weight_op(op, s)
        }
    }
}

/// Whether `op` applies to a weight of shape `s` (indices in range, divisible groups).
pub(crate) fn check_weight_op(op: &WeightOp, s: &[usize]) -> Result<(), String> {
    let in_range = |idx: &[u32], n: usize| !idx.is_empty() && idx.iter().all(|&i| (i as usize) < n);
    let ok = match op {
        WeightOp::Blocks {
            groups,
            out_perm,
            in_perm,
        }
        | WeightOp::MaskBlocks {
            groups,
            out_perm,
            in_perm,
        } => {
            // Pads (`ssc_structure::PAD`) are zero slots; every other index is in range.
            let slots = |idx: &[u32], n: usize| {
                !idx.is_empty() && idx.iter().all(|&i| i == PAD || (i as usize) < n)
            };
            s.len() >= 2
                && *groups > 0
                && out_perm.len().is_multiple_of(*groups)
                && in_perm.len().is_multiple_of(*groups)
                && slots(out_perm, s[0])
                && slots(in_perm, s[1])
        }
        WeightOp::Crop { begin, end } => {
            s.len() == begin.len() + 2
                && end.len() == begin.len()
                && (0..begin.len()).all(|d| begin[d] < end[d] && end[d] <= s[d + 2])
        }
        WeightOp::Taps { taps } => {
            s.len() == taps.len() + 2
                && taps
                    .iter()
                    .zip(&s[2..])
                    .all(|(t, &k)| !t.is_empty() && t.iter().all(|&c| c < k))
        }
        WeightOp::ZeroTap { tap } => {
            s.len() == tap.len() + 2 && tap.iter().zip(&s[2..]).all(|(&t, &k)| t < k)
        }
        WeightOp::Gather0 { idx } => !s.is_empty() && in_range(idx, s[0]),
        WeightOp::Gather1 { idx } => s.len() >= 2 && in_range(idx, s[1]),
        WeightOp::KernelMean { .. } => s.len() >= 3,
        WeightOp::Channel { .. } => s.len() == 1,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("does not apply to a weight of shape {s:?}"))
    }
}
