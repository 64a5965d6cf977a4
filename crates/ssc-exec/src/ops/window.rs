//! Sliding-window geometry shared by Conv, ConvTranspose and the pools: the `auto_pad`,
//! `pads`, `strides`, `dilations` and `ceil_mode` attributes turned into output sizes and
//! explicit pads, and index tables mapping (kernel position, output position) to input offsets.

use crate::ctx::{Ctx, Result};
use crate::layout::{numel, strides, unravel};

/// Resolved window geometry over the spatial dimensions.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Geometry {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    /// Padding before and after each dim; only ConvTranspose makes them negative (an output
    /// larger than the full result, extended with zeros).
    pub pad_begin: Vec<i64>,
    pub pad_end: Vec<i64>,
    /// Output spatial sizes.
    pub out: Vec<usize>,
}

/// Table entry for a window position inside the explicit padding.
pub(crate) const PAD: usize = usize::MAX - 1;
/// Table entry for a window position beyond the padding (only `ceil_mode` windows reach it).
pub(crate) const OUTSIDE: usize = usize::MAX;

/// Reads a per-spatial-dimension attribute (`strides`, `dilations`), defaulting to ones.
pub(crate) fn spatial_attr(ctx: &Ctx, name: &str, n: usize) -> Result<Vec<usize>> {
    match ctx.ints(name)? {
        None => Ok(vec![1; n]),
        Some(v) if v.is_empty() => Ok(vec![1; n]),
        Some(v) => {
            if v.len() != n || v.iter().any(|&x| x < 1) {
                return Err(ctx.err(format!("`{name}` must be {n} positive values, not {v:?}")));
            }
            Ok(v.iter().map(|&x| x as usize).collect())
        }
    }
}

/// Resolves the window geometry of a Conv or pool over input spatial sizes `input`.
///
/// Explicit pads: `out = floor((in + pb + pe - ((k - 1) * d + 1)) / s) + 1` (ceil with
/// `ceil_mode`, and then a last window that would start in the end padding is dropped, as
/// PyTorch and the ONNX reference do). `SAME_*`: `out = ceil(in / s)` and the total padding
/// `(out - 1) * s + (k - 1) * d + 1 - in` is split evenly, the odd unit going to the end for
/// `SAME_UPPER` and to the beginning for `SAME_LOWER`. `VALID`: no padding.
pub(crate) fn geometry(
    ctx: &Ctx,
    input: &[usize],
    kernel: &[usize],
    ceil_mode: bool,
) -> Result<Geometry> {
    let n = input.len();
    let strides = spatial_attr(ctx, "strides", n)?;
    let dilations = spatial_attr(ctx, "dilations", n)?;
    let auto_pad = ctx.string("auto_pad", "NOTSET")?;
    let mut pad_begin = vec![0; n];
    let mut pad_end = vec![0; n];
    let mut out = vec![0; n];
    for d in 0..n {
        let span = (kernel[d] - 1) * dilations[d] + 1;
        match auto_pad.as_str() {
            "NOTSET" => {
                if let Some(p) = ctx.ints("pads")? {
                    if p.len() != 2 * n || p.iter().any(|&x| x < 0) {
                        return Err(ctx.err(format!(
                            "`pads` must be {} non-negative values, not {p:?}",
                            2 * n
                        )));
                    }
                    pad_begin[d] = p[d] as usize;
                    pad_end[d] = p[n + d] as usize;
                }
                let padded = input[d] + pad_begin[d] + pad_end[d];
                if padded < span {
                    return Err(ctx.err(format!(
                        "window {span} is larger than the padded input {padded} (dim {d})"
                    )));
                }
                out[d] = if ceil_mode {
                    let mut o = (padded - span).div_ceil(strides[d]) + 1;
                    if (o - 1) * strides[d] >= input[d] + pad_begin[d] {
                        o -= 1;
                    }
                    o
                } else {
                    (padded - span) / strides[d] + 1
                };
            }
            "VALID" => {
                if input[d] < span {
                    return Err(ctx.err(format!(
                        "window {span} is larger than the input {} (dim {d})",
                        input[d]
                    )));
                }
                out[d] = (input[d] - span) / strides[d] + 1;
            }
            "SAME_UPPER" | "SAME_LOWER" => {
                out[d] = input[d].div_ceil(strides[d]);
                let total = ((out[d].max(1) - 1) * strides[d] + span).saturating_sub(input[d]);
                let small = total / 2;
                if auto_pad == "SAME_UPPER" {
                    pad_begin[d] = small;
                    pad_end[d] = total - small;
                } else {
                    pad_begin[d] = total - small;
                    pad_end[d] = small;
                }
            }
            other => return Err(ctx.err(format!("unknown auto_pad `{other}`"))),
        }
    }
    Ok(Geometry {
        kernel: kernel.to_vec(),
        strides,
        dilations,
        pad_begin: pad_begin.iter().map(|&p| p as i64).collect(),
        pad_end: pad_end.iter().map(|&p| p as i64).collect(),
        out,
    })
}

/// For every kernel position `k` (row-major over `g.kernel`) and every point `o` of `iter`
/// (row-major), the row-major offset within `bound` of the point `o * s + k * d - pad_begin`,
/// or [`PAD`] / [`OUTSIDE`] when it falls outside `bound` (within / beyond
/// `[-pad_begin, bound + pad_end)`). Laid out as `[k][o]`.
///
/// Conv and the pools iterate over output points with the input as `bound`; ConvTranspose
/// iterates over input points with the output as `bound`.
pub(crate) fn index_table(iter: &[usize], bound: &[usize], g: &Geometry) -> Vec<usize> {
    let n = iter.len();
    let kn = numel(&g.kernel);
    let on = numel(iter);
    let bstr = strides(bound);
    let mut table = Vec::with_capacity(kn * on);
    let mut kidx = vec![0; n];
    let mut oidx = vec![0; n];
    for k in 0..kn {
        unravel(k, &g.kernel, &mut kidx);
        for o in 0..on {
            unravel(o, iter, &mut oidx);
            let mut off = 0;
            let mut state = 0; // 0 inside, 1 in padding, 2 beyond
            for d in 0..n {
                let c = (oidx[d] * g.strides[d] + kidx[d] * g.dilations[d]) as i64 - g.pad_begin[d];
                if c < 0 || c >= bound[d] as i64 {
                    let beyond = c < -g.pad_begin[d] || c >= bound[d] as i64 + g.pad_end[d];
                    state = state.max(if beyond { 2 } else { 1 });
                } else {
                    off += c as usize * bstr[d];
                }
            }
            table.push(match state {
                0 => off,
                1 => PAD,
                _ => OUTSIDE,
            });
        }
    }
    table
}
