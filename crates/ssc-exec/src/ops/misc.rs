//! Ops that make or relabel values: Constant, ConstantOfShape, Range, Cast, CastLike,
//! Identity and inference-mode Dropout.

use ssc_ir::DataType;

use crate::ctx::{Ctx, Result};
use crate::value::{dispatch, is_supported_dtype, Array, Elem, Val};

/// Constant: exactly one of `value`, `value_float(s)`, `value_int(s)`.
pub(crate) fn constant(ctx: &Ctx) -> Result<Vec<Val>> {
    let names = ctx.attr_names();
    let present: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("value") || *n == "sparse_value")
        .collect();
    let [name] = present.as_slice() else {
        return Err(ctx.err(format!(
            "needs exactly one value attribute, found {present:?}"
        )));
    };
    let a = match *name {
        "value" => ctx.tensor_attr("value")?.expect("present"),
        "value_float" => Array::scalar(ctx.float("value_float", 0.0)?),
        "value_int" => Array::scalar(ctx.int("value_int", 0)?),
        "value_floats" => {
            let v = ctx.floats("value_floats")?.expect("present");
            Array::new(vec![v.len()], v)
        }
        "value_ints" => {
            let v = ctx.ints("value_ints")?.expect("present");
            Array::new(vec![v.len()], v)
        }
        other => return Err(ctx.err(format!("attribute `{other}` is not supported"))),
    };
    Ok(vec![a.into()])
}

pub(crate) fn constant_of_shape(ctx: &Ctx) -> Result<Vec<Val>> {
    let spec = ctx
        .opt_ints_input(0)?
        .ok_or_else(|| ctx.err("missing shape input"))?;
    if spec.iter().any(|&d| d < 0) {
        return Err(ctx.err(format!("invalid shape {spec:?}")));
    }
    let shape: Vec<usize> = spec.iter().map(|&d| d as usize).collect();
    let value = match ctx.tensor_attr("value")? {
        Some(v) if v.len() == 1 => v,
        Some(v) => return Err(ctx.err(format!("value must hold one element, not {:?}", v.shape))),
        None => Array::scalar(0f32),
    };
    let n = shape.iter().product::<usize>();
    Ok(vec![value.take(shape, &vec![0; n], None).into()])
}

/// Range: `start + i * delta` for `i < max(ceil((limit - start) / delta), 0)`.
pub(crate) fn range(ctx: &Ctx) -> Result<Vec<Val>> {
    let (s, l, d) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let dt = s.dtype();
    if l.dtype() != dt || d.dtype() != dt || s.len() != 1 || l.len() != 1 || d.len() != 1 {
        return Err(ctx.err("start, limit and delta must be scalars of one type"));
    }
    let out = dispatch!(num dt, T => {
        let (start, limit, delta) = (s.slice::<T>().unwrap()[0], l.slice::<T>().unwrap()[0], d.slice::<T>().unwrap()[0]);
        let v: Vec<T> = if T::IS_FLOAT {
            let (a, b, c) = (start.to_f64(), limit.to_f64(), delta.to_f64());
            if c == 0.0 {
                return Err(ctx.err("delta is zero"));
            }
            let n = ((b - a) / c).ceil().max(0.0) as usize;
            (0..n).map(|i| T::from_f64(a + i as f64 * c)).collect()
        } else {
            let (a, b, c) = (start.to_i128(), limit.to_i128(), delta.to_i128());
            if c == 0 {
                return Err(ctx.err("delta is zero"));
            }
            let span = b - a;
            let n = if (span > 0) == (c > 0) && span != 0 {
                ((span.abs() + c.abs() - 1) / c.abs()) as usize
            } else {
                0
            };
            (0..n).map(|i| T::from_i128(a + i as i128 * c)).collect()
        };
        Array::new(vec![v.len()], v)
    }, else return Err(ctx.err(format!("unsupported type {dt}"))));
    Ok(vec![out.into()])
}

/// Cast and CastLike. Float to integer truncates toward zero (saturating), integer to integer
/// wraps, anything to bool is `!= 0`.
pub(crate) fn cast(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let to = if ctx.desc.op_type == "CastLike" {
        ctx.input(1)?.dtype()
    } else {
        DataType::from_code(ctx.int("to", 0)? as i32)
    };
    if !is_supported_dtype(to) {
        return Err(ctx.err(format!("cast to {to} is not supported")));
    }
    let out = x
        .cast(to)
        .ok_or_else(|| ctx.err(format!("cannot cast {} to {to}", x.dtype())))?;
    Ok(vec![out.into()])
}

pub(crate) fn identity(ctx: &Ctx) -> Result<Vec<Val>> {
    match ctx.inputs.first() {
        Some(Some(v)) => Ok(vec![(*v).clone()]),
        _ => Err(ctx.err("missing input 0")),
    }
}

/// Dropout at inference: the identity, with an all-true mask when the mask output is wanted
/// (before opset 10 the mask has the data's type and holds ones). Training mode with a
/// non-zero ratio is random and rejected.
pub(crate) fn dropout(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let training = if ctx.opset >= 12 {
        ctx.opt_input(2)?
            .map(|t| t.to_f64_vec().first().is_some_and(|&v| v != 0.0))
            .unwrap_or(false)
    } else {
        ctx.opset < 7 && ctx.int("is_test", 0)? == 0 && ctx.n_out > 1
    };
    let ratio = if ctx.opset >= 12 {
        ctx.opt_scalar_input(1)?.unwrap_or(0.5)
    } else {
        ctx.float("ratio", 0.5)? as f64
    };
    if training && ratio != 0.0 {
        return Err(ctx.unsupported("training_mode=1 with a non-zero ratio (random)"));
    }
    let mut outs = vec![Val::from(x.clone())];
    if ctx.n_out > 1 {
        let mask = if ctx.opset >= 10 {
            Array::new(x.shape.clone(), vec![true; x.len()])
        } else {
            Array::new(x.shape.clone(), vec![1f64; x.len()])
                .cast(x.dtype())
                .expect("numeric cast")
        };
        outs.push(mask.into());
    }
    Ok(outs)
}
