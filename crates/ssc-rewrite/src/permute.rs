//! Channel permutations folded into the neighbouring weights (issue 15, point 3): a `Gather` on
//! the channel axis whose indices are a permutation (the block permutations `ssc-split` and
//! `block-diagonal-to-grouped` emit, or one in the input model) costs a copy of the tensor; a
//! conv next to it can absorb it for free, so the gather is emitted only where nothing can.
//!
//! For `y = Gather(x, p, axis = 1)` (`y[c] = x[p[c]]`, `p` a permutation of `0..C`):
//! - **readers** (tried first): when every reader of `y`, through channel-wise ops without
//!   per-channel parameters (Relu, Clip, pools, ...; any fan-out), is a Conv whose groups `p`
//!   maps onto themselves (always so for `group = 1`) or another channel `Gather`, each conv's
//!   columns are permuted, `W'[:, j] = W[:, p⁻¹[j]]` (`Σ_c W[o, c] y[c] = Σ_j W'[o, j] x[j]`),
//!   each gather's indices are composed, `q'[c] = p[q[c]]` (a composition that comes out the
//!   identity then goes too), and the ops after the gather read `x` instead;
//! - **producer**: else, when `x` comes (through single-reader channel-wise ops) from a Conv
//!   that nothing else reads and whose groups `p` maps onto themselves, its filters and bias are
//!   permuted, `W'[c] = W[p[c]]`, so it writes `y` itself; each filter computes what it did.
//!
//! Zero padding, strides and dilations act per channel, so they commute with the permutation.
//! The reader fold only reorders a sum (f32 rounding); the producer fold is bit-exact.

use serde::Serialize;
use ssc_ir::{AttrValue, DataType, Graph, Model, OpId, Tensor, Use, ValueId};

use crate::channels::{f32_tensor, gather_axis, set_const};
use crate::RewriteError;

/// The pass's name in reports and warnings.
pub const NAME: &str = "fold-permutations";

/// What the pass did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PermuteReport {
    /// Permutations absorbed by the convs reading them.
    pub into_readers: usize,
    /// Permutations absorbed by the conv producing their input.
    pub into_producer: usize,
    /// Channel permutations left as a `Gather` (nothing next to them can absorb them).
    pub kept: usize,
}

/// Ops that act on each channel alone and carry no per-channel parameter, so they commute with
/// any channel permutation.
fn channelwise(g: &Graph, op: OpId) -> bool {
    let o = g.op(op);
    let unary = matches!(
        o.desc.op_type.as_str(),
        "Relu"
            | "LeakyRelu"
            | "Sigmoid"
            | "Tanh"
            | "HardSigmoid"
            | "HardSwish"
            | "Neg"
            | "Abs"
            | "Elu"
            | "Selu"
            | "Softplus"
            | "Identity"
            | "MaxPool"
            | "AveragePool"
            | "Clip"
    );
    if !unary || o.outputs().iter().flatten().count() != 1 {
        return false;
    }
    // Clip's bounds (inputs 1 and 2) must be scalars; every other op reads one tensor.
    o.inputs()
        .iter()
        .skip(1)
        .flatten()
        .all(|&v| o.desc.op_type == "Clip" && g.constant(v).is_some_and(|t| t.numel() == 1))
}

fn conv_group(g: &Graph, op: OpId) -> usize {
    match g.op(op).desc.attr("group").map(|a| &a.value) {
        Some(AttrValue::Int(i)) => (*i).max(1) as usize,
        _ => 1,
    }
}

/// The rank and channel count of the float activation `v`: from its type, or (values the
/// rewrite just materialized carry no shape yet) from the conv or channel gather producing it,
/// through channel-wise ops.
fn rank_and_channels(g: &Graph, v: ValueId) -> Option<(usize, usize)> {
    if let Some(s) = g.static_shape(v, DataType::Float) {
        return (s.len() >= 2).then(|| (s.len(), s[1]));
    }
    let (op, 0) = g.producer(v)? else {
        return None;
    };
    if channelwise(g, op) {
        return rank_and_channels(g, g.op(op).input(0)?);
    }
    if let Some(idx) = channel_indices(g, op) {
        let (rank, _) = rank_and_channels(g, g.op(op).input(0)?)?;
        return Some((rank, idx.len()));
    }
    let o = g.op(op);
    if o.desc.op_type != "Conv" {
        return None;
    }
    let w = g.constant(o.input(1)?)?;
    (matches!(w.dtype, DataType::Float) && w.dims.len() >= 3).then(|| (w.dims.len(), w.dims[0]))
}

/// The indices of a channel-axis `Gather` with constant 1-D indices (normalised to
/// `0..C`), if `op` is one.
fn channel_indices(g: &Graph, op: OpId) -> Option<Vec<usize>> {
    let o = g.op(op);
    if o.desc.op_type != "Gather" {
        return None;
    }
    let (x, idx) = (o.input(0)?, o.input(1)?);
    let (rank, c) = rank_and_channels(g, x)?;
    let rank = rank as i64;
    let axis = match o.desc.attr("axis").map(|a| &a.value) {
        Some(AttrValue::Int(a)) => *a,
        None => 0,
        _ => return None,
    };
    if rank < 3 || (axis + rank) % rank != 1 || axis < -rank || axis >= rank {
        return None;
    }
    let t = g.constant(idx)?;
    if t.dims.len() != 1 {
        return None;
    }
    t.to_i64_vec()?
        .into_iter()
        .map(|i| if i < 0 { i + c as i64 } else { i })
        .map(|i| usize::try_from(i).ok().filter(|&i| i < c))
        .collect()
}

/// The permutation of a channel-axis `Gather`, if `op` is one.
fn channel_permutation(g: &Graph, op: OpId) -> Option<Vec<usize>> {
    let p = channel_indices(g, op)?;
    let (_, c) = rank_and_channels(g, g.op(op).input(0)?)?;
    let mut seen = vec![false; c];
    for &i in &p {
        if std::mem::replace(&mut seen[i], true) {
            return None;
        }
    }
    (p.len() == c).then_some(p)
}

/// Which side of the permutation a conv is on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// It reads the permuted tensor (its input channels are permuted).
    Reader,
    /// It writes the tensor the gather permutes (its filters are permuted).
    Producer,
}

/// A Conv with constant float weights (and bias) of matching channel count, read by it alone,
/// whose groups the permutation `p` maps onto themselves.
fn absorbs(g: &Graph, op: OpId, p: &[usize], side: Side) -> bool {
    let o = g.op(op);
    if o.desc.op_type != "Conv" {
        return false;
    }
    let group = conv_group(g, op);
    // A weight or bias another op shares would be copied, growing the file: never.
    let own = |v: ValueId| g.consumers(v).len() == 1 && !g.is_graph_output(v);
    let weights = o
        .input(1)
        .filter(|&w| own(w))
        .and_then(|w| g.constant(w))
        .is_some_and(|t| {
            matches!(t.dtype, DataType::Float)
                && t.dims.len() >= 3
                && match side {
                    Side::Reader => t.dims[1] * group == p.len(),
                    Side::Producer => t.dims[0] == p.len(),
                }
        });
    let bias = o.input(2).is_none_or(|b| {
        (side == Side::Reader || own(b))
            && g.constant(b).is_some_and(|t| {
                matches!(t.dtype, DataType::Float) && (side == Side::Reader || t.numel() == p.len())
            })
    });
    let per = p.len() / group.max(1);
    weights
        && bias
        && per > 0
        && p.len().is_multiple_of(group)
        && p.iter().enumerate().all(|(c, &i)| c / per == i / per)
}

/// Collects the convs and channel gathers that read `v` through channel-wise ops (any fan-out)
/// into `convs`, or returns false when some reader (or a graph output) cannot absorb `p`.
fn absorbing_readers(g: &Graph, v: ValueId, p: &[usize], convs: &mut Vec<OpId>) -> bool {
    let readers = g.consumers(v);
    if g.is_graph_output(v) || readers.is_empty() {
        return false;
    }
    readers.into_iter().all(|(r, u)| {
        if u != Use::Input(0) {
            false
        } else if absorbs(g, r, p, Side::Reader) || channel_indices(g, r).is_some() {
            if !convs.contains(&r) {
                convs.push(r);
            }
            true
        } else if channelwise(g, r) {
            let out = g.op(r).output(0).expect("channel-wise output");
            absorbing_readers(g, out, p, convs)
        } else {
            false
        }
    })
}

/// Folds `p` into every conv reading the gather `op`'s output (through channel-wise ops), if
/// all can.
fn fold_into_readers(g: &mut Graph, op: OpId, p: &[usize]) -> Result<bool, RewriteError> {
    let (x, y) = (
        g.op(op).input(0).expect("data"),
        g.op(op).output(0).expect("y"),
    );
    let mut readers = Vec::new();
    if !absorbing_readers(g, y, p, &mut readers) {
        return Ok(false);
    }
    let group_len = |g: &Graph, r: OpId| p.len() / conv_group(g, r);
    let mut inv = vec![0usize; p.len()];
    for (c, &i) in p.iter().enumerate() {
        inv[i] = c;
    }
    for r in readers {
        if let Some(q) = channel_indices(g, r) {
            // A gather reading the permuted channels: `z[c] = y[q[c]] = x[p[q[c]]]`.
            let composed: Vec<i64> = q.iter().map(|&i| p[i] as i64).collect();
            let iv = g.op(r).input(1).expect("gather indices");
            let name = g.value(iv).name.clone();
            set_const(
                g,
                r,
                1,
                Tensor::from_i64(vec![composed.len()], &composed),
                &name,
            );
            continue;
        }
        let per = group_len(g, r);
        let wv = g.op(r).input(1).expect("conv weight");
        let wt = g.constant(wv).expect("constant weight").clone();
        let w = wt.to_f64_vec().expect("f32 weight");
        // Column j of group q reads input channel q * per + j; it now reads x's channel
        // q * per + j, which held y's channel inv[q * per + j] (in the same group).
        let (co, cig) = (wt.dims[0], wt.dims[1]);
        let taps: usize = wt.dims[2..].iter().product();
        let cog = co / (p.len() / per);
        let mut nw = vec![0.0f64; w.len()];
        for o in 0..co {
            let q = o / cog;
            for j in 0..cig {
                let src = inv[q * per + j] - q * per;
                nw[(o * cig + j) * taps..][..taps]
                    .copy_from_slice(&w[(o * cig + src) * taps..][..taps]);
            }
        }
        let name = g.value(wv).name.clone();
        set_const(g, r, 1, f32_tensor(wt.dims.clone(), &nw), &name);
    }
    // The channel-wise ops (or the convs) right after the gather read x now.
    g.replace_input_uses(y, x);
    g.remove_op(op);
    g.remove_value(y);
    Ok(true)
}

/// Folds `p` into the conv producing the gather's input, through channel-wise ops, if nothing
/// else reads any value on the way.
fn fold_into_producer(g: &mut Graph, op: OpId, p: &[usize]) -> Result<bool, RewriteError> {
    let (x, y) = (
        g.op(op).input(0).expect("data"),
        g.op(op).output(0).expect("y"),
    );
    let mut v = x;
    let producer = loop {
        let only_gather = g.consumers(v).len() == 1 && !g.is_graph_output(v);
        let Some((prod, 0)) = g.producer(v) else {
            return Ok(false);
        };
        if !only_gather {
            return Ok(false);
        }
        if channelwise(g, prod) {
            v = g.op(prod).input(0).expect("channel-wise input");
            continue;
        }
        break prod;
    };
    if !absorbs(g, producer, p, Side::Producer) {
        return Ok(false);
    }
    let wv = g.op(producer).input(1).expect("conv weight");
    let wt = g.constant(wv).expect("constant weight").clone();
    let w = wt.to_f64_vec().expect("f32 weight");
    let name = g.value(wv).name.clone();
    set_const(
        g,
        producer,
        1,
        f32_tensor(wt.dims.clone(), &gather_axis(&w, &wt.dims, 0, p)),
        &name,
    );
    if let Some(bv) = g.op(producer).input(2) {
        let bt = g.constant(bv).expect("constant bias").clone();
        if let Some(b) = bt.to_f64_vec() {
            let nb: Vec<f64> = p.iter().map(|&i| b[i]).collect();
            let name = g.value(bv).name.clone();
            set_const(g, producer, 2, f32_tensor(bt.dims.clone(), &nb), &name);
        } else {
            return Err(RewriteError::Materialize(format!(
                "{NAME}: non-float bias on {}",
                g.op_label(producer)
            )));
        }
    }
    // The last op before the gather writes y itself (y keeps its name: it may be an output).
    let (last, slot) = g.producer(x).expect("checked above");
    g.remove_op(op);
    g.set_output(last, slot, Some(y))?;
    g.remove_value(x);
    Ok(true)
}

/// Whether `g` holds a channel permutation at all (the pass has nothing to do otherwise).
pub fn any_permutation(g: &Graph) -> bool {
    g.op_ids()
        .into_iter()
        .any(|op| channel_permutation(g, op).is_some())
}

/// Folds every channel permutation it can into a neighbouring conv (see the module docs).
pub fn fold_permutations(model: &mut Model) -> Result<PermuteReport, RewriteError> {
    let g = &mut model.graph;
    let mut report = PermuteReport::default();
    for op in g.topo_order()? {
        let Some(p) = channel_permutation(g, op) else {
            continue;
        };
        let idx = g.op(op).input(1).expect("indices");
        if p.iter().enumerate().all(|(c, &i)| c == i) {
            // The identity: readers read x.
            let (x, y) = (
                g.op(op).input(0).expect("data"),
                g.op(op).output(0).expect("y"),
            );
            if g.is_graph_output(y) {
                report.kept += 1;
                continue;
            }
            g.replace_input_uses(y, x);
            g.remove_op(op);
            g.remove_value(y);
            report.into_readers += 1;
        } else if fold_into_readers(g, op, &p)? {
            report.into_readers += 1;
        } else if fold_into_producer(g, op, &p)? {
            report.into_producer += 1;
        } else {
            report.kept += 1;
            continue;
        }
        if !g.is_used(idx) && g.initializer(idx).is_some() && !g.is_graph_input(idx) {
            g.remove_initializer(idx);
            g.remove_value(idx);
        }
    }
    for v in g.initializer_ids() {
        if !g.is_used(v) && !g.is_graph_input(v) {
            g.remove_initializer(v);
            g.remove_value(v);
        }
    }
    Ok(report)
}
