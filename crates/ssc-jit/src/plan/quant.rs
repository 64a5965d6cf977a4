//! Lowering of the integer ops of dynamically quantised models (DynamicQuantizeLinear,
//! ConvInteger, MatMulInteger, Cast, integer Add/Sub/Mul and reshapes) onto `kernels::quant`,
//! with their 8- and 32-bit values in the plan's integer arena (`Loc::Int`).

use ssc_ir::{DataType, OpId, Tensor, ValueId};

use super::util::{ints, resolve_pads, single_output, static_f32, to_usize};
use super::{Cx, IntTy, Kernel, Native};
use crate::kernels::eltwise::{BinOp, Binary};
use crate::kernels::quant::{ConvInteger, LstmProducts, MatMulInteger};

/// The static dims of an integer value of the arena's types.
pub(super) fn static_int(cx: &Cx, v: ValueId) -> Option<(IntTy, Vec<usize>)> {
    let t = cx.g.value(v).ty.as_ref()?.tensor()?;
    Some((IntTy::of(t.elem)?, t.static_shape()?))
}

/// The elements of an integer constant as i32.
fn const_ints(t: &Tensor) -> Option<Vec<i32>> {
    IntTy::of(t.dtype)?;
    Some(t.to_i64_vec()?.into_iter().map(|v| v as i32).collect())
}

/// An 8-bit input's optional zero point: absent, or one value of its type (a constant or a
/// value computed before the step).
fn scalar_zp(cx: &Cx, v: Option<ValueId>, ty: IntTy) -> Option<Option<ValueId>> {
    let Some(v) = v else { return Some(None) };
    if let Some(t) = cx.constant(v) {
        return (IntTy::of(t.dtype)? == ty && t.numel() == 1).then_some(Some(v));
    }
    let (zt, dims) = static_int(cx, v)?;
    (zt == ty && dims.iter().product::<usize>() == 1 && cx.ready.contains(&v)).then_some(Some(v))
}

/// A constant weight's zero point: one value, or one per index of `per`.
fn weight_zp(cx: &Cx, v: Option<ValueId>, ty: IntTy, per: usize) -> Option<Vec<i32>> {
    let Some(v) = v else { return Some(vec![0]) };
    let t = cx.constant(v)?;
    if IntTy::of(t.dtype)? != ty || !(t.numel() == 1 || t.numel() == per) {
        return None;
    }
    const_ints(t)
}

fn is_8bit(t: IntTy) -> bool {
    matches!(t, IntTy::U8 | IntTy::I8)
}

pub(super) fn lower_dynamic_quantize(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let x = o.input(0)?;
    let dims = static_f32(g, x)?;
    let (y, s, z) = (o.output(0)?, o.output(1)?, o.output(2)?);
    let ok = static_int(cx, y)? == (IntTy::U8, dims)
        && static_f32(g, s)?.iter().product::<usize>() == 1
        && static_int(cx, z)?.0 == IntTy::U8;
    ok.then(|| Native {
        what: "dynamic quantize u8".into(),
        kernel: Kernel::DynQuant,
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}

pub(super) fn lower_conv_integer(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let y = single_output(o)?;
    let (xt, xd) = static_int(cx, x)?;
    let (yt, yd) = static_int(cx, y)?;
    let wt = cx.constant(o.input(1)?)?;
    if !is_8bit(xt) || yt != IntTy::I32 || xd.len() != 4 || yd.len() != 4 || wt.dims.len() != 4 {
        return None;
    }
    let wty = IntTy::of(wt.dtype).filter(|&t| is_8bit(t))?;
    let groups = usize::try_from(d.get_int("group").ok()?.unwrap_or(1)).ok()?;
    let (n, c_in, c_out) = (xd[0], xd[1], wt.dims[0]);
    if groups == 0
        || c_in % groups != 0
        || c_out % groups != 0
        || wt.dims[1] * groups != c_in
        || yd[0] != n
        || yd[1] != c_out
    {
        return None;
    }
    let k = [wt.dims[2], wt.dims[3]];
    if let Some(ks) = d.get_ints("kernel_shape").ok()? {
        if to_usize(ks)? != k {
            return None;
        }
    }
    let s = to_usize(&ints(d, "strides", &[1, 1])?)?;
    let dil = to_usize(&ints(d, "dilations", &[1, 1])?)?;
    if s.len() != 2 || dil.len() != 2 || s.contains(&0) || dil.contains(&0) {
        return None;
    }
    let (s, dil) = ([s[0], s[1]], [dil[0], dil[1]]);
    let (ih, iw, oh, ow) = (xd[2], xd[3], yd[2], yd[3]);
    let pads = resolve_pads(d, [ih, iw], [oh, ow], k, s, dil, false)?;
    let x_zp = scalar_zp(cx, o.input(2), xt)?;
    let w_zp = weight_zp(cx, o.input(3), wty, c_out)?;
    let w = const_ints(wt)?;
    let kern = ConvInteger::new(
        c_in,
        groups,
        [ih, iw],
        [oh, ow],
        k,
        s,
        dil,
        [pads[0], pads[1]],
        &w,
        &w_zp,
        c_out,
    );
    Some(Native {
        what: format!("conv integer {}x{} /{} (i16 pairs)", k[0], k[1], s[0]),
        kernel: Kernel::ConvInteger {
            k: Box::new(kern),
            batch: n,
            in_len: c_in * ih * iw,
            out_len: c_out * oh * ow,
        },
        inputs: vec![Some(x), x_zp],
        output: y,
        absorbed: vec![],
    })
}

pub(super) fn lower_matmul_integer(cx: &Cx, op: OpId) -> Option<Native> {
    let o = cx.g.op(op);
    let a = o.input(0)?;
    let y = single_output(o)?;
    let (at, ad) = (static_int(cx, a)?.0, static_int(cx, a)?.1);
    let (yt, yd) = static_int(cx, y)?;
    let b = cx.constant(o.input(1)?)?;
    let bt = IntTy::of(b.dtype).filter(|&t| is_8bit(t))?;
    if !is_8bit(at) || yt != IntTy::I32 || b.dims.len() != 2 || ad.len() < 2 {
        return None;
    }
    let (k, n) = (b.dims[0], b.dims[1]);
    let rows: usize = ad[..ad.len() - 1].iter().product();
    let mut want = ad.clone();
    *want.last_mut()? = n;
    if ad[ad.len() - 1] != k || yd != want {
        return None;
    }
    let a_zp = scalar_zp(cx, o.input(2), at)?;
    let b_zp = weight_zp(cx, o.input(3), bt, n)?;
    let kern = MatMulInteger::new(k, n, &const_ints(b)?, &b_zp);
    Some(Native {
        what: format!("matmul integer {rows}x{k}x{n} (i16 pairs)"),
        kernel: Kernel::MatMulInteger(Box::new(kern)),
        inputs: vec![Some(a), a_zp],
        output: y,
        absorbed: vec![],
    })
}

/// Cast between f32 and the arena's integer types (ONNX semantics: floats truncate toward
/// zero and saturate, integers wrap, integers round to the nearest f32).
pub(super) fn lower_cast(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let x = o.input(0)?;
    let y = single_output(o)?;
    let side = |v: ValueId| -> Option<(Option<IntTy>, Vec<usize>)> {
        match static_f32(g, v) {
            Some(d) => Some((None, d)),
            None => static_int(cx, v).map(|(t, d)| (Some(t), d)),
        }
    };
    let ((from, xd), (to, yd)) = (side(x)?, side(y)?);
    if xd.iter().product::<usize>() != yd.iter().product::<usize>()
        || (from.is_none() && to.is_none())
    {
        return None;
    }
    Some(Native {
        what: format!(
            "cast {} -> {}",
            from.map_or("f32", IntTy::name),
            to.map_or("f32", IntTy::name)
        ),
        kernel: Kernel::Cast { from, to },
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}

/// Add, Sub and Mul of int32 values (wrapping, as the reference's int32 arithmetic), with
/// broadcasting; a constant operand is kept in the kernel.
pub(super) fn lower_int_binary(cx: &Cx, op: OpId) -> Option<Native> {
    let o = cx.g.op(op);
    let bop = match o.desc.op_type.as_str() {
        "Add" => BinOp::Add,
        "Sub" => BinOp::Sub,
        "Mul" => BinOp::Mul,
        _ => return None,
    };
    let y = single_output(o)?;
    let (yt, yd) = static_int(cx, y)?;
    if yt != IntTy::I32 || o.inputs().len() != 2 {
        return None;
    }
    let mut consts: [Option<Vec<i32>>; 2] = [None, None];
    let mut dims: Vec<Vec<usize>> = Vec::new();
    let mut inputs = Vec::new();
    for (i, v) in o.inputs().iter().enumerate() {
        let v = (*v)?;
        if let Some(t) = cx.constant(v) {
            if t.dtype != DataType::Int32 {
                return None;
            }
            consts[i] = Some(const_ints(t)?);
            dims.push(t.dims.clone());
            inputs.push(None);
        } else {
            let (t, d) = static_int(cx, v)?;
            if t != IntTy::I32 {
                return None;
            }
            dims.push(d);
            inputs.push(Some(v));
        }
    }
    let k = Binary::new(bop, &dims[0], &dims[1], &yd)?;
    Some(Native {
        what: format!("{} i32", o.desc.op_type),
        kernel: Kernel::IntBinary {
            k,
            consts: Box::new(consts),
        },
        inputs,
        output: y,
        absorbed: vec![],
    })
}

/// Reshape-likes of integer values: the elements unchanged.
pub(super) fn lower_int_copy(cx: &Cx, op: OpId) -> Option<Native> {
    let o = cx.g.op(op);
    if o.desc.op_type == "Dropout" {
        return None;
    }
    let x = o.input(0)?;
    let y = single_output(o)?;
    let ((xt, xd), (yt, yd)) = (static_int(cx, x)?, static_int(cx, y)?);
    (xt == yt && xd.iter().product::<usize>() == yd.iter().product::<usize>()).then(|| Native {
        what: "copy".into(),
        kernel: Kernel::IntCopy,
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}

/// com.microsoft DynamicQuantizeLSTM: the reference's step (`ssc_exec::dynamic_quantize_lstm_with`,
/// onnxruntime's arithmetic) with its integer GEMMs on the packed kernels of
/// [`MatMulInteger`]. `W` and `R` (`[dirs, k, 4 hidden]`) and their zero points (one per
/// direction, or per column and then all equal) must be constants.
pub(super) fn lower_dq_lstm(cx: &Cx, op: OpId) -> Option<Native> {
    let o = cx.g.op(op);
    if o.inputs().len() < 12 {
        return None;
    }
    let mut prods = Vec::new();
    let x = o.input(0)?;
    static_f32(cx.g, x)?;
    let mut dirs = 0;
    for (wi, zi) in [(1, 9), (2, 11)] {
        let w = cx.constant(o.input(wi)?)?;
        let z = cx.constant(o.input(zi)?)?;
        if w.dims.len() != 3 || !is_8bit(IntTy::of(w.dtype)?) || z.dtype != w.dtype {
            return None;
        }
        let (nd, k, n) = (w.dims[0], w.dims[1], w.dims[2]);
        let per = match z.dims.as_slice() {
            [d] if *d == nd => 1,
            [d, m] if *d == nd && *m == n => n,
            _ => return None,
        };
        let wv = const_ints(w)?;
        let zv = const_ints(z)?;
        dirs = nd;
        for d in 0..nd {
            let m = MatMulInteger::new(k, n, &wv[d * k * n..(d + 1) * k * n], &[zv[d * per]]);
            if wi == 1 {
                prods.push(vec![m]);
            } else {
                prods.get_mut(d)?.push(m);
            }
        }
    }
    if dirs == 0 || prods.len() != dirs {
        return None;
    }
    let w = prods
        .into_iter()
        .map(|mut v| {
            let r = v.pop()?;
            let w = v.pop()?;
            Some([w, r])
        })
        .collect::<Option<Vec<_>>>()?;
    let mut inputs: Vec<Option<ValueId>> = o.inputs().to_vec();
    while inputs.last() == Some(&None) {
        inputs.pop();
    }
    // Every input but X must be known at compile time or already computed (f32 in the arena).
    for v in inputs.iter().flatten() {
        if cx.constant(*v).is_none() && (static_f32(cx.g, *v).is_none() || !cx.ready.contains(v)) {
            return None;
        }
    }
    let outs = o.outputs().iter().flatten().count();
    if o.outputs()
        .iter()
        .flatten()
        .any(|&v| static_f32(cx.g, v).is_none())
    {
        return None;
    }
    Some(Native {
        what: "dynamic quantize lstm (integer GEMMs on i16 pairs)".into(),
        kernel: Kernel::DqLstm {
            desc: Box::new(o.desc.clone()),
            products: Box::new(LstmProducts { w }),
            in_dims: inputs
                .iter()
                .map(|v| v.and_then(|v| static_f32(cx.g, v)))
                .collect(),
            n_out: o.outputs().len().min(3).max(outs),
        },
        inputs,
        output: o.outputs().iter().flatten().copied().next()?,
        absorbed: vec![],
    })
}
