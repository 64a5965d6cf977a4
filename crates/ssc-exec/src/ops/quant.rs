//! Quantised inference: QuantizeLinear and DequantizeLinear (per tensor, per axis and blocked,
//! opsets 10 to 25), DynamicQuantizeLinear, and the QOperator ops ConvInteger, MatMulInteger,
//! QLinearConv and QLinearMatMul.
//!
//! Arithmetic, as the ONNX reference computes it (it produced the conformance data):
//! - integer products and sums are exact (inputs minus zero points, accumulated in f64, which
//!   holds every sum below 2^53);
//! - a requantisation multiplier `a_scale * b_scale / y_scale` is computed in the scales' own
//!   type, one rounding per operation, and the accumulator times it is exact in f64 (for
//!   accumulators below 2^29). onnxruntime rounds that product to f32 first, so the two can
//!   differ by one step only where the exact value lies within one f32 rounding of a tie;
//! - QuantizeLinear divides in the wider float type of `x` and the scale (f64 once an integer
//!   takes part, as numpy promotes), or in the `precision` type when given;
//! - rounding is to nearest, ties to even; results saturate to the output type's range.
//!
//! The element types are the 8- and 16-bit integers (and int32 for DequantizeLinear's input);
//! the float8, float4, int4 and int2 forms need element types the executor does not hold.

use half::{bf16, f16};
use ssc_ir::DataType;

use super::conv::conv_f64;
use super::matmul::mat_mul_f64;
use crate::ctx::{Ctx, Result};
use crate::layout::numel;
use crate::value::{dispatch, Array, Elem, Val};

/// The range of a quantised integer type.
fn quant_range(dt: DataType) -> Option<(i64, i64)> {
    Some(match dt {
        DataType::Uint8 => (0, 255),
        DataType::Int8 => (-128, 127),
        DataType::Uint16 => (0, 65_535),
        DataType::Int16 => (-32_768, 32_767),
        _ => return None,
    })
}

/// `v` rounded to the float type `dt` (f64 is exact).
fn round_to(dt: DataType, v: f64) -> f64 {
    match dt {
        DataType::Float => v as f32 as f64,
        DataType::Float16 => f16::from_f64(v).to_f64(),
        DataType::Bfloat16 => bf16::from_f64(v).to_f64(),
        _ => v,
    }
}

/// The numpy result type of an arithmetic op on two element types, among the float types the
/// executor holds (any integer operand promotes to f64).
fn arith_type(a: DataType, b: DataType) -> DataType {
    let rank = |d: DataType| match d {
        DataType::Float16 | DataType::Bfloat16 => 1,
        DataType::Float => 2,
        _ => 3,
    };
    match (a.is_float() && b.is_float(), rank(a).cmp(&rank(b))) {
        (false, _) => DataType::Double,
        // f16 with bf16 promotes to f32 in numpy.
        (true, std::cmp::Ordering::Equal) if a != b => DataType::Float,
        (true, std::cmp::Ordering::Less) => b,
        (true, _) => a,
    }
}

/// Which scale or zero-point element applies to element `e` of the quantised tensor.
#[derive(Clone, Copy, Debug)]
enum ParamIndex {
    Scalar,
    /// One value per index along an axis; `inner` is the element count after the axis.
    Axis {
        inner: usize,
        len: usize,
    },
    /// One value per block of `block` indices along an axis of size `dim`.
    Block {
        inner: usize,
        dim: usize,
        block: usize,
        blocks: usize,
    },
}

impl ParamIndex {
    fn at(self, e: usize) -> usize {
        match self {
            ParamIndex::Scalar => 0,
            ParamIndex::Axis { inner, len } => (e / inner) % len,
            ParamIndex::Block {
                inner,
                dim,
                block,
                blocks,
            } => {
                let i = (e / inner) % dim;
                let outer = e / (inner * dim);
                (outer * blocks + i / block) * inner + e % inner
            }
        }
    }
}

/// How a parameter of shape `p` maps onto a tensor of shape `x`: one element is per tensor; a
/// 1-D parameter without `block_size` is per `axis`; with `block_size` the parameter has `x`'s
/// rank and `ceil(x[axis] / block_size)` along `axis`.
fn param_index(
    ctx: &Ctx,
    what: &str,
    p: &[usize],
    x: &[usize],
    axis: i64,
    block: i64,
) -> Result<ParamIndex> {
    if numel(p) == 1 && (p.len() <= 1 || block == 0) {
        return Ok(ParamIndex::Scalar);
    }
    let a = ctx.axis(axis, x.len())?;
    let inner = numel(&x[a + 1..]);
    let dim = x[a];
    if block <= 0 {
        if p.len() != 1 || p[0] != dim {
            return Err(ctx.err(format!(
                "{what} {p:?} must be one value or {dim} values (axis {axis} of {x:?})"
            )));
        }
        return Ok(ParamIndex::Axis { inner, len: dim });
    }
    let block = block as usize;
    let blocks = dim.div_ceil(block);
    let ok = p.len() == x.len()
        && p.iter()
            .zip(x)
            .enumerate()
            .all(|(i, (&pd, &xd))| if i == a { pd == blocks } else { pd == xd });
    if !ok {
        return Err(ctx.err(format!(
            "{what} {p:?} does not block {x:?} along axis {axis} by {block}"
        )));
    }
    Ok(ParamIndex::Block {
        inner,
        dim,
        block,
        blocks,
    })
}

/// Integer values of `a` as i64 (an error names `what` for other types).
fn ints(ctx: &Ctx, what: &str, a: &Array) -> Result<Vec<i64>> {
    a.to_i64_vec()
        .filter(|_| a.dtype() != DataType::Bool)
        .ok_or_else(|| {
            ctx.err(format!(
                "{what} must be an integer tensor, not {}",
                a.dtype()
            ))
        })
}

/// Float values of a scale.
fn scale_values(ctx: &Ctx, what: &str, a: &Array) -> Result<Vec<f64>> {
    if a.dtype() == DataType::Bool {
        return Err(ctx.err(format!("{what} must be numeric")));
    }
    Ok(a.to_f64_vec())
}

/// An integer array of type `dt` from i64 values already in its range.
fn int_array(dt: DataType, shape: Vec<usize>, v: impl Iterator<Item = i64>) -> Array {
    dispatch!(int dt, T => Array::new(shape, v.map(|x| T::from_i128(x as i128)).collect::<Vec<T>>()),
        else unreachable!("quantised types are integers"))
}

/// `round_half_even(v) + zp`, saturated to `[lo, hi]`; NaN quantises to the zero point.
fn saturate(v: f64, zp: i64, (lo, hi): (i64, i64)) -> i64 {
    let r = v.round_ties_even();
    let q = if r.is_nan() {
        zp
    } else {
        (r.clamp(-1e18, 1e18) as i64).saturating_add(zp)
    };
    q.clamp(lo, hi)
}

/// The `axis` and `block_size` attributes (`block_size` from opset 21).
fn axis_and_block(ctx: &Ctx) -> Result<(i64, i64)> {
    let block = ctx.int("block_size", 0)?;
    if block < 0 {
        return Err(ctx.err(format!("block_size must not be negative, not {block}")));
    }
    Ok((ctx.int("axis", 1)?, block))
}

/// A float-type attribute (`output_dtype`, `precision`): `None` when absent or 0.
fn dtype_attr(ctx: &Ctx, name: &str) -> Result<Option<DataType>> {
    Ok(match ctx.int(name, 0)? {
        0 => None,
        code => Some(DataType::from_code(code as i32)),
    })
}

/// `y = saturate(round(x / y_scale) + y_zero_point)`.
pub(crate) fn quantize_linear(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let s = ctx.input(1)?;
    let zp = ctx.opt_input(2)?;
    let (axis, block) = axis_and_block(ctx)?;
    let out = match (zp.map(Array::dtype), dtype_attr(ctx, "output_dtype")?) {
        (Some(z), Some(o)) if z != o => {
            return Err(ctx.err(format!(
                "output_dtype {o} differs from the zero point's type {z}"
            )))
        }
        (Some(z), _) => z,
        (None, Some(o)) => o,
        (None, None) => DataType::Uint8,
    };
    let range =
        quant_range(out).ok_or_else(|| ctx.err(format!("quantising to {out} is not supported")))?;
    let si = param_index(ctx, "y_scale", &s.shape, &x.shape, axis, block)?;
    let scales = scale_values(ctx, "y_scale", s)?;
    let zps = match zp {
        Some(z) => {
            let zi = param_index(ctx, "y_zero_point", &z.shape, &x.shape, axis, block)?;
            Some((zi, ints(ctx, "y_zero_point", z)?))
        }
        None => None,
    };
    let precision = dtype_attr(ctx, "precision")?;
    if precision.is_some_and(|p| !p.is_float()) {
        return Err(ctx.err(format!(
            "precision {} is not a float type",
            precision.unwrap()
        )));
    }
    let div = precision.unwrap_or_else(|| arith_type(x.dtype(), s.dtype()));
    let xs = x.to_f64_vec();
    let q = xs.iter().enumerate().map(|(e, &v)| {
        let sc = scales[si.at(e)];
        let (v, sc) = match precision {
            Some(p) => (round_to(p, v), round_to(p, sc)),
            None => (v, sc),
        };
        let z = zps.as_ref().map_or(0, |(zi, zv)| zv[zi.at(e)]);
        saturate(round_to(div, v / sc), z, range)
    });
    Ok(vec![int_array(out, x.shape.clone(), q).into()])
}

/// `y = (x - x_zero_point) * x_scale`, in the scale's type (or `output_dtype`).
pub(crate) fn dequantize_linear(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let s = ctx.input(1)?;
    let zp = ctx.opt_input(2)?;
    let (axis, block) = axis_and_block(ctx)?;
    if !s.dtype().is_float() {
        return Err(ctx.err(format!("x_scale must be a float tensor, not {}", s.dtype())));
    }
    let out = dtype_attr(ctx, "output_dtype")?.unwrap_or(s.dtype());
    if !out.is_float() {
        return Err(ctx.err(format!("output_dtype {out} is not a float type")));
    }
    if let Some(z) = zp {
        if z.dtype() != x.dtype() {
            return Err(ctx.err(format!(
                "x_zero_point is {} but x is {}",
                z.dtype(),
                x.dtype()
            )));
        }
    }
    let xs = ints(ctx, "x", x)?;
    let si = param_index(ctx, "x_scale", &s.shape, &x.shape, axis, block)?;
    let scales = s.to_f64_vec();
    let zps = match zp {
        Some(z) => Some((
            param_index(ctx, "x_zero_point", &z.shape, &x.shape, axis, block)?,
            ints(ctx, "x_zero_point", z)?,
        )),
        None => None,
    };
    let y: Vec<f64> = xs
        .iter()
        .enumerate()
        .map(|(e, &v)| {
            let z = zps.as_ref().map_or(0, |(zi, zv)| zv[zi.at(e)]);
            (v - z) as f64 * scales[si.at(e)]
        })
        .collect();
    let a = dispatch!(float out, T => Array::new(x.shape.clone(), y.into_iter().map(T::from_f64).collect::<Vec<T>>()),
        else unreachable!("checked float"));
    Ok(vec![a.into()])
}

/// The uint8 scale and zero point DynamicQuantizeLinear (and onnxruntime's dynamically quantised
/// GEMMs) give f32 values `xs`: the range `[min(x, 0), max(x, 0)]` over 255 steps, every step
/// rounded to f32 as the spec's formula is written.
pub(crate) fn dynamic_params(xs: &[f64]) -> (f64, i64) {
    let max = xs.iter().copied().fold(0f64, f64::max);
    let min = xs.iter().copied().fold(0f64, f64::min);
    let (scale, zp) = dynamic_quant_params(min as f32, max as f32);
    (scale as f64, zp as i64)
}

/// DynamicQuantizeLinear's scale and zero point (what `dynamic_params` computes) from the
/// range's ends (`min <= 0 <= max`, f32 values): the one home of the formula, which the JIT's
/// DynamicQuantizeLinear kernel calls too.
pub fn dynamic_quant_params(min: f32, max: f32) -> (f32, u8) {
    let f = |v: f64| v as f32 as f64;
    let (min, max) = (min as f64, max as f64);
    let scale = if max == min { 1.0 } else { f(max - min) };
    let scale = f(scale / 255.0);
    let zp = f(0.0 - f(min / scale)).clamp(0.0, 255.0).round_ties_even();
    (scale as f32, zp as u8)
}

/// `saturate(round(v / scale) + zp)` to uint8, the quotient rounded to f32.
pub(crate) fn quantize_u8(v: f64, scale: f64, zp: i64) -> i64 {
    saturate((v / scale) as f32 as f64, zp, (0, 255))
}

/// DynamicQuantizeLinear: uint8 with a scale and zero point covering `[min(x, 0), max(x, 0)]`,
/// every step rounded to f32 as the spec's formula is written.
pub(crate) fn dynamic_quantize_linear(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    if x.dtype() != DataType::Float {
        return Err(ctx.err(format!("x must be float, not {}", x.dtype())));
    }
    let xs = x.to_f64_vec();
    let (scale, zp) = dynamic_params(&xs);
    let y = xs.iter().map(|&v| quantize_u8(v, scale, zp));
    Ok(vec![
        int_array(DataType::Uint8, x.shape.clone(), y).into(),
        Array::scalar(scale as f32).into(),
        Array::scalar(zp as u8).into(),
    ])
}

/// The values of a quantised operand minus its zero point, which is one value or one per
/// index along `axis` of the operand (`per` names that axis in errors).
fn centered(ctx: &Ctx, what: &str, a: &Array, zp: Option<&Array>, axis: usize) -> Result<Vec<f64>> {
    let v = ints(ctx, what, a)?;
    let Some(z) = zp else {
        return Ok(v.into_iter().map(|x| x as f64).collect());
    };
    if z.dtype() != a.dtype() {
        return Err(ctx.err(format!(
            "{what}'s zero point is {} but {what} is {}",
            z.dtype(),
            a.dtype()
        )));
    }
    let zs = ints(ctx, what, z)?;
    let idx = if zs.len() == 1 {
        ParamIndex::Scalar
    } else if axis < a.rank() && zs.len() == a.shape[axis] {
        ParamIndex::Axis {
            inner: numel(&a.shape[axis + 1..]),
            len: a.shape[axis],
        }
    } else {
        return Err(ctx.err(format!(
            "{what}'s zero point {:?} must be one value or one per index of axis {axis} of {:?}",
            z.shape, a.shape
        )));
    };
    Ok(v.iter()
        .enumerate()
        .map(|(e, &x)| (x - zs[idx.at(e)]) as f64)
        .collect())
}

/// An int32 array from exact f64 sums, wrapping as the int32 accumulators do.
fn int32(shape: Vec<usize>, v: Vec<f64>) -> Array {
    Array::new(shape, v.into_iter().map(|x| x as i64 as i32).collect())
}

/// ConvInteger: `Conv(x - x_zero_point, w - w_zero_point)` in int32; the weight's zero point
/// may be per output channel.
pub(crate) fn conv_integer(ctx: &Ctx) -> Result<Vec<Val>> {
    let (x, w) = (ctx.input(0)?, ctx.input(1)?);
    let xs = centered(ctx, "x", x, ctx.opt_input(2)?, usize::MAX)?;
    let ws = centered(ctx, "w", w, ctx.opt_input(3)?, 0)?;
    let (shape, y) = conv_f64(ctx, x, w, &xs, &ws)?;
    Ok(vec![int32(shape, y).into()])
}

/// MatMulInteger: `(a - a_zero_point) (b - b_zero_point)` in int32; the zero points may be per
/// row of `a` and per column of `b`.
pub(crate) fn matmul_integer(ctx: &Ctx) -> Result<Vec<Val>> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    let (shape, y) = integer_product(ctx, a, ctx.opt_input(2)?, b, ctx.opt_input(3)?)?;
    Ok(vec![int32(shape, y).into()])
}

/// The exact product of two zero-point-centred operands.
fn integer_product(
    ctx: &Ctx,
    a: &Array,
    az: Option<&Array>,
    b: &Array,
    bz: Option<&Array>,
) -> Result<(Vec<usize>, Vec<f64>)> {
    // Rows of A are its second-to-last axis (a 1-D A is one row); columns of B its last.
    let a_rows = if a.rank() >= 2 {
        a.rank() - 2
    } else {
        usize::MAX
    };
    let av = centered(ctx, "a", a, az, a_rows)?;
    let bv = centered(ctx, "b", b, bz, b.rank().saturating_sub(1))?;
    let af = Array::new(a.shape.clone(), av);
    let bf = Array::new(b.shape.clone(), bv);
    mat_mul_f64(ctx, &af, &bf)
}

/// A requantisation: the multiplier `a_scale * b_scale / y_scale` per output element (each
/// scale one value or one per index along an axis of the output) and the output zero point.
struct Requant {
    multipliers: Vec<f64>,
    index: ParamIndex,
    zp: i64,
    out: DataType,
    range: (i64, i64),
}

impl Requant {
    /// `scales` are `(scale, axis of the output it may vary along)`; the multiplier is computed
    /// in the scales' type, one rounding per operation.
    fn new(
        ctx: &Ctx,
        out_shape: &[usize],
        scales: [(&str, &Array, Option<usize>); 3],
        y_zp: Option<&Array>,
        default_out: DataType,
    ) -> Result<Requant> {
        let sdt = scales[0].1.dtype();
        // The output axis some scale varies along, if any, and each scale's values.
        let mut varying: Option<usize> = None;
        let mut vals: Vec<Vec<f64>> = Vec::new();
        for (what, s, axis) in scales {
            if !s.dtype().is_float() || s.dtype() != sdt {
                return Err(ctx.err(format!("{what} must be a float tensor of one type")));
            }
            let v = s.to_f64_vec();
            if v.len() != 1 {
                let a = axis
                    .filter(|&a| a < out_shape.len() && out_shape[a] == v.len())
                    .ok_or_else(|| {
                        ctx.err(format!(
                            "{what} {:?} must be one value or one per output channel, row or column",
                            s.shape
                        ))
                    })?;
                if varying.is_some_and(|b| b != a) {
                    return Err(ctx.err("the scales vary along different axes"));
                }
                varying = Some(a);
            }
            vals.push(v);
        }
        let (index, n) = match varying {
            Some(a) => (
                ParamIndex::Axis {
                    inner: numel(&out_shape[a + 1..]),
                    len: out_shape[a],
                },
                out_shape[a],
            ),
            None => (ParamIndex::Scalar, 1),
        };
        let pick = |v: &[f64], i: usize| if v.len() == 1 { v[0] } else { v[i] };
        let multipliers = (0..n)
            .map(|i| {
                let ab = round_to(sdt, pick(&vals[0], i) * pick(&vals[1], i));
                round_to(sdt, ab / pick(&vals[2], i))
            })
            .collect();
        let (zp, out) = match y_zp {
            Some(z) => {
                if z.len() != 1 {
                    return Err(ctx.err(format!("y_zero_point {:?} must be one value", z.shape)));
                }
                (ints(ctx, "y_zero_point", z)?[0], z.dtype())
            }
            None => (0, default_out),
        };
        let range = quant_range(out)
            .filter(|_| matches!(out, DataType::Uint8 | DataType::Int8))
            .ok_or_else(|| ctx.err(format!("the output must be uint8 or int8, not {out}")))?;
        Ok(Requant {
            multipliers,
            index,
            zp,
            out,
            range,
        })
    }

    fn apply(&self, shape: Vec<usize>, acc: &[f64]) -> Array {
        let q = acc.iter().enumerate().map(|(e, &v)| {
            let m = self.multipliers[self.index.at(e)];
            saturate(v * m, self.zp, self.range)
        });
        int_array(self.out, shape, q)
    }
}

/// QLinearConv: ConvInteger plus an int32 bias, requantised to `y_scale`/`y_zero_point`; the
/// weight's scale and zero point may be per output channel.
pub(crate) fn qlinear_conv(ctx: &Ctx) -> Result<Vec<Val>> {
    let (x, x_scale, x_zp) = (ctx.input(0)?, ctx.input(1)?, ctx.opt_input(2)?);
    let (w, w_scale, w_zp) = (ctx.input(3)?, ctx.input(4)?, ctx.opt_input(5)?);
    let (y_scale, y_zp) = (ctx.input(6)?, ctx.opt_input(7)?);
    let xs = centered(ctx, "x", x, x_zp, usize::MAX)?;
    let ws = centered(ctx, "w", w, w_zp, 0)?;
    let (shape, mut acc) = conv_f64(ctx, x, w, &xs, &ws)?;
    if let Some(b) = ctx.opt_input(8)? {
        let m = shape[1];
        if b.shape != [m] || b.dtype() != DataType::Int32 {
            return Err(ctx.err(format!(
                "B must be int32 [{m}], not {} {:?}",
                b.dtype(),
                b.shape
            )));
        }
        let bv = ints(ctx, "B", b)?;
        let plane = numel(&shape[2..]);
        for (k, v) in acc.iter_mut().enumerate() {
            *v += bv[(k / plane) % m] as f64;
        }
    }
    let rq = Requant::new(
        ctx,
        &shape,
        [
            ("x_scale", x_scale, None),
            ("w_scale", w_scale, Some(1)),
            ("y_scale", y_scale, None),
        ],
        y_zp,
        x.dtype(),
    )?;
    Ok(vec![rq.apply(shape, &acc).into()])
}

/// QLinearMatMul: MatMulInteger requantised to `y_scale`/`y_zero_point`; `a_scale` and
/// `y_scale` may be per row, `b_scale` per column.
pub(crate) fn qlinear_matmul(ctx: &Ctx) -> Result<Vec<Val>> {
    let (a, a_scale, a_zp) = (ctx.input(0)?, ctx.input(1)?, ctx.opt_input(2)?);
    let (b, b_scale, b_zp) = (ctx.input(3)?, ctx.input(4)?, ctx.opt_input(5)?);
    let (y_scale, y_zp) = (ctx.input(6)?, ctx.opt_input(7)?);
    let (shape, acc) = integer_product(ctx, a, a_zp, b, b_zp)?;
    // The output's row axis (when A has rows) and column axis (when B has columns).
    let r = shape.len();
    let row = (a.rank() >= 2).then(|| if b.rank() >= 2 { r - 2 } else { r - 1 });
    let col = (b.rank() >= 2).then(|| r - 1);
    let rq = Requant::new(
        ctx,
        &shape,
        [
            ("a_scale", a_scale, row),
            ("b_scale", b_scale, col),
            ("y_scale", y_scale, row),
        ],
        y_zp,
        a.dtype(),
    )?;
    Ok(vec![rq.apply(shape, &acc).into()])
}
