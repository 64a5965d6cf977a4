//! The tensor-sequence ops (opset 11+): SequenceEmpty, SequenceConstruct, SequenceAt,
//! SequenceInsert, SequenceErase, SequenceLength, ConcatFromSequence and SplitToSequence.
//! Sequences live only inside a run; graph inputs and outputs are tensors.

use ssc_ir::DataType;

use super::shape::{concat_arrays, narrow, split_sizes};
use crate::ctx::{Ctx, Result};
use crate::value::{is_supported_dtype, Array, Val};

/// A position in a sequence of `len` items; `insert` allows `len` itself.
fn position(ctx: &Ctx, i: usize, len: usize, insert: bool, default: i64) -> Result<usize> {
    let p = match ctx.opt_input(i)? {
        None => default,
        Some(a) => *a
            .to_i64_vec()
            .and_then(|v| v.first().copied())
            .as_ref()
            .ok_or_else(|| ctx.err("position must be an integer scalar"))?,
    };
    let n = len as i64;
    let q = if p < 0 { p + n } else { p };
    let hi = if insert { n } else { n - 1 };
    if (0..=hi).contains(&q) {
        Ok(q as usize)
    } else {
        Err(ctx.err(format!("position {p} is out of range for length {len}")))
    }
}

pub(crate) fn sequence(ctx: &Ctx) -> Result<Vec<Val>> {
    let out = match ctx.desc.op_type.as_str() {
        "SequenceEmpty" => {
            let dt = DataType::from_code(ctx.int("dtype", 1)? as i32);
            if !is_supported_dtype(dt) {
                return Err(ctx.err(format!("unsupported dtype {dt}")));
            }
            Val::Seq(dt, Vec::new())
        }
        "SequenceConstruct" => {
            let items: Vec<Array> = (0..ctx.inputs.len())
                .map(|i| ctx.input(i).cloned())
                .collect::<Result<_>>()?;
            let dt = items
                .first()
                .ok_or_else(|| ctx.err("needs at least one input"))?
                .dtype();
            if items.iter().any(|a| a.dtype() != dt) {
                return Err(ctx.err("tensors differ in type"));
            }
            Val::Seq(dt, items)
        }
        "SequenceAt" => {
            let (_, items) = ctx.seq_input(0)?;
            let p = position(ctx, 1, items.len(), false, 0)?;
            items[p].clone().into()
        }
        "SequenceInsert" => {
            let (dt, items) = ctx.seq_input(0)?;
            let t = ctx.input(1)?;
            if t.dtype() != dt {
                return Err(ctx.err(format!("cannot insert {} into a {dt} sequence", t.dtype())));
            }
            let p = position(ctx, 2, items.len(), true, items.len() as i64)?;
            let mut v = items.to_vec();
            v.insert(p, t.clone());
            Val::Seq(dt, v)
        }
        "SequenceErase" => {
            let (dt, items) = ctx.seq_input(0)?;
            let p = position(ctx, 1, items.len(), false, -1)?;
            let mut v = items.to_vec();
            v.remove(p);
            Val::Seq(dt, v)
        }
        "SequenceLength" => {
            let (_, items) = ctx.seq_input(0)?;
            Array::scalar(items.len() as i64).into()
        }
        "ConcatFromSequence" => {
            let (_, items) = ctx.seq_input(0)?;
            let first = items.first().ok_or_else(|| ctx.err("empty sequence"))?;
            let new_axis = ctx.int("new_axis", 0)? != 0;
            let axis = ctx.int("axis", i64::MAX)?;
            if axis == i64::MAX {
                return Err(ctx.err("missing axis"));
            }
            if new_axis {
                // Stack: insert a unit dim at `axis` (which may equal the rank) and concat.
                let a = ctx.axis(axis, first.rank() + 1)?;
                let expanded: Vec<Array> = items
                    .iter()
                    .map(|t| {
                        let mut s = t.shape.clone();
                        s.insert(a.min(s.len()), 1);
                        t.reshaped(s)
                    })
                    .collect();
                let refs: Vec<&Array> = expanded.iter().collect();
                concat_arrays(ctx, &refs, a)?.into()
            } else {
                let a = ctx.axis(axis, first.rank())?;
                let refs: Vec<&Array> = items.iter().collect();
                concat_arrays(ctx, &refs, a)?.into()
            }
        }
        "SplitToSequence" => {
            let x = ctx.input(0)?;
            let axis = ctx.axis(ctx.int("axis", 0)?, x.rank())?;
            let dim = x.shape[axis];
            let split = ctx.opt_input(1)?;
            let pieces: Vec<Array> = match split {
                None => {
                    // Unit pieces; keepdims=0 drops the split axis.
                    let keep = ctx.int("keepdims", 1)? != 0;
                    (0..dim)
                        .map(|i| {
                            let p = narrow(x, axis, i, 1);
                            if keep {
                                p
                            } else {
                                let mut s = p.shape.clone();
                                s.remove(axis);
                                p.reshaped(s)
                            }
                        })
                        .collect()
                }
                Some(s) => {
                    let v = s
                        .to_i64_vec()
                        .ok_or_else(|| ctx.err("split must be integers"))?;
                    let sizes = if s.rank() == 0 {
                        // One chunk length; the last chunk may be shorter.
                        let c = v[0];
                        if c <= 0 {
                            return Err(ctx.err("split must be positive"));
                        }
                        let c = c as usize;
                        let mut sz = vec![c; dim / c];
                        if dim % c != 0 {
                            sz.push(dim % c);
                        }
                        sz
                    } else {
                        split_sizes(ctx, dim, Some(v), 0)?
                    };
                    let mut start = 0;
                    sizes
                        .into_iter()
                        .map(|len| {
                            let p = narrow(x, axis, start, len);
                            start += len;
                            p
                        })
                        .collect()
                }
            };
            Val::Seq(x.dtype(), pieces)
        }
        other => return Err(ctx.err(format!("`{other}` is not a sequence op"))),
    };
    Ok(vec![out])
}
