//! Small readers shared by the per-op lowerings: static f32 shapes, attributes with defaults,
//! pad resolution, and the step descriptions' activation names.

use ssc_ir::{DataType, Graph, Op, OpDesc, ValueId};

use crate::spec::Activation;

pub(super) fn static_f32(g: &Graph, v: ValueId) -> Option<Vec<usize>> {
    g.static_shape(v, DataType::Float)
}

pub(super) fn value_dims(g: &Graph, v: ValueId) -> Option<(DataType, Option<Vec<usize>>)> {
    let t = g.value(v).ty.as_ref()?.tensor()?;
    Some((t.elem, t.static_shape()))
}

/// Reads an ints attribute with a default.
pub(super) fn ints(d: &OpDesc, name: &str, default: &[i64]) -> Option<Vec<i64>> {
    match d.get_ints(name) {
        Ok(Some(v)) => Some(v.to_vec()),
        Ok(None) => Some(default.to_vec()),
        Err(_) => None,
    }
}

pub(super) fn to_usize(v: &[i64]) -> Option<Vec<usize>> {
    v.iter().map(|&x| usize::try_from(x).ok()).collect()
}

/// Resolves 2-D pads (top, left, bottom, right) from `pads`/`auto_pad`, then checks that the
/// window arithmetic reproduces the inferred output size (floor, or ceil when `ceil` is set).
#[allow(clippy::too_many_arguments)]
pub(super) fn resolve_pads(
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

/// The op's only output, when it has exactly one.
pub(super) fn single_output(o: &Op) -> Option<ValueId> {
    if o.outputs().iter().flatten().count() == 1 {
        o.output(0)
    } else {
        None
    }
}

pub(super) fn act_name(a: Activation) -> &'static str {
    match a {
        Activation::None => "",
        Activation::Relu => " +relu",
        Activation::Clip(..) => " +clip",
        Activation::LeakyRelu(_) => " +leakyrelu",
        Activation::HardSwish => " +hardswish",
        Activation::Silu => " +silu",
    }
}
