//! Cranelift code for fused elementwise chains ([`Chain`]): the chain's register program
//! compiled with its shape, broadcasts and constants baked in, every intermediate an SSA value
//! in a vector register instead of a chunk buffer in L1.
//!
//! Why it exists: the mission names Cranelift for weight- and shape-specialised code, and
//! elementwise chains are the natural candidate (issue 16). The Rust form
//! (`kernels::chain`) makes one pass over an L1 chunk per instruction with 8- or 16-wide
//! vectors; this form makes one pass in all, but Cranelift 0.135 emits 128-bit vectors only.
//! Which wins is measured per chain shape (`tests::bench_chain`) and `prefer` encodes the
//! result, so the planner picks deterministically.
//!
//! Only the algebraic functions are generated (`+ - * /`, Max/Min, PRelu, Neg, Abs, Sqrt,
//! Reciprocal, Relu, Clip, LeakyRelu, HardSigmoid, HardSwish), each with the same operations in
//! the same order as [`UnFn::apply`] / `BinOp::apply` (no FMA contraction), so both backends
//! give the same bits. Chains with a transcendental (Exp, Erf, Sigmoid, Tanh, GELU) or Pow stay
//! on the Rust form.
//!
//! The function is `fn(ins, row, j0, n, out)`: `ins` the chain's input pointers, the chunk at
//! row `row` from column `j0` of length `n`, `out` the chunk's first output element. It runs
//! 16 elements per iteration (four vectors), then single vectors, then scalars.
#![allow(unsafe_code)] // Calling the generated function; each call is justified below.

use std::collections::HashMap;
use std::sync::Arc;

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, AbiParam, BlockArg, InstBuilder, MemFlagsData, Type, Value};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::Module;

use super::{CodeHolder, Jit};
use crate::kernels::chain::{Bcast, Chain, Instr, Src, UnFn, MAX_INPUTS};
use crate::kernels::eltwise::BinOp;
use crate::JitError;

/// `fn(ins: *const *const f32, row, j0, n, out: *mut f32)`.
type ChainFn = unsafe extern "C" fn(*const *const f32, u64, u64, u64, *mut f32);

/// Vectors per iteration of the main loop.
const UNROLL: usize = 4;

/// A chain compiled to machine code.
pub(crate) struct ChainCode {
    chain: Chain,
    f: ChainFn,
    _code: Arc<CodeHolder>,
}

impl std::fmt::Debug for ChainCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainCode")
            .field("chain", &self.chain)
            .finish()
    }
}

/// Whether `u` is generated (the algebraic functions).
fn un_supported(u: UnFn) -> bool {
    !matches!(
        u,
        UnFn::Exp | UnFn::Erf | UnFn::Sigmoid | UnFn::Tanh | UnFn::Gelu
    )
}

impl ChainCode {
    /// Whether every instruction of `chain` can be generated.
    pub(crate) fn supports(chain: &Chain) -> bool {
        chain.prog.iter().all(|i| match *i {
            Instr::Bin(op, ..) => op != BinOp::Pow,
            Instr::Un(u, ..) => un_supported(u),
        })
    }

    /// Whether the generated form is the one to run for `chain`, from `bench_chain`'s
    /// measurements (1 thread, outputs of 4k to 400k elements): with two or more instructions
    /// it ran 1.13-5.7x faster than the Rust form (one pass instead of one per instruction);
    /// a single instruction (a lone HardSwish) ran 0.72-0.81x as fast (128-bit vectors against
    /// the Rust loop's 256-bit ones, for the same one pass).
    pub(crate) fn prefer(chain: &Chain) -> bool {
        Self::supports(chain) && chain.prog.len() >= 2
    }

    /// Compiles `chain` (which must be [`supports`](Self::supports)-ed and valid).
    pub(crate) fn compile(jit: &Jit, chain: &Chain) -> Result<ChainCode, JitError> {
        let cg = |e: &dyn std::fmt::Display| JitError::Codegen {
            kernel: format!("chain of {} instructions", chain.prog.len()),
            msg: e.to_string(),
        };
        if !Self::supports(chain) || !chain.valid() {
            return Err(cg(&"chain has an instruction without generated code"));
        }
        let mut module = jit.module();
        let isa = jit.isa.clone();
        let mut sig = module.make_signature();
        for _ in 0..5 {
            sig.params.push(AbiParam::new(types::I64));
        }
        let mut ctx = Context::new();
        ctx.func.signature = sig.clone();
        ctx.func.signature.call_conv = isa.default_call_conv();
        build(
            &mut ctx.func,
            &mut FunctionBuilderContext::new(),
            isa.frontend_config(),
            chain,
        );
        let code = ctx
            .compile(&*isa, &mut ControlPlane::default())
            .map_err(|e| cg(&format!("{:?}", e.inner)))?;
        if !code.buffer.relocs().is_empty() {
            return Err(cg(&"generated code needs relocations"));
        }
        let align = (code.buffer.alignment as u64)
            .max(isa.function_alignment().minimum as u64)
            .max(isa.symbol_alignment());
        let bytes = code.code_buffer().to_vec();
        let id = module
            .declare_anonymous_function(&sig)
            .map_err(|e| cg(&e))?;
        module
            .define_function_bytes(id, align, &bytes, &[])
            .map_err(|e| cg(&e))?;
        module.finalize_definitions().map_err(|e| cg(&e))?;
        let p = module.get_finalized_function(id);
        // SAFETY: built by `build` with five I64 parameters in the ISA's default ("C") calling
        // convention; pointers and u64 are I64 on x86-64.
        let f = unsafe { std::mem::transmute::<*const u8, ChainFn>(p) };
        Ok(ChainCode {
            chain: chain.clone(),
            f,
            _code: CodeHolder::new(module),
        })
    }

    /// Runs the chain: the same contract as [`Chain::run`].
    pub(crate) fn run(&self, ins: &[&[f32]], out: &mut [f32]) {
        // The input pointers on the stack (a run allocates nothing); passed between threads as
        // an address, since raw pointers are not `Send`.
        let mut ptrs = [std::ptr::null::<f32>(); MAX_INPUTS];
        assert!(ins.len() <= MAX_INPUTS, "chain of {} inputs", ins.len());
        for (p, s) in ptrs.iter_mut().zip(ins) {
            *p = s.as_ptr();
        }
        let addr = ptrs.as_ptr() as usize;
        let f = self.f;
        self.chain.drive(ins, out, |r, j0, y, _| {
            // SAFETY: `drive` checked every input's length against its broadcast for the whole
            // `rows x inner` space, and `y` is the output chunk at `(r, j0)` of `y.len()`
            // elements: the function reads input `i` at the positions `Chain::run` reads and
            // writes exactly `y`. `addr` is `ptrs`, alive until `drive` returns.
            unsafe {
                f(
                    addr as *const *const f32,
                    r as u64,
                    j0 as u64,
                    y.len() as u64,
                    y.as_mut_ptr(),
                )
            }
        });
    }
}

fn args(v: &[Value]) -> Vec<BlockArg> {
    v.iter().map(|&x| BlockArg::from(x)).collect()
}

fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// An operand resolved in the prologue: a pointer at the chunk's first element (read per
/// position) or a value (splatted per vector).
#[derive(Clone, Copy)]
enum Arg {
    At(Value),
    /// The value as a scalar and splatted.
    Splat(Value, Value),
}

/// Every constant the program uses, made once in the entry block for both widths, so the
/// loops read them from registers instead of re-materialising them per vector.
struct Consts(HashMap<(Type, u32), Value>);

impl Consts {
    /// The constants `chain`'s instructions use (their immediates and the functions' own).
    fn make(b: &mut FunctionBuilder, chain: &Chain) -> Consts {
        let mut vals: Vec<f32> = vec![0.0, 1.0];
        for i in &chain.prog {
            let (srcs, extra): ([Src; 2], Vec<f32>) = match *i {
                Instr::Bin(_, x, y, _) => ([x, y], vec![]),
                Instr::Un(u, x, _) => (
                    [x, x],
                    match u {
                        UnFn::Clip(lo, hi) => vec![lo, hi],
                        UnFn::LeakyRelu(a) => vec![a],
                        UnFn::HardSigmoid(a, c) => vec![a, c],
                        UnFn::HardSwish => vec![1.0 / 6.0, 0.5],
                        _ => vec![],
                    },
                ),
            };
            vals.extend(extra);
            vals.extend(srcs.iter().filter_map(|s| match *s {
                Src::Imm(v) => Some(v),
                _ => None,
            }));
        }
        let mut map = HashMap::new();
        for v in vals {
            map.entry((types::F32, v.to_bits()))
                .or_insert_with(|| b.ins().f32const(v));
            map.entry((types::F32X4, v.to_bits())).or_insert_with(|| {
                let bytes: Vec<u8> = (0..4).flat_map(|_| v.to_le_bytes()).collect();
                let c = b.func.dfg.constants.insert(bytes.into());
                b.ins().vconst(types::F32X4, c)
            });
        }
        Consts(map)
    }
}

/// What the entry block computes for the loops: the constants and the operands.
struct Prologue {
    consts: Consts,
    argv: Vec<Arg>,
}

/// A float constant of type `ty` (`F32` or `F32X4`), made by [`Consts::make`].
fn konst(k: &Consts, ty: Type, v: f32) -> Value {
    k.0[&(ty, v.to_bits())]
}

/// `cc(x, y) ? a : c`, per lane.
fn select(
    b: &mut FunctionBuilder,
    ty: Type,
    cc: FloatCC,
    x: Value,
    y: Value,
    a: Value,
    c: Value,
) -> Value {
    let m = b.ins().fcmp(cc, x, y);
    if ty == types::F32 {
        b.ins().select(m, a, c)
    } else {
        let m = b.ins().bitcast(types::F32X4, MemFlagsData::new(), m);
        b.ins().bitselect(m, a, c)
    }
}

/// `max_to` / `min_to` of `kernels::chain`: `x > t ? x : t` (a NaN `x` gives `t`).
fn max_to(b: &mut FunctionBuilder, k: &Consts, ty: Type, x: Value, t: f32) -> Value {
    let kv = konst(k, ty, t);
    select(b, ty, FloatCC::GreaterThan, x, kv, x, kv)
}

fn min_to(b: &mut FunctionBuilder, k: &Consts, ty: Type, x: Value, t: f32) -> Value {
    let kv = konst(k, ty, t);
    select(b, ty, FloatCC::LessThan, x, kv, x, kv)
}

fn un(b: &mut FunctionBuilder, k: &Consts, ty: Type, u: UnFn, x: Value) -> Value {
    match u {
        UnFn::Neg => b.ins().fneg(x),
        UnFn::Abs => b.ins().fabs(x),
        UnFn::Sqrt => b.ins().sqrt(x),
        UnFn::Reciprocal => {
            let one = konst(k, ty, 1.0);
            b.ins().fdiv(one, x)
        }
        UnFn::Relu => max_to(b, k, ty, x, 0.0),
        UnFn::Clip(lo, hi) => {
            let m = max_to(b, k, ty, x, lo);
            min_to(b, k, ty, m, hi)
        }
        UnFn::LeakyRelu(a) => {
            let av = konst(k, ty, a);
            let ax = b.ins().fmul(av, x);
            let zero = konst(k, ty, 0.0);
            select(b, ty, FloatCC::GreaterThanOrEqual, x, zero, x, ax)
        }
        UnFn::HardSigmoid(a, c) => {
            let av = konst(k, ty, a);
            let cv = konst(k, ty, c);
            let t = b.ins().fmul(av, x);
            let t = b.ins().fadd(t, cv);
            let t = max_to(b, k, ty, t, 0.0);
            min_to(b, k, ty, t, 1.0)
        }
        UnFn::HardSwish => {
            let sixth = konst(k, ty, 1.0 / 6.0);
            let half = konst(k, ty, 0.5);
            let t = b.ins().fmul(x, sixth);
            let t = b.ins().fadd(t, half);
            let t = max_to(b, k, ty, t, 0.0);
            let t = min_to(b, k, ty, t, 1.0);
            b.ins().fmul(x, t)
        }
        UnFn::Exp | UnFn::Erf | UnFn::Sigmoid | UnFn::Tanh | UnFn::Gelu => {
            unreachable!("checked by ChainCode::supports")
        }
    }
}

fn bin(b: &mut FunctionBuilder, k: &Consts, ty: Type, op: BinOp, x: Value, y: Value) -> Value {
    match op {
        BinOp::Add => b.ins().fadd(x, y),
        BinOp::Sub => b.ins().fsub(x, y),
        BinOp::Mul => b.ins().fmul(x, y),
        BinOp::Div => b.ins().fdiv(x, y),
        // NaN-propagating, as ONNX Max/Min and `BinOp::apply`.
        BinOp::Max => b.ins().fmax(x, y),
        BinOp::Min => b.ins().fmin(x, y),
        BinOp::PRelu => {
            let xy = b.ins().fmul(x, y);
            let zero = konst(k, ty, 0.0);
            select(b, ty, FloatCC::LessThan, x, zero, xy, x)
        }
        BinOp::Pow => unreachable!("checked by ChainCode::supports"),
    }
}

/// The program on `width` consecutive positions (`ty` one lane or four) at byte offset `off`
/// from each `Arg::At` pointer; stores the result at `out + off`.
fn body(
    b: &mut FunctionBuilder,
    chain: &Chain,
    pro: &Prologue,
    ty: Type,
    off: Value,
    out: Value,
    k_off: i32,
) {
    let (k, argv) = (&pro.consts, &pro.argv);
    let mut regs: Vec<Option<Value>> = vec![None; chain.regs];
    let mut loaded: Vec<Option<Value>> = vec![None; argv.len()];
    let n = chain.prog.len();
    for (at, ins) in chain.prog.iter().enumerate() {
        let mut val = |b: &mut FunctionBuilder, s: Src| -> Value {
            match s {
                Src::Imm(v) => konst(k, ty, v),
                Src::Reg(r) => regs[r].expect("a register is written before it is read"),
                Src::In(i) => *loaded[i].get_or_insert_with(|| match argv[i] {
                    Arg::At(p) => {
                        let a = b.ins().iadd(p, off);
                        b.ins().load(ty, flags(), a, k_off)
                    }
                    Arg::Splat(one, all) => {
                        if ty == types::F32 {
                            one
                        } else {
                            all
                        }
                    }
                }),
            }
        };
        let (v, dst) = match *ins {
            Instr::Bin(op, x, y, d) => {
                let x = val(b, x);
                let y = val(b, y);
                (bin(b, k, ty, op, x, y), d)
            }
            Instr::Un(u, x, d) => {
                let x = val(b, x);
                (un(b, k, ty, u, x), d)
            }
        };
        match dst {
            Some(r) => regs[r] = Some(v),
            None => {
                debug_assert_eq!(at, n - 1);
                let a = b.ins().iadd(out, off);
                b.ins().store(flags(), v, a, k_off);
            }
        }
    }
}

/// Emits `fn(ins, row, j0, n, out)` for `chain` into `func`.
fn build(
    func: &mut cranelift_codegen::ir::Function,
    fctx: &mut FunctionBuilderContext,
    cfg: cranelift_codegen::isa::TargetFrontendConfig,
    chain: &Chain,
) {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p = b.block_params(entry).to_vec();
    let (ins, row, j0, n, out) = (p[0], p[1], p[2], p[3], p[4]);
    let inner = chain.inner as i64;
    // The prologue: each input's pointer at the chunk, or its one value for this row.
    let mut argv = Vec::with_capacity(chain.inputs.len());
    for (i, bc) in chain.inputs.iter().enumerate() {
        let base = b.ins().load(types::I64, flags(), ins, (8 * i) as i32);
        let one = match *bc {
            Bcast::Full => {
                let e = b.ins().imul_imm_s(row, inner);
                let e = b.ins().iadd(e, j0);
                let e = b.ins().ishl_imm_u(e, 2);
                argv.push(Arg::At(b.ins().iadd(base, e)));
                continue;
            }
            Bcast::Col => {
                let e = b.ins().ishl_imm_u(j0, 2);
                argv.push(Arg::At(b.ins().iadd(base, e)));
                continue;
            }
            Bcast::Row(period) => {
                let r = b.ins().urem_imm_u(row, period as i64);
                let e = b.ins().ishl_imm_u(r, 2);
                let a = b.ins().iadd(base, e);
                b.ins().load(types::F32, flags(), a, 0)
            }
            Bcast::Scalar => b.ins().load(types::F32, flags(), base, 0),
        };
        let all = b.ins().splat(types::F32X4, one);
        argv.push(Arg::Splat(one, all));
    }
    let pro = Prologue {
        consts: Consts::make(&mut b, chain),
        argv,
    };
    // Three loops over byte offsets: UNROLL vectors, one vector, one lane.
    let stages: [(Type, usize); 3] = [(types::F32X4, UNROLL), (types::F32X4, 1), (types::F32, 1)];
    let exit = b.create_block();
    let mut start = b.ins().iconst(types::I64, 0);
    let n_bytes = b.ins().ishl_imm_u(n, 2);
    for (ty, reps) in stages {
        let step = (ty.bytes() as usize * reps) as i64;
        let head = b.create_block();
        b.append_block_param(head, types::I64);
        let lp = b.create_block();
        let next = b.create_block();
        b.append_block_param(next, types::I64);
        b.ins().jump(head, &args(&[start]));

        b.switch_to_block(head);
        let off = b.block_params(head)[0];
        // Room for `step` more bytes: off + step <= n_bytes.
        let end = b.ins().iadd_imm_s(off, step);
        let room = b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, n_bytes);
        b.ins().brif(room, lp, &[], next, &args(&[off]));

        b.switch_to_block(lp);
        for r in 0..reps {
            body(
                &mut b,
                chain,
                &pro,
                ty,
                off,
                out,
                (r as u32 * ty.bytes()) as i32,
            );
        }
        b.ins().jump(head, &args(&[end]));

        b.switch_to_block(next);
        start = b.block_params(next)[0];
    }
    b.ins().jump(exit, &[]);
    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(cfg);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn chains() -> Vec<Chain> {
        use BinOp::*;
        use Src::*;
        let c = |inputs: Vec<Bcast>, prog: Vec<Instr>, regs, rows, inner| Chain {
            inputs,
            prog,
            regs,
            rows,
            inner,
        };
        vec![
            // HardSwish alone, odd length (vector and scalar tails).
            c(
                vec![Bcast::Full],
                vec![Instr::Un(UnFn::HardSwish, In(0), None)],
                0,
                3,
                37,
            ),
            // A layer scale and a residual: x * gamma[row] + res.
            c(
                vec![Bcast::Full, Bcast::Row(5), Bcast::Full],
                vec![
                    Instr::Bin(Mul, In(0), In(1), Some(0)),
                    Instr::Bin(Add, Reg(0), In(2), None),
                ],
                1,
                10,
                1000,
            ),
            // Every generated function once, through registers, a column and a scalar input.
            c(
                vec![Bcast::Full, Bcast::Col, Bcast::Scalar],
                vec![
                    Instr::Bin(Sub, In(0), In(1), Some(0)),
                    Instr::Un(UnFn::Clip(-0.5, 0.7), Reg(0), Some(1)),
                    Instr::Bin(Div, Reg(1), In(2), Some(2)),
                    Instr::Un(UnFn::LeakyRelu(0.1), Reg(2), Some(0)),
                    Instr::Bin(PRelu, Reg(0), Imm(0.25), Some(1)),
                    Instr::Un(UnFn::HardSigmoid(0.2, 0.5), Reg(1), Some(2)),
                    Instr::Bin(Max, Reg(2), In(0), Some(0)),
                    Instr::Bin(Min, Reg(0), Imm(0.9), Some(1)),
                    Instr::Un(UnFn::Abs, Reg(1), Some(2)),
                    Instr::Un(UnFn::Sqrt, Reg(2), Some(0)),
                    Instr::Un(UnFn::Neg, Reg(0), Some(1)),
                    Instr::Un(UnFn::Relu, Reg(1), Some(2)),
                    Instr::Bin(Add, Reg(2), Imm(2.0), Some(0)),
                    Instr::Un(UnFn::Reciprocal, Reg(0), None),
                ],
                3,
                4,
                1203,
            ),
            // Fewer positions than one vector.
            c(
                vec![Bcast::Full],
                vec![Instr::Un(UnFn::Relu, In(0), None)],
                0,
                2,
                3,
            ),
        ]
    }

    fn inputs(ch: &Chain) -> Vec<Vec<f32>> {
        let mut rng = Rng(0x5eed_c4a1);
        ch.inputs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let n = match *b {
                    Bcast::Full => ch.rows * ch.inner,
                    Bcast::Row(p) => p,
                    Bcast::Col => ch.inner,
                    Bcast::Scalar => 1,
                };
                (0..n).map(|_| 3.0 * rng.unit() + 0.1 * i as f32).collect()
            })
            .collect()
    }

    #[test]
    fn generated_chains_match_the_rust_form_bit_for_bit() {
        let jit = Jit::new().unwrap();
        for ch in chains() {
            assert!(ChainCode::supports(&ch));
            let code = ChainCode::compile(&jit, &ch).unwrap();
            let ins = inputs(&ch);
            let refs: Vec<&[f32]> = ins.iter().map(Vec::as_slice).collect();
            let mut want = vec![0f32; ch.rows * ch.inner];
            let mut got = vec![f32::NAN; ch.rows * ch.inner];
            ch.run(&refs, &mut want);
            code.run(&refs, &mut got);
            for (k, (a, b)) in want.iter().zip(&got).enumerate() {
                let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                assert!(same, "{:?} at {k}: {a} vs {b}", ch.prog);
            }
        }
    }

    #[test]
    fn transcendental_chains_are_not_generated() {
        let ch = Chain {
            inputs: vec![Bcast::Full],
            prog: vec![Instr::Un(UnFn::Erf, Src::In(0), None)],
            regs: 0,
            rows: 1,
            inner: 8,
        };
        assert!(!ChainCode::supports(&ch));
        assert!(!ChainCode::prefer(&ch));
        assert!(ChainCode::compile(&Jit::new().unwrap(), &ch).is_err());
    }

    /// The Rust form against the generated one, per chain shape, 1 thread, interleaved:
    /// `cargo test --release -p ssc-jit bench_chain -- --ignored --nocapture`.
    #[test]
    #[ignore = "benchmark"]
    fn bench_chain() {
        use BinOp::*;
        use Src::*;
        let jit = Jit::new().unwrap();
        let hswish = vec![Instr::Un(UnFn::HardSwish, In(0), None)];
        let scale_add = vec![
            Instr::Bin(Mul, In(0), In(1), Some(0)),
            Instr::Bin(Add, Reg(0), In(2), None),
        ];
        let add_relu6 = vec![
            Instr::Bin(Add, In(0), In(1), Some(0)),
            Instr::Un(UnFn::Clip(0.0, 6.0), Reg(0), None),
        ];
        let long = vec![
            Instr::Bin(Sub, In(0), In(1), Some(0)),
            Instr::Bin(Mul, Reg(0), Imm(0.5), Some(1)),
            Instr::Un(UnFn::HardSwish, Reg(1), Some(0)),
            Instr::Bin(Add, Reg(0), In(1), Some(1)),
            Instr::Un(UnFn::Clip(-1.0, 4.0), Reg(1), Some(0)),
            Instr::Bin(Mul, Reg(0), Imm(1.5), None),
        ];
        let four = vec![
            Instr::Bin(Sub, In(0), In(1), Some(0)),
            Instr::Bin(Mul, Reg(0), Imm(0.5), Some(1)),
            Instr::Bin(Add, Reg(1), In(1), Some(0)),
            Instr::Un(UnFn::Relu, Reg(0), None),
        ];
        let shapes: [(&str, usize, usize); 5] = [
            ("96 x 56x56", 96, 3136),
            ("32 x 112x112", 32, 12544),
            ("192 x 28x28", 192, 784),
            ("384 x 14x14", 384, 196),
            ("64 x 8x8", 64, 64),
        ];
        println!("chain | shape | instrs | Rust ms | Cranelift ms | Rust / Cranelift");
        for (name, prog, inputs, regs) in [
            ("HardSwish", &hswish, vec![Bcast::Full], 0),
            (
                "x*gamma[c]+res",
                &scale_add,
                vec![Bcast::Full, Bcast::Row(0), Bcast::Full],
                1,
            ),
            (
                "Clip(x+y,0,6)",
                &add_relu6,
                vec![Bcast::Full, Bcast::Full],
                1,
            ),
            ("4 algebraic ops", &four, vec![Bcast::Full, Bcast::Full], 2),
            ("6 algebraic ops", &long, vec![Bcast::Full, Bcast::Full], 2),
        ] {
            for (shape, rows, inner) in shapes {
                let inputs: Vec<Bcast> = inputs
                    .iter()
                    .map(|b| {
                        if *b == Bcast::Row(0) {
                            Bcast::Row(rows)
                        } else {
                            *b
                        }
                    })
                    .collect();
                let ch = Chain {
                    inputs,
                    prog: prog.clone(),
                    regs,
                    rows,
                    inner,
                };
                let code = ChainCode::compile(&jit, &ch).unwrap();
                let ins = super::tests::inputs(&ch);
                let refs: Vec<&[f32]> = ins.iter().map(Vec::as_slice).collect();
                let mut y = vec![0f32; rows * inner];
                let reps = (4_000_000 / (rows * inner)).max(1);
                let [r, c] = crate::testutil::interleaved_ms::<2>(31, |i| {
                    for _ in 0..reps {
                        if i == 0 {
                            ch.run(&refs, &mut y);
                        } else {
                            code.run(&refs, &mut y);
                        }
                    }
                });
                let (r, c) = (r / reps as f64, c / reps as f64);
                println!(
                    "{name} | {shape} | {} | {r:.4} | {c:.4} | {:.2}",
                    ch.prog.len(),
                    r / c
                );
            }
        }
    }
}
