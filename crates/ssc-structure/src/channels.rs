//! Channel dataflow over a whole graph: for every channel of every activation, whether it is a
//! known constant, a constant away from the spatial borders, or live, and which channels are
//! tied together so that they can only be removed as one (torch-pruning's dependency groups).
//!
//! This is the graph-level half of the structure analysis: the weight facts of the `conv` module
//! say which filters of one conv are zero; this module carries what that means through the
//! network (a zero filter's output is its bias, a Relu of a constant is a constant, a conv
//! reading a constant channel sees it only in the interior of its zero padding, a residual Add
//! ties the channels of both operands). Channel removal (`ssc-rewrite`'s `channels` pass)
//! starts from these facts.
//!
//! # Facts ([`ChannelFact`])
//!
//! - `Const(c)`: the channel is exactly `c` at every position, for every input (`Const(0.0)` is
//!   a zero channel). A consumer with zero padding still sees `0` in its padding, so the
//!   constant folds into its bias only where no window reaches the padding.
//! - `Interior(c)`: input-independent and `c` away from the borders, but different near them
//!   (a zero-padded conv or average pool read a constant). Treated as live by removal.
//! - `Live`: depends on the input.
//!
//! Values are computed as the runtime computes them, in f32 for each op (folded sums in f64,
//! rounded once), so a folded constant differs from the runtime's by rounding only.
//!
//! # Propagation ([`ChannelOp`])
//!
//! Conv (bias, grouped, depthwise; constant weight), BatchNormalization, pointwise
//! activations (Relu, LeakyRelu, Clip with constant bounds, Sigmoid, Tanh, HardSigmoid,
//! HardSwish, Neg, Abs, Identity, Dropout), MaxPool / AveragePool (and their padding),
//! GlobalAveragePool / GlobalMaxPool, Add/Sub/Mul/Div with a per-channel constant or between
//! activations (broadcast over space), Sum, Concat and Split on the channel axis, Flatten /
//! Reshape / Squeeze that keep `[N, C, 1..]` as `[N, C]`, and Gemm / MatMul reading `[N, C]`.
//! Any other op's outputs have no facts (all live to their readers).
//!
//! # Groups
//!
//! Channels are tied when an op maps channel `c` of one activation to channel `c'` of another
//! one to one: pointwise ops, elementwise ops between activations (a residual Add ties both
//! operands and the sum), Concat / Split (at their offsets), and depthwise convs (input `c`
//! feeds only output `c`). A group is a class of that relation: removing a channel means
//! removing its whole group, from every producer and every reader at once.
//!
//! Architecture invariant: analysis only; nothing here changes the graph.

use std::collections::HashMap;

use ssc_ir::{AttrValue, DataType, Graph, IrError, OpId, Tensor, ValueId};

use crate::unionfind::UnionFind;

/// What one channel of an activation is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ChannelFact {
    /// Exactly this value everywhere (`0.0`: a zero channel).
    Const(f32),
    /// This value away from the spatial borders, input-independent but different near them.
    Interior(f32),
    /// Depends on the input.
    Live,
}

impl ChannelFact {
    /// The value when the channel is exactly constant.
    pub fn constant(self) -> Option<f32> {
        match self {
            ChannelFact::Const(c) => Some(c),
            _ => None,
        }
    }

    /// Exactly zero everywhere.
    pub fn is_zero(self) -> bool {
        self == ChannelFact::Const(0.0)
    }

    fn map(self, f: impl Fn(f64) -> f64) -> ChannelFact {
        let g = |c: f32| {
            let v = f(c as f64) as f32;
            // -0.0 and 0.0 are the same channel.
            if v == 0.0 {
                0.0
            } else {
                v
            }
        };
        match self {
            ChannelFact::Const(c) => finite(g(c), ChannelFact::Const),
            ChannelFact::Interior(c) => finite(g(c), ChannelFact::Interior),
            ChannelFact::Live => ChannelFact::Live,
        }
    }
}

fn finite(v: f32, make: fn(f32) -> ChannelFact) -> ChannelFact {
    if v.is_finite() {
        make(v)
    } else {
        ChannelFact::Live
    }
}

/// Combines facts elementwise with `f` (Add, Mul, ...): constants combine, anything live wins,
/// and a border-dependent operand makes the result border-dependent.
fn zip(facts: &[ChannelFact], f: impl Fn(&[f64]) -> f64) -> ChannelFact {
    let mut vals = Vec::with_capacity(facts.len());
    let mut interior = false;
    for fact in facts {
        match fact {
            ChannelFact::Const(c) => vals.push(*c as f64),
            ChannelFact::Interior(c) => {
                interior = true;
                vals.push(*c as f64);
            }
            ChannelFact::Live => return ChannelFact::Live,
        }
    }
    let v = f(&vals) as f32;
    let v = if v == 0.0 { 0.0 } else { v };
    finite(
        v,
        if interior {
            ChannelFact::Interior
        } else {
            ChannelFact::Const
        },
    )
}

/// A scalar function applied to each channel on its own.
#[derive(Clone, Debug, PartialEq)]
pub enum PointFn {
    /// `max(x, 0)`.
    Relu,
    /// `x < 0 ? alpha x : x`.
    LeakyRelu(f32),
    /// `min(max(x, lo), hi)`.
    Clip(f32, f32),
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `max(0, min(1, alpha x + beta))`.
    HardSigmoid(f32, f32),
    /// `x * max(0, min(1, x / 6 + 1 / 2))`.
    HardSwish,
    /// `-x`.
    Neg,
    /// `|x|`.
    Abs,
    /// `x` (Identity, inference Dropout, a reshape that keeps `[N, C]`).
    Identity,
    /// `x * scale[c] + shift[c]` (an inference BatchNormalization).
    Affine {
        /// Per-channel scale.
        scale: Vec<f64>,
        /// Per-channel shift.
        shift: Vec<f64>,
    },
    /// `x op k[c]` (or `k[c] op x` when `const_first`) with a per-channel constant.
    Binary {
        /// `Add`, `Sub`, `Mul` or `Div`.
        op: BinOp,
        /// The constant per channel.
        k: Vec<f64>,
        /// The constant is the left operand.
        const_first: bool,
    },
    /// A MaxPool, or an AveragePool that never counts padding: a constant stays itself.
    Pool,
    /// An AveragePool that counts zero padding: a constant changes at the borders.
    PaddedPool,
    /// GlobalAveragePool / GlobalMaxPool: a constant stays itself, border effects are unknown.
    GlobalPool,
}

/// An elementwise binary operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
}

impl BinOp {
    fn from_op(op: &str) -> Option<BinOp> {
        Some(match op {
            "Add" => BinOp::Add,
            "Sub" => BinOp::Sub,
            "Mul" => BinOp::Mul,
            "Div" => BinOp::Div,
            _ => return None,
        })
    }

    /// `a op b` in f32, as a runtime computes it.
    pub fn apply(self, a: f64, b: f64) -> f64 {
        let (a, b) = (a as f32, b as f32);
        (match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
        }) as f64
    }
}

impl PointFn {
    /// The function at channel `c`, in f32.
    pub fn apply(&self, c: usize, x: f64) -> f64 {
        let xf = x as f32;
        (match self {
            PointFn::Relu => xf.max(0.0),
            PointFn::LeakyRelu(a) => {
                if xf < 0.0 {
                    a * xf
                } else {
                    xf
                }
            }
            PointFn::Clip(lo, hi) => xf.max(*lo).min(*hi),
            PointFn::Sigmoid => (1.0 / (1.0 + (-x).exp())) as f32,
            PointFn::Tanh => x.tanh() as f32,
            PointFn::HardSigmoid(a, b) => (a * xf + b).clamp(0.0, 1.0),
            PointFn::HardSwish => xf * (xf / 6.0 + 0.5).clamp(0.0, 1.0),
            PointFn::Neg => -xf,
            PointFn::Abs => xf.abs(),
            PointFn::Identity | PointFn::Pool | PointFn::PaddedPool | PointFn::GlobalPool => xf,
            PointFn::Affine { scale, shift } => (x * scale[c] + shift[c]) as f32,
            PointFn::Binary { op, k, const_first } => {
                return if *const_first {
                    op.apply(k[c], x)
                } else {
                    op.apply(x, k[c])
                }
            }
        }) as f64
    }

    fn fact(&self, c: usize, f: ChannelFact) -> ChannelFact {
        match (self, f) {
            (PointFn::PaddedPool, ChannelFact::Const(v)) if v != 0.0 => ChannelFact::Interior(v),
            (PointFn::GlobalPool, ChannelFact::Interior(_)) => ChannelFact::Live,
            _ => f.map(|x| self.apply(c, x)),
        }
    }
}

/// How an op moves channels, as far as channel removal cares.
#[derive(Clone, Debug, PartialEq)]
pub enum ChannelOp {
    /// `output[c] = f(input[c])`.
    Point {
        /// The activation read.
        input: ValueId,
        /// The activation written.
        output: ValueId,
        /// The per-channel function.
        func: PointFn,
    },
    /// `output[c] = op(inputs[0][c], inputs[1][c], ..)` over activations with the output's
    /// channel count (broadcast over space only).
    Zip {
        /// The activations read, in slot order.
        inputs: Vec<ValueId>,
        /// The activation written.
        output: ValueId,
        /// The operation (`Sum` is a chain of `Add`).
        op: BinOp,
    },
    /// Concatenation on the channel axis.
    Concat {
        /// The parts, in order.
        inputs: Vec<ValueId>,
        /// The concatenation.
        output: ValueId,
    },
    /// Split on the channel axis.
    Split {
        /// The activation split.
        input: ValueId,
        /// The parts, in order.
        outputs: Vec<ValueId>,
    },
    /// A Conv over a constant weight `[Co, Ci/group, k..]` (and constant bias, if any).
    Conv {
        /// The activation read.
        input: ValueId,
        /// The activation written.
        output: ValueId,
        /// Outputs per input channel when the conv is depthwise (`Ci/group == 1`): output
        /// `o` reads only input `o / multiplier`.
        depthwise: Option<usize>,
        /// Some window reaches the zero padding.
        padded: bool,
    },
    /// Gemm / MatMul of an `[N, C]` activation with a constant matrix.
    Dense {
        /// The activation read.
        input: ValueId,
        /// The activation written.
        output: ValueId,
    },
    /// Anything else: its outputs have no facts and its inputs' channels are needed as they are.
    Opaque,
}

/// The per-channel facts of every activation and the channel groups.
#[derive(Clone, Debug, Default)]
pub struct ChannelDataflow {
    facts: HashMap<ValueId, Vec<ChannelFact>>,
    ops: HashMap<OpId, ChannelOp>,
    base: HashMap<ValueId, usize>,
    members: Vec<(ValueId, u32)>,
    group_of: Vec<u32>,
    groups: Vec<Vec<u32>>,
}

/// One channel of one activation.
pub type ChannelRef = (ValueId, u32);

impl ChannelDataflow {
    /// The facts of `v` (one per channel), when `v` is an activation the analysis tracks.
    pub fn facts(&self, v: ValueId) -> Option<&[ChannelFact]> {
        self.facts.get(&v).map(Vec::as_slice)
    }

    /// How `op` moves channels.
    pub fn op(&self, op: OpId) -> &ChannelOp {
        self.ops.get(&op).unwrap_or(&ChannelOp::Opaque)
    }

    /// The group of channel `c` of `v`.
    pub fn group(&self, v: ValueId, c: u32) -> Option<u32> {
        let b = *self.base.get(&v)?;
        self.group_of.get(b + c as usize).copied()
    }

    /// The number of groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The channels of group `g`, in the order the analysis met them.
    pub fn members(&self, g: u32) -> impl Iterator<Item = ChannelRef> + '_ {
        self.groups[g as usize]
            .iter()
            .map(|&m| self.members[m as usize])
    }
}

fn float_attr(d: &ssc_ir::OpDesc, name: &str, default: f32) -> Option<f32> {
    match d.attr(name).map(|a| &a.value) {
        None => Some(default),
        Some(AttrValue::Float(f)) => Some(*f),
        Some(_) => None,
    }
}

fn int_attr(d: &ssc_ir::OpDesc, name: &str, default: i64) -> Option<i64> {
    match d.attr(name).map(|a| &a.value) {
        None => Some(default),
        Some(AttrValue::Int(i)) => Some(*i),
        Some(_) => None,
    }
}

/// Whether a window of a Conv / pool with these attributes can reach the zero padding.
fn has_padding(d: &ssc_ir::OpDesc, kernel: &[usize]) -> Option<bool> {
    let auto = match d.attr("auto_pad").map(|a| &a.value) {
        None => String::new(),
        Some(AttrValue::String(s)) => String::from_utf8_lossy(s).into_owned(),
        Some(_) => return None,
    };
    Some(match auto.as_str() {
        "" | "NOTSET" => match d.attr("pads").map(|a| &a.value) {
            None => false,
            Some(AttrValue::Ints(p)) => p.iter().any(|&x| x != 0),
            Some(_) => return None,
        },
        "VALID" => false,
        // SAME_* pads whenever the kernel is larger than one tap.
        _ => kernel.iter().any(|&k| k > 1),
    })
}

/// The little-endian bytes of an f32 tensor, when it has them.
fn f32_bytes(t: &Tensor) -> Option<&[u8]> {
    let raw = t.raw()?;
    (t.dtype == DataType::Float && raw.len() == 4 * t.numel()).then_some(&raw[..])
}

/// Which input columns `W[:, c]` of a `group = 1` conv weight `[Co, Ci, k..]` are all zero (a
/// reader that ignores channel `c`). Reads the weight in place and stops looking at a column at
/// its first non-zero.
pub fn zero_columns(w: &Tensor) -> Vec<bool> {
    let ci = w.dims.get(1).copied().unwrap_or(0);
    let Some(raw) = f32_bytes(w).filter(|_| w.dims.len() >= 2) else {
        return vec![false; ci];
    };
    let co = w.dims[0];
    let taps: usize = w.dims[2..].iter().product();
    let at = |i: usize| f32::from_le_bytes(raw[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    let mut zero = vec![true; ci];
    let mut left = ci;
    for o in 0..co {
        if left == 0 {
            break;
        }
        for (c, z) in zero.iter_mut().enumerate() {
            if *z && ((o * ci + c) * taps..(o * ci + c + 1) * taps).any(|i| at(i) != 0.0) {
                *z = false;
                left -= 1;
            }
        }
    }
    zero
}

/// The per-channel scalars of a constant that broadcasts against an activation of shape
/// `out` and is constant along every axis but the channel axis (1): `k[c]`.
fn per_channel(t: &Tensor, out: &[usize]) -> Option<Vec<f64>> {
    if t.dims.len() > out.len() || !matches!(t.dtype, DataType::Float) {
        return None;
    }
    let vals = t.to_f64_vec()?;
    let c = out[1];
    // Right-align the constant's dims with the activation's.
    let lead = out.len() - t.dims.len();
    let dims: Vec<usize> = std::iter::repeat_n(1, lead)
        .chain(t.dims.iter().copied())
        .collect();
    if dims.iter().zip(out).any(|(&d, &o)| d != 1 && d != o) || dims[0] != 1 {
        return None;
    }
    let inner: usize = dims[2..].iter().product();
    let dc = dims[1];
    let mut k = Vec::with_capacity(c);
    for ch in 0..c {
        let at = if dc == 1 { 0 } else { ch };
        let block = &vals[at * inner..(at + 1) * inner];
        if block.iter().any(|&v| v.to_bits() != block[0].to_bits()) {
            return None;
        }
        k.push(block[0]);
    }
    Some(k)
}

struct Ctx<'a> {
    g: &'a Graph,
    opset: i64,
    facts: HashMap<ValueId, Vec<ChannelFact>>,
}

impl Ctx<'_> {
    fn shape(&self, v: ValueId) -> Option<Vec<usize>> {
        let s = self.g.static_shape(v, DataType::Float)?;
        (s.len() >= 2).then_some(s)
    }

    fn channels(&self, v: ValueId) -> Option<usize> {
        self.shape(v).map(|s| s[1])
    }

    /// The facts of `v`, all live when the analysis has none.
    fn facts_or_live(&self, v: ValueId) -> Option<Vec<ChannelFact>> {
        let c = self.channels(v)?;
        Some(
            self.facts
                .get(&v)
                .cloned()
                .unwrap_or_else(|| vec![ChannelFact::Live; c]),
        )
    }

    fn classify(&self, op: OpId) -> ChannelOp {
        self.classify_inner(op).unwrap_or(ChannelOp::Opaque)
    }

    fn classify_inner(&self, op: OpId) -> Option<ChannelOp> {
        let g = self.g;
        let o = g.op(op);
        let d = &o.desc;
        if !d.is_onnx() || !o.captures().is_empty() {
            return None;
        }
        let ins: Vec<ValueId> = o.inputs().iter().flatten().copied().collect();
        let out0 = o.output(0)?;
        let single_out = o.outputs().iter().flatten().count() == 1;
        let point = |func: PointFn| -> Option<ChannelOp> {
            let input = *ins.first()?;
            let (si, so) = (self.shape(input)?, self.shape(out0)?);
            (single_out && si[0] == so[0] && si[1] == so[1]).then_some(ChannelOp::Point {
                input,
                output: out0,
                func,
            })
        };
        let t = d.op_type.as_str();
        match t {
            "Relu" if ins.len() == 1 => point(PointFn::Relu),
            "LeakyRelu" if ins.len() == 1 => {
                point(PointFn::LeakyRelu(float_attr(d, "alpha", 0.01)?))
            }
            "Sigmoid" if ins.len() == 1 => point(PointFn::Sigmoid),
            "Tanh" if ins.len() == 1 => point(PointFn::Tanh),
            "HardSigmoid" if ins.len() == 1 => point(PointFn::HardSigmoid(
                float_attr(d, "alpha", 0.2)?,
                float_attr(d, "beta", 0.5)?,
            )),
            "HardSwish" if ins.len() == 1 => point(PointFn::HardSwish),
            "Neg" if ins.len() == 1 => point(PointFn::Neg),
            "Abs" if ins.len() == 1 => point(PointFn::Abs),
            "Identity" if ins.len() == 1 => point(PointFn::Identity),
            "Dropout" => {
                // Inference: the identity, unless a training_mode input says otherwise.
                if o.input(2).is_some() || o.outputs().iter().flatten().count() != 1 {
                    return None;
                }
                point(PointFn::Identity)
            }
            "Clip" => {
                let (lo, hi) = if self.opset < 11 {
                    (
                        float_attr(d, "min", f32::NEG_INFINITY)?,
                        float_attr(d, "max", f32::INFINITY)?,
                    )
                } else {
                    let bound = |slot: usize, none: f32| -> Option<f32> {
                        let Some(v) = o.input(slot) else {
                            return Some(none);
                        };
                        let t = g.constant(v)?;
                        (t.dtype == DataType::Float && t.numel() == 1)
                            .then(|| t.to_f32_vec()?.first().copied())?
                    };
                    (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
                };
                let input = o.input(0)?;
                let (si, so) = (self.shape(input)?, self.shape(out0)?);
                (single_out && si == so).then_some(ChannelOp::Point {
                    input,
                    output: out0,
                    func: PointFn::Clip(lo, hi),
                })
            }
            "BatchNormalization" => {
                if !single_out || int_attr(d, "training_mode", 0)? != 0 || ins.len() != 5 {
                    return None;
                }
                let eps = float_attr(d, "epsilon", 1e-5)? as f64;
                let p: Vec<Vec<f64>> = ins[1..]
                    .iter()
                    .map(|&v| g.constant(v)?.to_f64_vec())
                    .collect::<Option<_>>()?;
                let c = self.channels(ins[0])?;
                if p.iter().any(|x| x.len() != c) {
                    return None;
                }
                let scale: Vec<f64> = (0..c).map(|i| p[0][i] / (p[3][i] + eps).sqrt()).collect();
                let shift: Vec<f64> = (0..c).map(|i| p[1][i] - p[2][i] * scale[i]).collect();
                point(PointFn::Affine { scale, shift })
            }
            "MaxPool" | "AveragePool" => {
                if !single_out || int_attr(d, "ceil_mode", 0)? != 0 && t == "AveragePool" {
                    // An AveragePool window past the edge divides by fewer elements.
                    return point(PointFn::PaddedPool);
                }
                let kernel: Vec<usize> = d
                    .get_ints("kernel_shape")
                    .ok()??
                    .iter()
                    .map(|&k| k as usize)
                    .collect();
                let padded = has_padding(d, &kernel)?;
                let counts_pad = t == "AveragePool" && int_attr(d, "count_include_pad", 0)? != 0;
                point(if padded && counts_pad {
                    PointFn::PaddedPool
                } else {
                    PointFn::Pool
                })
            }
            "GlobalAveragePool" | "GlobalMaxPool" if ins.len() == 1 => point(PointFn::GlobalPool),
            "Flatten" | "Reshape" | "Squeeze" => {
                // Only `[N, C, 1, ..] -> [N, C]`: the channel axis stays axis 1.
                let input = o.input(0)?;
                let (si, so) = (self.shape(input)?, self.shape(out0)?);
                let keeps = so.len() == 2
                    && si.len() >= 2
                    && si[..2] == so[..]
                    && si[2..].iter().all(|&x| x == 1);
                if !keeps || !single_out {
                    return None;
                }
                Some(ChannelOp::Point {
                    input,
                    output: out0,
                    func: PointFn::Identity,
                })
            }
            "Add" | "Sub" | "Mul" | "Div" | "Sum" => {
                let so = self.shape(out0)?;
                if !single_out {
                    return None;
                }
                let op = BinOp::from_op(t).unwrap_or(BinOp::Add);
                let consts: Vec<bool> = ins.iter().map(|&v| g.constant(v).is_some()).collect();
                if t != "Sum" && ins.len() == 2 && consts[0] != consts[1] {
                    let (ci, xi) = if consts[0] { (0, 1) } else { (1, 0) };
                    let k = per_channel(g.constant(ins[ci])?, &so)?;
                    let si = self.shape(ins[xi])?;
                    return (si == so).then_some(ChannelOp::Point {
                        input: ins[xi],
                        output: out0,
                        func: PointFn::Binary {
                            op,
                            k,
                            const_first: ci == 0,
                        },
                    });
                }
                if consts.iter().any(|&c| c) || ins.len() < 2 || (t != "Sum" && ins.len() != 2) {
                    return None;
                }
                // Every operand an activation with the output's batch and channels.
                for &v in &ins {
                    let s = self.shape(v)?;
                    if s.len() != so.len() || s[..2] != so[..2] {
                        return None;
                    }
                }
                Some(ChannelOp::Zip {
                    inputs: ins,
                    output: out0,
                    op,
                })
            }
            "Concat" | "Split" => {
                let axis = int_attr(d, "axis", if t == "Split" { 0 } else { -1 })?;
                let rank = self.shape(ins[0])?.len() as i64;
                if axis != 1 && axis != 1 - rank {
                    return None;
                }
                if t == "Concat" {
                    let total: usize = ins
                        .iter()
                        .map(|&v| self.channels(v))
                        .sum::<Option<usize>>()?;
                    (single_out && self.channels(out0)? == total && ins.len() == o.inputs().len())
                        .then(|| ChannelOp::Concat {
                            inputs: ins.clone(),
                            output: out0,
                        })
                } else {
                    let outs: Vec<ValueId> = o.outputs().iter().flatten().copied().collect();
                    if outs.len() != o.outputs().len() {
                        return None;
                    }
                    let total: usize = outs
                        .iter()
                        .map(|&v| self.channels(v))
                        .sum::<Option<usize>>()?;
                    (total == self.channels(ins[0])?).then(|| ChannelOp::Split {
                        input: ins[0],
                        outputs: outs,
                    })
                }
            }
            "Conv" => {
                let (input, w) = (o.input(0)?, o.input(1)?);
                let wt = g.constant(w)?;
                if wt.dtype != DataType::Float || wt.dims.len() < 3 || !single_out {
                    return None;
                }
                if let Some(b) = o.input(2) {
                    g.constant(b)?;
                }
                let group = int_attr(d, "group", 1)?.max(1) as usize;
                let (si, so) = (self.shape(input)?, self.shape(out0)?);
                if si[1] != wt.dims[1] * group || so[1] != wt.dims[0] {
                    return None;
                }
                let padded = has_padding(d, &wt.dims[2..])?;
                let depthwise = (wt.dims[1] == 1 && group == si[1] && so[1] % group == 0)
                    .then_some(so[1] / group);
                Some(ChannelOp::Conv {
                    input,
                    output: out0,
                    depthwise,
                    padded,
                })
            }
            "Gemm" | "MatMul" => {
                let (input, w) = (o.input(0)?, o.input(1)?);
                g.constant(w)?;
                let si = self.shape(input)?;
                if si.len() != 2 || !single_out || (t == "Gemm" && int_attr(d, "transA", 0)? != 0) {
                    return None;
                }
                if let Some(c) = o.input(2) {
                    g.constant(c)?;
                }
                Some(ChannelOp::Dense {
                    input,
                    output: out0,
                })
            }
            _ => None,
        }
    }

    /// The output facts of a conv over a constant weight.
    fn conv_facts(&self, op: OpId, input: ValueId, padded: bool) -> Option<Vec<ChannelFact>> {
        let o = self.g.op(op);
        let wt = self.g.constant(o.input(1)?)?;
        // Read the weights in place: a dense filter stops at its first live input, so copying
        // the tensor would cost more than the scan.
        let raw = f32_bytes(wt)?;
        let at = |i: usize| f32::from_le_bytes(raw[4 * i..4 * i + 4].try_into().expect("4 bytes"));
        let bias = match o.input(2) {
            Some(b) => Some(self.g.constant(b)?.to_f64_vec()?),
            None => None,
        };
        let xf = self.facts_or_live(input)?;
        let (co, cig) = (wt.dims[0], wt.dims[1]);
        let taps: usize = wt.dims[2..].iter().product();
        let group = xf.len() / cig;
        let cog = co / group.max(1);
        let mut out = Vec::with_capacity(co);
        for oc in 0..co {
            let gi = oc / cog.max(1);
            let mut live = false;
            let mut interior = false;
            let mut sum = bias.as_ref().map_or(0.0, |b| b[oc]);
            for il in 0..cig {
                let k = (oc * cig + il) * taps..(oc * cig + il + 1) * taps;
                if k.clone().all(|i| at(i) == 0.0) {
                    continue;
                }
                match xf[gi * cig + il] {
                    ChannelFact::Live => {
                        live = true;
                        break;
                    }
                    ChannelFact::Const(0.0) => {}
                    ChannelFact::Const(c) | ChannelFact::Interior(c) => {
                        interior |= padded || matches!(xf[gi * cig + il], ChannelFact::Interior(_));
                        sum += c as f64 * k.map(|i| at(i) as f64).sum::<f64>();
                    }
                }
            }
            out.push(if live {
                ChannelFact::Live
            } else {
                let v = sum as f32;
                let v = if v == 0.0 { 0.0 } else { v };
                finite(
                    v,
                    if interior {
                        ChannelFact::Interior
                    } else {
                        ChannelFact::Const
                    },
                )
            });
        }
        Some(out)
    }

    fn run(&mut self, op: OpId, kind: &ChannelOp) {
        let g = self.g;
        match kind {
            ChannelOp::Point {
                input,
                output,
                func,
            } => {
                if let Some(f) = self.facts_or_live(*input) {
                    let out = f
                        .iter()
                        .enumerate()
                        .map(|(c, &x)| func.fact(c, x))
                        .collect();
                    self.facts.insert(*output, out);
                }
            }
            ChannelOp::Zip { inputs, output, op } => {
                let Some(fs) = inputs
                    .iter()
                    .map(|&v| self.facts_or_live(v))
                    .collect::<Option<Vec<_>>>()
                else {
                    return;
                };
                let c = fs[0].len();
                let out = (0..c)
                    .map(|ch| {
                        let col: Vec<ChannelFact> = fs.iter().map(|f| f[ch]).collect();
                        zip(&col, |v| v[1..].iter().fold(v[0], |a, &b| op.apply(a, b)))
                    })
                    .collect();
                self.facts.insert(*output, out);
            }
            ChannelOp::Concat { inputs, output } => {
                let Some(fs) = inputs
                    .iter()
                    .map(|&v| self.facts_or_live(v))
                    .collect::<Option<Vec<_>>>()
                else {
                    return;
                };
                self.facts.insert(*output, fs.concat());
            }
            ChannelOp::Split { input, outputs } => {
                let Some(f) = self.facts_or_live(*input) else {
                    return;
                };
                let mut at = 0;
                for &v in outputs {
                    let n = self.channels(v).unwrap_or(0);
                    self.facts.insert(v, f[at..at + n].to_vec());
                    at += n;
                }
            }
            ChannelOp::Conv {
                input,
                output,
                padded,
                ..
            } => {
                if let Some(f) = self.conv_facts(op, *input, *padded) {
                    self.facts.insert(*output, f);
                }
            }
            ChannelOp::Dense { output, .. } => {
                if let Some(c) = self.channels(*output) {
                    self.facts.insert(*output, vec![ChannelFact::Live; c]);
                }
            }
            ChannelOp::Opaque => {
                for &v in g.op(op).outputs().iter().flatten() {
                    if let Some(c) = self.channels(v) {
                        self.facts.insert(v, vec![ChannelFact::Live; c]);
                    }
                }
            }
        }
    }
}

/// Runs the channel dataflow over `g` (shapes must be inferred; values without a static f32
/// shape of rank >= 2 get no facts). `opset` is the model's default-domain opset (Clip's form
/// depends on it).
pub fn channel_dataflow(g: &Graph, opset: i64) -> Result<ChannelDataflow, IrError> {
    let order = g.topo_order()?;
    let mut ctx = Ctx {
        g,
        opset,
        facts: HashMap::new(),
    };
    for &v in g.inputs() {
        if g.constant(v).is_none() {
            if let Some(c) = ctx.channels(v) {
                ctx.facts.insert(v, vec![ChannelFact::Live; c]);
            }
        }
    }
    let mut ops = HashMap::new();
    for &op in &order {
        let kind = ctx.classify(op);
        ctx.run(op, &kind);
        ops.insert(op, kind);
    }
    let facts = ctx.facts;
    // Flat channel index: every value with facts, in topological order of its producer.
    let mut values: Vec<ValueId> = g
        .inputs()
        .iter()
        .copied()
        .filter(|v| facts.contains_key(v))
        .collect();
    for &op in &order {
        values.extend(
            g.op(op)
                .outputs()
                .iter()
                .flatten()
                .filter(|v| facts.contains_key(v)),
        );
    }
    let mut base = HashMap::new();
    let mut members = Vec::new();
    for v in values {
        if base.contains_key(&v) {
            continue;
        }
        base.insert(v, members.len());
        members.extend((0..facts[&v].len() as u32).map(|c| (v, c)));
    }
    let mut uf = UnionFind::new(members.len());
    let tie = |uf: &mut UnionFind, a: ValueId, ca: usize, b: ValueId, cb: usize| {
        if let (Some(&x), Some(&y)) = (base.get(&a), base.get(&b)) {
            uf.union((x + ca) as u32, (y + cb) as u32);
        }
    };
    let n = |v: ValueId| facts.get(&v).map_or(0, Vec::len);
    for &op in &order {
        match &ops[&op] {
            ChannelOp::Point { input, output, .. } => {
                for c in 0..n(*output).min(n(*input)) {
                    tie(&mut uf, *input, c, *output, c);
                }
            }
            ChannelOp::Zip { inputs, output, .. } => {
                for &i in inputs {
                    if n(i) == n(*output) {
                        for c in 0..n(i) {
                            tie(&mut uf, i, c, *output, c);
                        }
                    }
                }
            }
            ChannelOp::Concat { inputs, output } => {
                let mut at = 0;
                for &i in inputs {
                    for c in 0..n(i) {
                        tie(&mut uf, i, c, *output, at + c);
                    }
                    at += n(i);
                }
            }
            ChannelOp::Split { input, outputs } => {
                let mut at = 0;
                for &o in outputs {
                    for c in 0..n(o) {
                        tie(&mut uf, *input, at + c, o, c);
                    }
                    at += n(o);
                }
            }
            ChannelOp::Conv {
                input,
                output,
                depthwise: Some(m),
                ..
            } => {
                for c in 0..n(*output) {
                    tie(&mut uf, *input, c / m, *output, c);
                }
            }
            _ => {}
        }
    }
    let mut group_of = vec![u32::MAX; members.len()];
    let mut root_group: HashMap<u32, u32> = HashMap::new();
    let mut groups: Vec<Vec<u32>> = Vec::new();
    for (m, slot) in group_of.iter_mut().enumerate() {
        let r = uf.find(m as u32);
        let gid = *root_group.entry(r).or_insert_with(|| {
            groups.push(Vec::new());
            (groups.len() - 1) as u32
        });
        groups[gid as usize].push(m as u32);
        *slot = gid;
    }
    Ok(ChannelDataflow {
        facts,
        ops,
        base,
        members,
        group_of,
        groups,
    })
}
