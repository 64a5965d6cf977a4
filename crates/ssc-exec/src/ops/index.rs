//! Index-driven ops: ScatterND, ScatterElements and the older Scatter (with the `reduction`
//! attribute: add, mul, max, min), GatherND, OneHot, Trilu and CumSum.
//!
//! Negative indices count from the end of their axis, as the spec allows from opset 11; an
//! index out of range is an error naming it. Scatters apply their updates in index order, so
//! with `reduction=none` the last of duplicate indices wins (the spec leaves that undefined;
//! onnxruntime does the same). Float reductions compute each step in f64 and round once to the
//! element type, integers wrap like C.

use ssc_ir::DataType;

use super::elementwise::pick;
use crate::ctx::{Ctx, Result};
use crate::layout::{numel, strides, unravel};
use crate::value::{dispatch, Array, Elem, Val};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

fn reduction(ctx: &Ctx) -> Result<Reduction> {
    Ok(match ctx.string("reduction", "none")?.as_str() {
        "none" => Reduction::None,
        "add" => Reduction::Add,
        "mul" => Reduction::Mul,
        "max" => Reduction::Max,
        "min" => Reduction::Min,
        other => return Err(ctx.err(format!("unknown reduction `{other}`"))),
    })
}

fn combine<T: Elem>(r: Reduction, a: T, b: T) -> T {
    match r {
        Reduction::None => b,
        Reduction::Add if T::IS_FLOAT => T::from_f64(a.to_f64() + b.to_f64()),
        Reduction::Add => T::from_i128(a.to_i128().wrapping_add(b.to_i128())),
        Reduction::Mul if T::IS_FLOAT => T::from_f64(a.to_f64() * b.to_f64()),
        Reduction::Mul => T::from_i128(a.to_i128().wrapping_mul(b.to_i128())),
        Reduction::Max => pick(a, b, true),
        Reduction::Min => pick(a, b, false),
    }
}

/// An index into an axis of size `dim`, counting back from the end when negative.
fn norm_index(ctx: &Ctx, i: i64, dim: usize) -> Result<usize> {
    let j = if i < 0 { i + dim as i64 } else { i };
    if (0..dim as i64).contains(&j) {
        Ok(j as usize)
    } else {
        Err(ctx.err(format!("index {i} is out of range for an axis of {dim}")))
    }
}

fn int_input(ctx: &Ctx, i: usize, what: &str) -> Result<(Vec<usize>, Vec<i64>)> {
    let a = ctx.input(i)?;
    let v = a
        .to_i64_vec()
        .filter(|_| a.dtype() != DataType::Bool)
        .ok_or_else(|| {
            ctx.err(format!(
                "{what} must be an integer tensor, not {}",
                a.dtype()
            ))
        })?;
    Ok((a.shape.clone(), v))
}

/// Writes `updates[u]` into `data[targets[u]]` under `r`, in order.
fn scatter_into(
    ctx: &Ctx,
    data: &Array,
    updates: &Array,
    targets: &[usize],
    r: Reduction,
) -> Result<Array> {
    if updates.dtype() != data.dtype() {
        return Err(ctx.err(format!(
            "updates are {} but data is {}",
            updates.dtype(),
            data.dtype()
        )));
    }
    let dt = data.dtype();
    if dt == DataType::Bool && matches!(r, Reduction::Add | Reduction::Mul) {
        return Err(ctx.err("add and mul reductions are not defined for bool"));
    }
    Ok(dispatch!(all dt, T => {
        let mut out = data.slice::<T>().expect("dtype").to_vec();
        for (&t, &u) in targets.iter().zip(updates.slice::<T>().expect("dtype")) {
            out[t] = combine(r, out[t], u);
        }
        Array::new(data.shape.clone(), out)
    }, else return Err(ctx.err(format!("unsupported type {dt}")))))
}

/// ScatterND: `indices[..., k]` address slices of `data`'s first `k` axes.
pub(crate) fn scatter_nd(ctx: &Ctx) -> Result<Vec<Val>> {
    let data = ctx.input(0)?;
    let (ishape, ind) = int_input(ctx, 1, "indices")?;
    let updates = ctx.input(2)?;
    let Some((&k, batch)) = ishape.split_last() else {
        return Err(ctx.err("indices must have rank >= 1"));
    };
    if k > data.rank() {
        return Err(ctx.err(format!(
            "index tuples of {k} exceed data rank {}",
            data.rank()
        )));
    }
    let mut want = batch.to_vec();
    want.extend(&data.shape[k..]);
    if updates.shape != want {
        return Err(ctx.err(format!(
            "updates {:?} must have shape {want:?}",
            updates.shape
        )));
    }
    let ds = strides(&data.shape);
    let slice = numel(&data.shape[k..]);
    let mut targets = Vec::with_capacity(updates.len());
    for t in 0..numel(batch) {
        let mut base = 0;
        for (j, &i) in ind[t * k..(t + 1) * k].iter().enumerate() {
            base += norm_index(ctx, i, data.shape[j])? * ds[j];
        }
        targets.extend(base..base + slice);
    }
    let out = scatter_into(ctx, data, updates, &targets, reduction(ctx)?)?;
    Ok(vec![out.into()])
}

/// ScatterElements (and Scatter, its opset 9 name): `data[..., indices[i], ...] = updates[i]`
/// along `axis`.
pub(crate) fn scatter_elements(ctx: &Ctx) -> Result<Vec<Val>> {
    let data = ctx.input(0)?;
    let (ishape, ind) = int_input(ctx, 1, "indices")?;
    let updates = ctx.input(2)?;
    if ishape.len() != data.rank() || updates.shape != ishape {
        return Err(ctx.err(format!(
            "data {:?}, indices {ishape:?} and updates {:?} must have one rank, indices and updates one shape",
            data.shape, updates.shape
        )));
    }
    let axis = ctx.axis(ctx.int("axis", 0)?, data.rank())?;
    let ds = strides(&data.shape);
    let mut at = vec![0; ishape.len()];
    let mut targets = Vec::with_capacity(ind.len());
    for (e, &i) in ind.iter().enumerate() {
        unravel(e, &ishape, &mut at);
        at[axis] = norm_index(ctx, i, data.shape[axis])?;
        if at.iter().zip(&data.shape).any(|(&a, &d)| a >= d) {
            return Err(ctx.err(format!(
                "indices {ishape:?} reach outside data {:?}",
                data.shape
            )));
        }
        targets.push(at.iter().zip(&ds).map(|(a, s)| a * s).sum());
    }
    let out = scatter_into(ctx, data, updates, &targets, reduction(ctx)?)?;
    Ok(vec![out.into()])
}

/// GatherND with `batch_dims`: `indices[..., k]` address slices of `data` after its batch axes.
pub(crate) fn gather_nd(ctx: &Ctx) -> Result<Vec<Val>> {
    let data = ctx.input(0)?;
    let (ishape, ind) = int_input(ctx, 1, "indices")?;
    let b = ctx.int("batch_dims", 0)?;
    let Some(&k) = ishape.last() else {
        return Err(ctx.err("indices must have rank >= 1"));
    };
    let b = usize::try_from(b)
        .ok()
        .filter(|&b| b < ishape.len() && b + k <= data.rank())
        .ok_or_else(|| {
            ctx.err(format!(
                "batch_dims {b} with index tuples of {k} do not fit data {:?} and indices {ishape:?}",
                data.shape
            ))
        })?;
    if data.shape[..b] != ishape[..b] {
        return Err(ctx.err(format!(
            "the batch axes of data {:?} and indices {ishape:?} differ",
            data.shape
        )));
    }
    let ds = strides(&data.shape);
    let slice = numel(&data.shape[b + k..]);
    let per_batch = numel(&ishape[b..ishape.len() - 1]);
    let batch_stride = numel(&data.shape[b..]);
    let mut idx = Vec::new();
    for t in 0..numel(&ishape[..ishape.len() - 1]) {
        let mut base = (t / per_batch.max(1)) * batch_stride;
        for (j, &i) in ind[t * k..(t + 1) * k].iter().enumerate() {
            base += norm_index(ctx, i, data.shape[b + j])? * ds[b + j];
        }
        idx.extend(base..base + slice);
    }
    let mut shape = ishape[..ishape.len() - 1].to_vec();
    shape.extend(&data.shape[b + k..]);
    Ok(vec![data.take(shape, &idx, None).into()])
}

/// OneHot: `values[1]` where `indices` (counting back from `depth` when negative) hits the new
/// axis, `values[0]` elsewhere.
pub(crate) fn one_hot(ctx: &Ctx) -> Result<Vec<Val>> {
    let ind = ctx.input(0)?;
    let depth = ctx
        .opt_scalar_input(1)?
        .ok_or_else(|| ctx.err("missing depth"))?;
    let values = ctx.input(2)?;
    if values.len() != 2 {
        return Err(ctx.err(format!("values {:?} must hold [off, on]", values.shape)));
    }
    if depth.is_nan() || depth < 1.0 {
        return Err(ctx.err(format!("depth {depth} must be at least 1")));
    }
    let depth = depth as usize;
    let r = ind.rank();
    let axis = crate::layout::norm_axis(ctx.int("axis", -1)?, r + 1)
        .ok_or_else(|| ctx.err(format!("axis is out of range for rank {}", r + 1)))?;
    // Float indices truncate toward zero, as a cast to int64 does.
    let iv: Vec<i64> = ind.to_f64_vec().iter().map(|&v| v as i64).collect();
    let outer = numel(&ind.shape[..axis]);
    let inner = numel(&ind.shape[axis..]);
    let mut shape = ind.shape[..axis].to_vec();
    shape.push(depth);
    shape.extend(&ind.shape[axis..]);
    let d = depth as i64;
    let mut pick_idx = vec![0usize; outer * depth * inner];
    for o in 0..outer {
        for j in 0..inner {
            let v = iv[o * inner + j];
            let hot = if v < 0 { v + d } else { v };
            if (0..d).contains(&hot) {
                pick_idx[(o * depth + hot as usize) * inner + j] = 1;
            }
        }
    }
    let flat = values.reshaped(vec![2]);
    Ok(vec![flat.take(shape, &pick_idx, None).into()])
}

/// Trilu: keeps the upper (`j - i >= k`) or lower (`j - i <= k`) triangle of the last two
/// axes, zeroing the rest.
pub(crate) fn trilu(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    if x.rank() < 2 {
        return Err(ctx.err(format!("input {:?} must have rank >= 2", x.shape)));
    }
    let k = match ctx.opt_ints_input(1)? {
        None => 0,
        Some(v) if v.len() == 1 => v[0],
        Some(v) => return Err(ctx.err(format!("k must be one value, not {v:?}"))),
    };
    let upper = ctx.int("upper", 1)? != 0;
    let (n, m) = (x.shape[x.rank() - 2], x.shape[x.rank() - 1]);
    let idx: Vec<usize> = (0..x.len())
        .map(|e| {
            let (i, j) = (((e / m) % n) as i64, (e % m) as i64);
            let keep = if upper { j - i >= k } else { j - i <= k };
            if keep {
                e
            } else {
                crate::value::FILL
            }
        })
        .collect();
    Ok(vec![x.take(x.shape.clone(), &idx, None).into()])
}

/// CumSum along `axis` (a scalar input), optionally `exclusive` and/or `reverse`. Floats sum in
/// f64 and round each output once; integers wrap.
pub(crate) fn cum_sum(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let axis = match ctx.opt_ints_input(1)? {
        Some(v) if v.len() == 1 => v[0],
        _ => return Err(ctx.err("axis must be one integer")),
    };
    if x.rank() == 0 {
        return Err(ctx.err("input must have rank >= 1"));
    }
    let a = ctx.axis(axis, x.rank())?;
    let exclusive = ctx.int("exclusive", 0)? != 0;
    let reverse = ctx.int("reverse", 0)? != 0;
    let n = x.shape[a];
    let inner = numel(&x.shape[a + 1..]);
    let outer = numel(&x.shape[..a]);
    let dt = x.dtype();
    let out = dispatch!(num dt, T => {
        let v = x.slice::<T>().expect("dtype");
        let mut out = vec![T::default(); v.len()];
        for o in 0..outer {
            for j in 0..inner {
                let (mut fsum, mut isum) = (0f64, 0i128);
                for s in 0..n {
                    let t = if reverse { n - 1 - s } else { s };
                    let e = (o * n + t) * inner + j;
                    if exclusive {
                        out[e] = if T::IS_FLOAT { T::from_f64(fsum) } else { T::from_i128(isum) };
                    }
                    fsum += v[e].to_f64();
                    isum = isum.wrapping_add(v[e].to_i128());
                    if !exclusive {
                        out[e] = if T::IS_FLOAT { T::from_f64(fsum) } else { T::from_i128(isum) };
                    }
                }
            }
        }
        Array::new(x.shape.clone(), out)
    }, else return Err(ctx.err(format!("unsupported type {dt}"))));
    Ok(vec![out.into()])
}
