//! Elementwise ops: activations and math functions, binary arithmetic and comparisons with
//! numpy broadcasting (and the pre-opset-7 `broadcast`/`axis` form), variadic Sum/Mean/Max/Min,
//! Clip, PRelu, Where and the logical ops.
//!
//! Floats compute in f64 and round once to the element type (except f32 Sigmoid, which is
//! onnxruntime's f32 arithmetic: `mlas::logistic`); integers compute in i128 and wrap
//! back (so integer Add/Mul wrap like C, and Div truncates toward zero).

use ssc_ir::DataType;

use crate::ctx::{Ctx, Result};
use crate::layout::{broadcast_shape, broadcast_strides, numel, walk, zip2};
use crate::value::{dispatch, Array, Elem};

/// A unary op: its float form and, when integers are allowed, its integer form.
struct Unary {
    f: Box<dyn Fn(f64) -> f64>,
    i: Option<Box<dyn Fn(i128) -> i128>>,
}

fn float_only(f: impl Fn(f64) -> f64 + 'static) -> Unary {
    Unary {
        f: Box::new(f),
        i: None,
    }
}

fn both(f: impl Fn(f64) -> f64 + 'static, i: impl Fn(i128) -> i128 + 'static) -> Unary {
    Unary {
        f: Box::new(f),
        i: Some(Box::new(i)),
    }
}

/// The unary ops, built from the node's attributes.
fn unary_fn(ctx: &Ctx) -> Result<Unary> {
    let alpha = |d: f32| -> Result<f64> { Ok(ctx.float("alpha", d)? as f64) };
    Ok(match ctx.desc.op_type.as_str() {
        "Relu" => both(|x| if x < 0.0 { 0.0 } else { x }, |x| x.max(0)),
        "Neg" => both(|x| -x, |x| -x),
        "Abs" => both(f64::abs, i128::abs),
        "Sign" => both(
            |x| {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x // keeps 0, -0 and NaN
                }
            },
            i128::signum,
        ),
        "Identity" => both(|x| x, |x| x),
        // f32 follows onnxruntime's arithmetic bit for bit (see `mlas::logistic`).
        "Sigmoid" if ctx.input(0)?.dtype() == DataType::Float => {
            float_only(|x| crate::mlas::logistic(x as f32) as f64)
        }
        "Sigmoid" => float_only(sigmoid),
        "Tanh" => float_only(f64::tanh),
        "Exp" => float_only(f64::exp),
        "Log" => float_only(f64::ln),
        "Sqrt" => float_only(f64::sqrt),
        "Reciprocal" => float_only(|x| 1.0 / x),
        "Floor" => float_only(f64::floor),
        "Ceil" => float_only(f64::ceil),
        "Round" => float_only(f64::round_ties_even),
        "Erf" => float_only(erf),
        "Sin" => float_only(f64::sin),
        "Cos" => float_only(f64::cos),
        "Softsign" => float_only(|x| x / (1.0 + x.abs())),
        "Softplus" => float_only(softplus),
        "Mish" => float_only(|x| x * softplus(x).tanh()),
        "Swish" => {
            let a = alpha(1.0)?;
            float_only(move |x| x * sigmoid(a * x))
        }
        "Elu" => {
            let a = alpha(1.0)?;
            float_only(move |x| if x < 0.0 { a * (x.exp() - 1.0) } else { x })
        }
        "Celu" => {
            let a = alpha(1.0)?;
            float_only(move |x| x.max(0.0) + (a * ((x / a).exp() - 1.0)).min(0.0))
        }
        "LeakyRelu" => {
            let a = alpha(0.01)?;
            float_only(move |x| if x < 0.0 { a * x } else { x })
        }
        "ThresholdedRelu" => {
            let a = alpha(1.0)?;
            float_only(move |x| if x > a { x } else { 0.0 })
        }
        "Selu" => {
            let a = alpha(1.673_263_2)?;
            let g = ctx.float("gamma", 1.050_701)? as f64;
            float_only(move |x| {
                if x > 0.0 {
                    g * x
                } else {
                    g * (a * x.exp() - a)
                }
            })
        }
        "HardSigmoid" => {
            let a = alpha(0.2)?;
            let b = ctx.float("beta", 0.5)? as f64;
            float_only(move |x| (a * x + b).clamp(0.0, 1.0))
        }
        "HardSwish" => float_only(|x| x * (x / 6.0 + 0.5).clamp(0.0, 1.0)),
        "Gelu" => match ctx.string("approximate", "none")?.as_str() {
            "none" => float_only(|x| 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))),
            "tanh" => float_only(|x| {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }),
            other => return Err(ctx.err(format!("unknown approximate `{other}`"))),
        },
        "Shrink" => {
            let l = ctx.float("lambd", 0.5)? as f64;
            let b = ctx.float("bias", 0.0)? as f64;
            let f = move |x: f64| {
                if x < -l {
                    x + b
                } else if x > l {
                    x - b
                } else {
                    0.0
                }
            };
            both(f, move |x| f(x as f64) as i128)
        }
        other => return Err(ctx.err(format!("`{other}` is not a unary op"))),
    })
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^x)` without overflow for large `x`.
pub(crate) fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The error function to about 1e-14 relative: the Maclaurin series below 3 (at most four
/// digits lost to cancellation), the Laplace continued fraction for erfc above.
pub(crate) fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let r = if a < 3.0 {
        let mut term = a;
        let mut sum = a;
        let x2 = a * a;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if a < 6.5 {
        // erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + ...))))),
        // evaluated bottom-up from a fixed depth (ample for a >= 3).
        let mut f = a;
        for k in (1..=60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
    } else {
        1.0
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// Relu, Sigmoid, Elu, ...: every op of [`unary_fn`].
pub(crate) fn unary(ctx: &Ctx) -> Result<Vec<crate::value::Val>> {
    let x = ctx.input(0)?;
    let u = unary_fn(ctx)?;
    let dt = x.dtype();
    let out = dispatch!(all dt, T => {
        let v = x.slice::<T>().expect("dtype matches");
        if T::IS_FLOAT {
            Array::new(x.shape.clone(), v.iter().map(|&e| T::from_f64((u.f)(e.to_f64()))).collect())
        } else if dt == DataType::Bool && ctx.desc.op_type != "Identity" {
            return Err(ctx.err("not defined for bool"));
        } else {
            let i = u.i.as_ref().ok_or_else(|| ctx.err(format!("not defined for {dt}")))?;
            Array::new(x.shape.clone(), v.iter().map(|&e| T::from_i128(i(e.to_i128()))).collect())
        }
    }, else return Err(ctx.err(format!("unsupported type {dt}"))));
    Ok(vec![out.into()])
}

/// IsNaN and IsInf (`detect_positive`/`detect_negative`).
pub(crate) fn is_nan_inf(ctx: &Ctx) -> Result<Vec<crate::value::Val>> {
    let x = ctx.input(0)?;
    let v = float_values(ctx, x)?;
    let pos = ctx.int("detect_positive", 1)? != 0;
    let neg = ctx.int("detect_negative", 1)? != 0;
    let nan = ctx.desc.op_type == "IsNaN";
    let out: Vec<bool> = v
        .iter()
        .map(|&e| {
            if nan {
                e.is_nan()
            } else {
                (pos && e == f64::INFINITY) || (neg && e == f64::NEG_INFINITY)
            }
        })
        .collect();
    Ok(vec![Array::new(x.shape.clone(), out).into()])
}

fn float_values(ctx: &Ctx, x: &Array) -> Result<Vec<f64>> {
    if !x.dtype().is_float() {
        return Err(ctx.err(format!("expects a float tensor, not {}", x.dtype())));
    }
    Ok(x.to_f64_vec())
}

/// Reshapes `b` for the pre-opset-7 `broadcast=1` form: `b` lines up with `a` starting at
/// `axis` (trailing alignment when `axis` is absent, which is numpy's rule). With
/// `broadcast=0` the shapes must be equal.
fn legacy_broadcast(ctx: &Ctx, a: &Array, b: &Array) -> Result<Vec<usize>> {
    if ctx.opset >= 7 {
        return Ok(b.shape.clone());
    }
    if ctx.int("broadcast", 0)? == 0 {
        if a.shape != b.shape {
            return Err(ctx.err(format!(
                "shapes {:?} and {:?} differ and broadcast=0 (opset {})",
                a.shape, b.shape, ctx.opset
            )));
        }
        return Ok(b.shape.clone());
    }
    if !ctx.has_attr("axis") || b.rank() == 0 {
        return Ok(b.shape.clone());
    }
    let axis = ctx.axis(ctx.int("axis", 0)?, a.rank())?;
    if axis + b.rank() > a.rank() {
        return Err(ctx.err(format!(
            "cannot broadcast {:?} into {:?} at axis {axis}",
            b.shape, a.shape
        )));
    }
    let mut s = vec![1; a.rank()];
    s[axis..axis + b.rank()].copy_from_slice(&b.shape);
    Ok(s[axis..].to_vec())
}

fn bshape(ctx: &Ctx, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    broadcast_shape(a, b).ok_or_else(|| ctx.err(format!("shapes {a:?} and {b:?} do not broadcast")))
}

/// Add, Sub, Mul, Div, Pow, Mod.
pub(crate) fn arith(ctx: &Ctx) -> Result<Vec<crate::value::Val>> {
    let a = ctx.input(0)?;
    let b = ctx.input(1)?;
    let bs = legacy_broadcast(ctx, a, b)?;
    let out_shape = bshape(ctx, &a.shape, &bs)?;
    let op = ctx.desc.op_type.as_str();
    let dt = a.dtype();
    if op == "Pow" {
        // The exponent may have another type (opset 12); the result has the base's type.
        let y = b.to_f64_vec();
        let out = dispatch!(num dt, T => {
            let x = a.slice::<T>().expect("dtype matches");
            Array::new(out_shape.clone(), zip2(x, &a.shape, &y, &bs, &out_shape,
                |p, q| T::from_f64(p.to_f64().powf(q))))
        }, else return Err(ctx.err(format!("unsupported type {dt}"))));
        return Ok(vec![out.into()]);
    }
    if b.dtype() != dt {
        return Err(ctx.err(format!("operand types differ: {dt} and {}", b.dtype())));
    }
    let fmod = ctx.int("fmod", 0)? != 0;
    let ff: fn(f64, f64) -> f64 = match op {
        "Add" => |p, q| p + q,
        "Sub" => |p, q| p - q,
        "Mul" => |p, q| p * q,
        "Div" => |p, q| p / q,
        "Mod" if fmod => |p, q| p % q,
        // numpy's `mod`: the result takes the divisor's sign.
        "Mod" => |p, q| {
            let r = p % q;
            if r != 0.0 && (r < 0.0) != (q < 0.0) {
                r + q
            } else {
                r
            }
        },
        _ => return Err(ctx.err("not an arithmetic op")),
    };
    let fi: fn(i128, i128) -> Option<i128> = match op {
        "Add" => |p, q| Some(p + q),
        "Sub" => |p, q| Some(p - q),
        "Mul" => |p, q| Some(p * q),
        "Div" => |p, q| p.checked_div(q),
        _ if fmod => |p, q| p.checked_rem(q),
        // Python-style: the result takes the divisor's sign.
        _ => |p, q| {
            p.checked_rem(q).map(|r| {
                if r != 0 && (r < 0) != (q < 0) {
                    r + q
                } else {
                    r
                }
            })
        },
    };
    let mut div_zero = false;
    let out = dispatch!(num dt, T => {
        let x = a.slice::<T>().expect("dtype matches");
        let y = b.slice::<T>().expect("dtype matches");
        let v: Vec<T> = if T::IS_FLOAT {
            zip2(x, &a.shape, y, &bs, &out_shape, |p, q| T::from_f64(ff(p.to_f64(), q.to_f64())))
        } else {
            zip2(x, &a.shape, y, &bs, &out_shape, |p, q| match fi(p.to_i128(), q.to_i128()) {
                Some(r) => T::from_i128(r),
                None => {
                    div_zero = true;
                    T::default()
                }
            })
        };
        Array::new(out_shape.clone(), v)
    }, else return Err(ctx.err(format!("unsupported type {dt}"))));
    if div_zero {
        return Err(ctx.err("integer division by zero"));
    }
    Ok(vec![out.into()])
}

/// Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or, Xor: boolean results.
pub(crate) fn compare(ctx: &Ctx) -> Result<Vec<crate::value::Val>> {
    let a = ctx.input(0)?;
    let b = ctx.input(1)?;
    if a.dtype() != b.dtype() {
        return Err(ctx.err(format!(
            "operand types differ: {} and {}",
            a.dtype(),
            b.dtype()
        )));
    }
    let bs = legacy_broadcast(ctx, a, b)?;
    let out_shape = bshape(ctx, &a.shape, &bs)?;
    let op = ctx.desc.op_type.as_str();
    let logical = matches!(op, "And" | "Or" | "Xor");
    if logical && a.dtype() != DataType::Bool {
        return Err(ctx.err(format!("not defined for {}", a.dtype())));
    }
    let cmp: fn(std::cmp::Ordering) -> bool = match op {
        "Equal" => |o| o.is_eq(),
        "Less" => |o| o.is_lt(),
        "Greater" => |o| o.is_gt(),
        "LessOrEqual" => |o| o.is_le(),
        "GreaterOrEqual" => |o| o.is_ge(),
        _ => |_| false,
    };
    let v: Vec<bool> = if logical {
        let x = a.slice::<bool>().expect("checked bool");
        let y = b.slice::<bool>().expect("checked bool");
        let f: fn(bool, bool) -> bool = match op {
            "And" => |p, q| p && q,
            "Or" => |p, q| p || q,
            _ => |p, q| p ^ q,
        };
        zip2(x, &a.shape, y, &bs, &out_shape, f)
    } else {
        dispatch!(all a.dtype(), T => {
            let x = a.slice::<T>().expect("dtype matches");
            let y = b.slice::<T>().expect("dtype matches");
            // NaN compares false under every predicate (partial_cmp is None).
            zip2(x, &a.shape, y, &bs, &out_shape, |p, q| p.partial_cmp(&q).is_some_and(cmp))
        }, else return Err(ctx.err(format!("unsupported type {}", a.dtype()))))
    };
    Ok(vec![Array::new(out_shape, v).into()])
}

pub(crate) fn not(ctx: &Ctx) -> Result<Vec<crate::value::Val>> {
    let x = ctx.input(0)?;
    let v = x
        .slice::<bool>()
        .ok_or_else(|| ctx.err(format!("expects bool, not {}", x.dtype())))?;
    Ok(vec![Array::new(
        x.shape.clone(),
        v.iter().map(|b| !b).collect(),
    )
    .into()])
}

/// Sum, Mean, Max, Min over any number of broadcast inputs. Sum and Mean accumulate in f64
/// (i128 for integers) and round once at the end.
pub(crate) fn variadic(ctx: &Ctx) -> Result<Vec<crate::value::Val>> {
    let ins: Vec<&Array> = (0..ctx.inputs.len())
        .filter(|&i| ctx.has(i))
        .map(|i| ctx.input(i))
        .collect::<Result<_>>()?;
    let first = *ins
        .first()
        .ok_or_else(|| ctx.err("needs at least one input"))?;
    let dt = first.dtype();
    let mut shape = first.shape.clone();
    for a in &ins[1..] {
        if a.dtype() != dt {
            return Err(ctx.err(format!("input types differ: {dt} and {}", a.dtype())));
        }
        shape = bshape(ctx, &shape, &a.shape)?;
    }
    let n = numel(&shape);
    let op = ctx.desc.op_type.as_str();
    let out = dispatch!(num dt, T => {
        let v: Vec<T> = match op {
            "Sum" | "Mean" if T::IS_FLOAT => {
                let mut acc = vec![0f64; n];
                for a in &ins {
                    let s = broadcast_strides(&a.shape, &shape);
                    let x = a.slice::<T>().expect("dtype matches");
                    walk(&shape, [&s], |k, [o]| acc[k] += x[o].to_f64());
                }
                let div = if op == "Mean" { ins.len() as f64 } else { 1.0 };
                acc.into_iter().map(|s| T::from_f64(s / div)).collect()
            }
            "Sum" | "Mean" => {
                let mut acc = vec![0i128; n];
                for a in &ins {
                    let s = broadcast_strides(&a.shape, &shape);
                    let x = a.slice::<T>().expect("dtype matches");
                    walk(&shape, [&s], |k, [o]| acc[k] += x[o].to_i128());
                }
                let div = if op == "Mean" { ins.len() as i128 } else { 1 };
                acc.into_iter().map(|s| T::from_i128(s / div)).collect()
            }
            _ => {
                let max = op == "Max";
                let mut acc: Vec<T> = crate::layout::broadcast_to(
                    first.slice::<T>().expect("dtype matches"), &first.shape, &shape);
                for a in &ins[1..] {
                    let s = broadcast_strides(&a.shape, &shape);
                    let x = a.slice::<T>().expect("dtype matches");
                    walk(&shape, [&s], |k, [o]| acc[k] = pick(acc[k], x[o], max));
                }
                acc
            }
        };
        Array::new(shape.clone(), v)
    }, else return Err(ctx.err(format!("unsupported type {dt}"))));
    Ok(vec![out.into()])
}

/// Max or min of two values; NaN wins (numpy's `maximum`).
#[allow(clippy::eq_op, reason = "x != x is the generic NaN test")]
pub(crate) fn pick<T: Elem>(a: T, b: T, max: bool) -> T {
    if a != a {
        a
    } else if b != b || (max && b > a) || (!max && b < a) {
        b
    } else {
        a
    }
}

/// Clip: bounds are attributes before opset 11 and optional scalar inputs from 11.
pub(crate) fn clip(ctx: &Ctx) -> Result<Vec<crate::value::Val>> {
    let x = ctx.input(0)?;
    let dt = x.dtype();
    let (lo, hi) = if ctx.opset < 11 {
        (
            Some(ctx.float("min", f32::NEG_INFINITY)? as f64),
            Some(ctx.float("max", f32::INFINITY)? as f64),
        )
    } else {
        for i in [1, 2] {
            if let Some(b) = ctx.opt_input(i)? {
                if b.dtype() != dt || b.len() != 1 {
                    return Err(ctx.err(format!(
                        "bound {i} must be a one-element {dt} tensor, not {} {:?}",
                        b.dtype(),
                        b.shape
                    )));
                }
            }
        }
        (ctx.opt_scalar_input(1)?, ctx.opt_scalar_input(2)?)
    };
    let out = dispatch!(num dt, T => {
        // Integer bounds arrive exactly (they are one-element tensors of the same type), and
        // float bounds round to T once, as the spec's T-typed bounds would be.
        let lo = lo.map(T::from_f64);
        let hi = hi.map(T::from_f64);
        let v = x.slice::<T>().expect("dtype matches").iter().map(|&e| {
            let e = match lo { Some(l) if e < l => l, _ => e };
            match hi { Some(h) if e > h => h, _ => e }
        }).collect();
        Array::new(x.shape.clone(), v)
    }, else return Err(ctx.err(format!("unsupported type {dt}"))));
    Ok(vec![out.into()])
}

/// PRelu: `x < 0 ? slope * x : x`, with the slope broadcast to `x` (before opset 7 a 1-D slope
/// of length C applies per channel, axis 1).
pub(crate) fn prelu(ctx: &Ctx) -> Result<Vec<crate::value::Val>> {
    let x = ctx.input(0)?;
    let s = ctx.input(1)?;
    if s.dtype() != x.dtype() {
        return Err(ctx.err("slope and input types differ"));
    }
    let mut sshape = s.shape.clone();
    if ctx.opset < 7 && s.rank() == 1 && x.rank() > 2 && s.shape[0] == x.shape[1] {
        sshape = vec![s.shape[0]];
        sshape.extend(std::iter::repeat_n(1, x.rank() - 2));
    }
    let out_shape = bshape(ctx, &x.shape, &sshape)?;
    if out_shape != x.shape {
        return Err(ctx.err(format!(
            "slope {:?} does not broadcast to input {:?}",
            s.shape, x.shape
        )));
    }
    let dt = x.dtype();
    let out = dispatch!(num dt, T => {
        let xv = x.slice::<T>().expect("dtype matches");
        let sv = s.slice::<T>().expect("dtype matches");
        let v = zip2(xv, &x.shape, sv, &sshape, &out_shape, |p, q| {
            if p < T::default() {
                if T::IS_FLOAT { T::from_f64(p.to_f64() * q.to_f64()) }
                else { T::from_i128(p.to_i128() * q.to_i128()) }
            } else {
                p
            }
        });
        Array::new(out_shape.clone(), v)
    }, else return Err(ctx.err(format!("unsupported type {dt}"))));
    Ok(vec![out.into()])
}

/// Where(cond, x, y) with three-way broadcasting.
pub(crate) fn where_op(ctx: &Ctx) -> Result<Vec<crate::value::Val>> {
    let c = ctx.input(0)?;
    let x = ctx.input(1)?;
    let y = ctx.input(2)?;
    let cv = c
        .slice::<bool>()
        .ok_or_else(|| ctx.err("condition must be bool"))?;
    if x.dtype() != y.dtype() {
        return Err(ctx.err("x and y types differ"));
    }
    let shape = bshape(ctx, &bshape(ctx, &c.shape, &x.shape)?, &y.shape)?;
    let (sc, sx, sy) = (
        broadcast_strides(&c.shape, &shape),
        broadcast_strides(&x.shape, &shape),
        broadcast_strides(&y.shape, &shape),
    );
    let out = dispatch!(all x.dtype(), T => {
        let xv = x.slice::<T>().expect("dtype matches");
        let yv = y.slice::<T>().expect("dtype matches");
        let mut v = Vec::with_capacity(numel(&shape));
        walk(&shape, [&sc, &sx, &sy], |_, [i, j, k]| v.push(if cv[i] { xv[j] } else { yv[k] }));
        Array::new(shape.clone(), v)
    }, else return Err(ctx.err(format!("unsupported type {}", x.dtype()))));
    Ok(vec![out.into()])
}

#[cfg(test)]
mod tests {
    use super::erf;

    #[test]
    fn erf_matches_known_values() {
        // Reference values from mpmath.
        for (x, e) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.5, 0.999_593_047_982_555),
            (3.0, 0.999_977_909_503_001_4),
            (4.0, 0.999_999_984_582_742_1),
            (-1.5, -0.966_105_146_475_310_7),
        ] {
            assert!((erf(x) - e).abs() < 1e-14, "erf({x}) = {} vs {e}", erf(x));
        }
    }
}
