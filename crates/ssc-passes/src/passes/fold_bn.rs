//! Inference `BatchNormalization` after a `Conv` is folded into the Conv's weights and bias, the
//! single most common clean-up for exported CNNs (and a precondition for seeing the sparsity
//! structure of the weights a runtime will actually use).
//!
//! Matches `y = BatchNormalization(Conv(x, W, B?), gamma, beta, mean, var)` and rewrites it to
//! `y = Conv(x, W', B')` with, per output channel `o` and `s = gamma / sqrt(var + epsilon)`:
//! `W'[o] = W[o] * s[o]` and `B'[o] = (B[o] - mean[o]) * s[o] + beta[o]` (`B = 0` if absent).
//! The arithmetic is done in f64 from the stored values and rounded once to W's type, so the
//! folded model differs from the original only by that one rounding and the runtime's summation
//! order. Works for 1-D/2-D/3-D and grouped Convs: W is `[Co, Ci/group, k...]` in every case.
//!
//! Guard: all five BN inputs present; gamma/beta/mean/var constant 1-D float tensors of length
//! Co; BN in inference mode (no `training_mode=1`; before opset 7 an explicit `is_test=1`;
//! before opset 9 `spatial` absent or 1; the statistics outputs unused); the Conv's output read only by this BN (not a graph output, not
//! captured); W (and B) constant floats. `var + epsilon` must be positive and every result
//! finite in W's type, otherwise the pair is left alone. Weights or a bias that something else
//! also reads are not changed in place: the folded values go to new initializers.
//!
//! The folded Conv writes the BN's output value `y`, so downstream names and graph outputs are
//! unchanged; the Conv's old output value is removed. Now-unused BN parameters are left for
//! `dce`.

use ssc_ir::Model;

use super::{conv_site, finish_conv_fold, float_tensor};
use crate::util::is_onnx_op;
use crate::{PassError, PassOptions, PassReport};

pub(crate) fn run(m: &mut Model, _: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let opset = m.onnx_opset();
    let g = &mut m.graph;
    for bn in g.op_ids() {
        if !is_onnx_op(g, bn, "BatchNormalization") {
            continue;
        }
        let o = g.op(bn);
        let d = &o.desc;
        let ins: Option<Vec<_>> = (0..5).map(|s| o.input(s)).collect();
        let (Some(ins), Some(y), 5) = (ins, o.output(0), o.inputs().len()) else {
            continue;
        };
        // Before opset 7 BN computes batch statistics unless `is_test` is set (its default is
        // 0), so only an explicit `is_test=1` is known to be inference there.
        let training = (opset >= 14 && d.get_int("training_mode").ok().flatten() == Some(1))
            || (opset < 7 && d.get_int("is_test").ok().flatten().unwrap_or(0) == 0);
        let spatial = d.get_int("spatial").ok().flatten().unwrap_or(1);
        let stats_used = o.outputs()[1..].iter().flatten().any(|&v| g.is_used(v));
        if training || (opset < 9 && spatial != 1) || stats_used {
            continue;
        }
        let Ok(eps) = d.get_float("epsilon").map(|e| f64::from(e.unwrap_or(1e-5))) else {
            continue;
        };
        let Some(site) = conv_site(g, ins[0], bn, 0) else {
            continue;
        };
        let co = site.channels();
        // gamma, beta, mean, var, each a constant float vector of length Co.
        let params: Option<Vec<Vec<f64>>> = ins[1..]
            .iter()
            .map(|&v| {
                let t = g.constant(v)?;
                (t.dtype.is_float() && t.dims == [co]).then(|| t.to_f64_vec())?
            })
            .collect();
        let Some(p) = params else {
            continue;
        };
        let (gamma, beta, mean, var) = (&p[0], &p[1], &p[2], &p[3]);
        let Some(scale): Option<Vec<f64>> = (0..co)
            .map(|o| {
                let den = var[o] + eps;
                (den > 0.0).then(|| gamma[o] / den.sqrt())
            })
            .collect()
        else {
            continue;
        };
        let Some(w) = site.w.to_f64_vec() else {
            continue;
        };
        let k = site.per_channel();
        let new_w: Vec<f64> = w
            .iter()
            .enumerate()
            .map(|(i, &v)| v * scale[i / k])
            .collect();
        let b: Vec<f64> = match &site.bias {
            Some((_, t)) => match t.to_f64_vec() {
                Some(v) => v,
                None => continue,
            },
            None => vec![0.0; co],
        };
        let new_b: Vec<f64> = (0..co)
            .map(|o| (b[o] - mean[o]) * scale[o] + beta[o])
            .collect();
        let dt = site.w.dtype;
        let (Some(new_w), Some(new_b)) = (
            float_tensor(dt, site.w.dims.clone(), &new_w),
            float_tensor(dt, vec![co], &new_b),
        ) else {
            continue;
        };
        finish_conv_fold(g, &site, bn, y, Some(new_w), new_b)?;
        r.add("folded_bn", 1);
    }
    Ok(())
}
