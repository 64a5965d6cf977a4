//! Channel removal end to end: channels that are a known constant (zero filters, pruned filters
//! whose BatchNorm left a bias) are removed from their producer and from every reader, and
//! their value is folded exactly into each reader; producers that write into channels tied to
//! live ones (a residual stream) compute only their non-constant filters.
//!
//! Facts and groups come from [`ssc_structure::channels`]. The pass runs on the IR, before
//! the e-graph (so the rules see the narrowed convs) and again after extraction (rewrites can
//! leave zero channels behind, e.g. padded blocks).
//!
//! # Removal (whole groups)
//!
//! A channel group is removed when every member can go:
//! - every producer drops it: a `group = 1` Conv drops the filter (whatever its weights: the
//!   value is known), a depthwise conv drops the filter with its input, pointwise and
//!   elementwise ops, Concat and depthwise convs inside the group carry the removal through;
//! - every reader outside the group absorbs it: a `group = 1` Conv or a Gemm drops the column
//!   (nothing to fold for a zero column or a zero channel); a constant `k` folds into the bias
//!   (`b += k * sum(W[:, c])`) when no window of the conv reaches its zero padding, and
//!   otherwise into a *carrier*: one constant channel `k0 != 0` of the same activation is
//!   kept, and the reader's carrier column becomes `W[:, c0] + sum_c (k_c / k0) W[:, c]`,
//!   which is exact in the interior and at the padded borders alike (the carrier is 0 in the
//!   padding exactly where the removed channels were);
//! - nothing else reads it (graph outputs, Split, Reshape, grouped convs and unknown ops pin
//!   the group), and no value loses all its channels.
//!
//! # Narrowed producers (groups that stay)
//!
//! A `group = 1` Conv whose output channel is constant but whose group stays (pinned: a pruned
//! filter of a conv writing into a residual stream whose other writers are live; or kept as a
//! carrier, or to keep its value a whole number of channel blocks) computes only
//! its other filters plus one zero filter `z`; the pointwise ops after it (Relu, pools, ...)
//! run on the narrow tensor, and where the channels meet the rest of the group a
//! `Gather(axis = 1)` puts every channel back in place (the removed ones reading `z`) and an
//! `Add` of a per-channel vector `[1, C, 1, 1]` restores their constants: never a full map.
//! The cost model decides, per producer, whether that is cheaper than the original.
//!
//! Exactness: folded sums are computed in f64 and rounded once; a folded constant differs from
//! the runtime's only by f32 rounding.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use ssc_ir::{
    AttrValue, DataType, Dim, Graph, Model, OpDesc, OpId, Tensor, TensorType, Use, ValueId,
    ValueType,
};
use ssc_structure::channels::{zero_columns, ChannelDataflow, ChannelFact, ChannelOp, PointFn};

use crate::cost::{CostModel, NodeCostInput, OpKind};
use crate::RewriteError;

/// The pass's name in reports and warnings.
pub const NAME: &str = "channel-removal";

/// What the channel pass did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChannelReport {
    /// Channel groups removed (each group is a set of tied channels).
    pub groups_removed: usize,
    /// Constant channels kept as carriers for zero-padded readers.
    pub carriers: usize,
    /// Groups with a constant member that could not be removed (pinned by a live member, a
    /// graph output or an op that cannot absorb them).
    pub groups_pinned: usize,
    /// Producers narrowed to their non-constant filters with a gather back into place.
    pub producers_narrowed: Vec<NarrowedProducer>,
    /// Channels removed per activation value name (after the pass, for the report).
    pub removed_per_value: BTreeMap<String, usize>,
}

impl ChannelReport {
    /// Adds another run's counts to this one.
    pub fn merge(&mut self, other: ChannelReport) {
        self.groups_removed += other.groups_removed;
        self.carriers += other.carriers;
        self.groups_pinned = self.groups_pinned.max(other.groups_pinned);
        self.producers_narrowed.extend(other.producers_narrowed);
        for (k, v) in other.removed_per_value {
            *self.removed_per_value.entry(k).or_default() += v;
        }
    }
}

/// One producer narrowed under a pinned group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NarrowedProducer {
    /// The conv's name.
    pub node: String,
    /// Filters before.
    pub filters_before: usize,
    /// Filters computed after (the kept ones plus the zero filter).
    pub filters_after: usize,
}

/// Status of one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// No member has a known value that lets it go, or some op cannot absorb it.
    Pinned,
    /// Every member can go.
    Removable,
}

fn shape_of(g: &Graph, v: ValueId) -> Option<Vec<usize>> {
    g.static_shape(v, DataType::Float)
}

fn facts_at(df: &ChannelDataflow, v: ValueId, c: u32) -> ChannelFact {
    df.facts(v)
        .and_then(|f| f.get(c as usize).copied())
        .unwrap_or(ChannelFact::Live)
}

fn conv_group(g: &Graph, op: OpId) -> usize {
    match g.op(op).desc.attr("group").map(|a| &a.value) {
        Some(AttrValue::Int(i)) => (*i).max(1) as usize,
        _ => 1,
    }
}

/// Why a member needs its value at a reader: the reader folds it.
struct Need {
    group: u32,
    value: ValueId,
    channel: u32,
    /// The reader is a zero-padded conv: a non-zero constant needs a carrier.
    reader: Option<OpId>,
}

/// Classifies every group; returns the statuses and the folds readers need.
fn classify(g: &Graph, df: &ChannelDataflow) -> (Vec<Status>, Vec<Need>) {
    let mut status = vec![Status::Removable; df.group_count()];
    let mut needs = Vec::new();
    let mut readers: HashMap<ValueId, Vec<(OpId, Use)>> = HashMap::new();
    let mut zero_cols: HashMap<OpId, Vec<bool>> = HashMap::new();
    for gid in 0..df.group_count() as u32 {
        let mut pinned = false;
        let mut any_const = false;
        for (v, c) in df.members(gid) {
            if matches!(facts_at(df, v, c), ChannelFact::Const(_)) {
                any_const = true;
            }
            if g.is_graph_output(v) || g.is_captured(v) || g.is_graph_input(v) {
                pinned = true;
                break;
            }
            // The producer.
            match g.producer(v).map(|(op, _)| (op, df.op(op))) {
                Some((
                    _,
                    ChannelOp::Point { .. } | ChannelOp::Zip { .. } | ChannelOp::Concat { .. },
                )) => {}
                Some((
                    _,
                    ChannelOp::Conv {
                        depthwise: Some(_), ..
                    },
                )) => {}
                Some((
                    op,
                    ChannelOp::Conv {
                        depthwise: None, ..
                    },
                )) if conv_group(g, op) == 1 => {}
                _ => {
                    pinned = true;
                    break;
                }
            }
            // The readers.
            let uses = readers.entry(v).or_insert_with(|| g.consumers(v)).clone();
            for (op, u) in uses {
                let Use::Input(slot) = u else {
                    pinned = true;
                    break;
                };
                match df.op(op) {
                    ChannelOp::Point { input, .. } if *input == v => {}
                    ChannelOp::Point { .. } => pinned = true,
                    ChannelOp::Zip { inputs, output, .. } => {
                        let n = |x: ValueId| df.facts(x).map_or(0, <[ChannelFact]>::len);
                        if n(v) != n(*output) || !inputs.contains(&v) {
                            pinned = true;
                        }
                    }
                    ChannelOp::Concat { .. } => {}
                    ChannelOp::Conv {
                        depthwise: Some(_),
                        input,
                        ..
                    } if *input == v && slot == 0 => {}
                    ChannelOp::Conv {
                        depthwise: None,
                        input,
                        padded,
                        ..
                    } if *input == v && slot == 0 && conv_group(g, op) == 1 => {
                        let zc = zero_cols.entry(op).or_insert_with(|| {
                            g.op(op)
                                .input(1)
                                .and_then(|w| g.constant(w))
                                .map_or_else(Vec::new, zero_columns)
                        });
                        if zc.get(c as usize).copied().unwrap_or(false) {
                            continue;
                        }
                        match facts_at(df, v, c) {
                            ChannelFact::Const(0.0) => {}
                            ChannelFact::Const(_) => needs.push(Need {
                                group: gid,
                                value: v,
                                channel: c,
                                reader: padded.then_some(op),
                            }),
                            _ => pinned = true,
                        }
                    }
                    ChannelOp::Dense { input, .. }
                        if *input == v && slot == 0 && g.op(op).desc.op_type == "Gemm" =>
                    {
                        match facts_at(df, v, c) {
                            ChannelFact::Const(0.0) => {}
                            ChannelFact::Const(_) => needs.push(Need {
                                group: gid,
                                value: v,
                                channel: c,
                                reader: None,
                            }),
                            _ => pinned = true,
                        }
                    }
                    ChannelOp::Dense { input, .. } if *input == v && slot == 0 => {
                        if !facts_at(df, v, c).is_zero() {
                            pinned = true;
                        }
                    }
                    _ => pinned = true,
                }
                if pinned {
                    break;
                }
            }
            if pinned {
                break;
            }
        }
        // A group no reader needs (dead) goes whatever its values; one with a constant member
        // goes when every reader can fold it.
        let _ = any_const;
        if pinned {
            status[gid as usize] = Status::Pinned;
        }
    }
    needs.retain(|n| status[n.group as usize] == Status::Removable);
    (status, needs)
}

/// Removal mask of every value touched: `true` = removed.
type Masks = HashMap<ValueId, Vec<bool>>;

fn kept(mask: &[bool]) -> Vec<usize> {
    (0..mask.len()).filter(|&c| !mask[c]).collect()
}

/// A float tensor from f64 values, rounded once.
pub(crate) fn f32_tensor(dims: Vec<usize>, vals: &[f64]) -> Tensor {
    let v: Vec<f32> = vals.iter().map(|&x| x as f32).collect();
    Tensor::from_f32(dims, &v)
}

/// Points input `slot` of `op` at a constant holding `t`: in place when only `op` reads the
/// old constant, else a new initializer named after the old one (or `base`).
pub(crate) fn set_const(g: &mut Graph, op: OpId, slot: usize, t: Tensor, base: &str) {
    let ty = Some(ValueType::Tensor(TensorType {
        elem: t.dtype,
        shape: Some(t.dims.iter().map(|&d| Dim::Known(d)).collect()),
    }));
    if let Some(old) = g.op(op).input(slot) {
        let only_here = g.initializer(old).is_some()
            && !g.is_graph_output(old)
            && !g.is_graph_input(old)
            && g.consumers(old)
                .iter()
                .all(|&(o, u)| o == op && u == Use::Input(slot));
        if only_here {
            g.value_mut(old).ty = ty;
            g.set_initializer(old, t);
            return;
        }
    }
    let name = match g.op(op).input(slot) {
        Some(old) => g.value(old).name.clone(),
        None => base.to_string(),
    };
    let v = g.add_fresh_value(&name, ty);
    g.set_initializer(v, t);
    if g.legacy_initializer_inputs {
        let mut inputs = g.inputs().to_vec();
        inputs.push(v);
        g.set_inputs(inputs);
    }
    g.set_input(op, slot, Some(v));
}

fn set_channels(g: &mut Graph, v: ValueId, n: usize) {
    if let Some(ValueType::Tensor(t)) = g.value_mut(v).ty.as_mut() {
        if let Some(s) = t.shape.as_mut() {
            if s.len() >= 2 {
                s[1] = Dim::Known(n);
            }
        }
    }
}

/// Gathers `t` along `axis` at `idx`.
pub(crate) fn gather_axis(t: &[f64], dims: &[usize], axis: usize, idx: &[usize]) -> Vec<f64> {
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product();
    let n = dims[axis];
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in idx {
            let at = (o * n + i) * inner;
            out.extend_from_slice(&t[at..at + inner]);
        }
    }
    out
}

/// Removes every removable group (keeping carriers) and folds the constants into the readers.
/// Returns the number of groups removed and carriers kept.
fn remove_groups(
    g: &mut Graph,
    df: &ChannelDataflow,
    status: &[Status],
    needs: &[Need],
    block: usize,
) -> Result<(usize, usize, Masks), RewriteError> {
    // Carriers: per zero-padded reader and value, one kept non-zero constant channel.
    let mut carrier_groups: Vec<u32> = Vec::new();
    let mut carrier_of: HashMap<(OpId, ValueId), u32> = HashMap::new();
    let mut by_reader: BTreeMap<(u64, usize), Vec<&Need>> = BTreeMap::new();
    for n in needs {
        if let Some(r) = n.reader {
            by_reader
                .entry((g.op(r).order, n.value.0.index()))
                .or_default()
                .push(n);
        }
    }
    for list in by_reader.values() {
        let (r, v) = (list[0].reader.expect("padded reader"), list[0].value);
        // Prefer a channel already kept as a carrier, else the largest |k| (stable on ties).
        let existing = list.iter().find(|n| carrier_groups.contains(&n.group));
        let pick = existing.copied().or_else(|| {
            list.iter().copied().max_by(|a, b| {
                let k = |n: &Need| {
                    facts_at(df, n.value, n.channel)
                        .constant()
                        .unwrap_or(0.0)
                        .abs()
                };
                k(a).total_cmp(&k(b)).then(b.channel.cmp(&a.channel))
            })
        });
        if let Some(p) = pick {
            if !carrier_groups.contains(&p.group) {
                carrier_groups.push(p.group);
            }
            carrier_of.insert((r, v), p.channel);
        }
    }
    let mut remove: Vec<bool> = status
        .iter()
        .enumerate()
        .map(|(gid, s)| *s == Status::Removable && !carrier_groups.contains(&(gid as u32)))
        .collect();
    // No value may lose every channel: keep the group of its first channel (to a fixed point,
    // since keeping a group restores channels elsewhere too).
    loop {
        let mut masks: Masks = HashMap::new();
        for (gid, &r) in remove.iter().enumerate() {
            if !r {
                continue;
            }
            for (v, c) in df.members(gid as u32) {
                let n = df.facts(v).map_or(0, <[ChannelFact]>::len);
                masks.entry(v).or_insert_with(|| vec![false; n])[c as usize] = true;
            }
        }
        let mut values: Vec<ValueId> = masks.keys().copied().collect();
        values.sort();
        let mut changed = false;
        for v in values {
            let m = &masks[&v];
            let kept_n = m.iter().filter(|&&x| !x).count();
            if kept_n == 0 {
                if let Some(gid) = df.group(v, 0) {
                    remove[gid as usize] = false;
                    changed = true;
                }
            } else if block > 1 && m.len().is_multiple_of(block) && !kept_n.is_multiple_of(block) {
                // Keep the value aligned to the runtime's channel block: restore the first
                // removed channels (their groups stay, constants and all).
                let need = block - kept_n % block;
                for c in (0..m.len()).filter(|&c| m[c]).take(need) {
                    if let Some(gid) = df.group(v, c as u32) {
                        changed |= std::mem::replace(&mut remove[gid as usize], false);
                    }
                }
            }
        }
        if !changed {
            let removed = remove.iter().filter(|&&x| x).count();
            apply_masks(g, df, &masks, &carrier_of)?;
            return Ok((removed, carrier_groups.len(), masks));
        }
    }
}

/// Rewrites every op touching a masked value.
fn apply_masks(
    g: &mut Graph,
    df: &ChannelDataflow,
    masks: &Masks,
    carrier_of: &HashMap<(OpId, ValueId), u32>,
) -> Result<(), RewriteError> {
    if masks.is_empty() {
        return Ok(());
    }
    let order = g.topo_order()?;
    for op in order {
        let kind = df.op(op).clone();
        match kind {
            ChannelOp::Conv {
                input,
                output,
                depthwise,
                padded,
            } => {
                let (mi, mo) = (masks.get(&input), masks.get(&output));
                if mi.is_none() && mo.is_none() {
                    continue;
                }
                let o = g.op(op);
                let (wv, bv) = (o.input(1).expect("conv weight"), o.input(2));
                let wt = g.constant(wv).expect("constant weight").clone();
                let w = wt.to_f64_vec().expect("f32 weight");
                let (co, cig) = (wt.dims[0], wt.dims[1]);
                let taps: usize = wt.dims[2..].iter().product();
                let mut bias: Vec<f64> = match bv {
                    Some(b) => g
                        .constant(b)
                        .and_then(Tensor::to_f64_vec)
                        .expect("constant bias"),
                    None => vec![0.0; co],
                };
                let keep_o: Vec<usize> = mo.map_or_else(|| (0..co).collect(), |m| kept(m));
                let wname = g.value(wv).name.clone();
                if depthwise.is_some() {
                    // Input and output channels go together (tied): filters follow the outputs.
                    let nw = gather_axis(&w, &wt.dims, 0, &keep_o);
                    let mut dims = wt.dims.clone();
                    dims[0] = keep_o.len();
                    let groups = mi.map_or(co / dims[0].max(1), |m| kept(m).len());
                    set_const(g, op, 1, f32_tensor(dims, &nw), &wname);
                    g.desc_mut(op)
                        .set_attr(ssc_ir::Attribute::int("group", groups as i64));
                    if bv.is_some() {
                        let nb: Vec<f64> = keep_o.iter().map(|&j| bias[j]).collect();
                        set_const(g, op, 2, f32_tensor(vec![nb.len()], &nb), "bias");
                    }
                    continue;
                }
                // group = 1: fold removed inputs, then gather rows and columns.
                let mut w = w;
                let ci = cig;
                let keep_i: Vec<usize> = mi.map_or_else(|| (0..ci).collect(), |m| kept(m));
                let mut bias_changed = false;
                if let Some(m) = mi {
                    let carrier = carrier_of.get(&(op, input)).map(|&c| c as usize);
                    let k0 = carrier.and_then(|c| facts_at(df, input, c as u32).constant());
                    for c in (0..ci).filter(|&c| m[c]) {
                        let k = match facts_at(df, input, c as u32) {
                            ChannelFact::Const(k) => k as f64,
                            _ => continue, // a zero column (checked by classify)
                        };
                        // A zero column reads nothing from the channel (classify asked no
                        // carrier for it): nothing to fold.
                        let zero_col = (0..co).all(|oc| {
                            w[(oc * ci + c) * taps..(oc * ci + c + 1) * taps]
                                .iter()
                                .all(|&x| x == 0.0)
                        });
                        if k == 0.0 || zero_col {
                            continue;
                        }
                        for oc in 0..co {
                            let col = &w[(oc * ci + c) * taps..(oc * ci + c + 1) * taps];
                            if padded {
                                let (cc, k0) = match (carrier, k0) {
                                    (Some(cc), Some(k0)) if k0 != 0.0 => (cc, k0 as f64),
                                    _ => {
                                        return Err(RewriteError::Materialize(format!(
                                            "channel pass: no carrier for {}",
                                            g.op_label(op)
                                        )))
                                    }
                                };
                                let add: Vec<f64> = col.iter().map(|&x| x * k / k0).collect();
                                let dst = (oc * ci + cc) * taps;
                                for (t, a) in add.into_iter().enumerate() {
                                    w[dst + t] += a;
                                }
                            } else {
                                bias[oc] += k * col.iter().sum::<f64>();
                                bias_changed = true;
                            }
                        }
                    }
                }
                let rows = gather_axis(&w, &wt.dims, 0, &keep_o);
                let mut dims = wt.dims.clone();
                dims[0] = keep_o.len();
                let nw = gather_axis(&rows, &dims, 1, &keep_i);
                dims[1] = keep_i.len();
                set_const(g, op, 1, f32_tensor(dims, &nw), &wname);
                if bv.is_some() || bias_changed {
                    let nb: Vec<f64> = keep_o.iter().map(|&j| bias[j]).collect();
                    let base = format!("{}_bias", wname.trim_end_matches("weight"));
                    set_const(g, op, 2, f32_tensor(vec![nb.len()], &nb), &base);
                }
            }
            ChannelOp::Point {
                input,
                output,
                func,
            } => {
                let Some(m) = masks.get(&input).or_else(|| masks.get(&output)) else {
                    continue;
                };
                let keep = kept(m);
                let o = g.op(op);
                match (&func, o.desc.op_type.as_str()) {
                    (PointFn::Affine { .. }, "BatchNormalization") => {
                        let params: Vec<(usize, Tensor, String)> = (1..5)
                            .map(|slot| {
                                let v = o.input(slot).expect("bn param");
                                let t = g.constant(v).expect("constant bn param");
                                let vals = t.to_f64_vec().expect("float bn param");
                                let nv: Vec<f64> = keep.iter().map(|&c| vals[c]).collect();
                                let t = Tensor::from_f64_as(t.dtype, vec![nv.len()], &nv)
                                    .expect("float dtype");
                                (slot, t, g.value(v).name.clone())
                            })
                            .collect();
                        for (slot, t, name) in params {
                            set_const(g, op, slot, t, &name);
                        }
                    }
                    (PointFn::Identity, "Reshape") => {
                        // `[N, C, 1..] -> [N, C]`: the target's channel entry follows.
                        let v = o.input(1).expect("reshape shape");
                        let t = g.constant(v).expect("constant shape").clone();
                        let mut dims = t.to_i64_vec().expect("int64 shape");
                        if dims.len() == 2 && dims[1] > 0 {
                            dims[1] = keep.len() as i64;
                            let name = g.value(v).name.clone();
                            set_const(g, op, 1, Tensor::from_i64(vec![2], &dims), &name);
                        }
                    }
                    (PointFn::Binary { const_first, .. }, _) => {
                        let slot = if *const_first { 0 } else { 1 };
                        let v = o.input(slot).expect("binary constant");
                        let t = g.constant(v).expect("constant operand").clone();
                        let rank = shape_of(g, output).map_or(0, |s| s.len());
                        // Right-aligned broadcasting: the constant has the channel axis only
                        // when its rank reaches it.
                        if t.dims.len() + 1 < rank || t.dims.len() > rank {
                            continue;
                        }
                        let axis = t.dims.len() + 1 - rank;
                        if t.dims[axis] > 1 {
                            let vals = t.to_f64_vec().expect("float constant");
                            let nv = gather_axis(&vals, &t.dims, axis, &keep);
                            let mut dims = t.dims.clone();
                            dims[axis] = keep.len();
                            let nt = Tensor::from_f64_as(t.dtype, dims, &nv).expect("float");
                            let name = g.value(v).name.clone();
                            set_const(g, op, slot, nt, &name);
                        }
                    }
                    _ => {}
                }
            }
            ChannelOp::Dense { input, .. } => {
                let Some(m) = masks.get(&input) else {
                    continue;
                };
                let o = g.op(op);
                let is_gemm = o.desc.op_type == "Gemm";
                let bv = o.input(1).expect("dense weight");
                let bt = g.constant(bv).expect("constant weight").clone();
                let vals = bt.to_f64_vec().expect("float weight");
                let trans_b = is_gemm
                    && matches!(
                        o.desc.attr("transB").map(|a| &a.value),
                        Some(AttrValue::Int(1))
                    );
                // B is [K, M] (or [M, K] transposed); K is the channel axis.
                let kaxis = if trans_b { 1 } else { 0 };
                let (rows, cols) = (bt.dims[0], bt.dims[1]);
                let m_out = if trans_b { rows } else { cols };
                let at = |k: usize, j: usize| {
                    if trans_b {
                        vals[j * cols + k]
                    } else {
                        vals[k * cols + j]
                    }
                };
                let alpha = match o.desc.attr("alpha").map(|a| &a.value) {
                    Some(AttrValue::Float(f)) => *f as f64,
                    _ => 1.0,
                };
                let beta = match o.desc.attr("beta").map(|a| &a.value) {
                    Some(AttrValue::Float(f)) => *f as f64,
                    _ => 1.0,
                };
                let mut fold = vec![0.0f64; m_out];
                let mut any = false;
                for c in (0..m.len()).filter(|&c| m[c]) {
                    if let Some(k) = facts_at(df, input, c as u32).constant() {
                        if k != 0.0 {
                            any = true;
                            for (j, f) in fold.iter_mut().enumerate() {
                                *f += alpha * k as f64 * at(c, j);
                            }
                        }
                    }
                }
                let keep = kept(m);
                let nv = gather_axis(&vals, &bt.dims, kaxis, &keep);
                let mut dims = bt.dims.clone();
                dims[kaxis] = keep.len();
                let name = g.value(bv).name.clone();
                set_const(g, op, 1, f32_tensor(dims, &nv), &name);
                if any && is_gemm {
                    let c_in = g.op(op).input(2);
                    let (cvals, cdims) = match c_in.and_then(|c| g.constant(c)) {
                        Some(t) if t.numel() == 1 => (
                            vec![t.to_f64_vec().expect("float C")[0]; m_out],
                            vec![m_out],
                        ),
                        Some(t) => (t.to_f64_vec().expect("float C"), t.dims.clone()),
                        None => (vec![0.0; m_out], vec![m_out]),
                    };
                    let b = if c_in.is_some() { beta } else { 1.0 };
                    if b == 0.0 {
                        return Err(RewriteError::Materialize(
                            "channel pass: Gemm with beta = 0".into(),
                        ));
                    }
                    let nc: Vec<f64> = cvals
                        .iter()
                        .enumerate()
                        .map(|(i, &x)| x + fold[i % m_out] / b)
                        .collect();
                    set_const(g, op, 2, f32_tensor(cdims, &nc), "bias");
                    if c_in.is_none() {
                        g.desc_mut(op)
                            .set_attr(ssc_ir::Attribute::float("beta", 1.0));
                    }
                }
            }
            _ => {}
        }
    }
    for (&v, m) in masks {
        set_channels(g, v, kept(m).len());
    }
    Ok(())
}

/// The cost-model input of the conv `op` with the given static shapes.
fn conv_cost_input(g: &Graph, op: OpId, x: &[usize], w: &[usize], y: &[usize]) -> NodeCostInput {
    let group = conv_group(g, op);
    let strides: Vec<usize> = match g.op(op).desc.attr("strides").map(|a| &a.value) {
        Some(AttrValue::Ints(s)) => s.iter().map(|&s| s as usize).collect(),
        _ => vec![1; w.len() - 2],
    };
    let (co, cig) = (w[0], w[1]);
    let taps: u64 = w[2..].iter().map(|&k| k as u64).product();
    let out_px: u64 = y[2..].iter().map(|&k| k as u64).product();
    let numel = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>();
    NodeCostInput {
        kind: OpKind::Conv {
            groups: group,
            cin_per_group: cig,
            cout_per_group: co / group.max(1),
            kernel: w[2..].to_vec(),
            stride: strides,
        },
        macs: y[0] as u64 * co as u64 * out_px * cig as u64 * taps,
        bytes_in: numel(x) * 4,
        bytes_out: numel(y) * 4,
        weight_bytes: (numel(w) + co as u64) * 4,
    }
}

/// A pointwise op's cost over `elems` outputs.
fn point_cost_input(g: &Graph, op: OpId, elems: u64, in_elems: u64) -> NodeCostInput {
    match g.op(op).desc.op_type.as_str() {
        "MaxPool" | "AveragePool" | "GlobalAveragePool" | "GlobalMaxPool" => NodeCostInput {
            kind: OpKind::Pool,
            macs: in_elems,
            bytes_in: in_elems * 4,
            bytes_out: elems * 4,
            weight_bytes: 0,
        },
        _ => NodeCostInput::elementwise(elems, 1),
    }
}

/// Narrows `group = 1` conv producers whose constant output channels sit in pinned groups
/// (see the module docs), where the cost model says it pays.
fn narrow_producers(
    g: &mut Graph,
    df: &ChannelDataflow,
    cost: &dyn CostModel,
) -> Result<Vec<NarrowedProducer>, RewriteError> {
    let mut out = Vec::new();
    for op in g.topo_order()? {
        let ChannelOp::Conv {
            input,
            output,
            depthwise: None,
            ..
        } = df.op(op).clone()
        else {
            continue;
        };
        if conv_group(g, op) != 1 {
            continue;
        }
        let Some(facts) = df.facts(output) else {
            continue;
        };
        let co = facts.len();
        // Every constant output is narrowable: a pinned group's, and equally a removable one
        // that `remove_groups` kept (a carrier, or restored to keep its value block-aligned):
        // the gather and the constants put the same tensor back either way.
        let mut removed: Vec<usize> = (0..co)
            .filter(|&c| matches!(facts[c], ChannelFact::Const(_)))
            .collect();
        // An aligned conv stays aligned (its kept filters and the zero one fill whole blocks).
        let block = cost.channel_block();
        if block > 1 && co.is_multiple_of(block) && !removed.is_empty() {
            let n = (co - removed.len() + 1).div_ceil(block) * block;
            removed.truncate(co.saturating_sub(n - 1));
        }
        if removed.len() < 2 || removed.len() >= co {
            continue;
        }
        // The chain of single-reader pointwise ops after the conv, as long as every removed
        // channel stays an exact constant.
        let mut chain: Vec<OpId> = Vec::new();
        let mut end = output;
        while let Some((next, 0)) = g.sole_consumer(end) {
            let ChannelOp::Point {
                output: nout, func, ..
            } = df.op(next)
            else {
                break;
            };
            let narrowable = matches!(
                func,
                PointFn::Relu
                    | PointFn::LeakyRelu(_)
                    | PointFn::Clip(..)
                    | PointFn::Pool
                    | PointFn::Identity
                    | PointFn::Sigmoid
                    | PointFn::Tanh
                    | PointFn::HardSigmoid(..)
                    | PointFn::HardSwish
                    | PointFn::Neg
                    | PointFn::Abs
            ) && g.op(next).desc.op_type != "Flatten"
                && g.op(next).desc.op_type != "Reshape"
                && g.op(next).desc.op_type != "Squeeze";
            let consts = df.facts(*nout).is_some_and(|f| {
                removed
                    .iter()
                    .all(|&c| matches!(f[c], ChannelFact::Const(_)))
            });
            if !narrowable || !consts || g.is_graph_output(*nout) {
                break;
            }
            chain.push(next);
            end = *nout;
        }
        // A chain already placed by a gather (an earlier run of this pass) stays as it is.
        let placed = g.consumers(end).iter().any(|&(o, _)| {
            let d = &g.op(o).desc;
            d.op_type == "Gather" || (d.op_type == "Add" && d.name.ends_with("/consts"))
        });
        if placed {
            continue;
        }
        // Price it: the conv and chain at full width against the narrow ones, a Gather and an
        // Add of the constants.
        let (Some(xs), Some(ys), Some(es)) =
            (shape_of(g, input), shape_of(g, output), shape_of(g, end))
        else {
            continue;
        };
        let wv = g.op(op).input(1).expect("conv weight");
        let wt = g.constant(wv).expect("constant weight").clone();
        let n_keep = co - removed.len() + 1;
        let per_c = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>() / s[1] as u64;
        let mut before = cost.node_cost(&conv_cost_input(g, op, &xs, &wt.dims, &ys));
        let mut after = {
            let mut w2 = wt.dims.clone();
            w2[0] = n_keep;
            let mut y2 = ys.clone();
            y2[1] = n_keep;
            cost.node_cost(&conv_cost_input(g, op, &xs, &w2, &y2))
        };
        let mut prev = output;
        for &p in &chain {
            let nout = g.op(p).output(0).expect("point output");
            let (Some(si), Some(so)) = (shape_of(g, prev), shape_of(g, nout)) else {
                break;
            };
            before += cost.node_cost(&point_cost_input(
                g,
                p,
                per_c(&so) * so[1] as u64,
                per_c(&si) * si[1] as u64,
            ));
            after += cost.node_cost(&point_cost_input(
                g,
                p,
                per_c(&so) * n_keep as u64,
                per_c(&si) * n_keep as u64,
            ));
            prev = nout;
        }
        let full = per_c(&es) * co as u64;
        after += cost.node_cost(&NodeCostInput::gather(
            per_c(&es) * n_keep as u64,
            full,
            co as u64,
        ));
        let end_facts = df.facts(end).expect("facts").to_vec();
        // The zero filter's value at the chain's end.
        let mut z = 0.0f64;
        for &p in &chain {
            if let ChannelOp::Point { func, .. } = df.op(p) {
                z = func.apply(0, z);
            }
        }
        let vec: Vec<f64> = (0..co)
            .map(|c| match end_facts[c] {
                ChannelFact::Const(k) if removed.contains(&c) => k as f64 - z,
                _ => 0.0,
            })
            .collect();
        let needs_add = vec.iter().any(|&x| x != 0.0);
        if needs_add {
            after += cost.node_cost(&NodeCostInput::elementwise(full, 2));
        }
        // The model file must not grow either: the gather indices and the vector are tiny, and
        // the conv loses whole filters.
        if after >= before {
            continue;
        }
        // Rewrite: the conv computes the kept filters and one zero filter (last).
        let keep: Vec<usize> = (0..co).filter(|c| !removed.contains(c)).collect();
        let w = wt.to_f64_vec().expect("f32 weight");
        let row: usize = wt.dims[1..].iter().product();
        let mut nw = gather_axis(&w, &wt.dims, 0, &keep);
        nw.extend(std::iter::repeat_n(0.0, row));
        let mut dims = wt.dims.clone();
        dims[0] = n_keep;
        let wname = g.value(wv).name.clone();
        set_const(g, op, 1, f32_tensor(dims, &nw), &wname);
        if let Some(b) = g.op(op).input(2) {
            let bvals = g.constant(b).and_then(Tensor::to_f64_vec).expect("bias");
            let mut nb: Vec<f64> = keep.iter().map(|&c| bvals[c]).collect();
            nb.push(0.0);
            set_const(g, op, 2, f32_tensor(vec![n_keep], &nb), "bias");
        }
        // Every value of the chain is narrow now; the last one gets a new name and the gather
        // (and add) write the old one, so readers need no change.
        let full_ty = g.value(end).ty.clone();
        let name = g.value(end).name.clone();
        if output != end {
            set_channels(g, output, n_keep);
        }
        for &p in &chain {
            let nout = g.op(p).output(0).expect("point output");
            if nout != end {
                set_channels(g, nout, n_keep);
            }
        }
        let (end_op, end_slot) = g.producer(end).expect("chain end has a producer");
        let mut narrow_ty = full_ty.clone();
        if let Some(ValueType::Tensor(t)) = narrow_ty.as_mut() {
            if let Some(s) = t.shape.as_mut() {
                s[1] = Dim::Known(n_keep);
            }
        }
        let narrow = g.add_fresh_value(&format!("{name}_kept"), narrow_ty);
        g.set_output(end_op, end_slot, Some(narrow))?;
        let idx: Vec<i64> = (0..co)
            .map(|c| match keep.binary_search(&c) {
                Ok(p) => p as i64,
                Err(_) => (n_keep - 1) as i64,
            })
            .collect();
        let label = g.op_label(op);
        let iv = g.add_fresh_value(
            &format!("{name}_idx"),
            Some(ValueType::Tensor(TensorType {
                elem: DataType::Int64,
                shape: Some(vec![Dim::Known(co)]),
            })),
        );
        g.set_initializer(iv, Tensor::from_i64(vec![co], &idx));
        let gathered = if needs_add {
            g.add_fresh_value(&format!("{name}_placed"), full_ty)
        } else {
            end
        };
        let gop = g.add_op(
            OpDesc::new("Gather")
                .with_attr(ssc_ir::Attribute::int("axis", 1))
                .with_name(format!("{label}/place")),
            vec![Some(narrow), Some(iv)],
            vec![Some(gathered)],
        )?;
        let anchor = g.consumers(end).first().map(|&(o, _)| o);
        if let Some(a) = anchor {
            g.place_before(gop, a);
        }
        if needs_add {
            let mut vdims = vec![1usize; es.len()];
            vdims[1] = co;
            let cv = g.add_fresh_value(
                &format!("{name}_consts"),
                Some(ValueType::Tensor(TensorType {
                    elem: DataType::Float,
                    shape: Some(vdims.iter().map(|&d| Dim::Known(d)).collect()),
                })),
            );
            g.set_initializer(cv, f32_tensor(vdims, &vec));
            let aop = g.add_op(
                OpDesc::new("Add").with_name(format!("{label}/consts")),
                vec![Some(gathered), Some(cv)],
                vec![Some(end)],
            )?;
            if let Some(a) = anchor {
                g.place_before(aop, a);
            }
        }
        out.push(NarrowedProducer {
            node: label,
            filters_before: co,
            filters_after: n_keep,
        });
    }
    Ok(out)
}

/// Runs the channel pass on `model` (shapes must be inferred). `cost` decides where narrowing a
/// producer under a pinned group pays.
pub fn remove_channels(
    model: &mut Model,
    cost: &dyn CostModel,
) -> Result<ChannelReport, RewriteError> {
    let opset = model.onnx_opset();
    let g = &mut model.graph;
    let df = ssc_structure::channels::channel_dataflow(g, opset)?;
    let (status, needs) = classify(g, &df);
    let names: HashMap<ValueId, String> = g
        .value_ids()
        .into_iter()
        .map(|v| (v, g.value(v).name.clone()))
        .collect();
    let (removed, carriers, masks) = remove_groups(g, &df, &status, &needs, cost.channel_block())?;
    let mut report = ChannelReport {
        groups_removed: removed,
        carriers,
        groups_pinned: (0..df.group_count())
            .filter(|&gid| {
                status[gid] == Status::Pinned
                    && df
                        .members(gid as u32)
                        .any(|(v, c)| matches!(facts_at(&df, v, c), ChannelFact::Const(_)))
            })
            .count(),
        ..ChannelReport::default()
    };
    for (v, m) in &masks {
        let n = m.iter().filter(|&&x| x).count();
        if n > 0 {
            report.removed_per_value.insert(names[v].clone(), n);
        }
    }
    // Producers under pinned groups, on the narrowed graph.
    let df2 = ssc_structure::channels::channel_dataflow(g, opset)?;
    report.producers_narrowed = narrow_producers(g, &df2, cost)?;
    // Constants only the rewritten ops read are gone now.
    for v in g.initializer_ids() {
        if !g.is_used(v) && !g.is_graph_input(v) {
            g.remove_initializer(v);
            g.remove_value(v);
        }
    }
    Ok(report)
}
