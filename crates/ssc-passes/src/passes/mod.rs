//! The exact clean-up passes, one file each, plus the two rewiring moves several of them share:
//! bypassing a pass-through op and folding an affine op into the Conv before it.

pub(crate) mod dce;
pub(crate) mod eliminate_dropout;
pub(crate) mod eliminate_identity;
pub(crate) mod fold_bn;
pub(crate) mod fold_cast;
pub(crate) mod fold_constant;
pub(crate) mod fold_constant_of_shape;
pub(crate) mod fold_conv_mul_add;
pub(crate) mod fold_eval;
pub(crate) mod fold_shape;
pub(crate) mod fold_shape_arith;
pub(crate) mod unit_window_strides;

use ssc_ir::{DataType, Graph, OpId, Tensor, ValueId};

use crate::util::{is_onnx_op, new_initializer, remove_if_dangling, used_only_by};
use crate::PassError;

/// Removes pass-through `op` (reading `x`, writing `y`) so readers of `y` read `x`. Returns
/// false, changing nothing, when that would break a name something outside the op list refers to:
///
/// - `y` read by a subgraph: the subgraph names `y`, so the op stays.
/// - `y` a graph output: the interface name must survive, so instead `x`'s producer writes `y`
///   directly and `x`'s readers read `y`. That needs `x` to be an ordinary intermediate; when it
///   is a graph input, graph output, initializer or captured, the op stays.
pub(crate) fn bypass(g: &mut Graph, op: OpId, x: ValueId, y: ValueId) -> Result<bool, PassError> {
    if g.is_captured(y) || x == y {
        return Ok(false);
    }
    if !g.is_graph_output(y) {
        g.remove_op(op);
        g.replace_input_uses(y, x);
        remove_if_dangling(g, y);
        return Ok(true);
    }
    let pinned = g.is_graph_input(x)
        || g.is_graph_output(x)
        || g.initializer(x).is_some()
        || g.is_captured(x);
    let Some((producer, slot)) = g.producer(x).filter(|_| !pinned) else {
        return Ok(false);
    };
    g.remove_op(op);
    g.set_output(producer, slot, Some(y))?;
    g.replace_input_uses(x, y);
    if g.value(y).ty.is_none() {
        g.value_mut(y).ty = g.value(x).ty.clone();
    }
    remove_if_dangling(g, x);
    Ok(true)
}

/// A Conv whose output feeds exactly one op, with constant weights (and bias, if any): the
/// starting point for folding a following per-channel affine op into it.
pub(crate) struct ConvSite {
    pub conv: OpId,
    /// The Conv's output, read only by the op being folded.
    pub out: ValueId,
    pub weight: ValueId,
    pub w: Tensor,
    pub bias: Option<(ValueId, Tensor)>,
}

impl ConvSite {
    /// Output channels (W is `[Co, Ci/group, k...]` for any group count).
    pub(crate) fn channels(&self) -> usize {
        self.w.dims[0]
    }

    /// Elements of W per output channel.
    pub(crate) fn per_channel(&self) -> usize {
        self.w.dims[1..].iter().product()
    }
}

/// The Conv producing `x` if `x` is read only by input `slot` of `consumer` and the Conv's
/// weights and bias are constant floating-point tensors of one type.
pub(crate) fn conv_site(g: &Graph, x: ValueId, consumer: OpId, slot: usize) -> Option<ConvSite> {
    let (conv, 0) = g.producer(x)? else {
        return None;
    };
    if !is_onnx_op(g, conv, "Conv") || g.sole_consumer(x) != Some((consumer, slot)) {
        return None;
    }
    let c = g.op(conv);
    let weight = c.input(1)?;
    let w = g.constant(weight)?.clone();
    if !w.dtype.is_float() || w.dims.len() < 3 || w.dims[0] == 0 || w.raw().is_none() {
        return None;
    }
    let bias = match c.input(2) {
        None => None,
        Some(b) => {
            let t = g.constant(b)?;
            if t.dtype != w.dtype || t.dims != [w.dims[0]] {
                return None;
            }
            Some((b, t.clone()))
        }
    };
    Some(ConvSite {
        conv,
        out: x,
        weight,
        w,
        bias,
    })
}

/// Finishes a fold of `op` (writing `y`) into `site`: stores the new weights and bias (in place
/// when nothing else reads the old constants, as new initializers otherwise), makes the Conv
/// write `y` so downstream names survive, and removes `op` and the old intermediate.
pub(crate) fn finish_conv_fold(
    g: &mut Graph,
    site: &ConvSite,
    op: OpId,
    y: ValueId,
    new_w: Option<Tensor>,
    new_b: Tensor,
) -> Result<(), PassError> {
    let conv = site.conv;
    let wname = g.value(site.weight).name.clone();
    if let Some(w) = new_w {
        if used_only_by(g, site.weight, conv) {
            g.set_initializer(site.weight, w);
        } else {
            let v = new_initializer(g, &format!("{wname}_folded"), w);
            g.set_input(conv, 1, Some(v));
        }
    }
    match &site.bias {
        Some((b, _)) if used_only_by(g, *b, conv) => g.set_initializer(*b, new_b),
        Some((b, _)) => {
            let base = format!("{}_folded", g.value(*b).name);
            let v = new_initializer(g, &base, new_b);
            g.set_input(conv, 2, Some(v));
        }
        None => {
            // PyTorch names weights `<layer>.weight`; the new bias reads naturally beside it.
            let base = wname
                .strip_suffix("weight")
                .map_or_else(|| format!("{wname}_bias"), |p| format!("{p}bias"));
            let v = new_initializer(g, &base, new_b);
            g.set_input(conv, 2, Some(v));
        }
    }
    g.remove_op(op);
    g.set_output(conv, 0, Some(y))?;
    if g.value(y).ty.is_none() {
        g.value_mut(y).ty = g.value(site.out).ty.clone();
    }
    remove_if_dangling(g, site.out);
    Ok(())
}

/// A float tensor of `dtype` from f64 values, rounded once (the fold computes in f64).
pub(crate) fn float_tensor(dtype: DataType, dims: Vec<usize>, vals: &[f64]) -> Option<Tensor> {
    if !dtype.is_float() || vals.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let t = Tensor::from_f64_as(dtype, dims, vals)?;
    // Finite in f64 can still overflow a narrower type (f16 above 65504).
    t.to_f64_vec()?.iter().all(|v| v.is_finite()).then_some(t)
}
