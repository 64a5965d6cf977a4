//! Elementwise lowering: broadcasting binaries, activations (SiLU fused), inference
//! BatchNormalization as a per-channel affine.

use ssc_ir::{DataType, Graph, OpId, ValueId};

use super::fuse::activation_of;
use super::util::{single_output, static_f32};
use super::{Cx, Kernel, Native};
use crate::kernels::eltwise::{BinOp, Binary, UnOp};

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

/// Add / Sub / Mul / Div / Max / Min with broadcasting.
pub(super) fn lower_binary(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    if o.inputs().len() != 2 {
        return None;
    }
    let (a, b) = (o.input(0)?, o.input(1)?);
    let y = single_output(o)?;
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

/// One-input activations and math ops.
pub(super) fn lower_unary(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let y = single_output(o)?;
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
        "Floor" => UnOp::Floor,
        "Ceil" => UnOp::Ceil,
        "Round" => UnOp::Round,
        "HardSigmoid" => UnOp::HardSigmoid(
            d.get_float("alpha").ok()?.unwrap_or(0.2),
            d.get_float("beta").ok()?.unwrap_or(0.5),
        ),
        _ => UnOp::Act(activation_of(g, op, cx.opset)?),
    };
    Some(Native {
        what: d.op_type.clone(),
        kernel: Kernel::Unary(u),
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}

/// Inference-mode BatchNormalization as `x * scale + shift` per channel.
pub(super) fn lower_batchnorm(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let y = single_output(o)?;
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
