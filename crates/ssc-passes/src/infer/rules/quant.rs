//! Rules for the quantised ops: QuantizeLinear/DequantizeLinear keep the shape and take the
//! zero point's (or `output_dtype`'s, or the scale's) type; the QOperator ops are a Conv or a
//! MatMul over two of their inputs, in int32 (ConvInteger, MatMulInteger) or the output zero
//! point's type (QLinearConv, QLinearMatMul).

use ssc_ir::{DataType, TensorType};

use super::math::matmul;
use super::nn::conv;
use super::{one, tt, Cx, Out};
use crate::args::OpView;

/// A float or quantised type attribute (`output_dtype`), when set.
fn dtype_attr(cx: &Cx<'_>, name: &str) -> Result<Option<DataType>, String> {
    Ok(match cx.view.int_attr(name, 0)? {
        0 => None,
        code => Some(DataType::from_code(code as i32)),
    })
}

fn with_elem(out: Out, elem: Option<DataType>) -> Out {
    let mut v = out?;
    if let Some(Some(t)) = v.first_mut() {
        match elem {
            Some(e) => t.elem = e,
            None => v[0] = None,
        }
    }
    Ok(v)
}

/// The rule `f` applied to inputs `a` and `b` of `cx` as if they were slots 0 and 1.
fn on_pair(cx: &Cx<'_>, a: usize, b: usize, f: fn(&Cx<'_>) -> Out) -> Out {
    let pick = |s: usize| cx.view.inputs.get(s).copied().flatten();
    let sub = Cx {
        view: OpView {
            desc: cx.view.desc,
            opset: cx.view.opset,
            inputs: vec![pick(a), pick(b)],
        },
        types: vec![cx.ty(a).cloned(), cx.ty(b).cloned()],
        n_outputs: 1,
    };
    f(&sub)
}

pub(super) fn quantize(cx: &Cx<'_>) -> Out {
    let elem = match (cx.elem(2), dtype_attr(cx, "output_dtype")?) {
        (Some(z), _) => z,
        (None, Some(o)) => o,
        (None, None) if cx.view.present(2) => return one(None),
        (None, None) => DataType::Uint8,
    };
    one(Some(TensorType {
        elem,
        shape: cx.ty(0).and_then(|t| t.shape.clone()),
    }))
}

pub(super) fn dequantize(cx: &Cx<'_>) -> Out {
    let Some(elem) = dtype_attr(cx, "output_dtype")?.or(cx.elem(1)) else {
        return one(None);
    };
    one(Some(TensorType {
        elem,
        shape: cx.ty(0).and_then(|t| t.shape.clone()),
    }))
}

pub(super) fn dynamic_quantize(cx: &Cx<'_>) -> Out {
    Ok(vec![
        cx.ty(0).map(|t| TensorType {
            elem: DataType::Uint8,
            shape: t.shape.clone(),
        }),
        tt(DataType::Float, vec![]),
        tt(DataType::Uint8, vec![]),
    ])
}

pub(super) fn integer(cx: &Cx<'_>) -> Out {
    let f = |c: &Cx<'_>| conv(c, false);
    let out = match cx.op_type() {
        "ConvInteger" => on_pair(cx, 0, 1, f),
        _ => on_pair(cx, 0, 1, matmul),
    };
    with_elem(out, Some(DataType::Int32))
}

pub(super) fn qlinear(cx: &Cx<'_>) -> Out {
    let f = |c: &Cx<'_>| conv(c, false);
    let out = match cx.op_type() {
        "QLinearConv" => on_pair(cx, 0, 3, f),
        _ => on_pair(cx, 0, 3, matmul),
    };
    let elem = if cx.view.present(7) {
        cx.elem(7)
    } else {
        cx.elem(0)
    };
    with_elem(out, elem)
}
