//! MaxPool (with the optional Indices output), AveragePool, LpPool and their Global forms, in
//! any number of spatial dimensions.
//!
//! Averages and Lp norms accumulate in f64. `count_include_pad` counts the window positions
//! inside the explicit padding but never those beyond it that only `ceil_mode` windows reach
//! (PyTorch's and onnxruntime's rule).

use super::window::{geometry, index_table, OUTSIDE, PAD};
use crate::ctx::{Ctx, Result};
use crate::layout::{numel, unravel};
use crate::value::{dispatch, Array, Elem, Val};

/// Splits `x` into (batch * channels, spatial shape), checking the rank.
fn planes<'a>(ctx: &Ctx, x: &'a Array) -> Result<(usize, &'a [usize])> {
    if x.rank() < 3 {
        return Err(ctx.err(format!(
            "input must be N x C x spatial..., not {:?}",
            x.shape
        )));
    }
    Ok((x.shape[0] * x.shape[1], &x.shape[2..]))
}

fn kernel_shape(ctx: &Ctx, spatial: usize) -> Result<Vec<usize>> {
    let k = ctx
        .ints("kernel_shape")?
        .ok_or_else(|| ctx.err("missing kernel_shape"))?;
    if k.len() != spatial || k.iter().any(|&v| v < 1) {
        return Err(ctx.err(format!(
            "kernel_shape {k:?} does not fit {spatial} spatial dims"
        )));
    }
    Ok(k.iter().map(|&v| v as usize).collect())
}

fn out_shape(x: &Array, spatial: &[usize]) -> Vec<usize> {
    let mut s = x.shape[..2].to_vec();
    s.extend(spatial);
    s
}

#[allow(clippy::eq_op, reason = "v != v is the generic NaN test")]
pub(crate) fn max_pool(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let (np, sp) = planes(ctx, x)?;
    let kernel = kernel_shape(ctx, sp.len())?;
    let g = geometry(ctx, sp, &kernel, ctx.int("ceil_mode", 0)? != 0)?;
    let table = index_table(&g.out, sp, &g);
    let (kn, on, plane) = (numel(&kernel), numel(&g.out), numel(sp));
    let want_idx = ctx.n_out > 1;
    let col_major = ctx.int("storage_order", 0)? != 0;
    // Index of a spatial offset in column-major order, for storage_order=1.
    let to_col_major = |off: usize| {
        let mut idx = vec![0; sp.len()];
        unravel(off, sp, &mut idx);
        let mut r = 0;
        let mut m = 1;
        for d in 0..sp.len() {
            r += idx[d] * m;
            m *= sp[d];
        }
        r
    };
    let mut indices = Vec::with_capacity(if want_idx { np * on } else { 0 });
    let dt = x.dtype();
    let y = dispatch!(num dt, T => {
        let xv = x.slice::<T>().expect("dtype matches");
        let mut y = Vec::with_capacity(np * on);
        for p in 0..np {
            let xp = &xv[p * plane..(p + 1) * plane];
            for o in 0..on {
                let mut best: Option<(T, usize)> = None;
                for k in 0..kn {
                    let off = table[k * on + o];
                    if off >= PAD {
                        continue;
                    }
                    let v = xp[off];
                    let better = match best {
                        None => true,
                        // NaN propagates: once taken it is kept, and it displaces any number.
                        Some((b, _)) => b == b && (v != v || v > b),
                    };
                    if better {
                        best = Some((v, off));
                    }
                }
                let (v, off) = best.unwrap_or((T::from_f64(f64::NEG_INFINITY), usize::MAX));
                y.push(v);
                if want_idx {
                    indices.push(if off == usize::MAX {
                        -1
                    } else if col_major {
                        (p * plane + to_col_major(off)) as i64
                    } else {
                        (p * plane + off) as i64
                    });
                }
            }
        }
        Array::new(out_shape(x, &g.out), y)
    }, else return Err(ctx.err(format!("unsupported type {dt}"))));
    let mut outs = vec![Val::from(y)];
    if want_idx {
        outs.push(Array::new(out_shape(x, &g.out), indices).into());
    }
    Ok(outs)
}

/// AveragePool and LpPool.
pub(crate) fn avg_lp_pool(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let (np, sp) = planes(ctx, x)?;
    let kernel = kernel_shape(ctx, sp.len())?;
    let lp = ctx.desc.op_type == "LpPool";
    let p = ctx.int("p", 2)? as f64;
    let include_pad = !lp && ctx.int("count_include_pad", 0)? != 0;
    let g = geometry(ctx, sp, &kernel, ctx.int("ceil_mode", 0)? != 0)?;
    let table = index_table(&g.out, sp, &g);
    let (kn, on, plane) = (numel(&kernel), numel(&g.out), numel(sp));
    let dt = x.dtype();
    let y = dispatch!(float dt, T => {
        let xv = x.slice::<T>().expect("dtype matches");
        let mut y = Vec::with_capacity(np * on);
        for pl in 0..np {
            let xp = &xv[pl * plane..(pl + 1) * plane];
            for o in 0..on {
                let mut sum = 0f64;
                let mut count = 0usize;
                for k in 0..kn {
                    match table[k * on + o] {
                        OUTSIDE => {}
                        PAD => count += include_pad as usize,
                        off => {
                            let v = xp[off].to_f64();
                            sum += if lp { v.abs().powf(p) } else { v };
                            count += 1;
                        }
                    }
                }
                y.push(T::from_f64(if lp { sum.powf(1.0 / p) } else { sum / count as f64 }));
            }
        }
        Array::new(out_shape(x, &g.out), y)
    }, else return Err(ctx.err(format!("expects a float tensor, not {dt}"))));
    Ok(vec![y.into()])
}

/// GlobalAveragePool, GlobalMaxPool, GlobalLpPool: one window over all spatial dims.
pub(crate) fn global_pool(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let (np, sp) = planes(ctx, x)?;
    let plane = numel(sp);
    let op = ctx.desc.op_type.as_str();
    let p = ctx.int("p", 2)? as f64;
    let mut shape = x.shape[..2].to_vec();
    shape.extend(std::iter::repeat_n(1, sp.len()));
    let dt = x.dtype();
    let y = dispatch!(float dt, T => {
        let xv = x.slice::<T>().expect("dtype matches");
        let y: Vec<T> = (0..np).map(|pl| {
            let xp = &xv[pl * plane..(pl + 1) * plane];
            T::from_f64(match op {
                "GlobalMaxPool" => xp.iter().map(|v| v.to_f64()).fold(f64::NEG_INFINITY, |a, b| {
                    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
                }),
                "GlobalLpPool" => xp.iter().map(|v| v.to_f64().abs().powf(p)).sum::<f64>().powf(1.0 / p),
                _ => xp.iter().map(|v| v.to_f64()).sum::<f64>() / plane as f64,
            })
        }).collect();
        Array::new(shape.clone(), y)
    }, else return Err(ctx.err(format!("expects a float tensor, not {dt}"))));
    Ok(vec![y.into()])
}
