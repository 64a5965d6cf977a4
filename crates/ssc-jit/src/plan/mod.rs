//! Lowering: turns a shape-inferred model into a fixed list of kernel steps over a planned
//! arena. Every op either gets a native kernel (f32, static shapes) or falls back, alone, to the
//! reference executor's implementation of it.
//!
//! This module holds the plan's types, the driver (coverage checks, compile-time constant
//! folding, value placement) and the dispatch from op type to a lowering; each op family lowers
//! in its own module.

mod alias;
mod calibration;
mod chain;
mod choice;
mod conv;
mod deconv;
mod eltwise;
mod fuse;
mod linear;
mod lstm;
mod movement;
mod norm;
mod pool;
mod quant;
mod resize;
mod util;

use std::collections::{HashMap, HashSet};

use ssc_ir::{DataType, Graph, OpDesc, OpId, Tensor, ValueId, ValueType};

use self::util::{static_f32, value_dims};
use crate::codegen::{Jit, StreamConv};
use crate::kernels::chain::Chain;
use crate::kernels::dense::DenseConv;
use crate::kernels::eltwise::{Binary, UnOp};
use crate::kernels::linear::Linear;
use crate::kernels::norm::Axes;
use crate::kernels::pool::Pool;
use crate::kernels::strided::Strided;
use crate::memory::{live_lower_bound, place, Interval};
use crate::{JitError, JitOptions};

/// Where a value lives at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loc {
    /// A static-shape f32 tensor at `off..off + len` of the arena.
    Arena { off: usize, len: usize },
    /// An initializer, by index into [`Plan::consts`].
    Const(usize),
    /// A static-shape u8, i8 or i32 tensor of `len` elements in the integer arena, starting at
    /// word `off` (8-bit values pack four to a word).
    Int { off: usize, len: usize, ty: IntTy },
    /// Anything else (other element types, dynamic shapes): a tensor slot filled at run time.
    Dyn(usize),
}

/// The element types the integer arena holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntTy {
    U8,
    I8,
    I32,
}

impl IntTy {
    pub(crate) fn of(t: DataType) -> Option<IntTy> {
        match t {
            DataType::Uint8 => Some(IntTy::U8),
            DataType::Int8 => Some(IntTy::I8),
            DataType::Int32 => Some(IntTy::I32),
            _ => None,
        }
    }

    pub(crate) fn dtype(self) -> DataType {
        match self {
            IntTy::U8 => DataType::Uint8,
            IntTy::I8 => DataType::Int8,
            IntTy::I32 => DataType::Int32,
        }
    }

    pub(crate) fn bytes(self) -> usize {
        match self {
            IntTy::U8 | IntTy::I8 => 1,
            IntTy::I32 => 4,
        }
    }

    /// Words of the integer arena `len` elements take.
    pub(crate) fn words(self, len: usize) -> usize {
        (len * self.bytes()).div_ceil(4)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            IntTy::U8 => "u8",
            IntTy::I8 => "i8",
            IntTy::I32 => "i32",
        }
    }
}

/// A kernel and the per-image sizes it works on.
pub(crate) enum Kernel {
    /// Dense conv (im2col + GEMM, Winograd, or the direct depthwise kernel); inputs are
    /// `[x, residual?, residual2?]`.
    DenseConv {
        k: Box<DenseConv>,
        batch: usize,
        in_len: usize,
        out_len: usize,
    },
    /// Conv over its non-zero weights (`StreamConv`: the AVX2 table loop or Cranelift code);
    /// inputs are `[x, residual?, None]`.
    StreamConv {
        k: Box<StreamConv>,
        batch: usize,
        in_len: usize,
        out_len: usize,
    },
    /// Conv over its non-zero weights, vectorised over output pixels with AVX-512
    /// (`kernels::spmm`); inputs are `[x, residual?, residual2?]`.
    Spmm {
        k: Box<crate::kernels::spmm::SpmmConv>,
        batch: usize,
        in_len: usize,
        out_len: usize,
    },
    Pool {
        k: Pool,
        batch: usize,
        in_len: usize,
        out_len: usize,
    },
    /// Global average or max pool over planes of `p` elements.
    GlobalPool {
        max: bool,
        p: usize,
    },
    Binary(Binary),
    Unary(UnOp),
    /// Per-channel `x * scale + shift` over planes of `inner` elements.
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
        inner: usize,
    },
    /// Gather with constant indices along one axis.
    Gather {
        idx: Vec<usize>,
        axis_len: usize,
        inner: usize,
    },
    /// Gemm/MatMul; inputs are `[A, B, C?]`.
    Linear(Linear),
    /// Reshape-like ops: the output is the input's elements unchanged.
    Copy,
    /// Nothing to do: the outputs are views placed inside the input (`plan::alias`).
    View,
    /// Concat: `outer` repetitions of each input's contiguous block of `blocks[i]` elements;
    /// inputs flagged `in_place` were written into the output by their producers.
    Concat {
        outer: usize,
        blocks: Vec<usize>,
        in_place: Vec<bool>,
    },
    /// A strided gather (Transpose, Slice).
    Strided(Strided),
    /// ConvTranspose (GEMM + col2im); the input is `[x]`.
    ConvTranspose(Box<crate::kernels::deconv::Deconv>),
    /// LSTM; inputs are `[x, initial_h?, initial_c?]`, outputs `[Y?, Y_h?, Y_c?]`.
    Lstm(Box<crate::kernels::lstm::Lstm>),
    /// Resize / Upsample over the last two dims.
    Resize(Box<crate::kernels::resize::Resize>),
    /// Split: one strided gather per output.
    Split(Vec<Strided>),
    /// A fused elementwise chain; inputs are the chain's inputs in order.
    Chain(Chain),
    /// The same, as Cranelift code (`codegen::chain`, where it measured faster).
    ChainCode(Box<crate::codegen::chain::ChainCode>),
    /// LayerNormalization over `n` of `outer x n x inner` (`inner` is 1).
    LayerNorm {
        ax: Axes,
        scale: Vec<f32>,
        bias: Option<Vec<f32>>,
        eps: f32,
    },
    /// Softmax over `n`.
    Softmax(Axes),
    /// `scale * sum` over `n` (ReduceMean, ReduceSum).
    Reduce {
        ax: Axes,
        scale: f32,
    },
    /// DynamicQuantizeLinear: outputs `[y u8, scale f32, zero point u8]`.
    DynQuant,
    /// ConvInteger; inputs are `[x, x_zero_point?]` (the weights are packed in the kernel).
    ConvInteger {
        k: Box<crate::kernels::quant::ConvInteger>,
        batch: usize,
        in_len: usize,
        out_len: usize,
    },
    /// MatMulInteger with a constant B; inputs are `[a, a_zero_point?]`.
    MatMulInteger(Box<crate::kernels::quant::MatMulInteger>),
    /// Cast between f32 (`None`) and the integer arena's types.
    Cast {
        from: Option<IntTy>,
        to: Option<IntTy>,
    },
    /// Add/Sub/Mul of int32 values; a `None` input is the constant kept here.
    IntBinary {
        k: Binary,
        consts: Box<[Option<Vec<i32>>; 2]>,
    },
    /// A reshape-like of an integer value.
    IntCopy,
    /// com.microsoft DynamicQuantizeLSTM: the reference's step with the JIT's integer GEMMs;
    /// inputs are the op's, outputs `[Y?, Y_h?, Y_c?]`.
    DqLstm {
        desc: Box<OpDesc>,
        products: Box<crate::kernels::quant::LstmProducts>,
        /// Static dims of each input in the arena.
        in_dims: Vec<Option<Vec<usize>>>,
        n_out: usize,
    },
    /// The reference executor's implementation, on tensors.
    Fallback {
        desc: Box<OpDesc>,
        /// Static dims of each input that lives in the f32 or integer arena (to rebuild
        /// tensors).
        in_dims: Vec<Option<Vec<usize>>>,
        n_out: usize,
        /// Names of the values the op's subgraphs read from the graph (If, Loop, Scan): the
        /// step's last inputs, after the op's own.
        captures: Vec<String>,
    },
}

/// One step of the plan.
pub(crate) struct Step {
    pub label: String,
    pub op_type: String,
    /// What the step computes, for reports (for example `conv gemm 3x3 +relu`).
    pub what: String,
    pub kernel: Kernel,
    pub inputs: Vec<Option<Loc>>,
    pub outputs: Vec<Option<Loc>>,
}

/// A graph input or output as the plan sees it.
#[derive(Clone, Debug)]
pub(crate) struct Io {
    pub name: String,
    pub loc: Loc,
    pub dtype: DataType,
    pub dims: Option<Vec<usize>>,
    /// For inputs: an initializer default used when the input is not fed.
    pub default: Option<usize>,
}

/// The compiled plan: steps, constants, arena size.
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    pub consts: Vec<Tensor>,
    /// f32 views of the constants that are f32 (empty otherwise).
    pub consts_f32: Vec<Vec<f32>>,
    pub n_dyn: usize,
    pub arena_len: usize,
    /// Words of the integer arena (`Loc::Int` values, placed like the f32 arena's).
    pub int_len: usize,
    /// The most f32 elements simultaneously live: no placement can use a smaller arena.
    pub live_bound: usize,
    pub scratch_len: usize,
    pub inputs: Vec<Io>,
    pub outputs: Vec<Io>,
    pub opset: i64,
}

/// Builds the plan. `m` must already carry inferred static shapes.
pub(crate) fn lower(m: &ssc_ir::Model, opts: &JitOptions, jit: &mut Jit) -> Result<Plan, JitError> {
    let g = &m.graph;
    let opset = m.onnx_opset();
    let order = g.topo_order().map_err(|e| JitError::Model(e.to_string()))?;
    check_covered(g)?;

    // Value placement classes.
    let mut consts: Vec<Tensor> = Vec::new();
    let mut const_of: HashMap<ValueId, usize> = HashMap::new();
    for v in g.initializer_ids() {
        if g.is_graph_input(v) {
            continue;
        }
        if let Some(t) = g.initializer(v) {
            const_of.insert(v, consts.len());
            consts.push(t.clone());
        }
    }
    let folded = fold_constants(g, &order, opset, &mut consts, &mut const_of);
    let mut arena_vals: Vec<ValueId> = Vec::new();
    let mut arena_idx: HashMap<ValueId, usize> = HashMap::new();
    let mut dyn_idx: HashMap<ValueId, usize> = HashMap::new();
    let mut int_vals: Vec<(ValueId, IntTy, usize)> = Vec::new();
    let mut int_idx: HashMap<ValueId, usize> = HashMap::new();
    let mut classify = |v: ValueId| -> Loc {
        if let Some(&c) = const_of.get(&v) {
            return Loc::Const(c);
        }
        if let Some(&i) = arena_idx.get(&v) {
            return Loc::Arena { off: i, len: 0 };
        }
        if let Some(&i) = dyn_idx.get(&v) {
            return Loc::Dyn(i);
        }
        if let Some(&i) = int_idx.get(&v) {
            let (_, ty, len) = int_vals[i];
            return Loc::Int { off: i, len, ty };
        }
        if static_f32(g, v).is_some() {
            let i = arena_vals.len();
            arena_vals.push(v);
            arena_idx.insert(v, i);
            Loc::Arena { off: i, len: 0 }
        } else if let Some((ty, len)) = static_int_of(g, v) {
            let i = int_vals.len();
            int_vals.push((v, ty, len));
            int_idx.insert(v, i);
            Loc::Int { off: i, len, ty }
        } else {
            let i = dyn_idx.len();
            dyn_idx.insert(v, i);
            Loc::Dyn(i)
        }
    };

    let inputs: Vec<Io> = g
        .inputs()
        .iter()
        .map(|&v| {
            let (dtype, dims) = value_dims(g, v).unwrap_or((DataType::Float, None));
            let default = g.initializer(v).map(|t| {
                consts.push(t.clone());
                consts.len() - 1
            });
            Io {
                name: g.value(v).name.clone(),
                loc: classify(v),
                dtype,
                dims,
                default,
            }
        })
        .collect();

    // Values computed before the next step: graph inputs, constants, earlier steps' outputs.
    let mut ready: HashSet<ValueId> = g.inputs().iter().copied().collect();
    ready.extend(g.initializer_ids());
    ready.extend(const_of.keys().copied());
    // Ops absorbed into an earlier conv's epilogue.
    let mut absorbed: HashMap<OpId, ()> = HashMap::new();
    let mut steps: Vec<Step> = Vec::new();
    // For each step, the values it reads and writes (for liveness).
    let mut reads: Vec<Vec<ValueId>> = Vec::new();
    let mut writes: Vec<Vec<ValueId>> = Vec::new();

    for &op in &order {
        if absorbed.contains_key(&op) || folded.contains(&op) {
            continue;
        }
        let o = g.op(op);
        let d = &o.desc;
        let label = g.op_label(op);
        let ins: Vec<Option<ValueId>> = o.inputs().to_vec();
        let outs: Vec<Option<ValueId>> = {
            let mut v = o.outputs().to_vec();
            while v.last() == Some(&None) {
                v.pop();
            }
            v
        };
        let native = if d.is_onnx() {
            lower_native(
                &Cx {
                    g,
                    opset,
                    opts,
                    ready: &ready,
                    consts: &consts,
                    const_of: &const_of,
                },
                jit,
                op,
            )
        } else if d.domain == "com.microsoft" && d.op_type == "DynamicQuantizeLSTM" {
            quant::lower_dq_lstm(
                &Cx {
                    g,
                    opset,
                    opts,
                    ready: &ready,
                    consts: &consts,
                    const_of: &const_of,
                },
                op,
            )
        } else {
            None
        };
        let (kernel, what, in_vals, out_vals) = match native {
            Some(n) => {
                for a in &n.absorbed {
                    absorbed.insert(*a, ());
                }
                // A multi-output kernel writes every output of its op.
                let o = if matches!(
                    n.kernel,
                    Kernel::Split(_) | Kernel::Lstm(_) | Kernel::DynQuant | Kernel::DqLstm { .. }
                ) {
                    outs.clone()
                } else {
                    vec![Some(n.output)]
                };
                (n.kernel, n.what, n.inputs, o)
            }
            None => {
                // Captured values are read like inputs (for liveness and placement).
                let mut in_vals = ins.clone();
                in_vals.extend(o.captures().iter().map(|&v| Some(v)));
                let in_dims = in_vals
                    .iter()
                    .map(|v| {
                        v.and_then(|v| {
                            static_f32(g, v)
                                .or_else(|| static_int_of(g, v).and_then(|_| value_dims(g, v)?.1))
                        })
                    })
                    .collect();
                (
                    Kernel::Fallback {
                        desc: Box::new(d.clone()),
                        in_dims,
                        n_out: outs.len(),
                        captures: o
                            .captures()
                            .iter()
                            .map(|&v| g.value(v).name.clone())
                            .collect(),
                    },
                    "reference kernel".to_string(),
                    in_vals,
                    outs.clone(),
                )
            }
        };
        let inputs: Vec<Option<Loc>> = in_vals.iter().map(|v| v.map(&mut classify)).collect();
        let outputs: Vec<Option<Loc>> = out_vals.iter().map(|v| v.map(&mut classify)).collect();
        ready.extend(out_vals.iter().flatten().copied());
        reads.push(in_vals.iter().flatten().copied().collect());
        writes.push(out_vals.iter().flatten().copied().collect());
        steps.push(Step {
            label,
            op_type: d.op_type.clone(),
            what,
            kernel,
            inputs,
            outputs,
        });
    }
    let outputs: Vec<Io> = g
        .outputs()
        .iter()
        .map(|&v| {
            let (dtype, dims) = value_dims(g, v).unwrap_or((DataType::Float, None));
            Io {
                name: g.value(v).name.clone(),
                loc: classify(v),
                dtype,
                dims,
                default: None,
            }
        })
        .collect();

    let lens: Vec<usize> = arena_vals
        .iter()
        .map(|&v| static_f32(g, v).map_or(0, |d| d.iter().product()))
        .collect();
    let mut pinned = vec![false; arena_vals.len()];
    for io in &inputs {
        if let Loc::Arena { off: i, .. } = io.loc {
            pinned[i] = true;
        }
    }
    let aliases = alias::plan(&mut steps, &lens, &pinned);

    // Liveness of arena values, in step indices; graph inputs live from the start and graph
    // outputs to the end.
    let arena_of = |l: Loc| match l {
        Loc::Arena { off, .. } => Some(off),
        _ => None,
    };
    let (mut first, mut last) = lifetimes(
        arena_vals.len(),
        &arena_idx,
        (&reads, &writes),
        inputs.iter().filter_map(|io| arena_of(io.loc)),
        outputs.iter().filter_map(|io| arena_of(io.loc)),
    );
    // A value placed inside another extends its root's lifetime; only roots take space.
    let roots: Vec<(usize, usize)> = (0..arena_vals.len()).map(|i| aliases.root(i)).collect();
    for i in 0..arena_vals.len() {
        let r = roots[i].0;
        if r != i && first[i] != usize::MAX {
            first[r] = first[r].min(first[i]);
            last[r] = last[r].max(last[i]);
        }
    }
    let intervals: Vec<Interval> = (0..arena_vals.len())
        .map(|i| Interval {
            len: if roots[i].0 == i { lens[i] } else { 0 },
            first: if first[i] == usize::MAX { 0 } else { first[i] },
            last: last[i].max(if first[i] == usize::MAX { 0 } else { first[i] }),
        })
        .collect();
    let placement = place(&intervals);
    // The integer arena: the same greedy placement over the integer values' lifetimes.
    let int_of = |l: Loc| match l {
        Loc::Int { off, .. } => Some(off),
        _ => None,
    };
    let (ifirst, ilast) = lifetimes(
        int_vals.len(),
        &int_idx,
        (&reads, &writes),
        inputs.iter().filter_map(|io| int_of(io.loc)),
        outputs.iter().filter_map(|io| int_of(io.loc)),
    );
    let iintervals: Vec<Interval> = int_vals
        .iter()
        .enumerate()
        .map(|(i, &(_, ty, len))| {
            let f = if ifirst[i] == usize::MAX {
                0
            } else {
                ifirst[i]
            };
            Interval {
                len: ty.words(len),
                first: f,
                last: ilast[i].max(f),
            }
        })
        .collect();
    let iplacement = place(&iintervals);
    let fix = |l: Loc| match l {
        Loc::Arena { off: i, .. } => Loc::Arena {
            off: placement.offsets[roots[i].0] + roots[i].1,
            len: lens[i],
        },
        Loc::Int { off: i, len, ty } => Loc::Int {
            off: iplacement.offsets[i],
            len,
            ty,
        },
        other => other,
    };
    for s in &mut steps {
        for l in s.inputs.iter_mut().chain(s.outputs.iter_mut()).flatten() {
            *l = fix(*l);
        }
    }
    let inputs = inputs
        .into_iter()
        .map(|mut io| {
            io.loc = fix(io.loc);
            io
        })
        .collect();
    let outputs: Vec<Io> = outputs
        .into_iter()
        .map(|mut io| {
            io.loc = fix(io.loc);
            io
        })
        .collect();
    let scratch_len = steps
        .iter()
        .map(|s| match &s.kernel {
            Kernel::DenseConv { k, .. } => k.scratch_len(),
            Kernel::StreamConv { k, .. } => k.scratch_len(),
            Kernel::Spmm { k, .. } => k.scratch_len(),
            Kernel::ConvTranspose(k) => k.scratch_len(),
            Kernel::Lstm(k) => k.scratch_len(),
            Kernel::Linear(k) => k.scratch_len(),
            Kernel::ConvInteger { k, .. } => k.scratch_words(),
            Kernel::MatMulInteger(k) => {
                let rows = match s.inputs[0] {
                    Some(Loc::Int { len, .. }) => len / k.k.max(1),
                    _ => 0,
                };
                k.scratch_words(rows)
            }
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    // f32 views only of the constants a native step or a graph output reads: the weights the
    // conv kernels packed at compile time are never read again, and converting them all cost
    // most of a weight-heavy model's compile time (VGG-11's 530 MB).
    let mut wanted = vec![false; consts.len()];
    for l in steps
        .iter()
        .filter(|s| !matches!(s.kernel, Kernel::Fallback { .. }))
        .flat_map(|s| s.inputs.iter().flatten())
        .chain(outputs.iter().map(|io| &io.loc))
    {
        if let Loc::Const(c) = *l {
            wanted[c] = true;
        }
    }
    let consts_f32 = consts
        .iter()
        .zip(&wanted)
        .map(|(t, &w)| {
            if w && t.dtype == DataType::Float {
                t.to_f32_vec().unwrap_or_default()
            } else {
                Vec::new()
            }
        })
        .collect();
    Ok(Plan {
        steps,
        consts,
        consts_f32,
        n_dyn: dyn_idx.len(),
        arena_len: placement.arena_len,
        int_len: iplacement.arena_len,
        live_bound: live_lower_bound(&intervals),
        scratch_len,
        inputs,
        outputs,
        opset,
    })
}

/// The integer arena's type and element count of `v`, when it is a static-shape u8, i8 or
/// i32 tensor.
fn static_int_of(g: &Graph, v: ValueId) -> Option<(IntTy, usize)> {
    let (dt, dims) = value_dims(g, v)?;
    Some((IntTy::of(dt)?, dims?.iter().product()))
}

/// Refuses what the plan cannot hold: values of types the executor has no run-time form for
/// (maps, sparse tensors). Sequences and optionals live outside the arena (`Loc::Dyn`), and the
/// nodes that make or read them, like ops with subgraphs (If, Loop, Scan), run through the
/// reference executor's fallback kernel, which gets the values their subgraphs capture as extra
/// inputs.
fn check_covered(g: &Graph) -> Result<(), JitError> {
    for v in g.value_ids() {
        if matches!(g.value(v).ty, Some(ValueType::Opaque(_))) {
            return Err(JitError::NotCovered(format!(
                "value `{}` is neither a tensor, a sequence nor an optional",
                g.value(v).name
            )));
        }
    }
    Ok(())
}

/// Ops whose inputs are all constant (Constant, shape arithmetic, a Cast of a constant...)
/// are evaluated once here with the reference kernels; their outputs become constants.
fn fold_constants(
    g: &Graph,
    order: &[OpId],
    opset: i64,
    consts: &mut Vec<Tensor>,
    const_of: &mut HashMap<ValueId, usize>,
) -> HashSet<OpId> {
    let mut folded: HashSet<OpId> = HashSet::new();
    for &op in order {
        let o = g.op(op);
        let d = &o.desc;
        let nondeterministic = d.op_type.starts_with("Random")
            || matches!(d.op_type.as_str(), "Multinomial" | "Bernoulli");
        // An op whose subgraphs read graph values runs at run time (its captures are not
        // among its inputs).
        if !d.is_onnx()
            || nondeterministic
            || !o.captures().is_empty()
            || o.outputs().iter().flatten().count() == 0
        {
            continue;
        }
        // Shape and Size of a statically shaped value are constants once the input shapes are
        // fixed: folding them here folds the shape arithmetic downstream (Gather, Unsqueeze,
        // Concat, ConstantOfShape, Range, Expand of constants...) that exporters emit.
        if let (Some(t), Some(y)) = (fold_shape_of(g, op, opset), o.output(0)) {
            const_of.insert(y, consts.len());
            consts.push(t);
            folded.insert(op);
            continue;
        }
        let Some(args) = o
            .inputs()
            .iter()
            .map(|v| match v {
                None => Some(None),
                Some(v) => const_of.get(v).map(|&c| Some(&consts[c])),
            })
            .collect::<Option<Vec<Option<&Tensor>>>>()
        else {
            continue;
        };
        let n_out = o.outputs().len();
        let Ok(vals) = ssc_exec::eval_node(d, opset, &args, n_out) else {
            // Left to run (and report its error) at run time.
            continue;
        };
        for (v, t) in o.outputs().iter().zip(vals) {
            if let Some(v) = v {
                const_of.insert(*v, consts.len());
                consts.push(t);
            }
        }
        folded.insert(op);
    }
    folded
}

/// The value of a `Shape` or `Size` op whose input has a static shape (any element type).
fn fold_shape_of(g: &Graph, op: OpId, opset: i64) -> Option<Tensor> {
    let o = g.op(op);
    let d = &o.desc;
    if !matches!(d.op_type.as_str(), "Shape" | "Size") {
        return None;
    }
    let x = o.input(0)?;
    let dims = match g.initializer(x) {
        Some(t) => t.dims.clone(),
        None => value_dims(g, x)?.1?,
    };
    if d.op_type == "Size" {
        let n: usize = dims.iter().product();
        return Some(Tensor::from_i64(vec![], &[n as i64]));
    }
    let r = dims.len() as i64;
    let (mut start, mut end) = (0, r);
    if opset >= 15 {
        let attr = |name: &str, default: i64| match d.get_int(name) {
            Ok(Some(v)) => Some(v),
            Ok(None) => Some(default),
            Err(_) => None,
        };
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r);
        start = clamp(attr("start", 0)?);
        end = clamp(attr("end", r)?).max(start);
    }
    let vals: Vec<i64> = dims[start as usize..end as usize]
        .iter()
        .map(|&v| v as i64)
        .collect();
    Some(Tensor::from_i64(vec![vals.len()], &vals))
}

/// A native lowering of one op (plus any epilogue ops it absorbs).
struct Native {
    kernel: Kernel,
    what: String,
    inputs: Vec<Option<ValueId>>,
    output: ValueId,
    absorbed: Vec<OpId>,
}

/// What every lowering reads: the graph, its opset, the options, and the values computed before
/// the step being planned.
#[derive(Clone, Copy)]
pub(super) struct Cx<'a> {
    pub g: &'a Graph,
    pub opset: i64,
    pub opts: &'a JitOptions,
    pub ready: &'a HashSet<ValueId>,
    /// The initializers and the values folded at compile time (`fold_constants`).
    pub consts: &'a [Tensor],
    pub const_of: &'a HashMap<ValueId, usize>,
}

impl Cx<'_> {
    /// The value of `v` when it is known at compile time: an initializer, a Constant's output,
    /// or a value folded from them (shape arithmetic included).
    pub fn constant(&self, v: ValueId) -> Option<&Tensor> {
        self.g
            .constant(v)
            .or_else(|| self.const_of.get(&v).map(|&c| &self.consts[c]))
    }

    /// An optional input that must be a constant f32 vector of `len` elements (a bias):
    /// `Some(None)` when it is absent, `None` (the lowering does not take the op) when it is
    /// present but not such a constant.
    pub fn optional_f32(&self, v: Option<ValueId>, len: usize) -> Option<Option<Vec<f32>>> {
        let Some(v) = v else { return Some(None) };
        let t = self.constant(v)?;
        if t.dtype != DataType::Float || t.numel() != len {
            return None;
        }
        Some(Some(t.to_f32_vec()?))
    }
}

/// The native lowering of `op`, if its op family has one that takes it.
fn lower_native(cx: &Cx, jit: &mut Jit, op: OpId) -> Option<Native> {
    match cx.g.op(op).desc.op_type.as_str() {
        "Conv" => conv::lower_conv(cx, jit, op),
        "MaxPool" | "AveragePool" => pool::lower_pool(cx, op),
        "GlobalAveragePool" | "GlobalMaxPool" => pool::lower_global_pool(cx, op),
        "Add" | "Sub" | "Mul" | "Div" | "Max" | "Min" | "PRelu" | "Pow" => {
            chain::lower_chain(cx, jit, op)
                .or_else(|| eltwise::lower_binary(cx, op))
                .or_else(|| quant::lower_int_binary(cx, op))
        }
        "Relu" | "Clip" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Neg" | "Abs" | "Sqrt" | "Exp"
        | "HardSigmoid" | "Floor" | "Ceil" | "Round" => {
            chain::lower_chain(cx, jit, op).or_else(|| eltwise::lower_unary(cx, op))
        }
        "Erf" | "HardSwish" | "Reciprocal" => chain::lower_chain(cx, jit, op),
        "Transpose" => movement::lower_transpose(cx, op),
        "Slice" => movement::lower_slice(cx, op),
        "Split" => movement::lower_split(cx, op),
        "LayerNormalization" => norm::lower_layer_norm(cx, op),
        "Softmax" => norm::lower_softmax(cx, op),
        "ReduceMean" | "ReduceSum" => norm::lower_reduce(cx, op),
        "BatchNormalization" => eltwise::lower_batchnorm(cx, op),
        "Gemm" | "MatMul" => linear::lower_linear(cx, op),
        "Gather" => movement::lower_gather(cx, op),
        "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Identity" | "Dropout" => {
            movement::lower_copy(cx, op).or_else(|| quant::lower_int_copy(cx, op))
        }
        "DynamicQuantizeLinear" => quant::lower_dynamic_quantize(cx, op),
        "ConvInteger" => quant::lower_conv_integer(cx, op),
        "MatMulInteger" => quant::lower_matmul_integer(cx, op),
        "Cast" => quant::lower_cast(cx, op),
        "Concat" => movement::lower_concat(cx, op),
        "Resize" | "Upsample" => resize::lower_resize(cx, op),
        "ConvTranspose" => deconv::lower_conv_transpose(cx, op),
        "LSTM" => lstm::lower_lstm(cx, op),
        _ => None,
    }
}

/// First and last step indices at which each of `count` values (`idx` maps a value to its
/// index) is live, one home for the f32 and the integer arenas: graph inputs (`inputs`, by
/// index) live from step 0, graph outputs (`outputs`) to the end, `usize::MAX` marks a value no
/// step touches.
fn lifetimes(
    count: usize,
    idx: &HashMap<ValueId, usize>,
    (reads, writes): (&[Vec<ValueId>], &[Vec<ValueId>]),
    inputs: impl Iterator<Item = usize>,
    outputs: impl Iterator<Item = usize>,
) -> (Vec<usize>, Vec<usize>) {
    let n = reads.len();
    let mut first = vec![usize::MAX; count];
    let mut last = vec![0usize; count];
    for i in inputs {
        first[i] = 0;
    }
    for (s, (r, w)) in reads.iter().zip(writes).enumerate() {
        for v in w.iter().chain(r) {
            if let Some(&i) = idx.get(v) {
                first[i] = first[i].min(s);
                last[i] = last[i].max(s);
            }
        }
    }
    for i in outputs {
        first[i] = first[i].min(n);
        last[i] = n;
    }
    (first, last)
}
