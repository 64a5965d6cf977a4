//! ConvTranspose lowering (1-D and 2-D, groups, strides, dilations, pads, `output_padding`,
//! `output_shape`, `auto_pad`): the geometry resolved as the reference executor resolves it,
//! with the output size taken from the inferred static shape.

use ssc_ir::{DataType, OpId};

use super::util::{ints, single_output, static_f32, to_usize};
use super::{Cx, Kernel, Native};
use crate::kernels::deconv::Deconv;

pub(super) fn lower_conv_transpose(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let (x, w) = (o.input(0)?, o.input(1)?);
    let y = single_output(o)?;
    let (xs, ys) = (static_f32(g, x)?, static_f32(g, y)?);
    let wt = cx.constant(w)?;
    let r = xs.len();
    if !(r == 3 || r == 4) || ys.len() != r || wt.dtype != DataType::Float || wt.dims.len() != r {
        return None;
    }
    let n = r - 2;
    let group = usize::try_from(d.get_int("group").ok()?.unwrap_or(1)).ok()?;
    let (c_in, c_out) = (xs[1], ys[1]);
    if group == 0 || wt.dims[0] != c_in || c_in % group != 0 || wt.dims[1] * group != c_out {
        return None;
    }
    let kernel = &wt.dims[2..];
    if let Some(ks) = d.get_ints("kernel_shape").ok()? {
        if to_usize(ks)? != kernel {
            return None;
        }
    }
    let strides = to_usize(&ints(d, "strides", &vec![1; n])?)?;
    let dil = to_usize(&ints(d, "dilations", &vec![1; n])?)?;
    let out_pad = ints(d, "output_padding", &vec![0; n])?;
    if strides.len() != n || dil.len() != n || out_pad.len() != n {
        return None;
    }
    if strides.contains(&0) || dil.contains(&0) || out_pad.iter().any(|&p| p < 0) {
        return None;
    }
    let auto = d
        .get_string("auto_pad")
        .ok()?
        .unwrap_or_else(|| "NOTSET".into());
    let pads = match d.get_ints("pads").ok()? {
        Some(p) if p.len() == 2 * n => Some(p.to_vec()),
        Some(_) => return None,
        None if auto == "SAME_UPPER" || auto == "SAME_LOWER" => None,
        None if matches!(auto.as_str(), "NOTSET" | "VALID" | "") => Some(vec![0; 2 * n]),
        None => return None,
    };
    // Pad before each spatial dim (the output size is the inferred one).
    let mut pad = [0i64; 2];
    let (inp, out) = (&xs[2..], &ys[2..]);
    for i in 0..n {
        pad[2 - n + i] = match &pads {
            Some(p) => p[i],
            None => {
                let span = (kernel[i] - 1) * dil[i] + 1;
                let full = (strides[i] * inp[i].saturating_sub(1) + span) as i64 + out_pad[i];
                let total = full - out[i] as i64;
                let half = total.div_euclid(2);
                if auto == "SAME_UPPER" {
                    half
                } else {
                    total - half
                }
            }
        };
    }
    let two = |v: &[usize]| if n == 1 { [1, v[0]] } else { [v[0], v[1]] };
    let bias = cx.optional_f32(o.input(2), c_out)?;
    let k = Deconv {
        batch: xs[0],
        c_in,
        c_out,
        group,
        inp: two(inp),
        out: two(out),
        kernel: two(kernel),
        stride: two(&strides),
        dilation: two(&dil),
        pad,
        weights: wt.to_f32_vec()?,
        bias,
    };
    Some(Native {
        what: format!(
            "conv_transpose gemm+col2im {}x{} s{} g{group}",
            k.kernel[0], k.kernel[1], k.stride[1]
        ),
        kernel: Kernel::ConvTranspose(Box::new(k)),
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}
