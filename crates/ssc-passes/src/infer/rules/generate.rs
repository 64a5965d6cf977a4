//! Rules for ops that produce shapes and constants: Shape, ConstantOfShape, Range.

use ssc_ir::{DataType, Dim, TensorType};

use super::{one, tt, Cx, Out};
use crate::args::{Arg, OpView};
use crate::infer::dims::dim_of;

pub(super) fn shape_op(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return one(tt(DataType::Int64, vec![Dim::Unknown]));
    };
    let (start, end) = shape_range(&cx.view, x.len())?;
    one(tt(DataType::Int64, vec![Dim::Known(end - start)]))
}

/// The `[start, end)` range of dims that `Shape` reports (opset 15 added `start`/`end`, clamped
/// like Slice).
pub(crate) fn shape_range(view: &OpView<'_>, rank: usize) -> Result<(usize, usize), String> {
    if view.opset < 15 {
        return Ok((0, rank));
    }
    let r = rank as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(view.int_attr("start", 0)?);
    let end = clamp(view.int_attr("end", r)?);
    Ok((start, end.max(start)))
}

pub(super) fn constant_of_shape(cx: &Cx<'_>) -> Out {
    let elem = match cx.view.desc.get_tensor("value") {
        Ok(Some(t)) => t.dtype,
        Ok(None) => DataType::Float,
        Err(e) => return Err(e.to_string()),
    };
    match cx.view.ints_input(0) {
        Arg::Known(s) => one(tt(
            elem,
            s.iter()
                .map(|&v| dim_of(v, "a dimension"))
                .collect::<Result<_, _>>()?,
        )),
        _ => {
            let r = cx.shape(0).and_then(|s| s.first()).and_then(Dim::known);
            one(Some(TensorType {
                elem,
                shape: r.map(|r| vec![Dim::Unknown; r]),
            }))
        }
    }
}

pub(super) fn range(cx: &Cx<'_>) -> Out {
    let Some(elem) = cx.elem(0) else {
        return one(None);
    };
    let scalars: Option<Vec<&ssc_ir::Tensor>> = (0..3).map(|s| cx.view.konst(s)).collect();
    let n = scalars.and_then(|t| {
        if t.iter().any(|t| t.numel() != 1) {
            return None;
        }
        if elem.is_float() {
            let v: Vec<f64> = t
                .iter()
                .map(|t| t.to_f64_vec().map(|v| v[0]))
                .collect::<Option<_>>()?;
            // ONNX Runtime: ceil((limit - start) / delta) with the difference in the element type.
            let diff = if elem == DataType::Double {
                v[1] - v[0]
            } else {
                f64::from(v[1] as f32 - v[0] as f32)
            };
            let n = (diff / v[2]).ceil();
            n.is_finite().then(|| n.max(0.0) as usize)
        } else {
            let v: Vec<i128> = t
                .iter()
                .map(|t| t.to_i64_vec().map(|v| i128::from(v[0])))
                .collect::<Option<_>>()?;
            if v[2] == 0 {
                return None;
            }
            let span = v[1] - v[0];
            let n = if span != 0 && (span > 0) == (v[2] > 0) {
                (span + v[2] - v[2].signum()) / v[2]
            } else {
                0
            };
            usize::try_from(n).ok()
        }
    });
    one(tt(elem, vec![n.map_or(Dim::Unknown, Dim::Known)]))
}
