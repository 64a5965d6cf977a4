//! The recurrent layers LSTM, GRU and RNN (opsets 1 to 22): every direction, `layout`, the
//! optional bias, `sequence_lens`, initial states and peepholes, the `activations` lists with
//! their alpha/beta, `clip`, `input_forget` and GRU's `linear_before_reset`.
//!
//! The ONNX reference implementation ignores `sequence_lens`, `activations`, `clip` and
//! `input_forget`; for those the executor follows onnxruntime, the runtime models are deployed
//! on:
//! - a batch row with `sequence_lens[b] = n` runs `n` steps (the reverse direction starts at
//!   step `n - 1`), its `Y` rows from step `n` on are zero and its `Y_h`/`Y_c` are the state
//!   after its last step, or zero when `n = 0` (not the initial state);
//! - `activation_alpha`/`activation_beta` are consumed in order by the activations that take
//!   them; a missing value takes onnxruntime's default: LeakyRelu 0.01, HardSigmoid 0.2 and
//!   0.5, Elu 1, and 0 for the others (so Affine, ScaledTanh and ThresholdedRelu given no
//!   values compute 0, 0 and Relu); names are case-insensitive;
//! - `clip` bounds every gate's pre-activation to `[-clip, clip]`;
//! - `input_forget` couples the gates: `f = 1 - i`.
//!
//! Each direction's input projection `X W^T + Wb` is one f64 matmul over every time step; the
//! recurrence then walks each batch row on its own (rows never interact), in f64 throughout,
//! and the outputs are rounded once to the input type.

use super::elementwise::{sigmoid, softplus};
use crate::ctx::{Ctx, Result};
use crate::linalg::{matmul, Mat};
use crate::value::{dispatch, Array, Elem, Val};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    Rnn,
    Gru,
    Lstm,
}

impl Cell {
    /// Gate blocks in W and R: `i` for RNN, `zrh` for GRU, `iofc` for LSTM.
    fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    /// The activation functions of one direction when `activations` is absent.
    fn default_activations(self) -> &'static [&'static str] {
        match self {
            Cell::Rnn => &["Tanh"],
            Cell::Gru => &["Sigmoid", "Tanh"],
            Cell::Lstm => &["Sigmoid", "Tanh", "Tanh"],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ActKind {
    Relu,
    Tanh,
    Sigmoid,
    Affine,
    LeakyRelu,
    ThresholdedRelu,
    ScaledTanh,
    HardSigmoid,
    Elu,
    Softsign,
    Softplus,
}

/// One activation function with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Act {
    kind: ActKind,
    alpha: f64,
    beta: f64,
}

impl Act {
    /// The function named `name` (any case), with its `(alpha, beta)` defaults and which of
    /// them it reads.
    fn named(name: &str) -> Option<(ActKind, [Option<f64>; 2])> {
        use ActKind::*;
        Some(match name.to_ascii_lowercase().as_str() {
            "relu" => (Relu, [None, None]),
            "tanh" => (Tanh, [None, None]),
            "sigmoid" => (Sigmoid, [None, None]),
            "affine" => (Affine, [Some(0.0), Some(0.0)]),
            "leakyrelu" => (LeakyRelu, [Some(0.01), None]),
            "thresholdedrelu" => (ThresholdedRelu, [Some(0.0), None]),
            "scaledtanh" => (ScaledTanh, [Some(0.0), Some(0.0)]),
            "hardsigmoid" => (HardSigmoid, [Some(0.2), Some(0.5)]),
            "elu" => (Elu, [Some(1.0), None]),
            "softsign" => (Softsign, [None, None]),
            "softplus" => (Softplus, [None, None]),
            _ => return None,
        })
    }

    fn apply(&self, x: f64) -> f64 {
        let (a, b) = (self.alpha, self.beta);
        match self.kind {
            ActKind::Relu => x.max(0.0),
            ActKind::Tanh => x.tanh(),
            ActKind::Sigmoid => sigmoid(x),
            ActKind::Affine => a * x + b,
            ActKind::LeakyRelu => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
            ActKind::ThresholdedRelu => {
                if x > a {
                    x
                } else {
                    0.0
                }
            }
            ActKind::ScaledTanh => a * (b * x).tanh(),
            ActKind::HardSigmoid => (a * x + b).clamp(0.0, 1.0),
            ActKind::Elu => {
                if x >= 0.0 {
                    x
                } else {
                    a * (x.exp() - 1.0)
                }
            }
            ActKind::Softsign => x / (1.0 + x.abs()),
            ActKind::Softplus => softplus(x),
        }
    }
}

/// The activation functions of each direction, from `activations`, `activation_alpha` and
/// `activation_beta`.
fn activations(ctx: &Ctx, cell: Cell, dirs: usize) -> Result<Vec<Vec<Act>>> {
    let per = cell.default_activations().len();
    let names: Vec<String> = match ctx.strings("activations")? {
        Some(v) => v,
        None => cell
            .default_activations()
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let alphas = ctx.floats("activation_alpha")?.unwrap_or_default();
    let betas = ctx.floats("activation_beta")?.unwrap_or_default();
    let (mut ai, mut bi) = (alphas.iter(), betas.iter());
    let mut acts = Vec::with_capacity(names.len());
    for name in &names {
        let (kind, [da, db]) = Act::named(name)
            .ok_or_else(|| ctx.err(format!("unknown activation function `{name}`")))?;
        let alpha = da.map_or(0.0, |d| ai.next().map_or(d, |&v| v as f64));
        let beta = db.map_or(0.0, |d| bi.next().map_or(d, |&v| v as f64));
        acts.push(Act { kind, alpha, beta });
    }
    // The spec asks for one list per direction. A single list for a bidirectional layer is
    // used for both directions, and a forward/reverse layer given two lists (RNN's schema
    // default once read `["Tanh", "Tanh"]`) uses the first.
    let lists: Vec<Vec<Act>> = if acts.len() == per * dirs {
        acts.chunks(per).map(<[Act]>::to_vec).collect()
    } else if acts.len() == per {
        vec![acts; dirs]
    } else if dirs == 1 && acts.len() == 2 * per {
        vec![acts[..per].to_vec()]
    } else {
        return Err(ctx.err(format!(
            "activations lists {} functions; {per} per direction for {dirs} direction(s) expected",
            acts.len()
        )));
    };
    Ok(lists)
}

/// A four-lane f64 dot product (the lanes let the compiler vectorise the loop).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (ac, bc) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// The validated shapes and options of one call.
struct Layer {
    /// Per direction: runs back to front.
    reverse: Vec<bool>,
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    /// `[batch, seq, ...]` instead of `[seq, batch, ...]` (opset 14 `layout=1`).
    batch_major: bool,
    clip: Option<f64>,
    acts: Vec<Vec<Act>>,
    linear_before_reset: bool,
    input_forget: bool,
    lens: Vec<usize>,
}

impl Layer {
    /// Index of `(t, b)` in X's row order.
    fn row(&self, t: usize, b: usize) -> usize {
        if self.batch_major {
            b * self.seq + t
        } else {
            t * self.batch + b
        }
    }

    /// Offset of the state `(d, b)` in an initial-state input or a `Y_h`/`Y_c` output.
    fn state(&self, d: usize, b: usize) -> usize {
        let nd = self.reverse.len();
        self.hidden
            * if self.batch_major {
                b * nd + d
            } else {
                d * self.batch + b
            }
    }

    /// Offset of `(t, d, b)` in `Y`.
    fn y(&self, t: usize, d: usize, b: usize) -> usize {
        let nd = self.reverse.len();
        self.hidden
            * if self.batch_major {
                (b * self.seq + t) * nd + d
            } else {
                (t * nd + d) * self.batch + b
            }
    }

    fn state_shape(&self) -> Vec<usize> {
        let nd = self.reverse.len();
        if self.batch_major {
            vec![self.batch, nd, self.hidden]
        } else {
            vec![nd, self.batch, self.hidden]
        }
    }

    fn y_shape(&self) -> Vec<usize> {
        let nd = self.reverse.len();
        if self.batch_major {
            vec![self.batch, self.seq, nd, self.hidden]
        } else {
            vec![self.seq, nd, self.batch, self.hidden]
        }
    }
}

fn layer(ctx: &Ctx, cell: Cell, x: &Array, r: &Array) -> Result<Layer> {
    if x.rank() != 3 {
        return Err(ctx.err(format!("X {:?} must be 3-D", x.shape)));
    }
    let batch_major = match ctx.int("layout", 0)? {
        0 => false,
        1 => true,
        l => return Err(ctx.err(format!("layout must be 0 or 1, not {l}"))),
    };
    let (seq, batch) = if batch_major {
        (x.shape[1], x.shape[0])
    } else {
        (x.shape[0], x.shape[1])
    };
    let reverse = match ctx.string("direction", "forward")?.as_str() {
        "forward" => vec![false],
        "reverse" => vec![true],
        "bidirectional" => vec![false, true],
        other => return Err(ctx.err(format!("unknown direction `{other}`"))),
    };
    if r.rank() != 3 {
        return Err(ctx.err(format!("R {:?} must be 3-D", r.shape)));
    }
    let hidden = match ctx.int("hidden_size", -1)? {
        -1 => r.shape[2],
        h if h > 0 => h as usize,
        h => return Err(ctx.err(format!("hidden_size must be positive, not {h}"))),
    };
    let clip = if ctx.has_attr("clip") {
        let c = ctx.float("clip", 0.0)? as f64;
        if c.is_nan() || c <= 0.0 {
            return Err(ctx.err(format!("clip must be positive, not {c}")));
        }
        Some(c)
    } else {
        None
    };
    let lens = match ctx.opt_input(4)? {
        None => vec![seq; batch],
        Some(a) => {
            let v = a
                .to_i64_vec()
                .ok_or_else(|| ctx.err("sequence_lens must be an integer tensor"))?;
            if v.len() != batch || a.rank() != 1 {
                return Err(ctx.err(format!(
                    "sequence_lens {:?} must have shape [{batch}]",
                    a.shape
                )));
            }
            v.iter()
                .map(|&n| {
                    usize::try_from(n)
                        .ok()
                        .filter(|&n| n <= seq)
                        .ok_or_else(|| {
                            ctx.err(format!("sequence length {n} is outside [0, {seq}]"))
                        })
                })
                .collect::<Result<_>>()?
        }
    };
    let acts = activations(ctx, cell, reverse.len())?;
    Ok(Layer {
        reverse,
        seq,
        batch,
        input: x.shape[2],
        hidden,
        batch_major,
        clip,
        acts,
        linear_before_reset: cell == Cell::Gru && ctx.int("linear_before_reset", 0)? != 0,
        input_forget: cell == Cell::Lstm && ctx.int("input_forget", 0)? != 0,
        lens,
    })
}

/// Checks that an optional input has `shape`.
fn expect_shape(ctx: &Ctx, what: &str, a: Option<&Array>, shape: &[usize]) -> Result<()> {
    match a {
        Some(a) if a.shape != shape => {
            Err(ctx.err(format!("{what} {:?} must have shape {shape:?}", a.shape)))
        }
        _ => Ok(()),
    }
}

/// LSTM, GRU and RNN.
pub(crate) fn recurrent(ctx: &Ctx) -> Result<Vec<Val>> {
    let cell = match ctx.desc.op_type.as_str() {
        "RNN" => Cell::Rnn,
        "GRU" => Cell::Gru,
        _ => Cell::Lstm,
    };
    let (x, w, r) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let b = ctx.opt_input(3)?;
    let h0 = ctx.opt_input(5)?;
    let (c0, p) = if cell == Cell::Lstm {
        (ctx.opt_input(6)?, ctx.opt_input(7)?)
    } else {
        (None, None)
    };
    let dt = x.dtype();
    if !dt.is_float() {
        return Err(ctx.err(format!("X must be a float tensor, not {dt}")));
    }
    for a in [Some(w), Some(r), b, h0, c0, p].into_iter().flatten() {
        if a.dtype() != dt {
            return Err(ctx.err(format!("input types differ: {dt} and {}", a.dtype())));
        }
    }
    let l = layer(ctx, cell, x, r)?;
    let (nd, g, h) = (l.reverse.len(), cell.gates(), l.hidden);
    expect_shape(ctx, "W", Some(w), &[nd, g * h, l.input])?;
    expect_shape(ctx, "R", Some(r), &[nd, g * h, h])?;
    expect_shape(ctx, "B", b, &[nd, 2 * g * h])?;
    expect_shape(ctx, "P", p, &[nd, 3 * h])?;
    let state_shape = l.state_shape();
    expect_shape(ctx, "initial_h", h0, &state_shape)?;
    expect_shape(ctx, "initial_c", c0, &state_shape)?;

    let xs = x.to_f64_vec();
    let ws = w.to_f64_vec();
    let rs = r.to_f64_vec();
    let bs = b.map(Array::to_f64_vec);
    let ps = p.map(Array::to_f64_vec);
    let h0s = h0.map(Array::to_f64_vec);
    let c0s = c0.map(Array::to_f64_vec);
    let mut y = vec![0f64; l.seq * nd * l.batch * h];
    let mut yh = vec![0f64; nd * l.batch * h];
    let mut yc = vec![0f64; nd * l.batch * h];
    let gh = g * h;
    let rows = l.seq * l.batch;
    let mut proj = vec![0f64; rows * gh];
    for (d, &rev) in l.reverse.iter().enumerate() {
        let wd = &ws[d * gh * l.input..(d + 1) * gh * l.input];
        let rd = &rs[d * gh * h..(d + 1) * gh * h];
        // X W^T for every step at once, then the biases that sit outside the recurrence.
        matmul(
            rows,
            gh,
            l.input,
            Mat::rows(&xs, l.input),
            Mat::rows(wd, l.input).t(),
            &mut proj,
        );
        let zero = vec![0f64; 2 * gh];
        let bd = bs
            .as_ref()
            .map_or(&zero[..], |v| &v[d * 2 * gh..(d + 1) * 2 * gh]);
        let (wb, rb) = bd.split_at(gh);
        // GRU with linear_before_reset keeps Rbh inside the reset product.
        let outside = if l.linear_before_reset { 2 * h } else { gh };
        for row in proj.chunks_exact_mut(gh) {
            for (j, v) in row.iter_mut().enumerate() {
                *v += wb[j] + if j < outside { rb[j] } else { 0.0 };
            }
        }
        let zp = vec![0f64; 3 * h];
        let pd = ps
            .as_ref()
            .map_or(&zp[..], |v| &v[d * 3 * h..(d + 1) * 3 * h]);
        let acts = &l.acts[d];
        let mut gates = vec![0f64; gh];
        let mut scratch = vec![0f64; h];
        for bi in 0..l.batch {
            let so = l.state(d, bi);
            let mut hs = h0s
                .as_ref()
                .map_or_else(|| vec![0f64; h], |v| v[so..so + h].to_vec());
            let mut cs = c0s
                .as_ref()
                .map_or_else(|| vec![0f64; h], |v| v[so..so + h].to_vec());
            let n = l.lens[bi];
            for s in 0..n {
                let t = if rev { n - 1 - s } else { s };
                let row = &proj[l.row(t, bi) * gh..(l.row(t, bi) + 1) * gh];
                let step = Step {
                    layer: &l,
                    acts,
                    r: rd,
                    rb,
                    p: pd,
                };
                match cell {
                    Cell::Rnn => step.rnn(row, &mut gates, &mut hs),
                    Cell::Gru => step.gru(row, &mut gates, &mut scratch, &mut hs),
                    Cell::Lstm => step.lstm(row, &mut gates, &mut hs, &mut cs),
                }
                let yo = l.y(t, d, bi);
                y[yo..yo + h].copy_from_slice(&hs);
            }
            // An empty sequence leaves zero states behind, as in onnxruntime.
            if n > 0 {
                yh[so..so + h].copy_from_slice(&hs);
                yc[so..so + h].copy_from_slice(&cs);
            }
        }
    }
    let n_out = ctx.n_out.min(if cell == Cell::Lstm { 3 } else { 2 });
    let outs = [
        (l.y_shape(), y),
        (state_shape.clone(), yh),
        (state_shape, yc),
    ];
    outs.into_iter()
        .take(n_out)
        .map(|(shape, v)| {
            dispatch!(float dt, T => Ok(Array::new(shape, v.into_iter().map(T::from_f64).collect::<Vec<T>>()).into()),
                else unreachable!("checked float above"))
        })
        .collect()
}

/// One time step of one batch row of one direction.
struct Step<'a> {
    layer: &'a Layer,
    acts: &'a [Act],
    /// `R` of this direction, `[gates * hidden, hidden]`.
    r: &'a [f64],
    /// `Rb` of this direction (read only by GRU's `linear_before_reset`).
    rb: &'a [f64],
    /// Peepholes `[i, o, f]` of this direction (LSTM).
    p: &'a [f64],
}

impl Step<'_> {
    fn clip(&self, v: f64) -> f64 {
        match self.layer.clip {
            Some(c) => v.clamp(-c, c),
            None => v,
        }
    }

    /// `gates[j] = row[j] + R[j] . h` for the gate rows `j` in `range`.
    fn recur(&self, row: &[f64], gates: &mut [f64], h: &[f64], range: std::ops::Range<usize>) {
        let n = self.layer.hidden;
        for j in range {
            gates[j] = row[j] + dot(&self.r[j * n..(j + 1) * n], h);
        }
    }

    /// `H = f(X W^T + H R^T + Wb + Rb)`.
    fn rnn(&self, row: &[f64], gates: &mut [f64], h: &mut [f64]) {
        self.recur(row, gates, h, 0..self.layer.hidden);
        for (hk, &gk) in h.iter_mut().zip(gates.iter()) {
            *hk = self.acts[0].apply(self.clip(gk));
        }
    }

    /// `z, r = f(...)`, `h~ = g(X Wh^T + (r . H) Rh^T + Rbh + Wbh)` (or with `r` applied after
    /// `H Rh^T + Rbh` under `linear_before_reset`), `H = (1 - z) h~ + z H`.
    fn gru(&self, row: &[f64], gates: &mut [f64], scratch: &mut [f64], h: &mut [f64]) {
        let n = self.layer.hidden;
        let (f, g) = (self.acts[0], self.acts[1]);
        self.recur(row, gates, h, 0..2 * n);
        for k in 0..n {
            gates[k] = f.apply(self.clip(gates[k]));
            gates[n + k] = f.apply(self.clip(gates[n + k]));
        }
        if self.layer.linear_before_reset {
            for k in 0..n {
                let j = 2 * n + k;
                let rh = dot(&self.r[j * n..(j + 1) * n], h) + self.rb[j];
                gates[j] = row[j] + gates[n + k] * rh;
            }
        } else {
            for k in 0..n {
                scratch[k] = gates[n + k] * h[k];
            }
            self.recur(row, gates, scratch, 2 * n..3 * n);
        }
        for k in 0..n {
            let cand = g.apply(self.clip(gates[2 * n + k]));
            let z = gates[k];
            h[k] = (1.0 - z) * cand + z * h[k];
        }
    }

    /// The gates in `iofc` order, peepholes `P = [Pi, Po, Pf]`:
    /// `i = f(.. + Pi C)`, `f = f(.. + Pf C)` (or `1 - i`), `c~ = g(..)`, `C' = f C + i c~`,
    /// `o = f(.. + Po C')`, `H = o h(C')`.
    fn lstm(&self, row: &[f64], gates: &mut [f64], h: &mut [f64], c: &mut [f64]) {
        let n = self.layer.hidden;
        let (f, g, hf) = (self.acts[0], self.acts[1], self.acts[2]);
        let (pi, po, pf) = (&self.p[..n], &self.p[n..2 * n], &self.p[2 * n..]);
        self.recur(row, gates, h, 0..4 * n);
        for k in 0..n {
            let i = f.apply(self.clip(gates[k] + pi[k] * c[k]));
            let fg = if self.layer.input_forget {
                1.0 - i
            } else {
                f.apply(self.clip(gates[2 * n + k] + pf[k] * c[k]))
            };
            let cand = g.apply(self.clip(gates[3 * n + k]));
            let cn = fg * c[k] + i * cand;
            let o = f.apply(self.clip(gates[n + k] + po[k] * cn));
            c[k] = cn;
            h[k] = o * hf.apply(cn);
        }
    }
}
