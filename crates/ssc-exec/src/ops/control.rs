//! Control flow: If, Loop and Scan (opset 9 on), running their subgraphs through the
//! executor's prepared plans ([`crate::ctx::Subgraphs`]).
//!
//! - If runs `then_branch` or `else_branch` on its one-element condition.
//! - Loop follows the spec's table: with a trip count `M` it runs while `i < M`, with a
//!   condition input while the condition holds (the body's first output updating it), with
//!   neither forever (as the spec writes it; such a model must end through its condition). The
//!   body gets `(i, cond, carried...)` and returns `(cond, carried..., scans...)`; the scan
//!   outputs are stacked along a new first axis, and a loop that runs no iteration returns its
//!   initial values and empty scan outputs typed from the body's declarations.
//! - Scan slices its scan inputs along `scan_input_axes` (reversed where
//!   `scan_input_directions` says 1), threads the states through the body, and stacks each
//!   scan output along `scan_output_axes` (in reverse iteration order where
//!   `scan_output_directions` says 1). Opset 8's batched form (a leading batch axis on every
//!   state and scan input, optional `sequence_lens`, `directions`) runs the same iteration
//!   per batch row, a row's scan outputs zero past its length.

use ssc_ir::DataType;

use super::shape::{concat_arrays, narrow};
use crate::ctx::{Ctx, Result};
use crate::value::{dispatch, Array, Val};

/// The truth of a one-element tensor.
fn truth(ctx: &Ctx, v: &Val, what: &str) -> Result<bool> {
    match v {
        Val::Tensor(a) if a.len() == 1 => Ok(a.to_f64_vec()[0] != 0.0),
        _ => Err(ctx.err(format!("{what} must be a one-element tensor"))),
    }
}

fn tensor(ctx: &Ctx, v: Val, what: &str) -> Result<Array> {
    match v {
        Val::Tensor(a) => Ok(a),
        v => Err(ctx.err(format!("{what} must be a tensor, not {}", v.kind()))),
    }
}

/// Stacks equal-shaped arrays along a new axis `axis` (in `[0, rank]`).
fn stack(ctx: &Ctx, items: &[Array], axis: usize) -> Result<Array> {
    let parts: Vec<Array> = items
        .iter()
        .map(|a| {
            let mut shape = a.shape.clone();
            shape.insert(axis, 1);
            a.reshaped(shape)
        })
        .collect();
    let refs: Vec<&Array> = parts.iter().collect();
    concat_arrays(ctx, &refs, axis)
}

/// An empty scan output: `[0]` then the declared static dims of one iteration's value.
fn empty_scan(ty: Option<&ssc_ir::TensorType>) -> Array {
    let elem = ty.map_or(DataType::Float, |t| t.elem);
    let mut shape = vec![0];
    if let Some(dims) = ty.and_then(|t| t.static_shape()) {
        shape.extend(dims);
    }
    dispatch!(all elem, T => Array::new(shape, Vec::<T>::new()),
        else Array::new(shape, Vec::<f32>::new()))
}

pub(crate) fn if_op(ctx: &Ctx) -> Result<Vec<Val>> {
    let cond = ctx.opt_val(0).ok_or_else(|| ctx.err("missing condition"))?;
    let branch = if truth(ctx, cond, "cond")? {
        "then_branch"
    } else {
        "else_branch"
    };
    let outs = ctx.subgraphs()?.run(branch, Vec::new())?;
    if outs.len() < ctx.n_out {
        return Err(ctx.err(format!(
            "{branch} gives {} outputs, the node has {}",
            outs.len(),
            ctx.n_out
        )));
    }
    Ok(outs)
}

pub(crate) fn loop_op(ctx: &Ctx) -> Result<Vec<Val>> {
    let env = ctx.subgraphs()?;
    let max = match ctx.opt_input(0)? {
        Some(m) if m.len() == 1 => Some(
            m.to_i64_vec()
                .ok_or_else(|| ctx.err("M must be an integer"))?[0],
        ),
        Some(_) => return Err(ctx.err("M must hold one value")),
        None => None,
    };
    let has_cond = ctx.opt_val(1).is_some();
    let mut cond = match ctx.opt_val(1) {
        Some(c) => truth(ctx, c, "cond")?,
        None => true,
    };
    let mut carried: Vec<Val> = (2..ctx.inputs.len())
        .map(|i| {
            ctx.opt_val(i)
                .cloned()
                .ok_or_else(|| ctx.err(format!("loop-carried input {i} is empty")))
        })
        .collect::<Result<_>>()?;
    let n = carried.len();
    let mut scans: Vec<Vec<Array>> = Vec::new();
    let mut i = 0i64;
    while max.is_none_or(|m| i < m) && cond {
        let mut ins = vec![Val::from(Array::scalar(i)), Val::from(Array::scalar(cond))];
        ins.extend(carried.iter().cloned());
        let outs = env.run("body", ins)?;
        if outs.len() < 1 + n {
            return Err(ctx.err(format!(
                "the body gives {} outputs, at least {} expected",
                outs.len(),
                1 + n
            )));
        }
        let mut outs = outs.into_iter();
        let c = outs.next().expect("checked length");
        if has_cond {
            cond = truth(ctx, &c, "the body's condition")?;
        }
        carried = outs.by_ref().take(n).collect();
        let rest: Vec<Val> = outs.collect();
        if scans.is_empty() {
            scans = vec![Vec::new(); rest.len()];
        }
        for (k, v) in rest.into_iter().enumerate() {
            scans[k].push(tensor(ctx, v, "a scan output")?);
        }
        i += 1;
    }
    let mut outs = carried;
    let k_count = ctx.n_out.saturating_sub(n);
    if i == 0 {
        let types = env.output_types("body")?;
        for k in 0..k_count {
            outs.push(empty_scan(types.get(1 + n + k).and_then(Option::as_ref)).into());
        }
    } else {
        for items in &scans {
            outs.push(stack(ctx, items, 0)?.into());
        }
    }
    Ok(outs)
}

/// A per-input (or per-output) integer attribute list, defaulting to zeros.
fn per_item(ctx: &Ctx, name: &str, n: usize) -> Result<Vec<i64>> {
    match ctx.ints(name)? {
        None => Ok(vec![0; n]),
        Some(v) if v.len() == n => Ok(v),
        Some(v) => Err(ctx.err(format!("{name} has {} values, {n} expected", v.len()))),
    }
}

/// Scan at opset 8: `(sequence_lens?, states..., scans...)`, each with a batch axis first and
/// the scan inputs' sequence axis second.
fn scan8(ctx: &Ctx) -> Result<Vec<Val>> {
    let env = ctx.subgraphs()?;
    let ins: Vec<&Array> = (1..ctx.inputs.len())
        .map(|i| ctx.input(i))
        .collect::<Result<_>>()?;
    let m = usize::try_from(ctx.int("num_scan_inputs", 0)?)
        .ok()
        .filter(|&m| m >= 1 && m <= ins.len())
        .ok_or_else(|| ctx.err("num_scan_inputs must be between 1 and the number of inputs"))?;
    let n = ins.len() - m;
    let dirs = per_item(ctx, "directions", m)?;
    let batch = ins[0].shape.first().copied().unwrap_or(0);
    let (states, scan_ins) = ins.split_at(n);
    let seq = scan_ins[0].shape.get(1).copied().unwrap_or(0);
    for a in &ins {
        let ok = a.shape.first() == Some(&batch);
        let scan_ok = scan_ins.iter().all(|s| s.rank() >= 2 && s.shape[1] == seq);
        if !ok || !scan_ok {
            return Err(ctx.err(
                "states and scan inputs need one batch size, scan inputs one sequence length",
            ));
        }
    }
    let lens: Vec<usize> = match ctx.opt_ints_input(0)? {
        None => vec![seq; batch],
        Some(v) if v.len() == batch && v.iter().all(|&l| (0..=seq as i64).contains(&l)) => {
            v.iter().map(|&l| l as usize).collect()
        }
        Some(v) => {
            return Err(ctx.err(format!(
                "sequence_lens {v:?} do not fit {batch} rows of {seq}"
            )))
        }
    };
    let row = |a: &Array, b: usize| {
        let shape = a.shape[1..].to_vec();
        narrow(a, 0, b, 1).reshaped(shape)
    };
    let mut out_states: Vec<Vec<Array>> = vec![Vec::new(); n];
    let mut out_scans: Vec<Vec<Array>> = Vec::new();
    let k_count = ctx.n_out.saturating_sub(n);
    let types = env.output_types("body")?;
    for (b, &len) in lens.iter().enumerate() {
        let mut st: Vec<Val> = states.iter().map(|a| Val::from(row(a, b))).collect();
        let rows: Vec<Array> = scan_ins.iter().map(|a| row(a, b)).collect();
        let mut scans: Vec<Vec<Array>> = vec![Vec::new(); k_count];
        for t in 0..len {
            let mut body_in = st.clone();
            for (r, &dir) in rows.iter().zip(&dirs) {
                let at = if dir == 1 { len - 1 - t } else { t };
                let shape = r.shape[1..].to_vec();
                body_in.push(narrow(r, 0, at, 1).reshaped(shape).into());
            }
            let outs = env.run("body", body_in)?;
            if outs.len() < n + k_count {
                return Err(ctx.err(format!("the body gives {} outputs", outs.len())));
            }
            let mut outs = outs.into_iter();
            st = outs.by_ref().take(n).collect();
            for (k, v) in outs.take(k_count).enumerate() {
                scans[k].push(tensor(ctx, v, "a scan output")?);
            }
        }
        for (k, v) in st.into_iter().enumerate() {
            out_states[k].push(tensor(ctx, v, "a state")?);
        }
        // Each row's scan outputs are [seq, ...]: zeros past the row's length.
        for (k, items) in scans.into_iter().enumerate() {
            let one = match items.first() {
                Some(a) => a.clone(),
                None => {
                    let e = empty_scan(types.get(n + k).and_then(Option::as_ref));
                    let shape = e.shape[1..].to_vec();
                    Array::new(shape.clone(), vec![0f32; shape.iter().product()])
                        .cast(e.dtype())
                        .expect("numeric cast")
                }
            };
            let zero = one.take(
                one.shape.clone(),
                &vec![crate::value::FILL; one.len()],
                None,
            );
            let mut full = items;
            full.resize(seq, zero);
            if out_scans.len() <= k {
                out_scans.resize(k + 1, Vec::new());
            }
            out_scans[k].push(stack(ctx, &full, 0)?);
        }
    }
    let mut outs = Vec::new();
    for items in out_states.into_iter().chain(out_scans) {
        outs.push(stack(ctx, &items, 0)?.into());
    }
    Ok(outs)
}

pub(crate) fn scan(ctx: &Ctx) -> Result<Vec<Val>> {
    if ctx.opset < 9 {
        return scan8(ctx);
    }
    let env = ctx.subgraphs()?;
    let m = usize::try_from(ctx.int("num_scan_inputs", 0)?)
        .ok()
        .filter(|&m| m >= 1 && m <= ctx.inputs.len())
        .ok_or_else(|| ctx.err("num_scan_inputs must be between 1 and the number of inputs"))?;
    let n = ctx.inputs.len() - m;
    let mut states: Vec<Val> = (0..n)
        .map(|i| {
            ctx.opt_val(i)
                .cloned()
                .ok_or_else(|| ctx.err(format!("state input {i} is empty")))
        })
        .collect::<Result<_>>()?;
    let scan_ins: Vec<&Array> = (n..n + m).map(|i| ctx.input(i)).collect::<Result<_>>()?;
    let axes = per_item(ctx, "scan_input_axes", m)?;
    let dirs = per_item(ctx, "scan_input_directions", m)?;
    let axes: Vec<usize> = scan_ins
        .iter()
        .zip(&axes)
        .map(|(a, &ax)| ctx.axis(ax, a.rank()))
        .collect::<Result<_>>()?;
    let len = scan_ins[0].shape[axes[0]];
    if scan_ins
        .iter()
        .zip(&axes)
        .any(|(a, &ax)| a.shape[ax] != len)
    {
        return Err(ctx.err("the scan inputs differ in sequence length"));
    }
    let mut scans: Vec<Vec<Array>> = Vec::new();
    for t in 0..len {
        let mut ins = states.clone();
        for ((a, &ax), &dir) in scan_ins.iter().zip(&axes).zip(&dirs) {
            let at = if dir == 1 { len - 1 - t } else { t };
            let mut shape = a.shape.clone();
            shape.remove(ax);
            ins.push(narrow(a, ax, at, 1).reshaped(shape).into());
        }
        let outs = env.run("body", ins)?;
        if outs.len() < n {
            return Err(ctx.err(format!(
                "the body gives {} outputs, at least {n} expected",
                outs.len()
            )));
        }
        let mut outs = outs.into_iter();
        states = outs.by_ref().take(n).collect();
        let rest: Vec<Val> = outs.collect();
        if scans.is_empty() {
            scans = vec![Vec::new(); rest.len()];
        }
        for (k, v) in rest.into_iter().enumerate() {
            scans[k].push(tensor(ctx, v, "a scan output")?);
        }
    }
    let k_count = ctx.n_out.saturating_sub(n);
    let out_axes = per_item(ctx, "scan_output_axes", k_count)?;
    let out_dirs = per_item(ctx, "scan_output_directions", k_count)?;
    let mut outs = states;
    if len == 0 {
        let types = env.output_types("body")?;
        for k in 0..k_count {
            outs.push(empty_scan(types.get(n + k).and_then(Option::as_ref)).into());
        }
        return Ok(outs);
    }
    for (k, mut items) in scans.into_iter().enumerate().take(k_count) {
        if out_dirs[k] == 1 {
            items.reverse();
        }
        let rank = items[0].rank() + 1;
        let axis = ctx.axis(out_axes[k], rank)?;
        outs.push(stack(ctx, &items, axis)?.into());
    }
    Ok(outs)
}
