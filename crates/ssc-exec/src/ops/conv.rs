//! Conv and ConvTranspose in 1-D, 2-D and 3-D (any rank, in fact) through im2col / col2im and
//! the packed matmul kernel, with groups, dilations, strides and every padding mode.
//!
//! f32 and f64 run natively; f16 and bf16 are widened to f32 and rounded back.

use ssc_ir::DataType;

use super::window::{geometry, index_table, spatial_attr, Geometry, PAD};
use crate::ctx::{Ctx, Result};
use crate::layout::numel;
use crate::linalg::{matmul, Mat, Real};
use crate::value::{Array, Elem, Val};

/// Runs `f` on f32 or f64 copies of the inputs, rounding the result back for f16/bf16.
fn with_real(
    ctx: &Ctx,
    ins: &[Option<&Array>],
    f32_fn: impl Fn(&[Option<&[f32]>]) -> Result<(Vec<usize>, Vec<f32>)>,
    f64_fn: impl Fn(&[Option<&[f64]>]) -> Result<(Vec<usize>, Vec<f64>)>,
) -> Result<Array> {
    let dt = ins[0].expect("first input is required").dtype();
    for a in ins.iter().flatten() {
        if a.dtype() != dt {
            return Err(ctx.err(format!("input types differ: {dt} and {}", a.dtype())));
        }
    }
    match dt {
        DataType::Double => {
            let v: Vec<Option<&[f64]>> = ins.iter().map(|a| a.and_then(|a| a.slice())).collect();
            let (shape, out) = f64_fn(&v)?;
            Ok(Array::new(shape, out))
        }
        DataType::Float => {
            let v: Vec<Option<&[f32]>> = ins.iter().map(|a| a.and_then(|a| a.slice())).collect();
            let (shape, out) = f32_fn(&v)?;
            Ok(Array::new(shape, out))
        }
        DataType::Float16 | DataType::Bfloat16 => {
            let wide: Vec<Option<Array>> = ins
                .iter()
                .map(|a| a.map(|a| a.cast(DataType::Float).expect("float cast")))
                .collect();
            let v: Vec<Option<&[f32]>> = wide
                .iter()
                .map(|a| a.as_ref().and_then(|a| a.slice()))
                .collect();
            let (shape, out) = f32_fn(&v)?;
            Ok(Array::new(shape, out).cast(dt).expect("float cast"))
        }
        _ => Err(ctx.err(format!("expects a float tensor, not {dt}"))),
    }
}

/// The shapes of a Conv or ConvTranspose call, validated.
struct ConvDims {
    batch: usize,
    /// Input channels.
    c: usize,
    /// Output channels.
    m: usize,
    group: usize,
    spatial_in: Vec<usize>,
    kernel: Vec<usize>,
}

fn conv_dims(ctx: &Ctx, x: &Array, w: &Array, transpose: bool) -> Result<ConvDims> {
    if x.rank() < 3 || w.rank() != x.rank() {
        return Err(ctx.err(format!(
            "input {:?} and weight {:?} must have the same rank, at least 3",
            x.shape, w.shape
        )));
    }
    let group = ctx.int("group", 1)?;
    if group < 1 {
        return Err(ctx.err(format!("group must be positive, not {group}")));
    }
    let group = group as usize;
    let c = x.shape[1];
    let kernel = w.shape[2..].to_vec();
    if kernel.contains(&0) {
        return Err(ctx.err(format!("weight {:?} has an empty kernel", w.shape)));
    }
    if let Some(ks) = ctx.ints("kernel_shape")? {
        if ks.iter().map(|&k| k as usize).ne(kernel.iter().copied()) {
            return Err(ctx.err(format!(
                "kernel_shape {ks:?} disagrees with weight {:?}",
                w.shape
            )));
        }
    }
    let m = if transpose {
        if w.shape[0] != c || !c.is_multiple_of(group) {
            return Err(ctx.err(format!(
                "weight {:?} needs {c} input channels in {group} groups",
                w.shape
            )));
        }
        w.shape[1] * group
    } else {
        if !c.is_multiple_of(group) || w.shape[1] * group != c || !w.shape[0].is_multiple_of(group)
        {
            return Err(ctx.err(format!(
                "input {:?} and weight {:?} do not fit group={group}",
                x.shape, w.shape
            )));
        }
        w.shape[0]
    };
    Ok(ConvDims {
        batch: x.shape[0],
        c,
        m,
        group,
        spatial_in: x.shape[2..].to_vec(),
        kernel,
    })
}

fn check_bias(ctx: &Ctx, b: Option<&Array>, m: usize) -> Result<()> {
    match b {
        Some(b) if b.shape != [m] => {
            Err(ctx.err(format!("bias {:?} must have shape [{m}]", b.shape)))
        }
        _ => Ok(()),
    }
}

pub(crate) fn conv(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let w = ctx.input(1)?;
    let b = ctx.opt_input(2)?;
    let dims = conv_dims(ctx, x, w, false)?;
    check_bias(ctx, b, dims.m)?;
    let g = geometry(ctx, &dims.spatial_in, &dims.kernel, false)?;
    let out = with_real(
        ctx,
        &[Some(x), Some(w), b],
        |v| Ok(conv_impl(&dims, &g, v[0].unwrap(), v[1].unwrap(), v[2])),
        |v| Ok(conv_impl(&dims, &g, v[0].unwrap(), v[1].unwrap(), v[2])),
    )?;
    Ok(vec![out.into()])
}

/// A Conv of `x` and `w` (whose shapes and attributes the node gives) over the f64 values
/// `xs` and `ws`, for the integer convolutions: with integer inputs every product and sum is
/// exact in f64 (below 2^53). Returns the output shape and values.
pub(super) fn conv_f64(
    ctx: &Ctx,
    x: &Array,
    w: &Array,
    xs: &[f64],
    ws: &[f64],
) -> Result<(Vec<usize>, Vec<f64>)> {
    let dims = conv_dims(ctx, x, w, false)?;
    let g = geometry(ctx, &dims.spatial_in, &dims.kernel, false)?;
    Ok(conv_impl(&dims, &g, xs, ws, None))
}

/// Conv for one element type: per image and group, `W_g (mg x cg*K) * col (cg*K x out)`.
fn conv_impl<T: Real + Elem>(
    d: &ConvDims,
    g: &Geometry,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
) -> (Vec<usize>, Vec<T>) {
    let (cg, mg) = (d.c / d.group, d.m / d.group);
    let kn = numel(&d.kernel);
    let plane = numel(&d.spatial_in);
    let on = numel(&g.out);
    let kk = cg * kn;
    // A 1x1 kernel with unit strides and no padding reads the input as it is.
    let direct = kn == 1
        && g.strides.iter().all(|&s| s == 1)
        && g.pad_begin.iter().chain(&g.pad_end).all(|&p| p == 0);
    let table = if direct {
        Vec::new()
    } else {
        index_table(&g.out, &d.spatial_in, g)
    };
    let mut col = vec![T::default(); if direct { 0 } else { kk * on }];
    let mut acc = vec![0f64; mg * on];
    let mut y = Vec::with_capacity(d.batch * d.m * on);
    for n in 0..d.batch {
        for grp in 0..d.group {
            let xg = &x[(n * d.c + grp * cg) * plane..(n * d.c + (grp + 1) * cg) * plane];
            let bmat: &[T] = if direct {
                xg
            } else {
                for ci in 0..cg {
                    let xc = &xg[ci * plane..(ci + 1) * plane];
                    for k in 0..kn {
                        let row = &mut col[(ci * kn + k) * on..(ci * kn + k + 1) * on];
                        let offs = &table[k * on..(k + 1) * on];
                        for (dst, &off) in row.iter_mut().zip(offs) {
                            *dst = if off >= PAD { T::default() } else { xc[off] };
                        }
                    }
                }
                &col
            };
            let wg = &w[grp * mg * kk..(grp + 1) * mg * kk];
            matmul(mg, on, kk, Mat::rows(wg, kk), Mat::rows(bmat, on), &mut acc);
            for (mi, row) in acc.chunks_exact(on).enumerate() {
                let bias = b.map_or(0.0, |b| b[grp * mg + mi].to_f64());
                y.extend(row.iter().map(|&v| T::from_f64(v + bias)));
            }
        }
    }
    let mut shape = vec![d.batch, d.m];
    shape.extend(&g.out);
    (shape, y)
}

/// ConvTranspose geometry, as the ONNX reference implementation (which produced the
/// conformance data) resolves it:
///
/// * explicit `pads` (or none, under `NOTSET`/`VALID`) are used as given, and the output is
///   `output_shape` if set, else `s * (in - 1) + output_padding + (k - 1) * d + 1 - pb - pe`;
///   an `output_shape` off that size crops or zero-extends the end;
/// * `SAME_UPPER`/`SAME_LOWER` without `pads`: the output is `output_shape` or `in * s`, and
///   the total padding `full - out` (negative when the output is larger) is split with floor
///   division, the larger half at the end for `SAME_UPPER` and at the beginning otherwise.
fn transpose_geometry(ctx: &Ctx, input: &[usize], kernel: &[usize]) -> Result<Geometry> {
    let n = input.len();
    let strides = spatial_attr(ctx, "strides", n)?;
    let dilations = spatial_attr(ctx, "dilations", n)?;
    let out_pad = match ctx.ints("output_padding")? {
        None => vec![0; n],
        Some(v) if v.len() == n && v.iter().all(|&p| p >= 0) => v,
        Some(v) => return Err(ctx.err(format!("bad output_padding {v:?}"))),
    };
    let auto_pad = ctx.string("auto_pad", "NOTSET")?;
    if !matches!(
        auto_pad.as_str(),
        "NOTSET" | "VALID" | "SAME_UPPER" | "SAME_LOWER"
    ) {
        return Err(ctx.err(format!("unknown auto_pad `{auto_pad}`")));
    }
    let out_shape = match ctx.ints("output_shape")? {
        None => None,
        // Either the spatial sizes or the full shape (N, C, spatial...).
        Some(v) if (v.len() == n || v.len() == n + 2) && v.iter().all(|&x| x >= 0) => {
            Some(v[v.len() - n..].to_vec())
        }
        Some(v) => return Err(ctx.err(format!("bad output_shape {v:?}"))),
    };
    let pads = match ctx.ints("pads")? {
        Some(p) if p.len() != 2 * n => return Err(ctx.err(format!("bad pads {p:?}"))),
        Some(p) => Some(p),
        None if auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER" => None,
        None => Some(vec![0; 2 * n]),
    };
    let mut g = Geometry {
        kernel: kernel.to_vec(),
        strides,
        dilations,
        pad_begin: vec![0; n],
        pad_end: vec![0; n],
        out: vec![0; n],
    };
    for d in 0..n {
        let span = (kernel[d] - 1) * g.dilations[d] + 1;
        let full = (g.strides[d] * input[d].saturating_sub(1) + span) as i64 + out_pad[d];
        let out = match &pads {
            Some(p) => {
                g.pad_begin[d] = p[d];
                g.pad_end[d] = p[n + d];
                match &out_shape {
                    Some(os) => os[d],
                    None => full - p[d] - p[n + d],
                }
            }
            None => {
                let out = out_shape
                    .as_ref()
                    .map_or((input[d] * g.strides[d]) as i64, |os| os[d]);
                let total = full - out;
                let half = total.div_euclid(2);
                (g.pad_begin[d], g.pad_end[d]) = if auto_pad == "SAME_UPPER" {
                    (half, total - half)
                } else {
                    (total - half, half)
                };
                out
            }
        };
        if out < 0 {
            return Err(ctx.err(format!("pads {:?} exceed the output size", pads)));
        }
        g.out[d] = out as usize;
    }
    Ok(g)
}

pub(crate) fn conv_transpose(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let w = ctx.input(1)?;
    let b = ctx.opt_input(2)?;
    let dims = conv_dims(ctx, x, w, true)?;
    check_bias(ctx, b, dims.m)?;
    let g = transpose_geometry(ctx, &dims.spatial_in, &dims.kernel)?;
    let out = with_real(
        ctx,
        &[Some(x), Some(w), b],
        |v| {
            Ok(conv_transpose_impl(
                &dims,
                &g,
                v[0].unwrap(),
                v[1].unwrap(),
                v[2],
            ))
        },
        |v| {
            Ok(conv_transpose_impl(
                &dims,
                &g,
                v[0].unwrap(),
                v[1].unwrap(),
                v[2],
            ))
        },
    )?;
    Ok(vec![out.into()])
}

/// ConvTranspose for one element type: per image and group, `col = W_g^T * X_g`, then each
/// column entry is added into the output point it maps to (col2im), all in f64.
fn conv_transpose_impl<T: Real + Elem>(
    d: &ConvDims,
    g: &Geometry,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
) -> (Vec<usize>, Vec<T>) {
    let (cg, mg) = (d.c / d.group, d.m / d.group);
    let kn = numel(&d.kernel);
    let inn = numel(&d.spatial_in);
    let on = numel(&g.out);
    let rows = mg * kn;
    // Input point -> output point, laid out [k][input point].
    let table = index_table(&d.spatial_in, &g.out, g);
    let mut col = vec![0f64; rows * inn];
    let mut y = Vec::with_capacity(d.batch * d.m * on);
    let mut acc = vec![0f64; on];
    for n in 0..d.batch {
        for grp in 0..d.group {
            let xg = &x[(n * d.c + grp * cg) * inn..(n * d.c + (grp + 1) * cg) * inn];
            let wg = &w[grp * cg * rows..(grp + 1) * cg * rows];
            matmul(
                rows,
                inn,
                cg,
                Mat::rows(wg, rows).t(),
                Mat::rows(xg, inn),
                &mut col,
            );
            for mi in 0..mg {
                let bias = b.map_or(0.0, |b| b[grp * mg + mi].to_f64());
                acc.fill(bias);
                for k in 0..kn {
                    let src = &col[(mi * kn + k) * inn..(mi * kn + k + 1) * inn];
                    let offs = &table[k * inn..(k + 1) * inn];
                    for (&v, &off) in src.iter().zip(offs) {
                        if off < PAD {
                            acc[off] += v;
                        }
                    }
                }
                y.extend(acc.iter().map(|&v| T::from_f64(v)));
            }
        }
    }
    let mut shape = vec![d.batch, d.m];
    shape.extend(&g.out);
    (shape, y)
}
