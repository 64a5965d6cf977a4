//! Elementwise-chain lowering: a run of elementwise ops whose intermediates each have one
//! reader becomes one [`Chain`] step (GELU's five ops, HardSwish, layer scale + residual add),
//! or a Cranelift-compiled form of it where that measured faster (`codegen::chain`: chains of
//! two or more algebraic instructions, `ChainCode::prefer`).

use std::collections::HashMap;

use ssc_ir::{DataType, Graph, OpId, ValueId};

use super::fuse::activation_of;
use super::util::{single_output, static_f32};
use super::{Cx, Kernel, Native};
use crate::codegen::chain::ChainCode;
use crate::codegen::Jit;
use crate::kernels::chain::{Bcast, Chain, Instr, Src, UnFn, MAX_INPUTS, MAX_REGS};
use crate::kernels::eltwise::BinOp;
use crate::spec::Activation;

/// One elementwise op, read from the graph.
enum Elem {
    Bin(BinOp, ValueId, ValueId),
    Un(UnFn, ValueId),
}

fn elem(g: &Graph, op: OpId, opset: i64) -> Option<Elem> {
    let o = g.op(op);
    let d = &o.desc;
    if !d.is_onnx() {
        return None;
    }
    if let Some(b) = BinOp::from_onnx(&d.op_type) {
        if o.inputs().len() != 2 {
            return None;
        }
        return Some(Elem::Bin(b, o.input(0)?, o.input(1)?));
    }
    let x = o.input(0)?;
    let u = match d.op_type.as_str() {
        "Neg" => UnFn::Neg,
        "Abs" => UnFn::Abs,
        "Sqrt" => UnFn::Sqrt,
        "Exp" => UnFn::Exp,
        "Erf" => UnFn::Erf,
        "Sigmoid" => UnFn::Sigmoid,
        "Tanh" => UnFn::Tanh,
        "Reciprocal" => UnFn::Reciprocal,
        "HardSwish" => UnFn::HardSwish,
        "HardSigmoid" => UnFn::HardSigmoid(
            d.get_float("alpha").ok()?.unwrap_or(0.2),
            d.get_float("beta").ok()?.unwrap_or(0.5),
        ),
        "Relu" | "Clip" | "LeakyRelu" => match activation_of(g, op, opset)? {
            Activation::Relu => UnFn::Relu,
            Activation::Clip(lo, hi) => UnFn::Clip(lo, hi),
            Activation::LeakyRelu(a) => UnFn::LeakyRelu(a),
            _ => return None,
        },
        _ => return None,
    };
    Some(Elem::Un(u, x))
}

/// How `v` (shape `s`) is read in the `rows x inner` split of `out` at axis `p`.
fn classify(s: &[usize], out: &[usize], p: usize) -> Option<Bcast> {
    if s.len() > out.len() {
        return None;
    }
    let n: usize = s.iter().product();
    let full: usize = out.iter().product();
    if n == 1 {
        return Some(Bcast::Scalar);
    }
    if n == full && s.iter().rev().zip(out.iter().rev()).all(|(a, b)| a == b) {
        return Some(Bcast::Full);
    }
    // Right-align `s` against `out`.
    let pad = out.len() - s.len();
    let dim = |k: usize| if k < pad { 1 } else { s[k - pad] };
    // Row(period): 1 on every axis >= p; on axes < p, a block [q, p) equal to out, 1 before.
    if (p..out.len()).all(|k| dim(k) == 1) {
        let q = (0..p)
            .rev()
            .find(|&k| dim(k) != out[k])
            .map_or(0, |k| k + 1);
        if (0..q).all(|k| dim(k) == 1) {
            let period: usize = out[q..p].iter().product();
            return Some(Bcast::Row(period));
        }
    }
    // Col: 1 on every axis < p, equal to out on every axis >= p.
    if (0..p).all(|k| dim(k) == 1) && (p..out.len()).all(|k| dim(k) == out[k]) {
        return Some(Bcast::Col);
    }
    None
}

/// The scalar value of `v`, a one-element f32 constant.
fn scalar(g: &Graph, v: ValueId) -> Option<f32> {
    let t = g.constant(v)?;
    if t.dtype != DataType::Float || t.numel() != 1 {
        return None;
    }
    t.to_f32_vec()?.first().copied()
}

/// The operand of a two-input ONNX `ty` op other than `v` (`None` if `v` is not an operand).
fn other_operand(g: &Graph, op: OpId, ty: &str, v: ValueId) -> Option<ValueId> {
    let o = g.op(op);
    if !o.desc.is_onnx() || o.desc.op_type != ty || o.inputs().len() != 2 {
        return None;
    }
    match (o.input(0)?, o.input(1)?) {
        (a, b) if a == v => Some(b),
        (a, b) if b == v => Some(a),
        _ => None,
    }
}

/// The sole consumer of `v` when it is an ONNX `ty` op, and its single output.
fn sole(g: &Graph, v: ValueId, ty: &str) -> Option<(OpId, ValueId)> {
    let (n, _) = g.sole_consumer(v)?;
    let o = g.op(n);
    (o.desc.is_onnx() && o.desc.op_type == ty).then_some(())?;
    Some((n, single_output(o)?))
}

/// GELU as exporters write it on `x`: `Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)` (torch),
/// or with the halving first, `Mul(Mul(x, 0.5), Add(..))`, and `Mul(x, 1/sqrt 2)` for the
/// `Div`: when `x`'s only two readers start such a pattern, its ops and its output.
fn gelu_at(g: &Graph, x: ValueId) -> Option<(Vec<OpId>, ValueId)> {
    if g.is_graph_output(x) || g.is_captured(x) {
        return None;
    }
    let readers: Vec<OpId> = g
        .consumers(x)
        .into_iter()
        .map(|(o, u)| matches!(u, ssc_ir::Use::Input(_)).then_some(o))
        .collect::<Option<_>>()?;
    let [r0, r1] = readers.as_slice() else {
        return None;
    };
    let near = |v: Option<f32>, want: f32| v.is_some_and(|v| (v - want).abs() <= 1e-6 * want);
    for (d, h) in [(*r0, *r1), (*r1, *r0)] {
        let scaled = near(
            other_operand(g, d, "Div", x).and_then(|c| scalar(g, c)),
            std::f32::consts::SQRT_2,
        ) || near(
            other_operand(g, d, "Mul", x).and_then(|c| scalar(g, c)),
            std::f32::consts::FRAC_1_SQRT_2,
        );
        if !scaled {
            continue;
        }
        let Some(dv) = single_output(g.op(d)) else {
            continue;
        };
        let Some((e, ev)) = sole(g, dv, "Erf") else {
            continue;
        };
        let Some((a, av)) = sole(g, ev, "Add") else {
            continue;
        };
        if !near(
            other_operand(g, a, "Add", ev).and_then(|c| scalar(g, c)),
            1.0,
        ) {
            continue;
        }
        let Some((m, mv)) = sole(g, av, "Mul") else {
            continue;
        };
        let Some(w) = other_operand(g, m, "Mul", av) else {
            continue;
        };
        if w == x && h == m {
            // x * (1 + erf) then * 0.5.
            let Some((h2, y)) = sole(g, mv, "Mul") else {
                continue;
            };
            if near(
                other_operand(g, h2, "Mul", mv).and_then(|c| scalar(g, c)),
                0.5,
            ) {
                return Some((vec![d, e, a, m, h2], y));
            }
        } else if single_output(g.op(h)) == Some(w)
            && g.sole_consumer(w).map(|c| c.0) == Some(m)
            && near(
                other_operand(g, h, "Mul", x).and_then(|c| scalar(g, c)),
                0.5,
            )
        {
            // (x * 0.5) * (1 + erf).
            return Some((vec![h, d, e, a, m], mv));
        }
    }
    None
}

/// The chain starting at `op`, when it has at least `min_ops` ops (or a op only chains run).
pub(super) fn lower_chain(cx: &Cx, jit: &Jit, op: OpId) -> Option<Native> {
    let g = cx.g;
    // Ops of fused patterns (GELU) beyond the one each chain entry names.
    let mut extra: Vec<OpId> = Vec::new();
    // Each entry: the op it stands for, what it computes, and its output.
    let mut ops: Vec<(OpId, Elem, ValueId)> = Vec::new();
    // `op` may be one of the readers that start a GELU on its input.
    let gelu_start = g.op(op).inputs().iter().flatten().find_map(|&x| {
        gelu_at(g, x)
            .filter(|(p, _)| p.contains(&op))
            .map(|p| (x, p))
    });
    if let Some((x, (pat, y))) = gelu_start {
        static_f32(g, x)?;
        extra.extend(pat.into_iter().filter(|&o| o != op));
        ops.push((op, Elem::Un(UnFn::Gelu, x), y));
    } else {
        let first = elem(g, op, cx.opset)?;
        ops.push((op, first, single_output(g.op(op))?));
    }
    let mut cur = ops[0].2;
    let shape = static_f32(g, cur)?;
    loop {
        if let Some((pat, y)) = gelu_at(g, cur) {
            if static_f32(g, y).as_ref() == Some(&shape) {
                let (last, rest) = pat.split_last().expect("a GELU has five ops");
                extra.extend_from_slice(rest);
                ops.push((*last, Elem::Un(UnFn::Gelu, cur), y));
                cur = y;
                continue;
            }
        }
        let Some((n, _)) = g.sole_consumer(cur) else {
            break;
        };
        let Some(e) = elem(g, n, cx.opset) else { break };
        let Some(y) = single_output(g.op(n)) else {
            break;
        };
        if static_f32(g, y).as_ref() != Some(&shape) {
            break;
        }
        let others_ready = match &e {
            Elem::Bin(_, a, b) => [*a, *b]
                .iter()
                .all(|&v| v == cur || (cx.ready.contains(&v) && static_f32(g, v).is_some())),
            Elem::Un(..) => true,
        };
        if !others_ready {
            break;
        }
        ops.push((n, e, y));
        cur = y;
    }
    let y0 = ops[0].2;
    // Single ops keep their dedicated kernels (SiLU fusion, the broadcasting binary), unless
    // only the chain runs them.
    if ops.len() == 1
        && !matches!(
            ops[0].1,
            Elem::Un(
                UnFn::Erf | UnFn::HardSwish | UnFn::Reciprocal | UnFn::Gelu,
                _
            )
        )
    {
        return None;
    }
    // `Mul(x, Sigmoid(x))` alone is SiLU, which has its own one-pass kernel.
    if let [(_, Elem::Un(UnFn::Sigmoid, x), _), (_, Elem::Bin(BinOp::Mul, a, b), _)] =
        ops.as_slice()
    {
        if (a == x && *b == y0) || (b == x && *a == y0) {
            return None;
        }
    }
    // Inputs: every operand that is not an intermediate of the chain.
    let intermediates: Vec<ValueId> = ops.iter().map(|(_, _, y)| *y).collect();
    let mut inputs: Vec<ValueId> = Vec::new();
    let mut input_of: HashMap<ValueId, usize> = HashMap::new();
    let mut consts: HashMap<ValueId, f32> = HashMap::new();
    for (_, e, _) in &ops {
        let vs: Vec<ValueId> = match e {
            Elem::Bin(_, a, b) => vec![*a, *b],
            Elem::Un(_, a) => vec![*a],
        };
        for v in vs {
            if intermediates.contains(&v) || input_of.contains_key(&v) || consts.contains_key(&v) {
                continue;
            }
            // Scalar constants become immediates.
            if let Some(t) = g.constant(v) {
                if t.dtype == DataType::Float && t.numel() == 1 {
                    consts.insert(v, t.to_f32_vec()?[0]);
                    continue;
                }
            }
            input_of.insert(v, inputs.len());
            inputs.push(v);
        }
    }
    if inputs.len() > MAX_INPUTS {
        return None;
    }
    // The split: the first axis at which every input classifies (the widest rows).
    let shapes: Vec<Vec<usize>> = inputs
        .iter()
        .map(|&v| static_f32(g, v))
        .collect::<Option<_>>()?;
    let (p, kinds) = (0..=shape.len()).find_map(|p| {
        let k: Option<Vec<Bcast>> = shapes.iter().map(|s| classify(s, &shape, p)).collect();
        k.map(|k| (p, k))
    })?;
    let rows: usize = shape[..p].iter().product();
    let inner: usize = shape[p..].iter().product();
    // Registers: each intermediate gets one at definition, freed after its last use; an
    // instruction never writes a register it reads.
    let last_use: HashMap<ValueId, usize> = {
        let mut m = HashMap::new();
        for (k, (_, e, _)) in ops.iter().enumerate() {
            match e {
                Elem::Bin(_, a, b) => {
                    m.insert(*a, k);
                    m.insert(*b, k);
                }
                Elem::Un(_, a) => {
                    m.insert(*a, k);
                }
            }
        }
        m
    };
    let mut reg_of: HashMap<ValueId, usize> = HashMap::new();
    let mut free: Vec<usize> = (0..MAX_REGS).rev().collect();
    let mut used = 0usize;
    let mut prog = Vec::new();
    let n_ops = ops.len();
    for (k, (_, e, y)) in ops.iter().enumerate() {
        let src = |v: ValueId| -> Src {
            if let Some(&c) = consts.get(&v) {
                Src::Imm(c)
            } else if let Some(&i) = input_of.get(&v) {
                Src::In(i)
            } else {
                Src::Reg(reg_of[&v])
            }
        };
        let (srcs, read): (Vec<Src>, Vec<ValueId>) = match e {
            Elem::Bin(_, a, b) => (vec![src(*a), src(*b)], vec![*a, *b]),
            Elem::Un(_, a) => (vec![src(*a)], vec![*a]),
        };
        let dst = if k + 1 == n_ops {
            None
        } else {
            let r = free.pop()?;
            used = used.max(r + 1);
            Some(r)
        };
        // Registers read for the last time here are free for later instructions.
        for v in read {
            if last_use.get(&v) == Some(&k) {
                if let Some(r) = reg_of.remove(&v) {
                    free.push(r);
                }
            }
        }
        if let Some(r) = dst {
            reg_of.insert(*y, r);
        }
        prog.push(match e {
            Elem::Bin(b, ..) => Instr::Bin(*b, srcs[0], srcs[1], dst),
            Elem::Un(u, _) => Instr::Un(*u, srcs[0], dst),
        });
    }
    let chain = Chain {
        inputs: kinds,
        prog,
        regs: used,
        rows,
        inner,
    };
    if !chain.valid() {
        return None;
    }
    let names: Vec<&str> = ops
        .iter()
        .map(|(o, e, _)| match e {
            Elem::Un(UnFn::Gelu, _) => "Gelu",
            _ => g.op(*o).desc.op_type.as_str(),
        })
        .collect();
    // Cranelift code where `bench_chain` measured it faster (`ChainCode::prefer`); a chain
    // the generator refuses keeps the Rust form.
    let code = (cx.opts.cranelift_chains && ChainCode::prefer(&chain))
        .then(|| ChainCode::compile(jit, &chain).ok())
        .flatten();
    let (kernel, backend) = match code {
        Some(c) => (Kernel::ChainCode(Box::new(c)), ", cranelift"),
        None => (Kernel::Chain(chain), ""),
    };
    Some(Native {
        what: format!("chain {} ({} x {}{backend})", names.join("+"), rows, inner),
        kernel,
        inputs: inputs.into_iter().map(Some).collect(),
        output: cur,
        absorbed: ops[1..].iter().map(|(o, _, _)| *o).chain(extra).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_classify() {
        let out = [1usize, 8, 5, 5];
        assert_eq!(classify(&[1, 8, 5, 5], &out, 0), Some(Bcast::Full));
        assert_eq!(classify(&[], &out, 0), Some(Bcast::Scalar));
        assert_eq!(classify(&[8, 1, 1], &out, 0), None);
        assert_eq!(classify(&[8, 1, 1], &out, 2), Some(Bcast::Row(8)));
        assert_eq!(classify(&[1, 8, 1, 1], &out, 2), Some(Bcast::Row(8)));
        let nhwc = [1usize, 5, 5, 8];
        assert_eq!(classify(&[8], &nhwc, 3), Some(Bcast::Col));
        assert_eq!(classify(&[8], &nhwc, 0), None);
        // [5, 1] varies along W only: row r of the 25 (H, W) rows reads element r % 5.
        assert_eq!(classify(&[5, 1], &nhwc, 3), Some(Bcast::Row(5)));
        assert_eq!(classify(&[5, 8], &nhwc, 3), None);
    }
}
