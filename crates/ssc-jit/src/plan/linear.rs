//! Gemm / MatMul lowering.

use ssc_ir::OpId;

use super::util::static_f32;
use super::{Cx, Kernel, Native};
use crate::kernels::linear::Linear;

pub(super) fn lower_linear(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let (a, b) = (o.input(0)?, o.input(1)?);
    let y = o.output(0)?;
    let (sa, sb, sy) = (static_f32(g, a)?, static_f32(g, b)?, static_f32(g, y)?);
    let is_gemm = d.op_type == "Gemm";
    let (ta, tb) = if is_gemm {
        (
            d.get_int("transA").ok()?.unwrap_or(0) != 0,
            d.get_int("transB").ok()?.unwrap_or(0) != 0,
        )
    } else {
        (false, false)
    };
    if sb.len() != 2 || (is_gemm && sa.len() != 2) || sa.len() < 2 {
        return None;
    }
    let (m, k) = if ta {
        (sa[1], sa[0])
    } else {
        (sa[..sa.len() - 1].iter().product(), sa[sa.len() - 1])
    };
    let (kb, n) = if tb { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
    if k != kb || sy.iter().product::<usize>() != m * n || sy.last() != Some(&n) {
        return None;
    }
    let (alpha, beta) = if is_gemm {
        (
            d.get_float("alpha").ok()?.unwrap_or(1.0),
            d.get_float("beta").ok()?.unwrap_or(1.0),
        )
    } else {
        (1.0, 1.0)
    };
    let c = if is_gemm { o.input(2) } else { None };
    let c_strides = match c {
        Some(c) => Some(Linear::c_strides(&static_f32(g, c)?, m, n)?),
        None => None,
    };
    Some(Native {
        what: format!("{} {m}x{k}x{n}", d.op_type),
        kernel: Kernel::Linear(Linear {
            m,
            k,
            n,
            trans_a: ta,
            trans_b: tb,
            alpha,
            beta,
            c_strides,
        }),
        inputs: vec![Some(a), Some(b), c],
        output: y,
        absorbed: vec![],
    })
}
