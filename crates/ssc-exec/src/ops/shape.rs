//! Shape and data-movement ops: Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
//! Expand, Tile, Concat, Split, Slice, Gather, GatherElements and Pad. Each computes, for every
//! output element, the input element it copies ([`Array::take`]), so the typed code lives once.

use crate::ctx::{Ctx, Result};
use crate::layout::{broadcast_shape, numel, strides, unravel, walk};
use crate::value::{Array, Val, FILL};

fn one(a: Array) -> Result<Vec<Val>> {
    Ok(vec![a.into()])
}

/// Shape (opset 15 `start`/`end`, clamped as Python slices are).
pub(crate) fn shape(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let r = x.rank() as i64;
    let clamp = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) } as usize;
    let start = clamp(ctx.int("start", 0)?);
    let end = clamp(ctx.int("end", r)?);
    let dims: Vec<i64> = x.shape[start..end.max(start)]
        .iter()
        .map(|&d| d as i64)
        .collect();
    one(Array::new(vec![dims.len()], dims))
}

pub(crate) fn size(ctx: &Ctx) -> Result<Vec<Val>> {
    one(Array::scalar(ctx.input(0)?.len() as i64))
}

/// Resolves a Reshape target: `0` copies the input dim (unless `allowzero=1`, opset 14), one
/// `-1` is inferred.
fn reshape_target(ctx: &Ctx, x: &Array, spec: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*x.shape.get(i).ok_or_else(|| {
                ctx.err(format!(
                    "shape {spec:?}: dim {i} copies a dim the input lacks"
                ))
            })?),
            d if d >= 0 => out.push(d as usize),
            _ => return Err(ctx.err(format!("invalid shape {spec:?}"))),
        }
    }
    if let Some(i) = infer {
        let known = numel(&out);
        if known == 0 || !x.len().is_multiple_of(known) {
            return Err(ctx.err(format!("cannot reshape {:?} to {spec:?}", x.shape)));
        }
        out[i] = x.len() / known;
    }
    if numel(&out) != x.len() {
        return Err(ctx.err(format!("cannot reshape {:?} to {spec:?}", x.shape)));
    }
    Ok(out)
}

pub(crate) fn reshape(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let spec = if ctx.opset < 5 {
        ctx.ints("shape")?
            .ok_or_else(|| ctx.err("missing `shape` attribute"))?
    } else {
        ctx.opt_ints_input(1)?
            .ok_or_else(|| ctx.err("missing shape input"))?
    };
    let allowzero = ctx.opset >= 14 && ctx.int("allowzero", 0)? != 0;
    let s = reshape_target(ctx, x, &spec, allowzero)?;
    one(x.reshaped(s))
}

pub(crate) fn flatten(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let r = x.rank() as i64;
    let a = ctx.int("axis", 1)?;
    let a = if a < 0 { a + r } else { a };
    if !(0..=r).contains(&a) {
        return Err(ctx.err(format!("axis {a} is out of range for rank {r}")));
    }
    let a = a as usize;
    one(x.reshaped(vec![numel(&x.shape[..a]), numel(&x.shape[a..])]))
}

/// The `axes` of Squeeze/Unsqueeze: an attribute before opset 13, an input from 13.
fn axes_arg(ctx: &Ctx) -> Result<Option<Vec<i64>>> {
    if ctx.opset >= 13 {
        ctx.opt_ints_input(1)
    } else {
        ctx.ints("axes")
    }
}

pub(crate) fn squeeze(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let mut drop = vec![false; x.rank()];
    // An empty axes list means "not given": squeeze every unit dim.
    match axes_arg(ctx)?.filter(|a| !a.is_empty()) {
        None => {
            for (d, &n) in drop.iter_mut().zip(&x.shape) {
                *d = n == 1;
            }
        }
        Some(axes) => {
            for a in axes {
                let a = ctx.axis(a, x.rank())?;
                if x.shape[a] != 1 {
                    return Err(ctx.err(format!("cannot squeeze axis {a} of shape {:?}", x.shape)));
                }
                drop[a] = true;
            }
        }
    }
    let s = x
        .shape
        .iter()
        .zip(&drop)
        .filter(|(_, &d)| !d)
        .map(|(&n, _)| n)
        .collect();
    one(x.reshaped(s))
}

pub(crate) fn unsqueeze(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let axes = axes_arg(ctx)?.ok_or_else(|| ctx.err("missing axes"))?;
    let r = x.rank() + axes.len();
    let mut ins = vec![false; r];
    for a in axes {
        let a = ctx.axis(a, r)?;
        if ins[a] {
            return Err(ctx.err(format!("axis {a} is repeated")));
        }
        ins[a] = true;
    }
    let mut src = x.shape.iter();
    let s = ins
        .iter()
        .map(|&i| if i { 1 } else { *src.next().expect("counted") })
        .collect();
    one(x.reshaped(s))
}

pub(crate) fn transpose(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let r = x.rank();
    let perm: Vec<usize> = match ctx.ints("perm")? {
        None => (0..r).rev().collect(),
        Some(p) => {
            let mut seen = vec![false; r];
            for &a in &p {
                if a < 0 || a as usize >= r || seen[a as usize] {
                    return Err(ctx.err(format!("perm {p:?} is not a permutation of 0..{r}")));
                }
                seen[a as usize] = true;
            }
            if p.len() != r {
                return Err(ctx.err(format!("perm {p:?} is not a permutation of 0..{r}")));
            }
            p.iter().map(|&a| a as usize).collect()
        }
    };
    let out: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let xs = strides(&x.shape);
    let s: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
    let mut idx = Vec::with_capacity(x.len());
    walk(&out, [&s], |_, [o]| idx.push(o));
    one(x.take(out, &idx, None))
}

/// Reads `x` as an array of `view` (same element count), permutes its axes by `perm` and
/// returns the result with shape `out` (the permuted view's element count).
fn permute_view(x: &Array, view: &[usize], perm: &[usize], out: Vec<usize>) -> Array {
    let vs = strides(view);
    let pshape: Vec<usize> = perm.iter().map(|&p| view[p]).collect();
    let ps: Vec<usize> = perm.iter().map(|&p| vs[p]).collect();
    let mut idx = Vec::with_capacity(x.len());
    walk(&pshape, [&ps], |_, [o]| idx.push(o));
    x.take(out, &idx, None)
}

/// DepthToSpace (modes DCR and CRD) and SpaceToDepth on N x C x H x W.
pub(crate) fn depth_space(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let b = ctx.int("blocksize", 0)?;
    if x.rank() != 4 || b < 1 {
        return Err(ctx.err(format!(
            "needs a 4-D input and a positive blocksize, not {:?} and {b}",
            x.shape
        )));
    }
    let b = b as usize;
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    if ctx.desc.op_type == "SpaceToDepth" {
        if h % b != 0 || w % b != 0 {
            return Err(ctx.err(format!("{:?} is not divisible by blocksize {b}", x.shape)));
        }
        let view = [n, c, h / b, b, w / b, b];
        // Mode (opset 25) as for DepthToSpace: DCR puts the block offset outermost.
        let perm = match ctx.string("mode", "DCR")?.as_str() {
            "DCR" => [0, 3, 5, 1, 2, 4],
            "CRD" => [0, 1, 3, 5, 2, 4],
            other => return Err(ctx.err(format!("unknown mode `{other}`"))),
        };
        return one(permute_view(
            x,
            &view,
            &perm,
            vec![n, c * b * b, h / b, w / b],
        ));
    }
    if c % (b * b) != 0 {
        return Err(ctx.err(format!("{c} channels do not divide by blocksize^2")));
    }
    let co = c / (b * b);
    let out = vec![n, co, h * b, w * b];
    match ctx.string("mode", "DCR")?.as_str() {
        "DCR" => one(permute_view(
            x,
            &[n, b, b, co, h, w],
            &[0, 3, 4, 1, 5, 2],
            out,
        )),
        "CRD" => one(permute_view(
            x,
            &[n, co, b, b, h, w],
            &[0, 1, 4, 2, 5, 3],
            out,
        )),
        other => Err(ctx.err(format!("unknown mode `{other}`"))),
    }
}

/// Materialises `x` broadcast to `out`, which must be a broadcast of its shape.
fn broadcast_array(x: &Array, out: Vec<usize>) -> Array {
    let s = crate::layout::broadcast_strides(&x.shape, &out);
    let mut idx = Vec::with_capacity(numel(&out));
    walk(&out, [&s], |_, [o]| idx.push(o));
    x.take(out, &idx, None)
}

pub(crate) fn expand(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let spec = ctx
        .opt_ints_input(1)?
        .ok_or_else(|| ctx.err("missing shape"))?;
    if spec.iter().any(|&d| d < 0) {
        return Err(ctx.err(format!("invalid shape {spec:?}")));
    }
    let spec: Vec<usize> = spec.iter().map(|&d| d as usize).collect();
    let out = broadcast_shape(&x.shape, &spec)
        .ok_or_else(|| ctx.err(format!("{:?} does not broadcast with {spec:?}", x.shape)))?;
    one(broadcast_array(x, out))
}

pub(crate) fn tile(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let reps = ctx
        .opt_ints_input(1)?
        .ok_or_else(|| ctx.err("missing repeats"))?;
    if reps.len() != x.rank() || reps.iter().any(|&r| r < 0) {
        return Err(ctx.err(format!(
            "repeats {reps:?} must be {} non-negative values",
            x.rank()
        )));
    }
    let out: Vec<usize> = x
        .shape
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| d * r as usize)
        .collect();
    let xs = strides(&x.shape);
    let mut oi = vec![0; out.len()];
    let idx: Vec<usize> = (0..numel(&out))
        .map(|k| {
            unravel(k, &out, &mut oi);
            oi.iter()
                .zip(&x.shape)
                .zip(&xs)
                .map(|((&o, &d), &s)| (o % d) * s)
                .sum()
        })
        .collect();
    one(x.take(out, &idx, None))
}

pub(crate) fn concat(ctx: &Ctx) -> Result<Vec<Val>> {
    let ins: Vec<&Array> = (0..ctx.inputs.len())
        .filter(|&i| ctx.has(i))
        .map(|i| ctx.input(i))
        .collect::<Result<_>>()?;
    let first = *ins
        .first()
        .ok_or_else(|| ctx.err("needs at least one input"))?;
    if ctx.opset >= 4 && !ctx.has_attr("axis") {
        return Err(ctx.err("missing axis"));
    }
    let axis = ctx.axis(ctx.int("axis", 1)?, first.rank())?;
    concat_arrays(ctx, &ins, axis).map(|a| vec![a.into()])
}

/// Joins arrays along `axis`; all other dims and the element type must agree.
pub(crate) fn concat_arrays(ctx: &Ctx, ins: &[&Array], axis: usize) -> Result<Array> {
    let first = ins[0];
    for a in ins {
        if a.dtype() != first.dtype() || a.rank() != first.rank() {
            return Err(ctx.err("inputs differ in type or rank"));
        }
        for d in 0..a.rank() {
            if d != axis && a.shape[d] != first.shape[d] {
                return Err(ctx.err(format!(
                    "shapes {:?} and {:?} differ outside axis {axis}",
                    first.shape, a.shape
                )));
            }
        }
    }
    let outer = numel(&first.shape[..axis]);
    let inner = numel(&first.shape[axis + 1..]);
    let mut shape = first.shape.clone();
    shape[axis] = ins.iter().map(|a| a.shape[axis]).sum();
    // Flatten all inputs into one index space: input j occupies [base_j, base_j + len_j).
    let mut bases = Vec::with_capacity(ins.len());
    let mut base = 0;
    for a in ins {
        bases.push(base);
        base += a.len();
    }
    let mut idx = Vec::with_capacity(numel(&shape));
    for o in 0..outer {
        for (a, &b) in ins.iter().zip(&bases) {
            let chunk = a.shape[axis] * inner;
            idx.extend(b + o * chunk..b + (o + 1) * chunk);
        }
    }
    let all = concat_flat(ins);
    Ok(all.take(shape, &idx, None))
}

/// Every element of `ins`, one after another, in one 1-D array.
fn concat_flat(ins: &[&Array]) -> Array {
    let mut data = ins[0].data.clone();
    for a in &ins[1..] {
        use crate::value::Data::*;
        match (&mut data, &a.data) {
            (F32(d), F32(s)) => d.extend_from_slice(s),
            (F64(d), F64(s)) => d.extend_from_slice(s),
            (F16(d), F16(s)) => d.extend_from_slice(s),
            (BF16(d), BF16(s)) => d.extend_from_slice(s),
            (I8(d), I8(s)) => d.extend_from_slice(s),
            (I16(d), I16(s)) => d.extend_from_slice(s),
            (I32(d), I32(s)) => d.extend_from_slice(s),
            (I64(d), I64(s)) => d.extend_from_slice(s),
            (U8(d), U8(s)) => d.extend_from_slice(s),
            (U16(d), U16(s)) => d.extend_from_slice(s),
            (U32(d), U32(s)) => d.extend_from_slice(s),
            (U64(d), U64(s)) => d.extend_from_slice(s),
            (Bool(d), Bool(s)) => d.extend_from_slice(s),
            _ => unreachable!("types checked by the caller"),
        }
    }
    let n = data.len();
    Array {
        shape: vec![n],
        data,
    }
}

/// The part of `x` with index in `[start, start + len)` along `axis`.
pub(crate) fn narrow(x: &Array, axis: usize, start: usize, len: usize) -> Array {
    let outer = numel(&x.shape[..axis]);
    let inner = numel(&x.shape[axis + 1..]);
    let n = x.shape[axis];
    let mut idx = Vec::with_capacity(outer * len * inner);
    for o in 0..outer {
        idx.extend((o * n + start) * inner..(o * n + start + len) * inner);
    }
    let mut shape = x.shape.clone();
    shape[axis] = len;
    x.take(shape, &idx, None)
}

/// Split sizes: the `split` input (opset 13) or attribute, else `num_outputs` (opset 18) or
/// the number of outputs, in equal parts (the last one smaller when uneven, opset 18).
pub(crate) fn split_sizes(
    ctx: &Ctx,
    dim: usize,
    given: Option<Vec<i64>>,
    parts: usize,
) -> Result<Vec<usize>> {
    if let Some(s) = given {
        if s.iter().any(|&v| v < 0) || s.iter().sum::<i64>() as usize != dim {
            return Err(ctx.err(format!("split {s:?} does not add up to {dim}")));
        }
        return Ok(s.iter().map(|&v| v as usize).collect());
    }
    if parts == 0 {
        return Err(ctx.err("no outputs to split into"));
    }
    if dim.is_multiple_of(parts) {
        return Ok(vec![dim / parts; parts]);
    }
    if ctx.opset < 18 {
        return Err(ctx.err(format!("{dim} does not split into {parts} equal parts")));
    }
    let chunk = dim.div_ceil(parts);
    let mut v = vec![chunk; parts];
    let last = dim
        .checked_sub(chunk * (parts - 1))
        .ok_or_else(|| ctx.err(format!("{dim} does not split into {parts} parts")))?;
    v[parts - 1] = last;
    Ok(v)
}

pub(crate) fn split(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let axis = ctx.axis(ctx.int("axis", 0)?, x.rank())?;
    let given = if ctx.opset >= 13 || ctx.has(1) {
        ctx.opt_ints_input(1)?
    } else {
        ctx.ints("split")?
    };
    let parts = match ctx.int("num_outputs", 0)? {
        0 => ctx.n_out,
        n => n as usize,
    };
    let sizes = split_sizes(ctx, x.shape[axis], given, parts)?;
    let mut start = 0;
    let mut outs = Vec::with_capacity(sizes.len());
    for len in sizes {
        outs.push(narrow(x, axis, start, len).into());
        start += len;
    }
    Ok(outs)
}

/// Slice: `starts`/`ends`/`axes` attributes before opset 10, inputs (plus `steps`) from 10.
/// Negative indices count from the end; bounds clamp as numpy's do.
pub(crate) fn slice(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let (starts, ends, axes, steps) = if ctx.opset < 10 {
        (
            ctx.ints("starts")?,
            ctx.ints("ends")?,
            ctx.ints("axes")?,
            None,
        )
    } else {
        (
            ctx.opt_ints_input(1)?,
            ctx.opt_ints_input(2)?,
            ctx.opt_ints_input(3)?,
            ctx.opt_ints_input(4)?,
        )
    };
    let starts = starts.ok_or_else(|| ctx.err("missing starts"))?;
    let ends = ends.ok_or_else(|| ctx.err("missing ends"))?;
    let n = starts.len();
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        return Err(ctx.err("starts, ends, axes and steps differ in length"));
    }
    let r = x.rank();
    // Per dim: (start, step, count).
    let mut plan: Vec<(i64, i64, usize)> = x.shape.iter().map(|&d| (0, 1, d)).collect();
    let mut seen = vec![false; r];
    for i in 0..n {
        let a = ctx.axis(axes[i], r)?;
        if seen[a] {
            return Err(ctx.err(format!("axis {a} is repeated")));
        }
        seen[a] = true;
        let dim = x.shape[a] as i64;
        let step = steps[i];
        if step == 0 {
            return Err(ctx.err("steps must be non-zero"));
        }
        let fix = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        let (s, e) = (fix(starts[i]), fix(ends[i]));
        let (s, e) = if step > 0 {
            (s.clamp(0, dim), e.clamp(0, dim))
        } else {
            (s.clamp(0, dim - 1), e.clamp(-1, dim - 1))
        };
        let count = if step > 0 {
            if e > s {
                (e - s + step - 1) / step
            } else {
                0
            }
        } else if s > e {
            (s - e + (-step) - 1) / (-step)
        } else {
            0
        };
        plan[a] = (s, step, count as usize);
    }
    let out: Vec<usize> = plan.iter().map(|p| p.2).collect();
    let xs = strides(&x.shape);
    let mut oi = vec![0; r];
    let idx: Vec<usize> = (0..numel(&out))
        .map(|k| {
            unravel(k, &out, &mut oi);
            (0..r)
                .map(|d| (plan[d].0 + oi[d] as i64 * plan[d].1) as usize * xs[d])
                .sum()
        })
        .collect();
    one(x.take(out, &idx, None))
}

/// Normalises possibly negative indices against `dim`.
fn fix_indices(ctx: &Ctx, ind: &[i64], dim: usize) -> Result<Vec<usize>> {
    ind.iter()
        .map(|&i| {
            let j = if i < 0 { i + dim as i64 } else { i };
            if (0..dim as i64).contains(&j) {
                Ok(j as usize)
            } else {
                Err(ctx.err(format!("index {i} is out of range for dim {dim}")))
            }
        })
        .collect()
}

pub(crate) fn gather(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let ind = ctx.input(1)?;
    if x.rank() == 0 {
        return Err(ctx.err("data must have rank >= 1"));
    }
    let axis = ctx.axis(ctx.int("axis", 0)?, x.rank())?;
    let iv = ind
        .to_i64_vec()
        .ok_or_else(|| ctx.err("indices must be integers"))?;
    let iv = fix_indices(ctx, &iv, x.shape[axis])?;
    let outer = numel(&x.shape[..axis]);
    let inner = numel(&x.shape[axis + 1..]);
    let n = x.shape[axis];
    let mut idx = Vec::with_capacity(outer * iv.len() * inner);
    for o in 0..outer {
        for &i in &iv {
            idx.extend((o * n + i) * inner..(o * n + i + 1) * inner);
        }
    }
    let mut shape = x.shape[..axis].to_vec();
    shape.extend(&ind.shape);
    shape.extend(&x.shape[axis + 1..]);
    one(x.take(shape, &idx, None))
}

pub(crate) fn gather_elements(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let ind = ctx.input(1)?;
    if ind.rank() != x.rank() || x.rank() == 0 {
        return Err(ctx.err("data and indices must have the same rank >= 1"));
    }
    let axis = ctx.axis(ctx.int("axis", 0)?, x.rank())?;
    let iv = ind
        .to_i64_vec()
        .ok_or_else(|| ctx.err("indices must be integers"))?;
    let iv = fix_indices(ctx, &iv, x.shape[axis])?;
    let xs = strides(&x.shape);
    let mut oi = vec![0; x.rank()];
    let mut idx = Vec::with_capacity(iv.len());
    for (k, &i) in iv.iter().enumerate() {
        unravel(k, &ind.shape, &mut oi);
        oi[axis] = i;
        if oi.iter().zip(&x.shape).any(|(&o, &d)| o >= d) {
            return Err(ctx.err("indices shape exceeds data shape"));
        }
        idx.push(oi.iter().zip(&xs).map(|(&o, &s)| o * s).sum());
    }
    one(x.take(ind.shape.clone(), &idx, None))
}

/// Pad: `pads` (and `mode`, `value`) attributes before opset 11; `pads`, `constant_value` and
/// (opset 18) `axes` inputs from 11. Negative pads crop. Modes: constant, reflect, edge, wrap.
pub(crate) fn pad(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let r = x.rank();
    let mode = ctx.string("mode", "constant")?;
    let (pads, fill, axes) = if ctx.opset < 11 {
        let p = match ctx.ints("pads")? {
            Some(p) => p,
            None => ctx
                .ints("paddings")?
                .ok_or_else(|| ctx.err("missing pads"))?,
        };
        let v = ctx.float("value", 0.0)? as f64;
        let fill = crate::value::Array::new(vec![1], vec![v])
            .cast(x.dtype())
            .ok_or_else(|| ctx.err("bad fill type"))?;
        (p, Some(fill), None)
    } else {
        let p = ctx
            .opt_ints_input(1)?
            .ok_or_else(|| ctx.err("missing pads"))?;
        let fill = match ctx.opt_input(2)? {
            Some(c) if c.len() == 1 && c.dtype() == x.dtype() => Some(c.clone()),
            Some(c) => {
                return Err(ctx.err(format!(
                    "constant_value must be one {} element, not {} {:?}",
                    x.dtype(),
                    c.dtype(),
                    c.shape
                )))
            }
            None => None,
        };
        (p, fill, ctx.opt_ints_input(3)?)
    };
    let axes: Vec<usize> = match axes {
        None => (0..r).collect(),
        Some(a) => a.iter().map(|&v| ctx.axis(v, r)).collect::<Result<_>>()?,
    };
    if pads.len() != 2 * axes.len() {
        return Err(ctx.err(format!("pads {pads:?} must have {} values", 2 * axes.len())));
    }
    let mut begin = vec![0i64; r];
    let mut end = vec![0i64; r];
    for (i, &a) in axes.iter().enumerate() {
        begin[a] = pads[i];
        end[a] = pads[axes.len() + i];
    }
    // Per dim, the source index of each output index (FILL for constant padding).
    let mut maps: Vec<Vec<usize>> = Vec::with_capacity(r);
    for d in 0..r {
        let n = x.shape[d] as i64;
        let len = n + begin[d] + end[d];
        if len < 0 {
            return Err(ctx.err(format!("pads crop dim {d} below zero")));
        }
        let mut m = Vec::with_capacity(len as usize);
        for o in 0..len {
            let i = o - begin[d];
            let src = if (0..n).contains(&i) {
                i as usize
            } else if n == 0 && mode != "constant" {
                return Err(ctx.err(format!("cannot {mode}-pad an empty dim")));
            } else {
                match mode.as_str() {
                    "constant" => FILL,
                    "edge" => i.clamp(0, n - 1) as usize,
                    "wrap" => i.rem_euclid(n) as usize,
                    "reflect" => {
                        if n == 1 {
                            0
                        } else {
                            let period = 2 * (n - 1);
                            let k = i.rem_euclid(period);
                            (if k < n { k } else { period - k }) as usize
                        }
                    }
                    other => return Err(ctx.err(format!("unknown mode `{other}`"))),
                }
            };
            m.push(src);
        }
        maps.push(m);
    }
    let out: Vec<usize> = maps.iter().map(Vec::len).collect();
    let xs = strides(&x.shape);
    let mut oi = vec![0; r];
    let idx: Vec<usize> = (0..numel(&out))
        .map(|k| {
            unravel(k, &out, &mut oi);
            let mut off = 0;
            for d in 0..r {
                let s = maps[d][oi[d]];
                if s == FILL {
                    return FILL;
                }
                off += s * xs[d];
            }
            off
        })
        .collect();
    one(x.take(out, &idx, fill.as_ref()))
}
