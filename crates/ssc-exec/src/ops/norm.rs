//! Normalisations: BatchNormalization (inference), InstanceNormalization, LayerNormalization and
//! LRN. Statistics and the normalisation itself run in f64 and round once.

use crate::ctx::{Ctx, Result};
use crate::layout::{broadcast_to, numel};
use crate::value::{dispatch, Array, Elem, Val};

fn float_vec(ctx: &Ctx, a: &Array, what: &str) -> Result<Vec<f64>> {
    if !a.dtype().is_float() {
        return Err(ctx.err(format!("{what} must be a float tensor, not {}", a.dtype())));
    }
    Ok(a.to_f64_vec())
}

/// Rounds f64 results to `like`'s element type.
fn finish(ctx: &Ctx, like: &Array, shape: Vec<usize>, v: Vec<f64>) -> Result<Array> {
    dispatch!(float like.dtype(), T => Ok(Array::new(shape, v.into_iter().map(T::from_f64).collect::<Vec<T>>())),
        else Err(ctx.err(format!("expects a float tensor, not {}", like.dtype()))))
}

/// Inference-mode BatchNormalization: `(x - mean) / sqrt(var + eps) * scale + B`. Parameters
/// are per channel, or (`spatial=0`, opsets before 9) per channel and spatial position.
pub(crate) fn batch_norm(ctx: &Ctx) -> Result<Vec<Val>> {
    if ctx.int("training_mode", 0)? != 0 {
        return Err(ctx.err("training_mode=1 is not supported (inference only)"));
    }
    if ctx.n_out > 1 {
        return Err(ctx.err("the running/saved statistics outputs exist only in training mode"));
    }
    let x = ctx.input(0)?;
    if x.rank() < 2 {
        return Err(ctx.err(format!("input must be N x C x ..., not {:?}", x.shape)));
    }
    let eps = ctx.float("epsilon", 1e-5)? as f64;
    let c = x.shape[1];
    let inner = numel(&x.shape[2..]);
    let params: Vec<Vec<f64>> = (1..5)
        .map(|i| float_vec(ctx, ctx.input(i)?, "parameter"))
        .collect::<Result<_>>()?;
    let pn = params[0].len();
    let per_element = if pn == c {
        false
    } else if pn == c * inner {
        true
    } else {
        return Err(ctx.err(format!(
            "parameters of {pn} elements fit neither {c} channels nor {c} x {inner} positions"
        )));
    };
    if params.iter().any(|p| p.len() != pn) {
        return Err(ctx.err("scale, B, mean and var must have the same shape"));
    }
    let (scale, bias, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
    let xv = x.to_f64_vec();
    let y: Vec<f64> = xv
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let p = if per_element {
                i % (c * inner)
            } else {
                (i / inner) % c
            };
            (v - mean[p]) / (var[p] + eps).sqrt() * scale[p] + bias[p]
        })
        .collect();
    Ok(vec![finish(ctx, x, x.shape.clone(), y)?.into()])
}

pub(crate) fn instance_norm(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    if x.rank() < 3 {
        return Err(ctx.err(format!(
            "input must be N x C x spatial..., not {:?}",
            x.shape
        )));
    }
    let eps = ctx.float("epsilon", 1e-5)? as f64;
    let c = x.shape[1];
    let scale = float_vec(ctx, ctx.input(1)?, "scale")?;
    let bias = float_vec(ctx, ctx.input(2)?, "B")?;
    if scale.len() != c || bias.len() != c {
        return Err(ctx.err(format!("scale and B must have {c} elements")));
    }
    let inner = numel(&x.shape[2..]);
    let xv = x.to_f64_vec();
    let mut y = Vec::with_capacity(xv.len());
    for (p, plane) in xv.chunks(inner.max(1)).enumerate() {
        let ch = p % c;
        let (mean, var) = mean_var(plane);
        let k = scale[ch] / (var + eps).sqrt();
        y.extend(plane.iter().map(|&v| (v - mean) * k + bias[ch]));
    }
    Ok(vec![finish(ctx, x, x.shape.clone(), y)?.into()])
}

/// Population mean and variance, two-pass.
fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|&x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var)
}

/// LayerNormalization (opset 17): normalise over the dims from `axis` on; Scale and B
/// broadcast to those dims. Optional outputs Mean and InvStdDev keep the reduced dims as 1.
pub(crate) fn layer_norm(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let axis = ctx.axis(ctx.int("axis", -1)?, x.rank())?;
    let eps = ctx.float("epsilon", 1e-5)? as f64;
    let norm_shape = &x.shape[axis..];
    let inner = numel(norm_shape);
    let param = |i: usize, default: f64| -> Result<Vec<f64>> {
        match ctx.opt_input(i)? {
            None => Ok(vec![default; inner]),
            Some(a) => {
                let v = float_vec(ctx, a, "scale/B")?;
                match crate::layout::broadcast_shape(&a.shape, norm_shape) {
                    Some(s) if s == norm_shape => Ok(broadcast_to(&v, &a.shape, norm_shape)),
                    _ => Err(ctx.err(format!(
                        "{:?} does not broadcast to {norm_shape:?}",
                        a.shape
                    ))),
                }
            }
        }
    };
    let scale = param(1, 1.0)?;
    let bias = param(2, 0.0)?;
    let xv = x.to_f64_vec();
    let mut y = Vec::with_capacity(xv.len());
    let mut means = Vec::new();
    let mut inv = Vec::new();
    for row in xv.chunks(inner.max(1)) {
        let (mean, var) = mean_var(row);
        let k = 1.0 / (var + eps).sqrt();
        y.extend(
            row.iter()
                .zip(&scale)
                .zip(&bias)
                .map(|((&v, &s), &b)| (v - mean) * k * s + b),
        );
        means.push(mean);
        inv.push(k);
    }
    let mut stat_shape = x.shape[..axis].to_vec();
    stat_shape.extend(std::iter::repeat_n(1, x.rank() - axis));
    let mut outs = vec![finish(ctx, x, x.shape.clone(), y)?.into()];
    if ctx.n_out > 1 {
        // stash_type=1 (the default) keeps statistics in f32.
        let stat = |v: Vec<f64>| {
            Array::new(
                stat_shape.clone(),
                v.into_iter().map(|s| s as f32).collect(),
            )
        };
        outs.push(stat(means).into());
        outs.push(stat(inv).into());
    }
    Ok(outs)
}

/// LRN across channels: `x / (bias + alpha / size * sum of squares) ^ beta`, the window
/// running from `c - floor((size - 1) / 2)` to `c + ceil((size - 1) / 2)`.
pub(crate) fn lrn(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    if x.rank() < 2 {
        return Err(ctx.err(format!("input must be N x C x ..., not {:?}", x.shape)));
    }
    let size = ctx.int("size", 0)?;
    if size < 1 {
        return Err(ctx.err("size must be positive"));
    }
    let size = size as usize;
    let alpha = ctx.float("alpha", 1e-4)? as f64;
    let beta = ctx.float("beta", 0.75)? as f64;
    let bias = ctx.float("bias", 1.0)? as f64;
    let c = x.shape[1];
    let inner = numel(&x.shape[2..]);
    let xv = float_vec(ctx, x, "input")?;
    let (lo, hi) = ((size - 1) / 2, (size - 1).div_ceil(2));
    let mut y = vec![0f64; xv.len()];
    for n in 0..x.shape[0] {
        for ch in 0..c {
            let from = ch.saturating_sub(lo);
            let to = (ch + hi).min(c - 1);
            for s in 0..inner {
                let idx = |cc: usize| (n * c + cc) * inner + s;
                let sq: f64 = (from..=to).map(|cc| xv[idx(cc)] * xv[idx(cc)]).sum();
                y[idx(ch)] = xv[idx(ch)] / (bias + alpha / size as f64 * sq).powf(beta);
            }
        }
    }
    Ok(vec![finish(ctx, x, x.shape.clone(), y)?.into()])
}
