//! Fused elementwise chains: a run of elementwise ops (GELU's Div -> Erf -> Add -> Mul -> Mul,
//! HardSwish, a scale-and-shift, a residual add...) evaluated in one pass over the output, in
//! L1-sized chunks held in a few register buffers, instead of one pass over memory per op.
//!
//! A chain is a small register program over its inputs. The output's index space is split into
//! `rows x inner`, and each input is read either whole (`Full`), once per row (`Row`: a
//! per-channel scale on NCHW), once per inner position (`Col`: a bias on the last axis), or as a
//! scalar, so the common broadcasts stay vector loops. The same program can also be compiled to
//! machine code by Cranelift (`codegen::chain`), with the shape and constants baked in.

use crate::kernels::eltwise::{sigmoid, BinOp};
use crate::kernels::par::{for_ranges, SendPtr};

/// How an input is indexed in the chain's `rows x inner` space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bcast {
    /// Element `(r, j)` at `r * inner + j`.
    Full,
    /// Element `(r, j)` at `r % period`.
    Row(usize),
    /// Element `(r, j)` at `j`.
    Col,
    /// One value.
    Scalar,
}

/// A one-input function in a chain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum UnFn {
    Neg,
    Abs,
    Sqrt,
    Exp,
    Erf,
    Sigmoid,
    Tanh,
    Reciprocal,
    Relu,
    Clip(f32, f32),
    LeakyRelu(f32),
    HardSigmoid(f32, f32),
    HardSwish,
    /// `x/2 (1 + erf(x / sqrt 2))`: the five ops exporters write for GELU, as one
    /// (`kernels::act`).
    Gelu,
}

impl UnFn {
    /// The function on one value (the definition every backend must match).
    #[inline(always)]
    pub(crate) fn apply(self, x: f32) -> f32 {
        match self {
            UnFn::Neg => -x,
            UnFn::Abs => x.abs(),
            UnFn::Sqrt => x.sqrt(),
            UnFn::Exp => exp(x),
            UnFn::Erf => erf(x),
            UnFn::Sigmoid => sigmoid(x),
            UnFn::Tanh => tanh(x),
            UnFn::Reciprocal => 1.0 / x,
            UnFn::Relu => max_to(x, 0.0),
            UnFn::Clip(lo, hi) => min_to(max_to(x, lo), hi),
            UnFn::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
            UnFn::HardSigmoid(a, b) => min_to(max_to(a * x + b, 0.0), 1.0),
            UnFn::HardSwish => x * min_to(max_to(x * (1.0 / 6.0) + 0.5, 0.0), 1.0),
            UnFn::Gelu => crate::kernels::act::gelu_one(x),
        }
    }
}

/// `max(x, b)` for a non-NaN `b` as one compare-select (a NaN `x` gives `b`, as Relu's
/// reference does through `f32::max`).
#[inline(always)]
fn max_to(x: f32, b: f32) -> f32 {
    if x > b {
        x
    } else {
        b
    }
}

#[inline(always)]
fn min_to(x: f32, b: f32) -> f32 {
    if x < b {
        x
    } else {
        b
    }
}

/// `e^x` for any `x`, vectorisable: `e^x = 1 / e^-x` above 0 (through the non-positive form).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let e = crate::kernels::eltwise::exp_nonpositive(-x.abs());
    if x > 0.0 {
        1.0 / e
    } else {
        e
    }
}

/// `tanh(x)`: `(1 - e) / (1 + e)` with `e = e^{-2|x|}`, and below `|x| = 0.2`, where `1 - e`
/// cancels, its Taylor series to `x^7` (truncation below 6e-8 relative); relative error within
/// 1e-6 everywhere (`tanh_and_exp_are_accurate`).
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let e = crate::kernels::eltwise::exp_nonpositive(-2.0 * a);
    let big = (1.0 - e) / (1.0 + e);
    let z = a * a;
    let small = a * (1.0 + z * (-1.0 / 3.0 + z * (2.0 / 15.0 + z * (-17.0 / 315.0))));
    let t = if a < 0.2 { small } else { big };
    if x < 0.0 {
        -t
    } else {
        t
    }
}

/// The error function in vectorisable f32: for `|x| < 0.5` its Taylor series to `x^11`
/// (truncation below 3e-8 relative), above that Abramowitz & Stegun 7.1.26,
/// `1 - (a1 t + .. + a5 t^5) e^{-x^2}` with `t = 1 / (1 + p |x|)` (absolute error 1.5e-7 in
/// exact arithmetic, below 4e-7 in f32, so relative below 8e-7 where `|erf| >= 0.52`). Both
/// are computed and one is selected, so the loop has no branch.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    // Taylor: 2/sqrt(pi) (x - x^3/3 + x^5/10 - x^7/42 + x^9/216 - x^11/1320).
    let z = a * a;
    let series = a
        * (std::f32::consts::FRAC_2_SQRT_PI
            + z * (-0.376_126_4
                + z * (0.112_837_92
                    + z * (-0.026_866_17 + z * (0.005_223_977 + z * -0.000_854_785)))));
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let e = crate::kernels::eltwise::exp_nonpositive(-z);
    let big = 1.0 - poly * e;
    let r = if a < 0.5 { series } else { big };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// An operand: a chain input, a register, or a constant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Src {
    In(usize),
    Reg(usize),
    Imm(f32),
}

/// One instruction; `dst` is a register, or `None` for the chain's output (the last one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Instr {
    Bin(BinOp, Src, Src, Option<usize>),
    Un(UnFn, Src, Option<usize>),
}

/// Most inputs a chain may read (the runtime passes them on the stack).
pub(crate) const MAX_INPUTS: usize = 8;

/// Most registers a chain may use (each a chunk of `CHUNK` floats on the stack).
pub(crate) const MAX_REGS: usize = 6;
/// Elements per chunk: a chunk's registers and inputs stay in L1.
pub(crate) const CHUNK: usize = 512;

/// A fused chain over an output of `rows x inner` elements.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Chain {
    pub inputs: Vec<Bcast>,
    pub prog: Vec<Instr>,
    pub regs: usize,
    pub rows: usize,
    pub inner: usize,
}

/// An operand resolved for one chunk.
#[derive(Clone, Copy)]
enum Op<'a> {
    S(&'a [f32]),
    K(f32),
}

impl Chain {
    /// Whether the program is well formed: registers in range, inputs in range, no
    /// instruction writing a register it reads (so no slice is read and written at once), and
    /// only the last instruction writing the output.
    pub(crate) fn valid(&self) -> bool {
        let src_ok = |s: Src| match s {
            Src::In(i) => i < self.inputs.len(),
            Src::Reg(r) => r < self.regs,
            Src::Imm(_) => true,
        };
        let n = self.prog.len();
        self.regs <= MAX_REGS
            && n > 0
            && self.prog.iter().enumerate().all(|(k, i)| {
                let (srcs, d) = match *i {
                    Instr::Bin(_, a, b, d) => ([a, b], d),
                    Instr::Un(_, a, d) => ([a, a], d),
                };
                srcs.iter().all(|&s| src_ok(s))
                    && match d {
                        None => k == n - 1,
                        Some(r) => r < self.regs && k != n - 1 && !srcs.contains(&Src::Reg(r)),
                    }
            })
    }

    /// Runs the chain: `ins[i]` is input `i` (its length matching its [`Bcast`]).
    pub(crate) fn run(&self, ins: &[&[f32]], out: &mut [f32]) {
        self.drive(
            ins,
            out,
            #[inline(always)]
            |r, j0, y, regs| self.chunk(ins, r, j0, y.len(), y, regs),
        );
    }

    /// Checks the program and the operands' lengths, then calls `f(row, j0, y, regs)` for every
    /// chunk `y` of the output (at most [`CHUNK`] elements of row `row` from column `j0`), the
    /// chunks shared out over the threads, each thread with its own registers. Every backend
    /// of the chain runs through here.
    pub(crate) fn drive(
        &self,
        ins: &[&[f32]],
        out: &mut [f32],
        f: impl Fn(usize, usize, &mut [f32], &mut [[f32; CHUNK]; MAX_REGS]) + Sync + Send,
    ) {
        assert_eq!(out.len(), self.rows * self.inner);
        assert!(self.valid(), "malformed chain");
        assert_eq!(ins.len(), self.inputs.len(), "chain input count");
        for (x, b) in ins.iter().zip(&self.inputs) {
            let need = match b {
                Bcast::Full => self.rows * self.inner,
                Bcast::Row(p) => (*p).min(self.rows),
                Bcast::Col => self.inner,
                Bcast::Scalar => 1,
            };
            assert!(x.len() >= need, "chain input too short");
        }
        let inner = self.inner.max(1);
        let per_row = inner.div_ceil(CHUNK);
        let yp = SendPtr(out.as_mut_ptr());
        let min_part = (16384 / CHUNK.min(inner)).max(1);
        for_ranges(
            self.rows * per_row,
            min_part,
            #[inline(always)]
            |t0, t1| {
                let mut regs = [[0f32; CHUNK]; MAX_REGS];
                for t in t0..t1 {
                    let (r, c) = (t / per_row, t % per_row);
                    let j0 = c * CHUNK;
                    let n = CHUNK.min(inner - j0);
                    let at = r * inner + j0;
                    // SAFETY: tasks own disjoint chunks `at..at + n` of the output.
                    let y = unsafe { std::slice::from_raw_parts_mut(yp.get().add(at), n) };
                    f(r, j0, y, &mut regs);
                }
            },
        );
    }

    #[inline(always)]
    fn chunk(
        &self,
        ins: &[&[f32]],
        r: usize,
        j0: usize,
        n: usize,
        y: &mut [f32],
        regs: &mut [[f32; CHUNK]; MAX_REGS],
    ) {
        let inner = self.inner;
        for ins_i in &self.prog {
            // Registers are reached through a raw pointer so that one instruction can read some
            // while writing another; `valid` guarantees the written one is never read by it.
            let rp = regs.as_mut_ptr();
            let opnd = |s: Src| -> Op {
                match s {
                    Src::Imm(v) => Op::K(v),
                    // SAFETY: `i < regs`, and not the destination register (`valid`).
                    Src::Reg(i) => Op::S(unsafe {
                        std::slice::from_raw_parts(rp.add(i).cast::<f32>().cast_const(), n)
                    }),
                    Src::In(i) => match self.inputs[i] {
                        Bcast::Full => Op::S(&ins[i][r * inner + j0..r * inner + j0 + n]),
                        Bcast::Row(p) => Op::K(ins[i][r % p]),
                        Bcast::Col => Op::S(&ins[i][j0..j0 + n]),
                        Bcast::Scalar => Op::K(ins[i][0]),
                    },
                }
            };
            let (dst, f): (Option<usize>, _) = match *ins_i {
                Instr::Bin(op, a, b, d) => (d, (Some(op), None, opnd(a), opnd(b))),
                Instr::Un(u, a, d) => (d, (None, Some(u), opnd(a), Op::K(0.0))),
            };
            let out: &mut [f32] = match dst {
                // SAFETY: `i < regs`, read by no operand of this instruction (`valid`).
                Some(i) => unsafe { std::slice::from_raw_parts_mut(rp.add(i).cast::<f32>(), n) },
                None => &mut *y,
            };
            match f {
                (Some(op), _, a, b) => bin(op, a, b, out),
                (None, Some(u), a, _) => un(u, a, out),
                _ => unreachable!(),
            }
        }
    }
}

#[inline(always)]
fn un(u: UnFn, a: Op, out: &mut [f32]) {
    match u {
        UnFn::Neg => un_with(a, out, |x| -x),
        UnFn::Abs => un_with(a, out, f32::abs),
        UnFn::Sqrt => un_with(a, out, f32::sqrt),
        UnFn::Exp => un_with(a, out, exp),
        UnFn::Erf => un_with(a, out, erf),
        UnFn::Sigmoid => un_with(a, out, sigmoid),
        UnFn::Tanh => un_with(a, out, tanh),
        UnFn::Reciprocal => un_with(a, out, |x| 1.0 / x),
        UnFn::Relu => un_with(a, out, |x| max_to(x, 0.0)),
        UnFn::Clip(lo, hi) => un_with(a, out, move |x| min_to(max_to(x, lo), hi)),
        UnFn::LeakyRelu(s) => un_with(a, out, move |x| UnFn::LeakyRelu(s).apply(x)),
        UnFn::HardSigmoid(p, q) => un_with(a, out, move |x| UnFn::HardSigmoid(p, q).apply(x)),
        UnFn::HardSwish => un_with(a, out, |x| UnFn::HardSwish.apply(x)),
        UnFn::Gelu => match a {
            Op::S(s) => crate::kernels::act::gelu(s, out),
            Op::K(k) => out.fill(UnFn::Gelu.apply(k)),
        },
    }
}

#[inline(always)]
fn un_with(a: Op, out: &mut [f32], f: impl Fn(f32) -> f32) {
    match a {
        Op::S(s) => {
            for (o, &x) in out.iter_mut().zip(s) {
                *o = f(x);
            }
        }
        Op::K(k) => out.fill(f(k)),
    }
}

#[inline(always)]
fn bin(op: BinOp, a: Op, b: Op, out: &mut [f32]) {
    match op {
        BinOp::Add => bin_with(a, b, out, |x, y| x + y),
        BinOp::Sub => bin_with(a, b, out, |x, y| x - y),
        BinOp::Mul => bin_with(a, b, out, |x, y| x * y),
        BinOp::Div => bin_with(a, b, out, |x, y| x / y),
        BinOp::Max => bin_with(a, b, out, |x, y| BinOp::Max.apply(x, y)),
        BinOp::Min => bin_with(a, b, out, |x, y| BinOp::Min.apply(x, y)),
        BinOp::PRelu => bin_with(a, b, out, |x, y| BinOp::PRelu.apply(x, y)),
        BinOp::Pow => bin_with(a, b, out, |x, y| BinOp::Pow.apply(x, y)),
    }
}

#[inline(always)]
fn bin_with(a: Op, b: Op, out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    match (a, b) {
        (Op::S(a), Op::S(b)) => {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y);
            }
        }
        (Op::S(a), Op::K(y)) => {
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x, y);
            }
        }
        (Op::K(x), Op::S(b)) => {
            for (o, &y) in out.iter_mut().zip(b) {
                *o = f(x, y);
            }
        }
        (Op::K(x), Op::K(y)) => out.fill(f(x, y)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64 (Taylor series below 3, 1 above: f32 rounds erf(3+) to 1 within 2.3e-5).
    fn erf64(x: f64) -> f64 {
        let a = x.abs();
        let r = if a < 3.0 {
            let (mut term, mut sum, z) = (a, a, a * a);
            let mut n = 0.0;
            while term.abs() > 1e-17 * sum.abs() {
                n += 1.0;
                term *= -z / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let mut f = a;
            for k in (1..=60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
        };
        r.copysign(x)
    }

    #[test]
    fn erf_is_accurate() {
        let mut x = -6.0f32;
        let mut worst_abs = 0f64;
        let mut worst_rel = 0f64;
        while x < 6.0 {
            let (g, w) = (erf(x) as f64, erf64(x as f64));
            worst_abs = worst_abs.max((g - w).abs());
            if w.abs() > 1e-30 {
                worst_rel = worst_rel.max((g - w).abs() / w.abs());
            }
            x += 0.00377;
        }
        assert!(worst_abs < 4e-7, "worst absolute error {worst_abs:e}");
        assert!(worst_rel < 8e-7, "worst relative error {worst_rel:e}");
        assert_eq!(erf(0.0), 0.0);
        assert!(erf(f32::NAN).is_nan());
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
    }

    #[test]
    fn tanh_and_exp_are_accurate() {
        let mut x = -20.0f32;
        while x < 20.0 {
            let t = (x as f64).tanh();
            assert!(
                (tanh(x) as f64 - t).abs() <= 1e-6 * t.abs().max(1e-9),
                "tanh({x})"
            );
            if x < 80.0 {
                let e = (x as f64).exp();
                assert!((exp(x) as f64 - e).abs() <= 1e-6 * e, "exp({x})");
            }
            x += 0.0131;
        }
    }

    /// GELU as ONNX exports it (x / sqrt2 -> Erf -> + 1 -> * x -> * 0.5), on a 3 x 1000 output
    /// (chunk tails), against the per-op definition; plus per-row and per-column operands.
    #[test]
    fn chains_match_op_by_op() {
        let (rows, inner) = (3usize, 1000usize);
        let x: Vec<f32> = (0..rows * inner)
            .map(|i| (i as f32 * 0.37).sin() * 4.0)
            .collect();
        let rowv: Vec<f32> = vec![0.5, -1.5, 2.0];
        let colv: Vec<f32> = (0..inner).map(|j| j as f32 * 0.01 - 3.0).collect();
        let s2 = std::f32::consts::SQRT_2;
        let c = Chain {
            inputs: vec![Bcast::Full, Bcast::Row(3), Bcast::Col],
            prog: vec![
                Instr::Bin(BinOp::Div, Src::In(0), Src::Imm(s2), Some(0)),
                Instr::Un(UnFn::Erf, Src::Reg(0), Some(1)),
                Instr::Bin(BinOp::Add, Src::Reg(1), Src::Imm(1.0), Some(0)),
                Instr::Bin(BinOp::Mul, Src::In(0), Src::Reg(0), Some(1)),
                Instr::Bin(BinOp::Mul, Src::Reg(1), Src::Imm(0.5), Some(0)),
                Instr::Bin(BinOp::Mul, Src::In(1), Src::Reg(0), Some(1)),
                Instr::Bin(BinOp::Add, Src::Reg(1), Src::In(2), Some(0)),
                Instr::Un(UnFn::HardSwish, Src::Reg(0), None),
            ],
            regs: 2,
            rows,
            inner,
        };
        let mut y = vec![f32::NAN; rows * inner];
        c.run(&[&x, &rowv, &colv], &mut y);
        for r in 0..rows {
            for j in 0..inner {
                let v = x[r * inner + j];
                let g = v * (erf(v / s2) + 1.0) * 0.5;
                let h = rowv[r] * g + colv[j];
                let want = h * (h / 6.0 + 0.5).clamp(0.0, 1.0);
                let got = y[r * inner + j];
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{r},{j}: {got} vs {want}"
                );
            }
        }
    }
}
