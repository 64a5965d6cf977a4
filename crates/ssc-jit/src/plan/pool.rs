//! Pool lowering: windowed max/average pools and global pools.

use ssc_ir::{Graph, OpId};

use super::util::{ints, resolve_pads, single_output, static_f32, to_usize};
use super::{Cx, Kernel, Native};
use crate::kernels::pool::{Pool, PoolGeom, PoolKind};

fn pool_kernel(g: &Graph, op: OpId) -> Option<(Pool, usize)> {
    let o = g.op(op);
    let d = &o.desc;
    let xs = static_f32(g, o.input(0)?)?;
    let ys = static_f32(g, o.output(0)?)?;
    if xs.len() != 4 || ys.len() != 4 || xs[..2] != ys[..2] {
        return None;
    }
    // MaxPool's optional Indices output is left to the reference kernel.
    if o.output(1).is_some() {
        return None;
    }
    let k = to_usize(d.get_ints("kernel_shape").ok()??)?;
    let s = to_usize(&ints(d, "strides", &[1, 1])?)?;
    let dil = to_usize(&ints(d, "dilations", &[1, 1])?)?;
    if k.len() != 2 || s.len() != 2 || dil.len() != 2 || s.contains(&0) || dil.contains(&0) {
        return None;
    }
    let ceil = d.get_int("ceil_mode").ok()?.unwrap_or(0) != 0;
    let kind = match d.op_type.as_str() {
        "MaxPool" => PoolKind::Max,
        _ => {
            if dil != [1, 1] {
                return None;
            }
            PoolKind::Avg {
                count_include_pad: d.get_int("count_include_pad").ok()?.unwrap_or(0) != 0,
            }
        }
    };
    let pads = resolve_pads(
        d,
        [xs[2], xs[3]],
        [ys[2], ys[3]],
        [k[0], k[1]],
        [s[0], s[1]],
        [dil[0], dil[1]],
        ceil,
    )?;
    Some((
        Pool::new(
            PoolGeom {
                c: xs[1],
                h: xs[2],
                w: xs[3],
                kh: k[0],
                kw: k[1],
                stride: [s[0], s[1]],
                dilation: [dil[0], dil[1]],
                pads,
                h_out: ys[2],
                w_out: ys[3],
            },
            kind,
        ),
        xs[0],
    ))
}

/// MaxPool / AveragePool.
pub(super) fn lower_pool(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let (k, batch) = pool_kernel(g, op)?;
    let y = single_output(o)?;
    let gm = k.geom;
    Some(Native {
        what: format!("{} {}x{}", d.op_type, gm.kh, gm.kw),
        kernel: Kernel::Pool {
            in_len: gm.c * gm.h * gm.w,
            out_len: gm.c * gm.h_out * gm.w_out,
            k,
            batch,
        },
        inputs: vec![o.input(0)],
        output: y,
        absorbed: vec![],
    })
}

/// GlobalAveragePool / GlobalMaxPool.
pub(super) fn lower_global_pool(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let xs = static_f32(g, o.input(0)?)?;
    let y = single_output(o)?;
    static_f32(g, y)?;
    if xs.len() < 3 {
        return None;
    }
    Some(Native {
        what: d.op_type.clone(),
        kernel: Kernel::GlobalPool {
            max: d.op_type == "GlobalMaxPool",
            p: xs[2..].iter().product(),
        },
        inputs: vec![o.input(0)],
        output: y,
        absorbed: vec![],
    })
}
