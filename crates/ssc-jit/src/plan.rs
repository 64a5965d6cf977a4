//! Lowering: turns a shape-inferred model into a fixed list of kernel steps over a planned
//! arena. Every op either gets a native kernel (f32, static shapes) or falls back, alone, to the
//! reference executor's implementation of it.

use std::collections::{HashMap, HashSet};

use ssc_ir::{DataType, Graph, OpDesc, OpId, Tensor, ValueId, ValueType};

use crate::codegen::{Jit, StreamConv};
use crate::kernels::dense::DenseConv;
use crate::kernels::depthwise::Depthwise;
use crate::kernels::eltwise::{BinOp, Binary, UnOp};
use crate::kernels::linear::Linear;
use crate::kernels::pool::{Pool, PoolGeom, PoolKind};
use crate::memory::{live_lower_bound, place, Interval};
use crate::spec::{Activation, ConvGeom, Epilogue};
use crate::{JitError, JitOptions};
use ssc_passes::EpilogueStep;

/// Where a value lives at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loc {
    /// A static-shape f32 tensor at `off..off + len` of the arena.
    Arena { off: usize, len: usize },
    /// An initializer, by index into [`Plan::consts`].
    Const(usize),
    /// Anything else (other element types, dynamic shapes): a tensor slot filled at run time.
    Dyn(usize),
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
    /// Concat: `outer` repetitions of each input's contiguous block of `blocks[i]` elements.
    Concat {
        outer: usize,
        blocks: Vec<usize>,
    },
    /// The reference executor's implementation, on tensors.
    Fallback {
        desc: Box<OpDesc>,
        /// Static dims of each input that lives in the arena (to rebuild tensors).
        in_dims: Vec<Option<Vec<usize>>>,
        n_out: usize,
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
    /// The most f32 elements simultaneously live: no placement can use a smaller arena.
    pub live_bound: usize,
    pub scratch_len: usize,
    pub inputs: Vec<Io>,
    pub outputs: Vec<Io>,
    pub opset: i64,
}

fn static_f32(g: &Graph, v: ValueId) -> Option<Vec<usize>> {
    g.static_shape(v, DataType::Float)
}

fn value_dims(g: &Graph, v: ValueId) -> Option<(DataType, Option<Vec<usize>>)> {
    let t = g.value(v).ty.as_ref()?.tensor()?;
    Some((t.elem, t.static_shape()))
}

/// Reads an ints attribute with a default.
fn ints(d: &OpDesc, name: &str, default: &[i64]) -> Option<Vec<i64>> {
    match d.get_ints(name) {
        Ok(Some(v)) => Some(v.to_vec()),
        Ok(None) => Some(default.to_vec()),
        Err(_) => None,
    }
}

fn to_usize(v: &[i64]) -> Option<Vec<usize>> {
    v.iter().map(|&x| usize::try_from(x).ok()).collect()
}

/// Resolves 2-D pads (top, left, bottom, right) from `pads`/`auto_pad`, then checks that the
/// window arithmetic reproduces the inferred output size (floor, or ceil when `ceil` is set).
#[allow(clippy::too_many_arguments)]
fn resolve_pads(
    d: &OpDesc,
    inp: [usize; 2],
    out: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    dil: [usize; 2],
    ceil: bool,
) -> Option<[usize; 4]> {
    let auto = match d.get_string("auto_pad") {
        Ok(v) => v.unwrap_or_else(|| "NOTSET".into()),
        Err(_) => return None,
    };
    let pads: [usize; 4] = match auto.as_str() {
        "NOTSET" | "" => {
            let p = to_usize(&ints(d, "pads", &[0, 0, 0, 0])?)?;
            if p.len() != 4 {
                return None;
            }
            [p[0], p[1], p[2], p[3]]
        }
        "VALID" => [0; 4],
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut p = [0usize; 4];
            for i in 0..2 {
                let eff = (k[i] - 1) * dil[i] + 1;
                let total = ((out[i].checked_sub(1)?) * s[i] + eff).saturating_sub(inp[i]);
                let (lo, hi) = if auto == "SAME_UPPER" {
                    (total / 2, total - total / 2)
                } else {
                    (total - total / 2, total / 2)
                };
                p[i] = lo;
                p[i + 2] = hi;
            }
            p
        }
        _ => return None,
    };
    for i in 0..2 {
        let eff = (k[i] - 1) * dil[i] + 1;
        let span = (inp[i] + pads[i] + pads[i + 2]).checked_sub(eff)?;
        let want = if ceil {
            span.div_ceil(s[i]) + 1
        } else {
            span / s[i] + 1
        };
        if want != out[i] {
            return None;
        }
    }
    Some(pads)
}

/// A conv's fused epilogue chain: Conv -> [Add(residual)] -> [activation].
struct Chain {
    residual: Option<ValueId>,
    /// A second residual (the SSC branch sum followed by a block's skip connection); only the
    /// GEMM kernel takes two.
    residual2: Option<ValueId>,
    act: Activation,
    absorbed: Vec<OpId>,
    output: ValueId,
}

/// `Mul(x, y)` (either order) as one SiLU step, when `y = Sigmoid(x)` has that Mul as its
/// only reader and the product has `x`'s shape.
fn silu_of(g: &Graph, x: ValueId, y: ValueId) -> Option<Native> {
    let (m, slot) = g.sole_consumer(y)?;
    let mo = g.op(m);
    if mo.desc.op_type != "Mul" || !mo.desc.is_onnx() || mo.inputs().len() != 2 {
        return None;
    }
    if mo.input(1 - slot)? != x {
        return None;
    }
    let z = match mo.outputs() {
        [Some(z)] => *z,
        _ => return None,
    };
    if static_f32(g, z)? != static_f32(g, x)? {
        return None;
    }
    Some(Native {
        what: "Sigmoid+Mul (SiLU)".into(),
        kernel: Kernel::Unary(UnOp::Silu),
        inputs: vec![Some(x)],
        output: z,
        absorbed: vec![m],
    })
}

/// The activation `op` applies, if it is one the kernels fuse (read by the same analysis that
/// writes the `epilogue` annotations).
fn activation_of(g: &Graph, op: OpId, opset: i64) -> Option<Activation> {
    match ssc_passes::activation_step(g, op, opset)? {
        EpilogueStep::Relu => Some(Activation::Relu),
        EpilogueStep::Clip(lo, hi) => Some(Activation::Clip(lo, hi)),
        EpilogueStep::LeakyRelu(a) => Some(Activation::LeakyRelu(a)),
        EpilogueStep::Bias | EpilogueStep::Add(_) => None,
    }
}

/// The epilogue to fuse into the conv `op`, from its `epilogue` annotation
/// ([`ssc_passes::annotate_for_jit`]). The annotation is a hint: the chain is re-walked in the
/// graph, and fusion stops at the first step the kernels cannot take (an activation before the
/// Add, a second Add) or that does not hold here (a residual computed after this conv, a shape
/// that would broadcast, an intermediate with another reader).
fn fusion_chain(g: &Graph, op: OpId, opset: i64, ready: &HashSet<ValueId>) -> Chain {
    let conv_out = g.op(op).output(0).expect("checked by the caller");
    let mut chain = Chain {
        residual: None,
        residual2: None,
        act: Activation::None,
        absorbed: Vec::new(),
        output: conv_out,
    };
    let Some(ann) = ssc_passes::epilogue_of(&g.op(op).desc) else {
        return chain;
    };
    let shape = static_f32(g, conv_out);
    let mut cur = conv_out;
    for step in &ann.steps {
        let next = match step {
            EpilogueStep::Bias => continue,
            _ => match g.sole_consumer(cur) {
                Some((n, _)) => n,
                None => break,
            },
        };
        let o = g.op(next);
        let Some(out) = o.output(0) else { break };
        if shape.is_none() || static_f32(g, out) != shape {
            break;
        }
        match step {
            EpilogueStep::Add(name) => {
                if chain.residual2.is_some()
                    || chain.act != Activation::None
                    || !(o.desc.is_onnx() && o.desc.op_type == "Add" && o.inputs().len() == 2)
                {
                    break;
                }
                let other = if o.input(0) == Some(cur) {
                    o.input(1)
                } else {
                    o.input(0)
                };
                let Some(other) = other else { break };
                if other == cur
                    || g.value(other).name != *name
                    || !ready.contains(&other)
                    || static_f32(g, other) != shape
                {
                    break;
                }
                if chain.residual.is_none() {
                    chain.residual = Some(other);
                } else {
                    chain.residual2 = Some(other);
                }
            }
            _ => {
                let Some(act) = activation_of(g, next, opset) else {
                    break;
                };
                if chain.act != Activation::None || o.input(0) != Some(cur) {
                    break;
                }
                chain.act = act;
            }
        }
        chain.absorbed.push(next);
        chain.output = out;
        cur = out;
    }
    chain
}

/// Everything the lowering needs to know about one Conv to build a native kernel.
struct ConvParts {
    geom: ConvGeom,
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
    batch: usize,
}

fn conv_parts(g: &Graph, op: OpId) -> Option<ConvParts> {
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let w = o.input(1)?;
    let y = o.output(0)?;
    let xs = static_f32(g, x)?;
    let ys = static_f32(g, y)?;
    let wt = g.constant(w)?;
    if xs.len() != 4 || ys.len() != 4 || wt.dtype != DataType::Float || wt.dims.len() != 4 {
        return None;
    }
    let group = usize::try_from(d.get_int("group").ok()?.unwrap_or(1)).ok()?;
    let (c_out, cin_g, kh, kw) = (wt.dims[0], wt.dims[1], wt.dims[2], wt.dims[3]);
    if group == 0 || cin_g * group != xs[1] || c_out % group != 0 || ys[1] != c_out {
        return None;
    }
    if let Some(ks) = d.get_ints("kernel_shape").ok()? {
        if to_usize(ks)? != [kh, kw] {
            return None;
        }
    }
    let s = to_usize(&ints(d, "strides", &[1, 1])?)?;
    let dil = to_usize(&ints(d, "dilations", &[1, 1])?)?;
    if s.len() != 2 || dil.len() != 2 || s.contains(&0) || dil.contains(&0) {
        return None;
    }
    let pads = resolve_pads(
        d,
        [xs[2], xs[3]],
        [ys[2], ys[3]],
        [kh, kw],
        [s[0], s[1]],
        [dil[0], dil[1]],
        false,
    )?;
    let bias = match o.input(2) {
        None => None,
        Some(b) => {
            let t = g.constant(b)?;
            if t.dtype != DataType::Float || t.numel() != c_out {
                return None;
            }
            Some(t.to_f32_vec()?)
        }
    };
    Some(ConvParts {
        geom: ConvGeom {
            c_in: xs[1],
            c_out,
            group,
            h: xs[2],
            w: xs[3],
            kh,
            kw,
            stride: [s[0], s[1]],
            dilation: [dil[0], dil[1]],
            pads,
            h_out: ys[2],
            w_out: ys[3],
        },
        weights: wt.to_f32_vec()?,
        bias,
        batch: xs[0],
    })
}

fn pool_kernel(g: &Graph, op: OpId) -> Option<(Pool, usize)> {
    let o = g.op(op);
    let d = &o.desc;
    let xs = static_f32(g, o.input(0)?)?;
    let ys = static_f32(g, o.output(0)?)?;
    if xs.len() != 4 || ys.len() != 4 || xs[..2] != ys[..2] {
        return None;
    }
    // MaxPool's optional Indices output is left to the reference kernel.
    if o.output(1).is_some() {
        return None;
    }
    let k = to_usize(d.get_ints("kernel_shape").ok()??)?;
    let s = to_usize(&ints(d, "strides", &[1, 1])?)?;
    let dil = to_usize(&ints(d, "dilations", &[1, 1])?)?;
    if k.len() != 2 || s.len() != 2 || dil.len() != 2 || s.contains(&0) || dil.contains(&0) {
        return None;
    }
    let ceil = d.get_int("ceil_mode").ok()?.unwrap_or(0) != 0;
    let kind = match d.op_type.as_str() {
        "MaxPool" => PoolKind::Max,
        _ => {
            if dil != [1, 1] {
                return None;
            }
            PoolKind::Avg {
                count_include_pad: d.get_int("count_include_pad").ok()?.unwrap_or(0) != 0,
            }
        }
    };
    let pads = resolve_pads(
        d,
        [xs[2], xs[3]],
        [ys[2], ys[3]],
        [k[0], k[1]],
        [s[0], s[1]],
        [dil[0], dil[1]],
        ceil,
    )?;
    Some((
        Pool::new(
            PoolGeom {
                c: xs[1],
                h: xs[2],
                w: xs[3],
                kh: k[0],
                kw: k[1],
                stride: [s[0], s[1]],
                dilation: [dil[0], dil[1]],
                pads,
                h_out: ys[2],
                w_out: ys[3],
            },
            kind,
        ),
        xs[0],
    ))
}

/// Chooses between the sparse-weight kernel (`StreamConv`), which does work per non-zero
/// weight, and the dense kernels: sparse when few enough weights are non-zero, or for a
/// depthwise shape the dense depthwise kernel does not take.
fn use_stream(p: &ConvParts, opts: &JitOptions, density: Option<f32>) -> bool {
    if opts.dense_only {
        return false;
    }
    // Depthwise layers the direct Rust kernel covers go there unless sparse; other depthwise
    // shapes (7x7, dilated, channel multipliers, hosts without AVX2) keep `StreamConv`.
    let depthwise = p.geom.cin_g() == 1 && !Depthwise::suits(&p.geom);
    let density = density.unwrap_or_else(|| {
        let nnz = p.weights.iter().filter(|&&w| w != 0.0).count();
        nnz as f32 / p.weights.len().max(1) as f32
    });
    depthwise || density <= opts.sparse_threshold
}

/// `Add(Conv_kxk(x), Conv_1x1(x))`, the SSC decomposition ssc-opt writes (a grouped k x k
/// conv plus a pointwise one, both on `x`), as one step computing both convs and the Add (and
/// the chain after it) in one direct conv ([`DenseConv::ssc_pair`]), when `op` is either conv
/// and the other one is not planned yet. The 1x1 conv must read the pixel one of the k x k
/// taps reads (no padding, the same stride and output), each conv's output must have the Add
/// as its only reader, and neither conv may want the sparse kernel.
fn ssc_pair(
    g: &Graph,
    op: OpId,
    opset: i64,
    opts: &JitOptions,
    ready: &HashSet<ValueId>,
) -> Option<Native> {
    let o = g.op(op);
    let (x, y) = (o.input(0)?, o.output(0)?);
    let (add, _) = g.sole_consumer(y)?;
    let ao = g.op(add);
    if !ao.desc.is_onnx() || ao.desc.op_type != "Add" || ao.inputs().len() != 2 {
        return None;
    }
    let other = if ao.input(0) == Some(y) {
        ao.input(1)?
    } else {
        ao.input(0)?
    };
    if other == y || ready.contains(&other) || g.sole_consumer(other)?.0 != add {
        return None;
    }
    let (op2, _) = g.producer(other)?;
    let o2 = g.op(op2);
    if !o2.desc.is_onnx() || o2.desc.op_type != "Conv" || o2.input(0) != Some(x) {
        return None;
    }
    if o.outputs().iter().flatten().count() != 1 || o2.outputs().iter().flatten().count() != 1 {
        return None;
    }
    let pointwise = |p: &ConvParts| {
        let gm = &p.geom;
        gm.kh == 1 && gm.kw == 1 && gm.group == 1 && gm.pads == [0; 4]
    };
    let (pa, pb) = (conv_parts(g, op)?, conv_parts(g, op2)?);
    let ((a, a_op, a_out), (b, b_op, b_out)) = if pointwise(&pb) && !pointwise(&pa) {
        ((pa, op, y), (pb, op2, other))
    } else if pointwise(&pa) && !pointwise(&pb) {
        ((pb, op2, other), (pa, op, y))
    } else {
        return None;
    };
    let (ga, gb) = (a.geom, b.geom);
    let same_out = ga.c_out == gb.c_out && (ga.h_out, ga.w_out) == (gb.h_out, gb.w_out);
    if !same_out || ga.stride != gb.stride || a.batch != b.batch {
        return None;
    }
    // The k x k tap at the output pixel's own input position, (pad_top, pad_left) / dilation.
    let tap = [0, 1].map(|i| ga.pads[i] / ga.dilation[i]);
    if (0..2).any(|i| ga.pads[i] % ga.dilation[i] != 0) || tap[0] >= ga.kh || tap[1] >= ga.kw {
        return None;
    }
    // The kernel choice first: it needs only the geometry, the checks below read every weight
    // and walk the epilogue chain.
    if !DenseConv::pair_suits(&ga, opts.winograd) {
        return None;
    }
    for (p, c) in [(&a, a_op), (&b, b_op)] {
        if use_stream(p, opts, ssc_passes::sparse_density_of(&g.op(c).desc)) {
            return None;
        }
    }
    // The epilogue after the Add, walked from whichever conv's annotation goes through it.
    let chain = [(b_op, a_out), (a_op, b_out)]
        .into_iter()
        .find_map(|(c, partner)| {
            let mut r = ready.clone();
            r.insert(partner);
            let ch = fusion_chain(g, c, opset, &r);
            (ch.residual == Some(partner) && ch.absorbed.first() == Some(&add)).then_some(ch)
        })?;
    let bias = match (&a.bias, &b.bias) {
        (None, None) => None,
        (ba, bb) => Some(
            (0..ga.c_out)
                .map(|c| ba.as_ref().map_or(0.0, |v| v[c]) + bb.as_ref().map_or(0.0, |v| v[c]))
                .collect(),
        ),
    };
    let epi = Epilogue {
        bias,
        residual: chain.residual2.is_some(),
        act: chain.act,
    };
    let tail = format!(
        "{}{}{}",
        if epi.bias.is_some() { " +bias" } else { "" },
        if epi.residual { " +add" } else { "" },
        act_name(epi.act)
    );
    let pw = crate::kernels::dense::Pointwise {
        weights: &b.weights,
        tap,
    };
    let threads = opts.threads.max(1);
    let k = DenseConv::ssc_pair(ga, &a.weights, pw, epi, threads, opts.winograd)?;
    let mut absorbed = chain.absorbed;
    absorbed.push(op2);
    Some(Native {
        what: format!(
            "conv {} {}x{} g={} + 1x1 (SSC pair){tail}",
            k.kind(),
            ga.kh,
            ga.kw,
            ga.group
        ),
        kernel: Kernel::DenseConv {
            k: Box::new(k),
            batch: a.batch,
            in_len: ga.c_in * ga.h * ga.w,
            out_len: ga.c_out * ga.h_out * ga.w_out,
        },
        inputs: vec![Some(x), chain.residual2, None],
        output: chain.output,
        absorbed,
    })
}

/// Builds the plan. `m` must already carry inferred static shapes.
pub(crate) fn lower(m: &ssc_ir::Model, opts: &JitOptions, jit: &mut Jit) -> Result<Plan, JitError> {
    let g = &m.graph;
    let opset = m.onnx_opset();
    let order = g.topo_order().map_err(|e| JitError::Model(e.to_string()))?;
    for &op in &order {
        let o = g.op(op);
        if !o.captures().is_empty() {
            return Err(JitError::NotCovered(format!(
                "node `{}` ({}) has a subgraph",
                g.op_label(op),
                o.desc.op_type
            )));
        }
        // Sequence and optional values usually carry no type in the model (they are
        // intermediates without value_info), so the value check below misses them; the
        // per-node fallback passes tensors only.
        let t = o.desc.op_type.as_str();
        if o.desc.is_onnx()
            && (t.starts_with("Sequence") || t.ends_with("Sequence") || t.starts_with("Optional"))
        {
            return Err(JitError::NotCovered(format!(
                "node `{}` ({t}) uses sequence or optional values",
                g.op_label(op)
            )));
        }
    }
    for v in g.value_ids() {
        if matches!(g.value(v).ty, Some(ValueType::Opaque(_))) {
            return Err(JitError::NotCovered(format!(
                "value `{}` is not a tensor",
                g.value(v).name
            )));
        }
    }

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
    // Ops whose inputs are all constant (Constant, shape arithmetic, a Cast of a constant...)
    // are evaluated once here with the reference kernels; their outputs become constants.
    let mut folded: HashSet<OpId> = HashSet::new();
    for &op in &order {
        let o = g.op(op);
        let d = &o.desc;
        let nondeterministic = d.op_type.starts_with("Random")
            || matches!(d.op_type.as_str(), "Multinomial" | "Bernoulli");
        if !d.is_onnx() || nondeterministic || o.outputs().iter().flatten().count() == 0 {
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
    let mut arena_vals: Vec<ValueId> = Vec::new();
    let mut arena_idx: HashMap<ValueId, usize> = HashMap::new();
    let mut dyn_idx: HashMap<ValueId, usize> = HashMap::new();
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
        if static_f32(g, v).is_some() {
            let i = arena_vals.len();
            arena_vals.push(v);
            arena_idx.insert(v, i);
            Loc::Arena { off: i, len: 0 }
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
            lower_native(g, op, opset, opts, jit, &ready)
        } else {
            None
        };
        let (kernel, what, in_vals, out_vals) = match native {
            Some(n) => {
                for a in &n.absorbed {
                    absorbed.insert(*a, ());
                }
                (n.kernel, n.what, n.inputs, vec![Some(n.output)])
            }
            None => {
                let in_dims = ins
                    .iter()
                    .map(|v| v.and_then(|v| static_f32(g, v)))
                    .collect();
                (
                    Kernel::Fallback {
                        desc: Box::new(d.clone()),
                        in_dims,
                        n_out: outs.len(),
                    },
                    "reference kernel".to_string(),
                    ins.clone(),
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

    // Liveness of arena values, in step indices; graph inputs live from the start and graph
    // outputs to the end.
    let n = steps.len();
    let mut first = vec![usize::MAX; arena_vals.len()];
    let mut last = vec![0usize; arena_vals.len()];
    for io in &inputs {
        if let Loc::Arena { off: i, .. } = io.loc {
            first[i] = 0;
        }
    }
    for (s, (r, w)) in reads.iter().zip(&writes).enumerate() {
        for v in w.iter().chain(r) {
            if let Some(&i) = arena_idx.get(v) {
                first[i] = first[i].min(s);
                last[i] = last[i].max(s);
            }
        }
    }
    for io in &outputs {
        if let Loc::Arena { off: i, .. } = io.loc {
            first[i] = first[i].min(n);
            last[i] = n;
        }
    }
    let lens: Vec<usize> = arena_vals
        .iter()
        .map(|&v| static_f32(g, v).map_or(0, |d| d.iter().product()))
        .collect();
    let intervals: Vec<Interval> = (0..arena_vals.len())
        .map(|i| Interval {
            len: lens[i],
            first: if first[i] == usize::MAX { 0 } else { first[i] },
            last: last[i].max(if first[i] == usize::MAX { 0 } else { first[i] }),
        })
        .collect();
    let placement = place(&intervals);
    let fix = |l: Loc| match l {
        Loc::Arena { off: i, .. } => Loc::Arena {
            off: placement.offsets[i],
            len: lens[i],
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
    let outputs = outputs
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
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    let consts_f32 = consts
        .iter()
        .map(|t| {
            if t.dtype == DataType::Float {
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
        live_bound: live_lower_bound(&intervals),
        scratch_len,
        inputs,
        outputs,
        opset,
    })
}

/// A native lowering of one op (plus any epilogue ops it absorbs).
struct Native {
    kernel: Kernel,
    what: String,
    inputs: Vec<Option<ValueId>>,
    output: ValueId,
    absorbed: Vec<OpId>,
}

fn act_name(a: Activation) -> &'static str {
    match a {
        Activation::None => "",
        Activation::Relu => " +relu",
        Activation::Clip(..) => " +clip",
        Activation::LeakyRelu(_) => " +leakyrelu",
    }
}

fn lower_native(
    g: &Graph,
    op: OpId,
    opset: i64,
    opts: &JitOptions,
    jit: &mut Jit,
    ready: &HashSet<ValueId>,
) -> Option<Native> {
    let o = g.op(op);
    let d = &o.desc;
    let single_out = |o: &ssc_ir::Op| -> Option<ValueId> {
        if o.outputs().iter().flatten().count() == 1 {
            o.output(0)
        } else {
            None
        }
    };
    match d.op_type.as_str() {
        "Conv" => {
            if let Some(n) = ssc_pair(g, op, opset, opts, ready) {
                return Some(n);
            }
            let parts = conv_parts(g, op)?;
            single_out(o)?;
            let chain = fusion_chain(g, op, opset, ready);
            let epi = Epilogue {
                bias: parts.bias.clone(),
                residual: chain.residual.is_some(),
                act: chain.act,
            };
            let gm = parts.geom;
            let in_len = gm.c_in * gm.h * gm.w;
            let out_len = gm.c_out * gm.h_out * gm.w_out;
            let tail = format!(
                "{}{}{}",
                if epi.bias.is_some() { " +bias" } else { "" },
                match (chain.residual.is_some(), chain.residual2.is_some()) {
                    (true, true) => " +add +add",
                    (true, false) => " +add",
                    _ => "",
                },
                act_name(epi.act)
            );
            let density = ssc_passes::sparse_density_of(d);
            let stream = if chain.residual2.is_none() && use_stream(&parts, opts, density) {
                // A code generation failure is a bug, but the GEMM computes the same conv, so
                // the model still runs; the step's description records it.
                Some(StreamConv::compile(jit, &gm, &parts.weights, &epi))
            } else {
                None
            };
            let (kind, kernel, note) = match stream {
                Some(Ok(k)) => (
                    k.kind(),
                    Kernel::StreamConv {
                        k: Box::new(k),
                        batch: parts.batch,
                        in_len,
                        out_len,
                    },
                    String::new(),
                ),
                other => {
                    let k =
                        DenseConv::new(gm, parts.weights, epi, opts.threads.max(1), opts.winograd);
                    (
                        k.kind(),
                        Kernel::DenseConv {
                            k: Box::new(k),
                            batch: parts.batch,
                            in_len,
                            out_len,
                        },
                        match other {
                            Some(Err(e)) => format!(" (cranelift failed: {e})"),
                            _ => String::new(),
                        },
                    )
                }
            };
            Some(Native {
                what: format!(
                    "conv {kind} {}x{}{}{tail}",
                    gm.kh,
                    gm.kw,
                    if gm.group > 1 {
                        format!(" g={}", gm.group)
                    } else {
                        String::new()
                    }
                ) + &note,
                kernel,
                inputs: vec![o.input(0), chain.residual, chain.residual2],
                output: chain.output,
                absorbed: chain.absorbed,
            })
        }
        "MaxPool" | "AveragePool" => {
            let (k, batch) = pool_kernel(g, op)?;
            let y = single_out(o)?;
            let gm = k.geom;
            Some(Native {
                what: format!("{} {}x{}", d.op_type, gm.kh, gm.kw),
                kernel: Kernel::Pool {
                    in_len: gm.c * gm.h * gm.w,
                    out_len: gm.c * gm.h_out * gm.w_out,
                    k,
                    batch,
                },
                inputs: vec![o.input(0)],
                output: y,
                absorbed: vec![],
            })
        }
        "GlobalAveragePool" | "GlobalMaxPool" => {
            let xs = static_f32(g, o.input(0)?)?;
            let y = single_out(o)?;
            static_f32(g, y)?;
            if xs.len() < 3 {
                return None;
            }
            Some(Native {
                what: d.op_type.clone(),
                kernel: Kernel::GlobalPool {
                    max: d.op_type == "GlobalMaxPool",
                    p: xs[2..].iter().product(),
                },
                inputs: vec![o.input(0)],
                output: y,
                absorbed: vec![],
            })
        }
        "Add" | "Sub" | "Mul" | "Div" | "Max" | "Min" => {
            if o.inputs().len() != 2 {
                return None;
            }
            let (a, b) = (o.input(0)?, o.input(1)?);
            let y = single_out(o)?;
            let (sa, sb, sy) = (static_f32(g, a)?, static_f32(g, b)?, static_f32(g, y)?);
            let k = Binary::new(BinOp::from_onnx(&d.op_type)?, &sa, &sb, &sy)?;
            Some(Native {
                what: d.op_type.clone(),
                kernel: Kernel::Binary(k),
                inputs: vec![Some(a), Some(b)],
                output: y,
                absorbed: vec![],
            })
        }
        "Relu" | "Clip" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Neg" | "Abs" | "Sqrt" | "Exp"
        | "HardSigmoid" => {
            let x = o.input(0)?;
            let y = single_out(o)?;
            if static_f32(g, x)? != static_f32(g, y)? {
                return None;
            }
            // SiLU, `Mul(x, Sigmoid(x))` (EfficientNet's activation): one pass that absorbs
            // the Mul, when the Sigmoid's only reader is that Mul.
            if d.op_type == "Sigmoid" {
                if let Some(silu) = silu_of(g, x, y) {
                    return Some(silu);
                }
            }
            let u = match d.op_type.as_str() {
                "Sigmoid" => UnOp::Sigmoid,
                "Tanh" => UnOp::Tanh,
                "Neg" => UnOp::Neg,
                "Abs" => UnOp::Abs,
                "Sqrt" => UnOp::Sqrt,
                "Exp" => UnOp::Exp,
                "HardSigmoid" => UnOp::HardSigmoid(
                    d.get_float("alpha").ok()?.unwrap_or(0.2),
                    d.get_float("beta").ok()?.unwrap_or(0.5),
                ),
                _ => UnOp::Act(activation_of(g, op, opset)?),
            };
            Some(Native {
                what: d.op_type.clone(),
                kernel: Kernel::Unary(u),
                inputs: vec![Some(x)],
                output: y,
                absorbed: vec![],
            })
        }
        "Gemm" | "MatMul" => lower_linear(g, op),
        "BatchNormalization" => {
            let x = o.input(0)?;
            let y = single_out(o)?;
            if d.get_int("training_mode").ok()?.unwrap_or(0) != 0 {
                return None;
            }
            let sx = static_f32(g, x)?;
            if sx.len() < 2 || static_f32(g, y)? != sx {
                return None;
            }
            let c = sx[1];
            let param = |slot: usize| -> Option<Vec<f64>> {
                let t = g.constant(o.input(slot)?)?;
                (t.dtype == DataType::Float && t.numel() == c).then(|| t.to_f64_vec())?
            };
            let (gamma, beta, mean, var) = (param(1)?, param(2)?, param(3)?, param(4)?);
            let eps = f64::from(d.get_float("epsilon").ok()?.unwrap_or(1e-5));
            // Folded in f64 and rounded once, as the reference's per-element formula would be
            // up to the final rounding.
            let a: Vec<f64> = (0..c).map(|i| gamma[i] / (var[i] + eps).sqrt()).collect();
            Some(Native {
                what: "batchnorm (affine)".into(),
                kernel: Kernel::Affine {
                    scale: a.iter().map(|&v| v as f32).collect(),
                    shift: (0..c).map(|i| (beta[i] - mean[i] * a[i]) as f32).collect(),
                    inner: sx[2..].iter().product(),
                },
                inputs: vec![Some(x)],
                output: y,
                absorbed: vec![],
            })
        }
        "Gather" => {
            let x = o.input(0)?;
            let y = single_out(o)?;
            let sx = static_f32(g, x)?;
            static_f32(g, y)?;
            let it = g.constant(o.input(1)?)?;
            let raw = it.to_i64_vec()?;
            let rank = sx.len() as i64;
            let axis = d.get_int("axis").ok()?.unwrap_or(0);
            let axis = if axis < 0 { axis + rank } else { axis };
            if !(0..rank).contains(&axis) {
                return None;
            }
            let axis = axis as usize;
            let n = sx[axis] as i64;
            let idx: Vec<usize> = raw
                .iter()
                .map(|&i| {
                    let i = if i < 0 { i + n } else { i };
                    (0..n).contains(&i).then_some(i as usize)
                })
                .collect::<Option<_>>()?;
            Some(Native {
                what: format!("gather axis {axis}"),
                kernel: Kernel::Gather {
                    idx,
                    axis_len: sx[axis],
                    inner: sx[axis + 1..].iter().product(),
                },
                inputs: vec![Some(x)],
                output: y,
                absorbed: vec![],
            })
        }
        "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Identity" | "Dropout" => {
            let x = o.input(0)?;
            let y = single_out(o)?;
            let (sx, sy) = (static_f32(g, x)?, static_f32(g, y)?);
            if sx.iter().product::<usize>() != sy.iter().product::<usize>() {
                return None;
            }
            // Dropout in inference mode only (no training_mode input, no mask output).
            if d.op_type == "Dropout" && o.inputs().len() > 2 {
                return None;
            }
            Some(Native {
                what: "copy".into(),
                kernel: Kernel::Copy,
                inputs: vec![Some(x)],
                output: y,
                absorbed: vec![],
            })
        }
        "Concat" => {
            let y = single_out(o)?;
            let sy = static_f32(g, y)?;
            let rank = sy.len() as i64;
            let axis = d.get_int("axis").ok()??;
            let axis = if axis < 0 { axis + rank } else { axis };
            if !(0..rank).contains(&axis) {
                return None;
            }
            let axis = axis as usize;
            let outer: usize = sy[..axis].iter().product();
            let inner: usize = sy[axis + 1..].iter().product();
            let mut blocks = Vec::new();
            let mut ins = Vec::new();
            for v in o.inputs() {
                let v = (*v)?;
                let s = static_f32(g, v)?;
                if s.len() != sy.len() {
                    return None;
                }
                blocks.push(s[axis] * inner);
                ins.push(Some(v));
            }
            if blocks.iter().sum::<usize>() * outer != sy.iter().product::<usize>() {
                return None;
            }
            Some(Native {
                what: "concat".into(),
                kernel: Kernel::Concat { outer, blocks },
                inputs: ins,
                output: y,
                absorbed: vec![],
            })
        }
        _ => None,
    }
}

fn lower_linear(g: &Graph, op: OpId) -> Option<Native> {
    let o = g.op(op);
    let d = &o.desc;
    let (a, b) = (o.input(0)?, o.input(1)?);
    let y = o.output(0)?;
    let (sa, sb, sy) = (static_f32(g, a)?, static_f32(g, b)?, static_f32(g, y)?);
    let is_gemm = d.op_type == "Gemm";
    let (ta, tb) = if is_gemm {
        (
            d.get_int("transA").ok()?.unwrap_or(0) != 0,
            d.get_int("transB").ok()?.unwrap_or(0) != 0,
        )
    } else {
        (false, false)
    };
    if sb.len() != 2 || (is_gemm && sa.len() != 2) || sa.len() < 2 {
        return None;
    }
    let (m, k) = if ta {
        (sa[1], sa[0])
    } else {
        (sa[..sa.len() - 1].iter().product(), sa[sa.len() - 1])
    };
    let (kb, n) = if tb { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
    if k != kb || sy.iter().product::<usize>() != m * n || sy.last() != Some(&n) {
        return None;
    }
    let (alpha, beta) = if is_gemm {
        (
            d.get_float("alpha").ok()?.unwrap_or(1.0),
            d.get_float("beta").ok()?.unwrap_or(1.0),
        )
    } else {
        (1.0, 1.0)
    };
    let c = if is_gemm { o.input(2) } else { None };
    let c_strides = match c {
        Some(c) => Some(Linear::c_strides(&static_f32(g, c)?, m, n)?),
        None => None,
    };
    Some(Native {
        what: format!("{} {m}x{k}x{n}", d.op_type),
        kernel: Kernel::Linear(Linear {
            m,
            k,
            n,
            trans_a: ta,
            trans_b: tb,
            alpha,
            beta,
            c_strides,
        }),
        inputs: vec![Some(a), Some(b), c],
        output: y,
        absorbed: vec![],
    })
}
