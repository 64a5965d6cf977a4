//! `Mul` and `Add` of a per-output-channel constant after a `Conv` are folded into the Conv's
//! weights and bias: what remains of a BatchNormalization that an exporter decomposed, or of a
//! scale layer, after the BN fold itself.
//!
//! Matches `y = Mul(Conv(x, W, B?), c)` -> `y = Conv(x, W * c[o], B * c[o])` and
//! `y = Add(Conv(x, W, B?), c)` -> `y = Conv(x, W, B + c[o])`, with the constant on either side.
//! Computed in f64 and rounded once to W's type.
//!
//! Guard: the Conv's output is read only by this op; W (and B) constant floats; `c` a constant
//! of W's type whose broadcast against the Conv output `[N, Co, d...]` cannot change that shape
//! and gives one value per output channel: `c`, right-aligned to the output rank, has no extra
//! leading dims, size 1 on the batch axis and size 1 or Co on the channel axis and size 1 on the
//! spatial axes (`[Co,1,1]`, `[1,Co,1,1]`, `[Co,1]` for a 1-D Conv, a scalar...). A constant
//! whose values are all equal may also match full known output dims. `[Co,1,1,1]` against a
//! 4-D output is rejected: it would broadcast into the batch axis. Non-finite constants are
//! rejected (`0 * inf` would differ between the two forms).
//!
//! Before: `y = Mul(Conv(x, W), c)` with `c: float[8,1,1]`; after: `y = Conv(x, W')`.

use ssc_ir::{Dim, Model, Tensor};

use super::{conv_site, finish_conv_fold, float_tensor};
use crate::util::is_onnx_op;
use crate::{PassError, PassOptions, PassReport};

pub(crate) fn run(m: &mut Model, _: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let g = &mut m.graph;
    for op in g.op_ids() {
        let is_mul = is_onnx_op(g, op, "Mul");
        if !is_mul && !is_onnx_op(g, op, "Add") {
            continue;
        }
        let o = g.op(op);
        let (Some(a), Some(b), Some(y), 2) =
            (o.input(0), o.input(1), o.output(0), o.inputs().len())
        else {
            continue;
        };
        for (xs, x, c) in [(0, a, b), (1, b, a)] {
            let Some(site) = conv_site(g, x, op, xs) else {
                continue;
            };
            let Some(ct) = g.constant(c).filter(|t| t.dtype == site.w.dtype) else {
                continue;
            };
            let out_shape = g
                .value(x)
                .ty
                .as_ref()
                .and_then(|t| t.tensor())
                .and_then(|t| t.shape.clone());
            let rank = site.w.dims.len();
            let co = site.channels();
            let Some(per) = per_channel(ct, rank, co, out_shape.as_deref()) else {
                continue;
            };
            let bias: Vec<f64> = match &site.bias {
                Some((_, t)) => match t.to_f64_vec() {
                    Some(v) => v,
                    None => continue,
                },
                None => vec![0.0; co],
            };
            let dt = site.w.dtype;
            let (new_w, new_b) = if is_mul {
                let Some(w) = site.w.to_f64_vec() else {
                    continue;
                };
                let k = site.per_channel();
                let w: Vec<f64> = w.iter().enumerate().map(|(i, v)| v * per[i / k]).collect();
                let b: Vec<f64> = (0..co).map(|o| bias[o] * per[o]).collect();
                let Some(w) = float_tensor(dt, site.w.dims.clone(), &w) else {
                    continue;
                };
                (Some(w), b)
            } else {
                (None, (0..co).map(|o| bias[o] + per[o]).collect())
            };
            let Some(new_b) = float_tensor(dt, vec![co], &new_b) else {
                continue;
            };
            finish_conv_fold(g, &site, op, y, new_w, new_b)?;
            r.add(if is_mul { "folded_mul" } else { "folded_add" }, 1);
            break;
        }
    }
    Ok(())
}

/// The per-output-channel values of constant `c` broadcast against a Conv output of rank `rank`
/// with `co` channels, or `None` when the broadcast would change the output's shape or the
/// values vary along another axis.
fn per_channel(c: &Tensor, rank: usize, co: usize, out: Option<&[Dim]>) -> Option<Vec<f64>> {
    let vals = c.to_f64_vec()?;
    if c.dims.len() > rank || vals.is_empty() || vals.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut dims = vec![1usize; rank - c.dims.len()];
    dims.extend_from_slice(&c.dims);
    let uniform = vals.iter().all(|&v| v == vals[0]);
    let out_dim = |i: usize| out.and_then(|s| s.get(i)).and_then(Dim::known);
    let fits = dims
        .iter()
        .enumerate()
        .all(|(i, &d)| d == 1 || (i == 1 && d == co) || (uniform && out_dim(i) == Some(d)));
    if !fits {
        return None;
    }
    if uniform {
        return Some(vec![vals[0]; co]);
    }
    // Not uniform: all variation must be along the channel axis.
    (dims[1] == co && vals.len() == co).then_some(vals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(v: &[usize]) -> Vec<Dim> {
        v.iter().map(|&d| Dim::Known(d)).collect()
    }

    #[test]
    fn per_channel_shapes() {
        let c3 = Tensor::from_f32(vec![3, 1, 1], &[1.0, 2.0, 3.0]);
        assert_eq!(per_channel(&c3, 4, 3, None), Some(vec![1.0, 2.0, 3.0]));
        let c4 = Tensor::from_f32(vec![1, 3, 1, 1], &[1.0, 2.0, 3.0]);
        assert!(per_channel(&c4, 4, 3, None).is_some());
        let lead = Tensor::from_f32(vec![3, 1, 1, 1], &[1.0, 2.0, 3.0]);
        assert!(per_channel(&lead, 4, 3, None).is_none());
        let conv1d = Tensor::from_f32(vec![3, 1], &[1.0, 2.0, 3.0]);
        assert!(per_channel(&conv1d, 3, 3, None).is_some());
        // A [3] constant broadcasts along the last (spatial) axis, not the channels.
        let flat = Tensor::from_f32(vec![3], &[1.0, 2.0, 3.0]);
        assert!(per_channel(&flat, 4, 3, None).is_none());
        let scalar = Tensor::from_f32(vec![], &[2.0]);
        assert_eq!(per_channel(&scalar, 4, 3, None), Some(vec![2.0; 3]));
        // All-equal values may span known spatial dims, not unknown ones.
        let full = Tensor::from_f32(vec![1, 3, 2, 2], &[0.5; 12]);
        assert!(per_channel(&full, 4, 3, Some(&k(&[1, 3, 2, 2]))).is_some());
        assert!(per_channel(&full, 4, 3, None).is_none());
        let spatial = Tensor::from_f32(vec![1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
        assert!(per_channel(&spatial, 4, 3, Some(&k(&[1, 3, 2, 2]))).is_none());
        let inf = Tensor::from_f32(vec![], &[f32::INFINITY]);
        assert!(per_channel(&inf, 4, 3, None).is_none());
    }
}
