//! Gemm (transA/transB/alpha/beta with a broadcast C) and MatMul (numpy batching, 1-D
//! operands). Floats go through the f64-accumulating kernel; integers use exact i128 sums.

use ssc_ir::DataType;

use crate::ctx::{Ctx, Result};
use crate::layout::{broadcast_shape, broadcast_strides, numel, unravel};
use crate::linalg::{matmul, Mat};
use crate::value::{dispatch, Array, Elem, Val};

/// `c = a * b` (m x k times k x n) in f64, for any numeric element type.
fn product(
    ctx: &Ctx,
    a: &Array,
    b: &Array,
    dims: (usize, usize, usize),
    views: Views,
) -> Result<Vec<f64>> {
    let (m, n, k) = dims;
    let mut c = vec![0f64; m * n];
    match a.dtype() {
        DataType::Float => {
            let (av, bv) = (a.slice::<f32>().unwrap(), b.slice::<f32>().unwrap());
            matmul(m, n, k, views.a(av), views.b(bv), &mut c);
        }
        DataType::Double => {
            let (av, bv) = (a.slice::<f64>().unwrap(), b.slice::<f64>().unwrap());
            matmul(m, n, k, views.a(av), views.b(bv), &mut c);
        }
        dt if dt.is_float() => {
            let (av, bv) = (a.to_f64_vec(), b.to_f64_vec());
            matmul(m, n, k, views.a(&av), views.b(&bv), &mut c);
        }
        dt => dispatch!(int dt, T => {
            // Exact integer products; results wrap to T like C arithmetic.
            let (av, bv) = (a.slice::<T>().unwrap(), b.slice::<T>().unwrap());
            let (va, vb) = (views.a(av), views.b(bv));
            for i in 0..m {
                for j in 0..n {
                    let s: i128 = (0..k).map(|p| va.data[i * va.rs + p * va.cs].to_i128()
                        .wrapping_mul(vb.data[p * vb.rs + j * vb.cs].to_i128())).fold(0, i128::wrapping_add);
                    c[i * n + j] = T::from_i128(s).to_f64();
                }
            }
        }, else return Err(ctx.err(format!("unsupported type {dt}")))),
    }
    Ok(c)
}

/// Offsets and layouts of one A and one B operand inside their buffers.
#[derive(Clone, Copy)]
struct Views {
    a_off: usize,
    a_rs: usize,
    a_cs: usize,
    b_off: usize,
    b_rs: usize,
    b_cs: usize,
}

impl Views {
    fn a<'s, T: Copy>(&self, d: &'s [T]) -> Mat<'s, T> {
        Mat {
            data: &d[self.a_off..],
            rs: self.a_rs,
            cs: self.a_cs,
        }
    }
    fn b<'s, T: Copy>(&self, d: &'s [T]) -> Mat<'s, T> {
        Mat {
            data: &d[self.b_off..],
            rs: self.b_rs,
            cs: self.b_cs,
        }
    }
}

/// Rounds f64 results to `dt`.
fn to_array(ctx: &Ctx, dt: DataType, shape: Vec<usize>, v: Vec<f64>) -> Result<Array> {
    dispatch!(num dt, T => Ok(Array::new(shape, v.into_iter().map(T::from_f64).collect::<Vec<T>>())),
        else Err(ctx.err(format!("unsupported type {dt}"))))
}

/// Gemm: `alpha * A' * B' + beta * C`, with `C` broadcast to `M x N` (before opset 7 only when
/// `broadcast=1`).
pub(crate) fn gemm(ctx: &Ctx) -> Result<Vec<Val>> {
    let a = ctx.input(0)?;
    let b = ctx.input(1)?;
    let c = ctx.opt_input(2)?;
    if a.rank() != 2 || b.rank() != 2 {
        return Err(ctx.err(format!("A {:?} and B {:?} must be 2-D", a.shape, b.shape)));
    }
    if a.dtype() != b.dtype() || c.is_some_and(|c| c.dtype() != a.dtype()) {
        return Err(ctx.err("input types differ"));
    }
    let ta = ctx.int("transA", 0)? != 0;
    let tb = ctx.int("transB", 0)? != 0;
    let alpha = ctx.float("alpha", 1.0)? as f64;
    let beta = ctx.float("beta", 1.0)? as f64;
    let (m, k) = if ta {
        (a.shape[1], a.shape[0])
    } else {
        (a.shape[0], a.shape[1])
    };
    let (k2, n) = if tb {
        (b.shape[1], b.shape[0])
    } else {
        (b.shape[0], b.shape[1])
    };
    if k != k2 {
        return Err(ctx.err(format!(
            "inner dims differ: A {:?} (transA={ta}) and B {:?} (transB={tb})",
            a.shape, b.shape
        )));
    }
    let views = Views {
        a_off: 0,
        a_rs: if ta { 1 } else { a.shape[1] },
        a_cs: if ta { a.shape[1] } else { 1 },
        b_off: 0,
        b_rs: if tb { 1 } else { b.shape[1] },
        b_cs: if tb { b.shape[1] } else { 1 },
    };
    let mut y = product(ctx, a, b, (m, n, k), views)?;
    let out = vec![m, n];
    for v in &mut y {
        *v *= alpha;
    }
    if let Some(c) = c {
        if ctx.opset < 7 && ctx.int("broadcast", 0)? == 0 && c.shape != out {
            return Err(ctx.err(format!("C {:?} must be {out:?} when broadcast=0", c.shape)));
        }
        if broadcast_shape(&c.shape, &out).as_deref() != Some(&out[..]) {
            return Err(ctx.err(format!("C {:?} does not broadcast to {out:?}", c.shape)));
        }
        let cv = c.to_f64_vec();
        let s = broadcast_strides(&c.shape, &out);
        crate::layout::walk(&out, [&s], |idx, [o]| y[idx] += beta * cv[o]);
    }
    Ok(vec![to_array(ctx, a.dtype(), out, y)?.into()])
}

/// MatMul with numpy semantics: 1-D operands gain (and then lose) a unit dim, batch dims
/// broadcast.
pub(crate) fn mat_mul(ctx: &Ctx) -> Result<Vec<Val>> {
    let a = ctx.input(0)?;
    let b = ctx.input(1)?;
    if a.dtype() != b.dtype() {
        return Err(ctx.err("input types differ"));
    }
    let (shape, y) = mat_mul_f64(ctx, a, b)?;
    Ok(vec![to_array(ctx, a.dtype(), shape, y)?.into()])
}

/// The numpy matrix product of two arrays of one type, in f64: the output shape and values.
pub(crate) fn mat_mul_f64(ctx: &Ctx, a: &Array, b: &Array) -> Result<(Vec<usize>, Vec<f64>)> {
    if a.rank() == 0 || b.rank() == 0 {
        return Err(ctx.err("operands must have rank >= 1"));
    }
    let ash: Vec<usize> = if a.rank() == 1 {
        vec![1, a.shape[0]]
    } else {
        a.shape.clone()
    };
    let bsh: Vec<usize> = if b.rank() == 1 {
        vec![b.shape[0], 1]
    } else {
        b.shape.clone()
    };
    let (m, k) = (ash[ash.len() - 2], ash[ash.len() - 1]);
    let (k2, n) = (bsh[bsh.len() - 2], bsh[bsh.len() - 1]);
    if k != k2 {
        return Err(ctx.err(format!("inner dims differ: {:?} x {:?}", a.shape, b.shape)));
    }
    let abatch = &ash[..ash.len() - 2];
    let bbatch = &bsh[..bsh.len() - 2];
    let batch = broadcast_shape(abatch, bbatch).ok_or_else(|| {
        ctx.err(format!(
            "batch dims of {:?} and {:?} do not broadcast",
            a.shape, b.shape
        ))
    })?;
    let nb = numel(&batch);
    let mut y = Vec::with_capacity(nb * m * n);
    if bbatch.iter().all(|&d| d == 1) && abatch == batch.as_slice() {
        // One shared B: fold A's batch into its rows.
        let views = Views {
            a_off: 0,
            a_rs: k,
            a_cs: 1,
            b_off: 0,
            b_rs: n,
            b_cs: 1,
        };
        y = product(ctx, a, b, (nb * m, n, k), views)?;
    } else {
        let sa = broadcast_strides(abatch, &batch);
        let sb = broadcast_strides(bbatch, &batch);
        let mut bi = vec![0; batch.len()];
        for t in 0..nb {
            unravel(t, &batch, &mut bi);
            let ao: usize = bi.iter().zip(&sa).map(|(i, s)| i * s).sum();
            let bo: usize = bi.iter().zip(&sb).map(|(i, s)| i * s).sum();
            let views = Views {
                a_off: ao * m * k,
                a_rs: k,
                a_cs: 1,
                b_off: bo * k * n,
                b_rs: n,
                b_cs: 1,
            };
            y.extend(product(ctx, a, b, (m, n, k), views)?);
        }
    }
    let mut shape = batch;
    if a.rank() > 1 {
        shape.push(m);
    }
    if b.rank() > 1 {
        shape.push(n);
    }
    Ok((shape, y))
}
