//! Resize (opsets 10-19) and Upsample (opsets 7-9): nearest, n-linear and cubic interpolation,
//! separable per dimension, with every coordinate transformation and nearest rounding mode.
//!
//! Coordinates are computed in f64 from the (f32) scales, as the ONNX reference does. Before
//! opset 11 (Upsample, Resize-10) the transformation is `asymmetric` and nearest rounding is
//! onnxruntime's legacy rule: truncate when upsampling, ceil when downsampling.

use crate::ctx::{Ctx, Result};
use crate::layout::{numel, strides, unravel};
use crate::value::{dispatch, Array, Elem, Val};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

/// What the node's attributes ask for.
struct Spec {
    mode: Mode,
    coord: String,
    nearest: String,
    cubic_a: f64,
    exclude_outside: bool,
    extrapolation: f64,
}

/// The taps of one output index along one dim: `(input index, weight)` pairs, or `None` when
/// `tf_crop_and_resize` lands outside the input (the output takes `extrapolation_value`).
pub type Taps = Option<Vec<(usize, f64)>>;

/// What a Resize node computes on an input of a given shape: the output shape and, per dim and
/// output index, the `(input index, weight)` taps (the output is the sum over the cartesian
/// product of its per-dim taps, or `extrapolation` where a dim has none). The JIT's native
/// Resize kernel is built from this, so both engines share one reading of the attributes.
#[derive(Clone, Debug)]
pub struct ResizeTaps {
    pub out: Vec<usize>,
    pub taps: Vec<Vec<Taps>>,
    pub extrapolation: f64,
}

pub(crate) fn resize(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let r = x.rank();
    let ResizeTaps {
        out,
        taps,
        extrapolation,
    } = resize_taps(ctx, &x.shape)?;
    let xv = x.to_f64_vec();
    let xs = strides(&x.shape);
    let on = numel(&out);
    let mut y = Vec::with_capacity(on);
    let mut oi = vec![0; r];
    for k in 0..on {
        unravel(k, &out, &mut oi);
        let per_dim: Option<Vec<&Vec<(usize, f64)>>> =
            (0..r).map(|d| taps[d][oi[d]].as_ref()).collect();
        let Some(per_dim) = per_dim else {
            y.push(extrapolation);
            continue;
        };
        // Sum over the cartesian product of the per-dim taps.
        let mut acc = 0f64;
        let mut ti = vec![0usize; r];
        'outer: loop {
            let mut off = 0;
            let mut w = 1f64;
            for d in 0..r {
                let (i, wd) = per_dim[d][ti[d]];
                off += i * xs[d];
                w *= wd;
            }
            acc += w * xv[off];
            for d in (0..r).rev() {
                ti[d] += 1;
                if ti[d] < per_dim[d].len() {
                    continue 'outer;
                }
                ti[d] = 0;
            }
            break;
        }
        y.push(acc);
    }
    let outa = dispatch!(num x.dtype(), T => Array::new(out.clone(), y.into_iter().map(T::from_f64).collect::<Vec<T>>()),
        else return Err(ctx.err(format!("unsupported type {}", x.dtype()))));
    Ok(vec![outa.into()])
}

/// The taps of a Resize / Upsample node (`ctx`'s attributes and inputs 1..) on an input of
/// shape `xshape` (input 0 itself is not read).
pub(crate) fn resize_taps(ctx: &Ctx, xshape: &[usize]) -> Result<ResizeTaps> {
    let r = xshape.len();
    let upsample = ctx.desc.op_type == "Upsample";
    let legacy = upsample || ctx.opset < 11;
    let mode = match ctx.string("mode", "nearest")?.as_str() {
        "nearest" => Mode::Nearest,
        "linear" | "bilinear" => Mode::Linear,
        "cubic" if !legacy => Mode::Cubic,
        other => return Err(ctx.err(format!("unsupported mode `{other}`"))),
    };
    if ctx.int("antialias", 0)? != 0 {
        return Err(ctx.err("antialias=1 is not supported"));
    }
    let spec = Spec {
        mode,
        coord: if legacy {
            "asymmetric".into()
        } else {
            ctx.string("coordinate_transformation_mode", "half_pixel")?
        },
        nearest: if legacy {
            "legacy".into()
        } else {
            ctx.string("nearest_mode", "round_prefer_floor")?
        },
        cubic_a: ctx.float("cubic_coeff_a", -0.75)? as f64,
        exclude_outside: ctx.int("exclude_outside", 0)? != 0,
        extrapolation: ctx.float("extrapolation_value", 0.0)? as f64,
    };

    // Scales (as given) or sizes, on the listed axes (opset 18) or all of them.
    let axes: Vec<usize> = match ctx.ints("axes")? {
        Some(a) if !legacy => a.iter().map(|&v| ctx.axis(v, r)).collect::<Result<_>>()?,
        _ => (0..r).collect(),
    };
    let (scales_in, sizes_in, roi_in) = if upsample {
        let s = if ctx.opset >= 9 {
            ctx.opt_input(1)?.map(|a| a.to_f64_vec())
        } else {
            ctx.floats("scales")?
                .map(|v| v.iter().map(|&f| f as f64).collect())
        };
        (s, None, None)
    } else if ctx.opset < 11 {
        (ctx.opt_input(1)?.map(|a| a.to_f64_vec()), None, None)
    } else {
        fn nonempty(a: Option<&Array>) -> Option<&Array> {
            a.filter(|a| a.len() > 0)
        }
        (
            nonempty(ctx.opt_input(2)?).map(|a| a.to_f64_vec()),
            nonempty(ctx.opt_input(3)?)
                .map(|a| a.to_i64_vec().ok_or_else(|| ctx.err("sizes must be int64")))
                .transpose()?,
            nonempty(ctx.opt_input(1)?).map(|a| a.to_f64_vec()),
        )
    };
    let mut scales = vec![1f64; r];
    let mut out = xshape.to_vec();
    match (scales_in, sizes_in) {
        (Some(s), None) => {
            if s.len() != axes.len() || s.iter().any(|&v| v <= 0.0) {
                return Err(ctx.err(format!(
                    "scales {s:?} must be {} positive values",
                    axes.len()
                )));
            }
            for (&a, &v) in axes.iter().zip(&s) {
                scales[a] = v;
                out[a] = (xshape[a] as f64 * v).floor() as usize;
            }
        }
        (None, Some(sz)) => {
            if sz.len() != axes.len() || sz.iter().any(|&v| v < 0) {
                return Err(ctx.err(format!("sizes {sz:?} must be {} sizes", axes.len())));
            }
            let policy = ctx.string("keep_aspect_ratio_policy", "stretch")?;
            let ratio = |i: usize| sz[i] as f64 / xshape[axes[i]] as f64;
            let common = match policy.as_str() {
                "stretch" => None,
                "not_larger" => Some((0..axes.len()).map(ratio).fold(f64::INFINITY, f64::min)),
                "not_smaller" => Some((0..axes.len()).map(ratio).fold(0.0, f64::max)),
                other => return Err(ctx.err(format!("unknown keep_aspect_ratio_policy `{other}`"))),
            };
            for (i, &a) in axes.iter().enumerate() {
                match common {
                    None => {
                        out[a] = sz[i] as usize;
                        scales[a] = ratio(i);
                    }
                    Some(c) => {
                        out[a] = (c * xshape[a] as f64).round() as usize;
                        scales[a] = c;
                    }
                }
            }
        }
        (Some(_), Some(_)) => return Err(ctx.err("only one of scales and sizes may be given")),
        (None, None) => return Err(ctx.err("one of scales and sizes is required")),
    }
    let roi = match roi_in {
        Some(v) if spec.coord == "tf_crop_and_resize" => {
            if v.len() != 2 * axes.len() {
                return Err(ctx.err(format!("roi {v:?} must have {} values", 2 * axes.len())));
            }
            let mut full: Vec<(f64, f64)> = vec![(0.0, 1.0); r];
            for (i, &a) in axes.iter().enumerate() {
                full[a] = (v[i], v[axes.len() + i]);
            }
            full
        }
        None if spec.coord == "tf_crop_and_resize" => {
            return Err(ctx.err("tf_crop_and_resize needs roi"));
        }
        _ => vec![(0.0, 1.0); r],
    };

    let taps: Vec<Vec<Taps>> = (0..r)
        .map(|d| {
            (0..out[d])
                .map(|o| dim_taps(ctx, &spec, o, xshape[d], out[d], scales[d], roi[d]))
                .collect::<Result<Vec<Taps>>>()
        })
        .collect::<Result<_>>()?;

    Ok(ResizeTaps {
        out,
        taps,
        extrapolation: spec.extrapolation,
    })
}

/// Maps output index `o` back to an input coordinate. As in the ONNX reference, the
/// "resized length" of `align_corners`, `pytorch_half_pixel` and `tf_crop_and_resize` is the
/// real `scale * len_in`, not the integer output size (they differ when the scale does not
/// divide evenly).
fn source_coord(
    spec: &Spec,
    o: usize,
    len_in: usize,
    len_out: usize,
    scale: f64,
    roi: (f64, f64),
) -> Option<f64> {
    let x = o as f64;
    let li = len_in as f64;
    let lo = scale * li;
    Some(match spec.coord.as_str() {
        "half_pixel" => (x + 0.5) / scale - 0.5,
        "half_pixel_symmetric" => {
            let adj = len_out as f64 / lo;
            let offset = li / 2.0 * (1.0 - adj);
            offset + (x + 0.5) / scale - 0.5
        }
        "pytorch_half_pixel" => {
            if lo == 1.0 {
                -0.5
            } else {
                (x + 0.5) / scale - 0.5
            }
        }
        "align_corners" => {
            if lo == 1.0 {
                0.0
            } else {
                x * (li - 1.0) / (lo - 1.0)
            }
        }
        "asymmetric" => x / scale,
        "tf_half_pixel_for_nn" => (x + 0.5) / scale,
        "tf_crop_and_resize" => {
            let (s, e) = roi;
            if lo == 1.0 {
                0.5 * (s + e) * (li - 1.0)
            } else {
                s * (li - 1.0) + x * (e - s) * (li - 1.0) / (lo - 1.0)
            }
        }
        _ => return None,
    })
}

fn dim_taps(
    ctx: &Ctx,
    spec: &Spec,
    o: usize,
    len_in: usize,
    len_out: usize,
    scale: f64,
    roi: (f64, f64),
) -> Result<Taps> {
    if len_in == 0 {
        return Err(ctx.err("cannot resize an empty dim"));
    }
    let c = source_coord(spec, o, len_in, len_out, scale, roi).ok_or_else(|| {
        ctx.err(format!(
            "unknown coordinate_transformation_mode `{}`",
            spec.coord
        ))
    })?;
    let last = (len_in - 1) as f64;
    if spec.coord == "tf_crop_and_resize" && (c < 0.0 || c > last) {
        return Ok(None);
    }
    let clamp = |i: i64| i.clamp(0, len_in as i64 - 1) as usize;
    Ok(Some(match spec.mode {
        Mode::Nearest => {
            let i = match spec.nearest.as_str() {
                "round_prefer_floor" if c.fract().abs() == 0.5 => c.floor(),
                "round_prefer_ceil" if c.fract().abs() == 0.5 => c.ceil(),
                "round_prefer_floor" | "round_prefer_ceil" => c.round(),
                "floor" => c.floor(),
                "ceil" => c.ceil(),
                "legacy" if scale < 1.0 => c.ceil(),
                "legacy" => c.trunc(),
                other => return Err(ctx.err(format!("unknown nearest_mode `{other}`"))),
            };
            vec![(clamp(i as i64), 1.0)]
        }
        Mode::Linear => {
            let c = c.clamp(0.0, last);
            let i0 = c.floor();
            let f = c - i0;
            let i0 = i0 as i64;
            if f == 0.0 {
                vec![(clamp(i0), 1.0)]
            } else {
                vec![(clamp(i0), 1.0 - f), (clamp(i0 + 1), f)]
            }
        }
        Mode::Cubic => {
            let i0 = c.floor();
            let s = c - i0;
            let a = spec.cubic_a;
            let w = |t: f64| {
                let t = t.abs();
                if t <= 1.0 {
                    ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
                } else if t < 2.0 {
                    ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
                } else {
                    0.0
                }
            };
            let mut taps: Vec<(i64, f64)> =
                (-1..=2).map(|k| (i0 as i64 + k, w(s - k as f64))).collect();
            if spec.exclude_outside {
                taps.retain(|&(i, _)| (0..len_in as i64).contains(&i));
                let total: f64 = taps.iter().map(|t| t.1).sum();
                for t in &mut taps {
                    t.1 /= total;
                }
            }
            taps.into_iter().map(|(i, wt)| (clamp(i), wt)).collect()
        }
    }))
}
