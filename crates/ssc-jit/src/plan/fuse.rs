//! Epilogue fusion: the Add/activation chain after a conv that its kernel applies in place.

use std::collections::HashSet;

use ssc_ir::{Graph, OpId, ValueId};
use ssc_passes::EpilogueStep;

use super::util::static_f32;
use crate::spec::Activation;

/// A conv's fused epilogue chain: Conv -> [Add(residual)] -> [activation].
pub(super) struct Chain {
    pub residual: Option<ValueId>,
    /// A second residual (the SSC branch sum followed by a block's skip connection); only the
    /// GEMM kernel takes two.
    pub residual2: Option<ValueId>,
    pub act: Activation,
    pub absorbed: Vec<OpId>,
    pub output: ValueId,
}

/// The activation `op` applies, if it is one the kernels fuse (read by the same analysis that
/// writes the `epilogue` annotations).
pub(super) fn activation_of(g: &Graph, op: OpId, opset: i64) -> Option<Activation> {
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
pub(super) fn fusion_chain(g: &Graph, op: OpId, opset: i64, ready: &HashSet<ValueId>) -> Chain {
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
    if chain.act == Activation::None {
        if let Some((act, ops, out)) = smooth_activation(g, cur) {
            if shape.is_some() && static_f32(g, out) == shape {
                chain.act = act;
                chain.absorbed.extend(ops);
                chain.output = out;
            }
        }
    }
    chain
}

/// An activation the epilogue annotations do not record but the conv kernels' epilogue pass
/// applies: a HardSwish, or SiLU as exported (`Mul(x, Sigmoid(x))`), reading `x` as its
/// only reader (the Sigmoid and the Mul are then the only readers of their inputs).
fn smooth_activation(g: &Graph, x: ValueId) -> Option<(Activation, Vec<OpId>, ValueId)> {
    let out1 = |op: OpId| -> Option<ValueId> {
        let o = g.op(op);
        (o.desc.is_onnx() && o.outputs().iter().flatten().count() == 1)
            .then(|| o.output(0))
            .flatten()
    };
    let consumers = g.consumers(x);
    if g.is_graph_output(x) || g.is_captured(x) {
        return None;
    }
    match consumers.as_slice() {
        [(op, _)] if g.op(*op).desc.op_type == "HardSwish" => {
            Some((Activation::HardSwish, vec![*op], out1(*op)?))
        }
        [(a, _), (b, _)] => {
            // One Sigmoid(x) and one Mul(x, that sigmoid).
            let (sig, mul) = if g.op(*a).desc.op_type == "Sigmoid" {
                (*a, *b)
            } else {
                (*b, *a)
            };
            let so = g.op(sig);
            let mo = g.op(mul);
            if so.desc.op_type != "Sigmoid" || mo.desc.op_type != "Mul" || !so.desc.is_onnx() {
                return None;
            }
            let s = out1(sig)?;
            if g.sole_consumer(s)?.0 != mul || mo.inputs().len() != 2 {
                return None;
            }
            let ins = [mo.input(0)?, mo.input(1)?];
            if !(ins == [x, s] || ins == [s, x]) {
                return None;
            }
            Some((Activation::Silu, vec![sig, mul], out1(mul)?))
        }
        _ => None,
    }
}
