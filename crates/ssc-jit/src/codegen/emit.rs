//! Cranelift IR for the streaming convolution kernels: one unrolled function per output channel
//! (weights and offsets as immediates) or one table-driven loop per layer.
//!
//! Both kernel kinds compute, for `n_tiles` consecutive tiles of `4 * nv` floats,
//! `acc[i] = sum_terms w * in[i + off]` and store the raw sums to `acc`; the caller adds bias and
//! residual and applies the activation. Loads are unaligned, non-trapping (the caller guarantees
//! every address is inside its scratch). With `opt_level = none` Cranelift keeps our instruction
//! order, so per term the code is: one splatted weight, then per vector one load sunk into a
//! `vfmadd` (or an `fadd` chain for a unified block followed by one `vfmadd`).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, BlockArg, Function, InstBuilder, MemFlagsData, Value,
};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

/// The weights of one output channel, in emission order.
#[derive(Clone, Debug, Default)]
pub(super) struct Terms {
    /// `(offset in floats, weight)`: one weight used once.
    pub singles: Vec<(i32, f32)>,
    /// `(weight, offsets in floats)`: equal weights; inputs summed first, multiplied once.
    pub groups: Vec<(f32, Vec<i32>)>,
}

impl Terms {
    pub fn nnz(&self) -> usize {
        self.singles.len() + self.groups.iter().map(|g| g.1.len()).sum::<usize>()
    }
    pub fn is_empty(&self) -> bool {
        self.singles.is_empty() && self.groups.is_empty()
    }
}

/// Independent accumulator sets: an `f32x4` FMA has a 4-cycle latency and each term updates all
/// `nv` accumulators of a set, so with `nv <= 4` one set is latency-bound at one term per 4 cycles;
/// alternating terms between two sets (summed at the end) doubles the chains in flight.
fn acc_sets(nv: usize) -> usize {
    if nv <= 4 {
        2
    } else {
        1
    }
}

fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

fn args(v: &[Value]) -> Vec<BlockArg> {
    v.iter().map(|&x| BlockArg::from(x)).collect()
}

/// `acc + x * w`, fused when the host has FMA.
fn mul_add(b: &mut FunctionBuilder, x: Value, w: Value, acc: Option<Value>, fma: bool) -> Value {
    match (acc, fma) {
        (None, _) => b.ins().fmul(x, w),
        (Some(a), true) => b.ins().fma(x, w, a),
        (Some(a), false) => {
            let m = b.ins().fmul(x, w);
            b.ins().fadd(a, m)
        }
    }
}

fn splat_const(b: &mut FunctionBuilder, w: f32) -> Value {
    let bytes: Vec<u8> = (0..4).flat_map(|_| w.to_le_bytes()).collect();
    let c = b.func.dfg.constants.insert(bytes.into());
    b.ins().vconst(types::F32X4, c)
}

/// The tile loop shared by both kernel kinds: `body` emits the sums for the tile at `p` and
/// returns the `nv` accumulators, which are stored at `q`.
fn tile_loop(
    func: &mut Function,
    fctx: &mut FunctionBuilderContext,
    cfg: TargetFrontendConfig,
    n_params: usize,
    nv: usize,
    mut body: impl FnMut(&mut FunctionBuilder, Value, &[Value]) -> Vec<Value>,
) {
    for _ in 0..n_params {
        func.signature.params.push(AbiParam::new(types::I64));
    }
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    let lp = b.create_block();
    for _ in 0..3 {
        b.append_block_param(lp, types::I64);
    }
    let exit = b.create_block();
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    b.ins().jump(lp, &args(&params[..3]));

    b.switch_to_block(lp);
    let lpp = b.block_params(lp).to_vec();
    let (p, q, k) = (lpp[0], lpp[1], lpp[2]);
    let accs = body(&mut b, p, &params);
    for (v, &a) in accs.iter().enumerate() {
        b.ins().store(flags(), a, q, (16 * v) as i32);
    }
    let step = (16 * nv) as i64;
    let p2 = b.ins().iadd_imm_s(p, step);
    let q2 = b.ins().iadd_imm_s(q, step);
    let k2 = b.ins().iadd_imm_s(k, -1);
    b.ins().brif(k2, lp, &args(&[p2, q2, k2]), exit, &[]);

    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(cfg);
}

/// `fn(in, acc, n_tiles)` for one output channel with its weights as immediates. `n_tiles >= 1`.
pub(super) fn build_unrolled(
    func: &mut Function,
    fctx: &mut FunctionBuilderContext,
    cfg: TargetFrontendConfig,
    terms: &Terms,
    nv: usize,
    fma: bool,
) {
    tile_loop(func, fctx, cfg, 3, nv, |b, p, _| {
        let sets = acc_sets(nv);
        let mut all: Vec<Option<Value>> = vec![None; sets * nv];
        for (i, &(off, w)) in terms.singles.iter().enumerate() {
            let wv = splat_const(b, w);
            let set = i % sets;
            for (v, acc) in all[set * nv..(set + 1) * nv].iter_mut().enumerate() {
                let x = b
                    .ins()
                    .load(types::F32X4, flags(), p, 4 * off + 16 * v as i32);
                *acc = Some(mul_add(b, x, wv, *acc, fma));
            }
        }
        for (i, (w, offs)) in terms.groups.iter().enumerate() {
            let wv = splat_const(b, *w);
            let set = i % sets;
            for (v, acc) in all[set * nv..(set + 1) * nv].iter_mut().enumerate() {
                let mut s = b
                    .ins()
                    .load(types::F32X4, flags(), p, 4 * offs[0] + 16 * v as i32);
                for &o in &offs[1..] {
                    let x = b
                        .ins()
                        .load(types::F32X4, flags(), p, 4 * o + 16 * v as i32);
                    s = b.ins().fadd(s, x);
                }
                *acc = Some(mul_add(b, s, wv, *acc, fma));
            }
        }
        (0..nv)
            .map(|v| {
                let mut sum = None;
                for set in 0..sets {
                    sum = match (sum, all[set * nv + v]) {
                        (Some(x), Some(y)) => Some(b.ins().fadd(x, y)),
                        (x, y) => x.or(y),
                    };
                }
                sum.unwrap_or_else(|| splat_const(b, 0.0))
            })
            .collect()
    });
}

/// Single entries handled per iteration of the table loop's main singles loop (a one-entry loop
/// handles the remainder). Cranelift's `vfmadd213`/`vfmadd132` write a multiplicand's register,
/// so the accumulators rotate through registers and the back edge needs up to `2 * nv` moves;
/// a long unrolled body amortises them.
pub(super) const SINGLES_UNROLL: usize = 8;

/// `fn(in, acc, n_tiles, tab, singles_end, groups_end)` reading the channel's weights from a
/// table of `i32` words: first `(offset_bytes, weight_bits)` pairs up to `singles_end`, then
/// groups `(count, weight_bits, offset_bytes * count)` up to `groups_end`. `n_tiles >= 1`.
pub(super) fn build_table(
    func: &mut Function,
    fctx: &mut FunctionBuilderContext,
    cfg: TargetFrontendConfig,
    nv: usize,
    fma: bool,
) {
    tile_loop(func, fctx, cfg, 6, nv, |b, p, params| {
        let (tab, s_end, g_end) = (params[3], params[4], params[5]);
        let v4 = types::F32X4;
        let sets = acc_sets(nv);
        let na = sets * nv;
        let zero = splat_const(b, 0.0);
        let acc0 = vec![zero; na];
        // One single: `cur[set] += w * in[off..]`, reading the entry at `t + 8 * u`.
        let single = |b: &mut FunctionBuilder, t: Value, u: i32, set: usize, cur: &mut [Value]| {
            let off = b.ins().sload32(flags(), t, 8 * u);
            let wf = b.ins().load(types::F32, flags(), t, 8 * u + 4);
            let wv = b.ins().splat(v4, wf);
            let base = b.ins().iadd(p, off);
            for (v, a) in cur[set * nv..(set + 1) * nv].iter_mut().enumerate() {
                let x = b.ins().load(v4, flags(), base, 16 * v as i32);
                *a = mul_add(b, x, wv, Some(*a), fma);
            }
        };

        // Singles, main loop: SINGLES_UNROLL entries per iteration while t < main_end.
        let unroll_bytes = 8 * SINGLES_UNROLL as i64;
        let len = b.ins().isub(s_end, tab);
        let whole = b.ins().band_imm_s(len, -unroll_bytes);
        let main_end = b.ins().iadd(tab, whole);
        let s_loop = b.create_block();
        let r_head = b.create_block();
        let r_loop = b.create_block();
        let g_head = b.create_block();
        for blk in [s_loop, r_head, r_loop, g_head] {
            b.append_block_param(blk, types::I64);
            for _ in 0..na {
                b.append_block_param(blk, v4);
            }
        }
        let has = b.ins().icmp(IntCC::UnsignedLessThan, tab, main_end);
        let mut a = vec![tab];
        a.extend(&acc0);
        b.ins().brif(has, s_loop, &args(&a), r_head, &args(&a));

        b.switch_to_block(s_loop);
        let sp = b.block_params(s_loop).to_vec();
        let t = sp[0];
        let mut cur: Vec<Value> = sp[1..].to_vec();
        for u in 0..SINGLES_UNROLL {
            single(b, t, u as i32, u % sets, &mut cur);
        }
        let mut next = vec![b.ins().iadd_imm_s(t, unroll_bytes)];
        next.extend(cur);
        let more = b.ins().icmp(IntCC::UnsignedLessThan, next[0], main_end);
        b.ins()
            .brif(more, s_loop, &args(&next), r_head, &args(&next));

        // Singles, remainder: one entry per iteration while t < s_end.
        b.switch_to_block(r_head);
        let rh = b.block_params(r_head).to_vec();
        let has = b.ins().icmp(IntCC::UnsignedLessThan, rh[0], s_end);
        b.ins().brif(has, r_loop, &args(&rh), g_head, &args(&rh));

        b.switch_to_block(r_loop);
        let rp = b.block_params(r_loop).to_vec();
        let mut cur: Vec<Value> = rp[1..].to_vec();
        single(b, rp[0], 0, 0, &mut cur);
        let mut next = vec![b.ins().iadd_imm_s(rp[0], 8)];
        next.extend(cur);
        let more = b.ins().icmp(IntCC::UnsignedLessThan, next[0], s_end);
        b.ins()
            .brif(more, r_loop, &args(&next), g_head, &args(&next));

        // Groups: while t < g_end { sum count inputs, multiply once }.
        b.switch_to_block(g_head);
        let gh = b.block_params(g_head).to_vec();
        let g_loop = b.create_block();
        let done = b.create_block();
        for blk in [g_loop, done] {
            b.append_block_param(blk, types::I64);
            for _ in 0..na {
                b.append_block_param(blk, v4);
            }
        }
        let has = b.ins().icmp(IntCC::UnsignedLessThan, gh[0], g_end);
        b.ins().brif(has, g_loop, &args(&gh), done, &args(&gh));

        b.switch_to_block(g_loop);
        let gp = b.block_params(g_loop).to_vec();
        let t = gp[0];
        let cnt = b.ins().sload32(flags(), t, 0);
        let wf = b.ins().load(types::F32, flags(), t, 4);
        let off = b.ins().sload32(flags(), t, 8);
        let base = b.ins().iadd(p, off);
        let sums: Vec<Value> = (0..nv)
            .map(|v| b.ins().load(v4, flags(), base, 16 * v as i32))
            .collect();
        // Inner loop over the remaining count - 1 offsets (t2 points at the next offset).
        let t2 = b.ins().iadd_imm_s(t, 12);
        let bytes = b.ins().ishl_imm_u(cnt, 2);
        let t_end = b.ins().iadd(t, bytes);
        let t_end = b.ins().iadd_imm_s(t_end, 8);
        let in_loop = b.create_block();
        let in_done = b.create_block();
        for blk in [in_loop, in_done] {
            b.append_block_param(blk, types::I64);
            for _ in 0..nv {
                b.append_block_param(blk, v4);
            }
        }
        let mut a = vec![t2];
        a.extend(&sums);
        let has = b.ins().icmp(IntCC::UnsignedLessThan, t2, t_end);
        b.ins().brif(has, in_loop, &args(&a), in_done, &args(&a));

        b.switch_to_block(in_loop);
        let ip = b.block_params(in_loop).to_vec();
        let off = b.ins().sload32(flags(), ip[0], 0);
        let base = b.ins().iadd(p, off);
        let mut next = vec![b.ins().iadd_imm_s(ip[0], 4)];
        for v in 0..nv {
            let x = b.ins().load(v4, flags(), base, 16 * v as i32);
            next.push(b.ins().fadd(ip[1 + v], x));
        }
        let more = b.ins().icmp(IntCC::UnsignedLessThan, next[0], t_end);
        b.ins()
            .brif(more, in_loop, &args(&next), in_done, &args(&next));

        b.switch_to_block(in_done);
        let dp = b.block_params(in_done).to_vec();
        let wv = b.ins().splat(v4, wf);
        let mut next = vec![dp[0]];
        for v in 0..nv {
            next.push(mul_add(b, dp[1 + v], wv, Some(gp[1 + v]), fma));
        }
        next.extend(&gp[1 + nv..]);
        let more = b.ins().icmp(IntCC::UnsignedLessThan, next[0], g_end);
        b.ins().brif(more, g_loop, &args(&next), done, &args(&next));

        b.switch_to_block(done);
        let dp = b.block_params(done).to_vec();
        (0..nv)
            .map(|v| {
                let mut sum = dp[1 + v];
                for set in 1..sets {
                    sum = b.ins().fadd(sum, dp[1 + set * nv + v]);
                }
                sum
            })
            .collect()
    });
}
