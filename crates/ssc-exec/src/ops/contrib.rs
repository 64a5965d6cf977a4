//! onnxruntime contrib ops (domain `com.microsoft`) that its own tools write into saved models:
//! `DynamicQuantizeLSTM`, the LSTM `onnxruntime.quantization.quantize_dynamic` emits (ddddocr's
//! OCR model ships one). "Whatever ONNX Runtime runs, ssc-opt reads", so these follow
//! onnxruntime's CPU kernels step for step rather than a spec (the contrib spec leaves the
//! arithmetic open).
//!
//! DynamicQuantizeLSTM is an LSTM (gates `iofc`, the standard attributes and the first eight
//! inputs) whose two GEMMs run on integers:
//! - `W` is `[dirs, input, 4 hidden]` and `R` is `[dirs, hidden, 4 hidden]` (transposed against
//!   LSTM), int8 or uint8, with a scale per direction (`[dirs]`) or per column (`[dirs, 4 hidden]`)
//!   and a zero point of the same shape, which must be one value per direction (zero for int8);
//! - each GEMM quantises its float operand to uint8 on the fly, as DynamicQuantizeLinear does (the
//!   range of the whole operand, including 0, over 255 steps, all in f32; round half to even),
//!   accumulates `(a - a_zp)(w - w_zp)` in int32, and writes `f32(acc) * f32(a_scale * w_scale)`;
//! - the input GEMM runs once per direction over the first `max(sequence_lens)` steps of every
//!   batch row (so one scale covers them all); the recurrent GEMM runs once per step over the
//!   hidden states of every batch row, where a row whose sequence has ended contributes zeros
//!   (its `Y` row, which onnxruntime reads the state from when `Y` is an output);
//! - the gate arithmetic is f32 in onnxruntime's order: `X W + H R`, then the peephole term,
//!   then the bias `Wb + Rb` (summed first), then `clip`, then the activation.
//!
//! Since every integer product is exact, the result matches onnxruntime to f32 rounding of the
//! gate arithmetic and of the activations (computed here in f64 and rounded), except where such a
//! rounding moves a hidden value across a quantisation boundary of the next step.

use ssc_ir::DataType;

use super::quant::{dynamic_params, quantize_u8};
use super::rnn::{layer, Cell, Layer};
use crate::ctx::{Ctx, Result};
use crate::value::{Array, Val};

/// The int8/uint8 weights of one direction with their zero point removed, `[k, n]` row-major,
/// and their scales (one, or one per column).
struct QWeights {
    k: usize,
    n: usize,
    w: Vec<i32>,
    scale: Vec<f32>,
}

impl QWeights {
    /// Direction `d` of `w` (`[dirs, k, n]`) with its `scale` and `zero_point` (`[dirs]` or
    /// `[dirs, n]`), checked as onnxruntime checks them.
    /// Without `centred`, the weights themselves are left out (the products are supplied).
    fn new(
        ctx: &Ctx,
        what: &str,
        (w, scale, zp): (&Array, &Array, &Array),
        d: usize,
        centred: bool,
    ) -> Result<Self> {
        let (dirs, k, n) = (w.shape[0], w.shape[1], w.shape[2]);
        let signed = match w.dtype() {
            DataType::Int8 => true,
            DataType::Uint8 => false,
            t => return Err(ctx.err(format!("{what} must be int8 or uint8, not {t}"))),
        };
        if zp.dtype() != w.dtype() {
            return Err(ctx.err(format!(
                "{what}'s zero point is {} but {what} is {}",
                zp.dtype(),
                w.dtype()
            )));
        }
        if scale.dtype() != DataType::Float {
            return Err(ctx.err(format!(
                "{what}'s scale must be float, not {}",
                scale.dtype()
            )));
        }
        for (p, a) in [("scale", scale), ("zero point", zp)] {
            let ok = a.shape == [dirs] || a.shape == [dirs, n];
            if !ok {
                return Err(ctx.err(format!(
                    "{what}'s {p} {:?} must have shape [{dirs}] (per tensor) or [{dirs}, {n}] (per column)",
                    a.shape
                )));
            }
        }
        let per = scale.shape.get(1).copied().unwrap_or(1);
        let zps = zp.to_i64_vec().expect("integer zero point");
        if zp.rank() == 2 {
            let bad = if signed {
                zps.iter().any(|&z| z != 0)
            } else {
                zps.iter().any(|&z| z != zps[0])
            };
            if bad {
                return Err(ctx.err(format!(
                    "{what}'s per-column zero points must be {}",
                    if signed { "zero" } else { "one constant" }
                )));
            }
        }
        let zpd = zps[d * zp.shape.get(1).copied().unwrap_or(1)];
        let ws = if centred {
            w.to_i64_vec().expect("integer weights")
        } else {
            Vec::new()
        };
        let scales: Vec<f32> = scale.to_f64_vec().iter().map(|&v| v as f32).collect();
        Ok(QWeights {
            k,
            n,
            w: ws
                .get(d * k * n..(d + 1) * k * n)
                .unwrap_or_default()
                .iter()
                .map(|&v| (v - zpd) as i32)
                .collect(),
            scale: scales[d * per..(d + 1) * per].to_vec(),
        })
    }

    /// `out (+)= a W` for `a` of `m` rows, with `a` quantised to uint8 as one tensor; the
    /// integer product runs through `product` when given (the JIT's kernels), else here.
    fn gemm(&self, a: &[f32], out: &mut [f32], accumulate: bool, product: Option<ProductFn>) {
        let (k, n) = (self.k, self.n);
        let af: Vec<f64> = a.iter().map(|&v| v as f64).collect();
        let (a_scale, a_zp) = dynamic_params(&af);
        let qa: Vec<i32> = af
            .iter()
            .map(|&v| (quantize_u8(v, a_scale, a_zp) - a_zp) as i32)
            .collect();
        let mult: Vec<f32> = self.scale.iter().map(|&s| a_scale as f32 * s).collect();
        let rows = qa.len() / k.max(1);
        let mut acc = vec![0i32; rows * n];
        match product {
            Some(p) => p(&qa, rows, &mut acc),
            None => {
                for (arow, crow) in qa.chunks_exact(k).zip(acc.chunks_exact_mut(n)) {
                    for (&av, wrow) in arow.iter().zip(self.w.chunks_exact(n)) {
                        if av != 0 {
                            for (c, &wv) in crow.iter_mut().zip(wrow) {
                                *c = c.wrapping_add(av * wv);
                            }
                        }
                    }
                }
            }
        }
        for (crow, orow) in acc.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            for (j, (o, &c)) in orow.iter_mut().zip(crow).enumerate() {
                let v = c as f32 * mult[if mult.len() == 1 { 0 } else { j }];
                *o = if accumulate { *o + v } else { v };
            }
        }
    }
}

/// One integer product of DynamicQuantizeLSTM: `acc[r][j] = sum_k qa[r][k] w[k][j]` (wrapping)
/// over `rows` rows of the zero-point-centred quantised operand `qa`, with `w` one direction's
/// `W` or `R` minus its zero point.
pub type ProductFn<'a> = &'a dyn Fn(&[i32], usize, &mut [i32]);

/// Supplies DynamicQuantizeLSTM's integer products: `product(d, recurrent)` for direction
/// `d`'s `W` (`recurrent` false) or `R`. The JIT passes its packed kernels; the products are
/// exact, so the result is the reference's.
pub trait LstmProducts {
    fn product(&self, d: usize, recurrent: bool, qa: &[i32], rows: usize, acc: &mut [i32]);
}

/// com.microsoft DynamicQuantizeLSTM (float32 only, as in onnxruntime).
pub(crate) fn dynamic_quantize_lstm(ctx: &Ctx) -> Result<Vec<Val>> {
    dynamic_quantize_lstm_with(ctx, None)
}

/// [`dynamic_quantize_lstm`] with the integer products supplied from outside.
pub(crate) fn dynamic_quantize_lstm_with(
    ctx: &Ctx,
    products: Option<&dyn LstmProducts>,
) -> Result<Vec<Val>> {
    let (x, w, r) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let b = ctx.opt_input(3)?;
    let (h0, c0, p) = (ctx.opt_input(5)?, ctx.opt_input(6)?, ctx.opt_input(7)?);
    let (w_scale, w_zp) = (ctx.input(8)?, ctx.input(9)?);
    let (r_scale, r_zp) = (ctx.input(10)?, ctx.input(11)?);
    for (what, a) in [
        ("X", Some(x)),
        ("B", b),
        ("initial_h", h0),
        ("initial_c", c0),
        ("P", p),
    ] {
        if let Some(a) = a.filter(|a| a.dtype() != DataType::Float) {
            return Err(ctx.err(format!("{what} must be float, not {}", a.dtype())));
        }
    }
    if w.rank() != 3 || r.rank() != 3 {
        return Err(ctx.err(format!("W {:?} and R {:?} must be 3-D", w.shape, r.shape)));
    }
    let l = layer(ctx, Cell::Lstm, x, r.shape[1])?;
    let (nd, h) = (l.reverse.len(), l.hidden);
    if l.batch_major {
        return Err(ctx.err("layout=1 is not supported by onnxruntime's kernel"));
    }
    let check = |what: &str, a: Option<&Array>, shape: &[usize]| match a {
        Some(a) if a.shape != shape => {
            Err(ctx.err(format!("{what} {:?} must have shape {shape:?}", a.shape)))
        }
        _ => Ok(()),
    };
    check("W", Some(w), &[nd, l.input, 4 * h])?;
    check("R", Some(r), &[nd, h, 4 * h])?;
    check("B", b, &[nd, 8 * h])?;
    check("P", p, &[nd, 3 * h])?;
    let state_shape = l.state_shape();
    check("initial_h", h0, &state_shape)?;
    check("initial_c", c0, &state_shape)?;

    let f32s = |a: &Array| -> Vec<f32> { a.to_f64_vec().iter().map(|&v| v as f32).collect() };
    let xs = f32s(x);
    let bs = b.map(f32s);
    let ps = p.map(f32s);
    let h0s = h0.map(f32s);
    let c0s = c0.map(f32s);
    let (seq, batch) = (l.seq, l.batch);
    let mut y = vec![0f32; seq * nd * batch * h];
    let mut yh = vec![0f32; nd * batch * h];
    let mut yc = vec![0f32; nd * batch * h];
    let max_len = l.lens.iter().copied().max().unwrap_or(0);
    for d in 0..nd {
        let centred = products.is_none();
        let wq = QWeights::new(ctx, "W", (w, w_scale, w_zp), d, centred)?;
        let rq = QWeights::new(ctx, "R", (r, r_scale, r_zp), d, centred)?;
        // X W over the first max_len steps (rows are `t * batch + b`).
        let rows = max_len * batch;
        let mut gx = vec![0f32; rows * 4 * h];
        let wp = |qa: &[i32], r: usize, acc: &mut [i32]| {
            if let Some(p) = products {
                p.product(d, false, qa, r, acc)
            }
        };
        let rp = |qa: &[i32], r: usize, acc: &mut [i32]| {
            if let Some(p) = products {
                p.product(d, true, qa, r, acc)
            }
        };
        let (wp, rp): (Option<ProductFn>, Option<ProductFn>) = match products {
            Some(_) => (Some(&wp), Some(&rp)),
            None => (None, None),
        };
        wq.gemm(&xs[..rows * l.input], &mut gx, false, wp);
        // Wb + Rb, summed once in f32.
        let bias: Option<Vec<f32>> = bs.as_ref().map(|v| {
            let bd = &v[d * 8 * h..(d + 1) * 8 * h];
            (0..4 * h).map(|j| bd[j] + bd[4 * h + j]).collect()
        });
        let pd = ps.as_ref().map(|v| &v[d * 3 * h..(d + 1) * 3 * h]);
        let so = d * batch * h;
        let mut hs = h0s
            .as_ref()
            .map_or_else(|| vec![0f32; batch * h], |v| v[so..so + batch * h].to_vec());
        let mut cs = c0s
            .as_ref()
            .map_or_else(|| vec![0f32; batch * h], |v| v[so..so + batch * h].to_vec());
        let mut gates = vec![0f32; batch * 4 * h];
        for s in 0..max_len {
            // Each row's input projection at its time step (a reverse row walks its own
            // sequence back to front).
            let mut ts = vec![None; batch];
            for (bi, t) in ts.iter_mut().enumerate() {
                let n = l.lens[bi];
                if s < n {
                    let tt = if l.reverse[d] { n - 1 - s } else { s };
                    let row = tt * batch + bi;
                    gates[bi * 4 * h..(bi + 1) * 4 * h]
                        .copy_from_slice(&gx[row * 4 * h..(row + 1) * 4 * h]);
                    *t = Some(tt);
                }
            }
            rq.gemm(&hs, &mut gates, true, rp);
            for (bi, t) in ts.iter().enumerate() {
                let hrow = &mut hs[bi * h..(bi + 1) * h];
                let Some(t) = *t else {
                    // A finished row feeds zeros (its Y row) to the next step's quantisation.
                    hrow.fill(0.0);
                    continue;
                };
                let crow = &mut cs[bi * h..(bi + 1) * h];
                cell(
                    &l,
                    d,
                    &mut gates[bi * 4 * h..(bi + 1) * 4 * h],
                    bias.as_deref(),
                    pd,
                    hrow,
                    crow,
                );
                let yo = l.y(t, d, bi);
                y[yo..yo + h].copy_from_slice(hrow);
                if s + 1 == l.lens[bi] {
                    let o = l.state(d, bi);
                    yh[o..o + h].copy_from_slice(hrow);
                    yc[o..o + h].copy_from_slice(crow);
                }
            }
        }
    }
    let outs = [
        (l.y_shape(), y),
        (state_shape.clone(), yh),
        (state_shape, yc),
    ];
    Ok(outs
        .into_iter()
        .take(ctx.n_out.min(3))
        .map(|(shape, v)| Array::new(shape, v).into())
        .collect())
}

/// One LSTM step of one batch row in f32, in onnxruntime's order; `g` holds `X W + H R` in
/// `iofc` order and is overwritten.
fn cell(
    l: &Layer,
    d: usize,
    g: &mut [f32],
    bias: Option<&[f32]>,
    p: Option<&[f32]>,
    h: &mut [f32],
    c: &mut [f32],
) {
    let n = l.hidden;
    let acts = &l.acts[d];
    let (fa, ga, ha) = (acts[0], acts[1], acts[2]);
    let act = |a: super::rnn::Act, v: f32| a.apply(v as f64) as f32;
    let clip = |v: f32| match l.clip {
        Some(c) => v.clamp(-(c as f32), c as f32),
        None => v,
    };
    let bias_at = |j: usize| bias.map_or(0.0, |b| b[j]);
    let pre = |g: f32, peep: Option<(usize, f32)>, j: usize| {
        let v = match (p, peep) {
            (Some(p), Some((pj, cv))) => g + cv * p[pj],
            _ => g,
        };
        clip(v + bias_at(j))
    };
    for k in 0..n {
        let cp = c[k];
        let i = act(fa, pre(g[k], Some((k, cp)), k));
        let f = if l.input_forget {
            1.0 - i
        } else {
            act(fa, pre(g[2 * n + k], Some((2 * n + k, cp)), 2 * n + k))
        };
        let cand = act(ga, pre(g[3 * n + k], None, 3 * n + k));
        let cn = cp * f + i * cand;
        let o = act(fa, pre(g[n + k], Some((n + k, cn)), n + k));
        c[k] = cn;
        h[k] = act(ha, cn) * o;
    }
}
