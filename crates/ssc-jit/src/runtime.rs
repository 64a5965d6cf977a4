//! Running a compiled plan: one pass over its steps on a session's preallocated arena.

use ssc_ir::{DataType, RunValue, Tensor};

use crate::kernels::chain::MAX_INPUTS as MAX_CHAIN_INPUTS;
use crate::kernels::quant::{self, Bytes8};
use crate::kernels::{eltwise, norm, pool};
use crate::plan::{IntTy, Io, Kernel, Loc, Plan, Step};
use crate::JitError;

/// Per-session mutable state: the activation arena, the kernel scratch, and the slots of
/// values that live outside the arena (non-f32 or dynamic-shape tensors, sequences and
/// optionals of fallback nodes).
pub(crate) struct State {
    pub arena: Vec<f32>,
    /// The integer arena (`Loc::Int` values; 8-bit values pack four to a word).
    pub ints: Vec<i32>,
    pub scratch: Vec<f32>,
    pub dyn_vals: Vec<Option<RunValue>>,
}

impl State {
    pub(crate) fn new(plan: &Plan) -> State {
        State {
            arena: vec![0.0; plan.arena_len],
            ints: vec![0; plan.int_len],
            scratch: vec![0.0; plan.scratch_len],
            dyn_vals: vec![None; plan.n_dyn],
        }
    }
}

/// Reads an f32 input of a native kernel (arena or constant).
fn read(plan: &Plan, arena: *const f32, loc: Loc) -> &[f32] {
    match loc {
        // SAFETY: the memory plan gives every live value its own arena range; a step's inputs
        // are live during it, and its outputs (written through a separate range) are disjoint
        // from them. The arena outlives the step.
        Loc::Arena { off, len } => unsafe { std::slice::from_raw_parts(arena.add(off), len) },
        Loc::Const(i) => &plan.consts_f32[i],
        Loc::Int { .. } | Loc::Dyn(_) => {
            unreachable!("native kernels only read arena or constant f32 values")
        }
    }
}

/// An integer value as a typed slice.
enum Ints<'a> {
    U8(&'a mut [u8]),
    I8(&'a mut [i8]),
    I32(&'a mut [i32]),
}

/// The bytes of an integer-arena value.
fn int_bytes<'a>(ints: *mut i32, loc: Loc) -> &'a mut [u8] {
    match loc {
        // SAFETY: as for `read`: the integer arena gives every live value its own range of
        // `ty.words(len)` words starting at `off`.
        Loc::Int { off, len, ty } => unsafe {
            std::slice::from_raw_parts_mut(ints.add(off) as *mut u8, len * ty.bytes())
        },
        _ => unreachable!("an integer-arena value"),
    }
}

fn int_slice<'a>(ints: *mut i32, loc: Loc) -> Ints<'a> {
    let Loc::Int { off, len, ty } = loc else {
        unreachable!("an integer-arena value")
    };
    // SAFETY: see `int_bytes`; the arena is i32-aligned and 8-bit views are byte views of it.
    unsafe {
        match ty {
            IntTy::U8 => Ints::U8(std::slice::from_raw_parts_mut(
                ints.add(off) as *mut u8,
                len,
            )),
            IntTy::I8 => Ints::I8(std::slice::from_raw_parts_mut(
                ints.add(off) as *mut i8,
                len,
            )),
            IntTy::I32 => Ints::I32(std::slice::from_raw_parts_mut(ints.add(off), len)),
        }
    }
}

fn i32s<'a>(ints: *mut i32, loc: Loc) -> &'a mut [i32] {
    match int_slice(ints, loc) {
        Ints::I32(v) => v,
        _ => unreachable!("an int32 value"),
    }
}

fn bytes8<'a>(ints: *mut i32, loc: Loc) -> Bytes8<'a> {
    match int_slice(ints, loc) {
        Ints::U8(v) => Bytes8::U8(v),
        Ints::I8(v) => Bytes8::I8(v),
        Ints::I32(_) => unreachable!("an 8-bit value"),
    }
}

/// A one-element zero point: absent (0), a constant, or an integer-arena value.
fn zero_point(plan: &Plan, ints: *mut i32, loc: Option<Loc>) -> i32 {
    match loc {
        None => 0,
        Some(Loc::Const(c)) => plan.consts[c]
            .to_i64_vec()
            .and_then(|v| v.first().copied())
            .unwrap_or(0) as i32,
        Some(l) => bytes8(ints, l).at(0),
    }
}

/// ONNX Cast between f32 and the integer arena's types, elementwise.
fn cast(from: Ints, to: Ints) {
    macro_rules! conv {
        ($src:expr, $dst:expr) => {
            crate::kernels::par::simd(
                #[inline(always)]
                || {
                    for (o, &v) in $dst.iter_mut().zip($src.iter()) {
                        *o = v as _;
                    }
                },
            )
        };
    }
    match (from, to) {
        (Ints::U8(a), Ints::U8(b)) => b.copy_from_slice(a),
        (Ints::I8(a), Ints::I8(b)) => b.copy_from_slice(a),
        (Ints::I32(a), Ints::I32(b)) => b.copy_from_slice(a),
        (Ints::U8(a), Ints::I8(b)) => conv!(a, b),
        (Ints::U8(a), Ints::I32(b)) => conv!(a, b),
        (Ints::I8(a), Ints::U8(b)) => conv!(a, b),
        (Ints::I8(a), Ints::I32(b)) => conv!(a, b),
        (Ints::I32(a), Ints::U8(b)) => conv!(a, b),
        (Ints::I32(a), Ints::I8(b)) => conv!(a, b),
    }
}

fn cast_from_f32(x: &[f32], to: Ints) {
    // `as` truncates toward zero and saturates (NaN to 0), as the reference's `f64 as T`.
    match to {
        Ints::U8(y) => {
            crate::kernels::par::simd(|| y.iter_mut().zip(x).for_each(|(o, &v)| *o = v as u8))
        }
        Ints::I8(y) => {
            crate::kernels::par::simd(|| y.iter_mut().zip(x).for_each(|(o, &v)| *o = v as i8))
        }
        Ints::I32(y) => {
            crate::kernels::par::simd(|| y.iter_mut().zip(x).for_each(|(o, &v)| *o = v as i32))
        }
    }
}

fn cast_to_f32(x: Ints, y: &mut [f32]) {
    match x {
        Ints::U8(x) => crate::kernels::par::simd(|| {
            y.iter_mut().zip(x.iter()).for_each(|(o, &v)| *o = v as f32)
        }),
        Ints::I8(x) => crate::kernels::par::simd(|| {
            y.iter_mut().zip(x.iter()).for_each(|(o, &v)| *o = v as f32)
        }),
        Ints::I32(x) => crate::kernels::par::simd(|| {
            y.iter_mut().zip(x.iter()).for_each(|(o, &v)| *o = v as f32)
        }),
    }
}

fn write<'a>(arena: *mut f32, loc: Loc) -> &'a mut [f32] {
    match loc {
        // SAFETY: see `read`; an output range overlaps no other live value.
        Loc::Arena { off, len } => unsafe { std::slice::from_raw_parts_mut(arena.add(off), len) },
        _ => unreachable!("native kernels only write arena values"),
    }
}

/// Copies the feeds (by input name; an input not fed uses its default) into place.
pub(crate) fn load_inputs(
    plan: &Plan,
    st: &mut State,
    feeds: &[(&str, &Tensor)],
) -> Result<(), JitError> {
    for io in &plan.inputs {
        let feed = feeds.iter().find(|(n, _)| *n == io.name).map(|(_, t)| *t);
        let t = match (feed, io.default) {
            (Some(t), _) => t,
            (None, Some(d)) => &plan.consts[d],
            (None, None) => return Err(JitError::MissingInput(io.name.clone())),
        };
        put_tensor(io, st, t)?;
    }
    Ok(())
}

/// [`load_inputs`] for feeds that may be sequences or optionals (which live outside the arena).
pub(crate) fn load_value_inputs(
    plan: &Plan,
    st: &mut State,
    feeds: &[(&str, &RunValue)],
) -> Result<(), JitError> {
    for io in &plan.inputs {
        match (feeds.iter().find(|(n, _)| *n == io.name), io.default) {
            (Some((_, RunValue::Tensor(t))), _) => put_tensor(io, st, t)?,
            (Some((_, v)), _) => match io.loc {
                Loc::Dyn(i) => st.dyn_vals[i] = Some((*v).clone()),
                _ => {
                    return Err(JitError::BadInput {
                        name: io.name.clone(),
                        msg: format!("expected a tensor, got {}", v.describe()),
                    })
                }
            },
            (None, Some(d)) => put_tensor(io, st, &plan.consts[d])?,
            (None, None) => return Err(JitError::MissingInput(io.name.clone())),
        }
    }
    Ok(())
}

/// Checks a fed tensor and copies it into place.
fn put_tensor(io: &Io, st: &mut State, t: &Tensor) -> Result<(), JitError> {
    check_input(io, t)?;
    match io.loc {
        Loc::Arena { off, len } => {
            if !crate::decode_f32_into(t, &mut st.arena[off..off + len]) {
                return Err(JitError::BadInput {
                    name: io.name.clone(),
                    msg: "data cannot be decoded as f32".into(),
                });
            }
        }
        Loc::Int { .. } => {
            let dst = int_bytes(st.ints.as_mut_ptr(), io.loc);
            match t.raw() {
                Some(b) if b.len() == dst.len() => dst.copy_from_slice(b),
                _ => {
                    return Err(JitError::BadInput {
                        name: io.name.clone(),
                        msg: "data does not hold the tensor's elements".into(),
                    })
                }
            }
        }
        Loc::Dyn(i) => st.dyn_vals[i] = Some(RunValue::Tensor(t.clone())),
        Loc::Const(_) => {}
    }
    Ok(())
}

/// An integer-arena value as a tensor (allocates).
fn int_tensor(st: &State, loc: Loc, dims: Vec<usize>) -> Tensor {
    let Loc::Int { ty, .. } = loc else {
        unreachable!("an integer-arena value")
    };
    let b = int_bytes(st.ints.as_ptr() as *mut i32, loc);
    Tensor::from_raw(ty.dtype(), dims, b.to_vec().into())
        .expect("the arena range holds the value's bytes")
}

fn check_input(io: &Io, t: &Tensor) -> Result<(), JitError> {
    if t.dtype != io.dtype {
        return Err(JitError::BadInput {
            name: io.name.clone(),
            msg: format!("expected {:?}, got {:?}", io.dtype, t.dtype),
        });
    }
    if let Some(d) = &io.dims {
        if *d != t.dims {
            return Err(JitError::BadInput {
                name: io.name.clone(),
                msg: format!(
                    "shape {:?} differs from the {:?} the model was compiled for",
                    t.dims, d
                ),
            });
        }
    }
    Ok(())
}

/// Runs every step; with `times`, adds each step's wall time to its entry.
pub(crate) fn execute(
    plan: &Plan,
    st: &mut State,
    mut times: Option<&mut [std::time::Duration]>,
) -> Result<(), JitError> {
    for (i, step) in plan.steps.iter().enumerate() {
        match times.as_deref_mut() {
            Some(t) => {
                let start = std::time::Instant::now();
                run_step(plan, st, step)?;
                t[i] += start.elapsed();
            }
            None => run_step(plan, st, step)?,
        }
    }
    Ok(())
}

/// Runs a one-image kernel over a batch: image `n` of the input (`in_len` elements), of each
/// residual and of the output (`out_len` elements each).
fn per_image(
    (batch, in_len, out_len): (usize, usize, usize),
    x: &[f32],
    residuals: [Option<&[f32]>; 2],
    y: &mut [f32],
    mut f: impl FnMut(&[f32], [Option<&[f32]>; 2], &mut [f32]),
) {
    for n in 0..batch {
        let (lo, hi) = (n * out_len, (n + 1) * out_len);
        f(
            &x[n * in_len..(n + 1) * in_len],
            residuals.map(|r| r.map(|r| &r[lo..hi])),
            &mut y[lo..hi],
        );
    }
}

fn run_step(plan: &Plan, st: &mut State, step: &Step) -> Result<(), JitError> {
    let arena = st.arena.as_mut_ptr();
    let ints = st.ints.as_mut_ptr();
    let inp = |i: usize| read(plan, arena, step.inputs[i].expect("native input"));
    let opt_in = |i: usize| {
        step.inputs
            .get(i)
            .copied()
            .flatten()
            .map(|l| read(plan, arena, l))
    };
    let out = || write(arena, step.outputs[0].expect("native output"));
    // A chain's inputs, on the stack.
    let chain_ins = || {
        let mut ins: [&[f32]; MAX_CHAIN_INPUTS] = [&[]; MAX_CHAIN_INPUTS];
        let n = step.inputs.len();
        if n > ins.len() {
            return Err(JitError::Run(format!(
                "node `{}`: chain of {n} inputs",
                step.label
            )));
        }
        for (i, slot) in ins.iter_mut().enumerate().take(n) {
            *slot = inp(i);
        }
        Ok((ins, n))
    };
    match &step.kernel {
        Kernel::DenseConv {
            k,
            batch,
            in_len,
            out_len,
        } => per_image(
            (*batch, *in_len, *out_len),
            inp(0),
            [opt_in(1), opt_in(2)],
            out(),
            |x, [r, r2], y| k.run(x, r, r2, y, &mut st.scratch),
        ),
        Kernel::StreamConv {
            k,
            batch,
            in_len,
            out_len,
        } => per_image(
            (*batch, *in_len, *out_len),
            inp(0),
            [opt_in(1), None],
            out(),
            |x, [r, _], y| k.run(x, r, y, &mut st.scratch),
        ),
        Kernel::Spmm {
            k,
            batch,
            in_len,
            out_len,
        } => per_image(
            (*batch, *in_len, *out_len),
            inp(0),
            [opt_in(1), opt_in(2)],
            out(),
            |x, r, y| k.run(x, r, y, &mut st.scratch),
        ),
        Kernel::Pool {
            k,
            batch,
            in_len,
            out_len,
        } => per_image(
            (*batch, *in_len, *out_len),
            inp(0),
            [None, None],
            out(),
            |x, _, y| k.run(x, y),
        ),
        Kernel::GlobalPool { max, p } => pool::global_pool(inp(0), out(), *p, *max),
        Kernel::Binary(k) => k.run(inp(0), inp(1), out()),
        Kernel::Unary(u) => eltwise::unary(*u, inp(0), out()),
        Kernel::Affine {
            scale,
            shift,
            inner,
        } => eltwise::affine(inp(0), out(), scale, shift, *inner),
        Kernel::Gather {
            idx,
            axis_len,
            inner,
        } => eltwise::gather(inp(0), out(), idx, *axis_len, *inner),
        Kernel::Linear(k) => k.run(inp(0), opt_in(1), opt_in(2), out(), &mut st.scratch),
        Kernel::Strided(k) => k.run(inp(0), out()),
        Kernel::Resize(k) => k.run(inp(0), out()),
        Kernel::ConvTranspose(k) => k.run(inp(0), out(), &mut st.scratch),
        Kernel::Lstm(k) => {
            let o = |i: usize| {
                step.outputs
                    .get(i)
                    .copied()
                    .flatten()
                    .map(|l| write(arena, l))
            };
            let out = crate::kernels::lstm::LstmOut {
                y: o(0),
                yh: o(1),
                yc: o(2),
            };
            k.run(inp(0), [opt_in(1), opt_in(2)], out, &mut st.scratch)
        }
        Kernel::Split(parts) => {
            let x = inp(0);
            for (k, l) in parts.iter().zip(&step.outputs) {
                k.run(x, write(arena, l.expect("split output")));
            }
        }
        Kernel::Chain(c) => {
            let (ins, n) = chain_ins()?;
            c.run(&ins[..n], out());
        }
        Kernel::ChainCode(c) => {
            let (ins, n) = chain_ins()?;
            c.run(&ins[..n], out());
        }
        Kernel::LayerNorm {
            ax,
            scale,
            bias,
            eps,
        } => norm::layer_norm(*ax, inp(0), out(), scale, bias.as_deref(), *eps),
        Kernel::Softmax(ax) => norm::softmax(*ax, inp(0), out()),
        Kernel::Reduce { ax, scale } => norm::reduce_sum(*ax, inp(0), out(), *scale),
        Kernel::Copy => out().copy_from_slice(inp(0)),
        Kernel::View => {}
        Kernel::Concat {
            outer,
            blocks,
            in_place,
        } => {
            let total: usize = blocks.iter().sum();
            let mut at = 0usize;
            for (i, &b) in blocks.iter().enumerate() {
                if !in_place[i] {
                    // Inputs written in place live inside the output: only the others are
                    // read, each from its own range, and copied to a range disjoint from them.
                    let x = inp(i);
                    let y = out();
                    for o in 0..*outer {
                        y[o * total + at..o * total + at + b]
                            .copy_from_slice(&x[o * b..(o + 1) * b]);
                    }
                }
                at += b;
            }
        }
        Kernel::DynQuant => {
            let y = match int_slice(ints, step.outputs[0].expect("quantized output")) {
                Ints::U8(y) => y,
                _ => unreachable!("DynamicQuantizeLinear writes u8"),
            };
            let (scale, zp) = quant::dynamic_quantize(inp(0), y);
            if let Some(l) = step.outputs.get(1).copied().flatten() {
                write(arena, l)[0] = scale;
            }
            if let Some(l) = step.outputs.get(2).copied().flatten() {
                int_bytes(ints, l)[0] = zp;
            }
        }
        Kernel::ConvInteger {
            k,
            batch,
            in_len,
            out_len,
        } => {
            let x = bytes8(ints, step.inputs[0].expect("native input"));
            let zp = zero_point(plan, ints, step.inputs.get(1).copied().flatten());
            let y = i32s(ints, step.outputs[0].expect("native output"));
            // SAFETY: the scratch holds `scratch_words` 4-byte words for the widest step.
            let col = unsafe {
                std::slice::from_raw_parts_mut(
                    st.scratch.as_mut_ptr() as *mut u32,
                    st.scratch.len(),
                )
            };
            for n in 0..*batch {
                let xi = match x {
                    Bytes8::U8(v) => Bytes8::U8(&v[n * in_len..(n + 1) * in_len]),
                    Bytes8::I8(v) => Bytes8::I8(&v[n * in_len..(n + 1) * in_len]),
                };
                k.run(xi, zp, &mut y[n * out_len..(n + 1) * out_len], col);
            }
        }
        Kernel::MatMulInteger(k) => {
            let a = bytes8(ints, step.inputs[0].expect("native input"));
            let zp = zero_point(plan, ints, step.inputs.get(1).copied().flatten());
            let y = i32s(ints, step.outputs[0].expect("native output"));
            // SAFETY: as for ConvInteger.
            let pa = unsafe {
                std::slice::from_raw_parts_mut(
                    st.scratch.as_mut_ptr() as *mut u32,
                    st.scratch.len(),
                )
            };
            k.run(a, zp, y, pa);
        }
        Kernel::Cast { from, to } => {
            let (x, y) = (
                step.inputs[0].expect("native input"),
                step.outputs[0].expect("native output"),
            );
            match (from, to) {
                (None, Some(_)) => cast_from_f32(read(plan, arena, x), int_slice(ints, y)),
                (Some(_), None) => cast_to_f32(int_slice(ints, x), write(arena, y)),
                _ => cast(int_slice(ints, x), int_slice(ints, y)),
            }
        }
        Kernel::IntBinary { k, consts } => {
            let opnd = |i: usize| -> &[i32] {
                match (&consts[i], step.inputs[i]) {
                    (Some(c), _) => c,
                    (None, Some(l)) => i32s(ints, l),
                    (None, None) => unreachable!("an int32 operand"),
                }
            };
            k.run_i32(
                opnd(0),
                opnd(1),
                i32s(ints, step.outputs[0].expect("native output")),
            );
        }
        Kernel::IntCopy => {
            let x = int_bytes(ints, step.inputs[0].expect("native input"));
            int_bytes(ints, step.outputs[0].expect("native output")).copy_from_slice(x);
        }
        Kernel::DqLstm {
            desc,
            products,
            in_dims,
            n_out,
        } => {
            let owned: Vec<Option<Tensor>> = step
                .inputs
                .iter()
                .enumerate()
                .map(|(i, l)| match l {
                    Some(Loc::Arena { off, len }) => Some(Tensor::from_f32(
                        in_dims[i].clone().expect("arena values have static dims"),
                        &st.arena[*off..off + len],
                    )),
                    Some(Loc::Const(c)) => Some(plan.consts[*c].clone()),
                    _ => None,
                })
                .collect();
            let refs: Vec<Option<&Tensor>> = owned.iter().map(Option::as_ref).collect();
            let outs = ssc_exec::dynamic_quantize_lstm_with(
                desc,
                plan.opset,
                &refs,
                *n_out,
                products.as_ref(),
            )?;
            store_outputs(st, step, outs.into_iter().map(RunValue::Tensor).collect())?;
        }
        Kernel::Fallback {
            desc,
            in_dims,
            n_out,
            captures,
        } => {
            // Sequences and optionals (Loc::Dyn only) pass through as they are.
            let mut owned: Vec<Option<RunValue>> = Vec::with_capacity(step.inputs.len());
            for (i, l) in step.inputs.iter().enumerate() {
                owned.push(match l {
                    None => None,
                    Some(Loc::Arena { off, len }) => {
                        let dims = in_dims[i].clone().expect("arena values have static dims");
                        Some(Tensor::from_f32(dims, &st.arena[*off..off + len]).into())
                    }
                    Some(Loc::Const(c)) => Some(plan.consts[*c].clone().into()),
                    Some(l @ Loc::Int { .. }) => {
                        let dims = in_dims[i].clone().expect("arena values have static dims");
                        Some(int_tensor(st, *l, dims).into())
                    }
                    Some(Loc::Dyn(d)) => Some(st.dyn_vals[*d].clone().ok_or_else(|| {
                        JitError::Run(format!(
                            "node `{}`: input {i} was never computed",
                            step.label
                        ))
                    })?),
                });
            }
            let refs: Vec<Option<&RunValue>> = owned.iter().map(Option::as_ref).collect();
            let (ins, captured) = refs.split_at(refs.len() - captures.len());
            let captured: Vec<(&str, &RunValue)> = captures
                .iter()
                .zip(captured)
                .filter_map(|(name, t)| Some((name.as_str(), (*t)?)))
                .collect();
            let outs = ssc_exec::eval_node_values(desc, plan.opset, ins, *n_out, &captured)?;
            store_outputs(st, step, outs)?;
        }
    }
    Ok(())
}

/// Writes a reference-computed step's outputs into their places (f32 and integer arenas,
/// tensor slots).
fn store_outputs(st: &mut State, step: &Step, outs: Vec<RunValue>) -> Result<(), JitError> {
    let ints = st.ints.as_mut_ptr();
    for (v, l) in outs.into_iter().zip(&step.outputs) {
        match l {
            None => {}
            Some(Loc::Arena { off, len }) => {
                let t = match v {
                    RunValue::Tensor(t) if t.dtype == DataType::Float && t.numel() == *len => t,
                    v => {
                        return Err(JitError::Run(format!(
                            "node `{}` produced {}, but the plan expected f32 with {len} elements",
                            step.label,
                            v.describe()
                        )))
                    }
                };
                let v = t.to_f32_vec().expect("f32 tensor decodes");
                st.arena[*off..off + len].copy_from_slice(&v);
            }
            Some(l @ Loc::Int { len, ty, .. }) => {
                let raw = match &v {
                    RunValue::Tensor(t) if t.dtype == ty.dtype() && t.numel() == *len => t.raw(),
                    _ => None,
                };
                let Some(raw) = raw else {
                    return Err(JitError::Run(format!(
                        "node `{}` produced {}, but the plan expected {} with {len} elements",
                        step.label,
                        v.describe(),
                        ty.name()
                    )));
                };
                int_bytes(ints, *l).copy_from_slice(raw);
            }
            Some(Loc::Dyn(d)) => st.dyn_vals[*d] = Some(v),
            Some(Loc::Const(_)) => {}
        }
    }
    Ok(())
}

/// An output as a tensor (allocates); a sequence or optional output is an error.
pub(crate) fn output_tensor(plan: &Plan, st: &State, io: &Io) -> Result<Tensor, JitError> {
    match output_value(plan, st, io)? {
        RunValue::Tensor(t) => Ok(t),
        v => Err(JitError::Run(format!(
            "output `{}` is {}: read it with run_values",
            io.name,
            v.describe()
        ))),
    }
}

/// An output of any kind (allocates).
pub(crate) fn output_value(plan: &Plan, st: &State, io: &Io) -> Result<RunValue, JitError> {
    match io.loc {
        Loc::Arena { off, len } => Ok(Tensor::from_f32(
            io.dims.clone().expect("arena values have static dims"),
            &st.arena[off..off + len],
        )
        .into()),
        Loc::Const(c) => Ok(plan.consts[c].clone().into()),
        Loc::Int { .. } => Ok(int_tensor(
            st,
            io.loc,
            io.dims.clone().expect("arena values have static dims"),
        )
        .into()),
        Loc::Dyn(d) => st.dyn_vals[d]
            .clone()
            .ok_or_else(|| JitError::Run(format!("output `{}` was never computed", io.name))),
    }
}
