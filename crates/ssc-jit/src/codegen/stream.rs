//! [`StreamConv`]: ONNX Conv with the weights baked into Cranelift code, computed as contiguous
//! 1-D streams over zero-padded (and, for strides > 1, phase-split) input planes.
//!
//! # Design
//!
//! *Pre-pass (Rust, per image).* Each input channel is copied into the scratch as zero-padded,
//! phase-split planes (`kernels::planes`): every (input channel, tap) is then one constant
//! offset, and for every tap `acc[y*wq + x] += w * plane[p + offset]`: the output of a channel,
//! computed over the padded row pitch `wq`, is a single contiguous loop over `f32x4` tiles with no
//! bounds checks. Columns `x >= w_out` (and the rounding of the last tile) compute garbage that is
//! never stored; the extra plane row and `tile` floats of slack after the last plane keep every
//! read inside the scratch.
//!
//! *Grouped convs (depthwise).* With `group > 1` an output channel reads only its group's
//! `cin_g` input channels, so planes are not built for the whole image up front (for a 96-channel
//! 112x112 stride-2 layer that is 5 MB of scratch, written then re-read from L3). Instead offsets
//! are relative to the group, and each parallel leaf fills the current group's planes into one
//! slot of `group_stride` floats right before computing its output channels; the slot stays in
//! L1/L2 and its zero borders are written only on the leaf's first fill. Splits fall on group
//! boundaries.
//!
//! *Kernels.* Per output channel the non-zero weights become terms; weights that are exactly equal
//! (bitwise) form a unified block whose inputs are summed before one multiply. Small layers get one
//! unrolled function per output channel (offsets and weights as immediates, nothing for a zero).
//! Layers with more than [`CodegenOptions::unroll_max_nnz`] non-zeros use one generated loop over a
//! baked table (`(offset, weight)` pairs, then unified blocks) instead. Measured (loaded 2-core
//! machine, verifier off): unrolled code costs ~7-15 ms per 1000 non-zeros to compile, so an
//! unrolled 90%-sparse ResNet-18 (1.1 M non-zeros) would take >10 s, while the table loop compiles
//! in constant time (the table itself: ~0.2 ms per 1000 non-zeros) and runs at 60-100% of the
//! unrolled speed (64->64 56x56 at 10%: 27-30 vs 17-19 GFLOP/s single-thread).
//!
//! *The AVX2 table loop.* Cranelift emits 128-bit vectors only. On hosts with AVX2 + FMA every
//! layer's table is walked by an 8-wide Rust loop instead (`kernels::sparse`), which measured
//! ~34 GFLOP/s on the 90%-sparse ResNet-18 layers at every size, above both generated kernels
//! (unrolled 26-31, table 15-19); it also compiles in constant time. The generated kernels run
//! where that loop is unavailable or disabled ([`CodegenOptions::vector_table`]).
//!
//! *Latency.* An `f32x4` FMA has 4 cycles of latency; every term updates all `nv` accumulators,
//! so with `nv <= 4` terms alternate between two accumulator sets summed at the end. The table
//! loop handles 8 singles per iteration plus a one-entry remainder loop (no table padding):
//! Cranelift's FMA writes a multiplicand's register, so with 2 entries per iteration the back
//! edge needed 8 register moves per 2 terms; with 8 the rotation returns to the identity.
//!
//! *Tried and dropped:* splitting table kernels on small images (7x7, 14x14) into L1-sized
//! input-channel blocks over batches of output channels: 10-15% faster on a synthetic 512->512
//! 7x7 layer, but 5-80% slower on ResNet-18's layers (8-30 blocks leave ~4-40 terms per kernel
//! call, and per-call/per-tile overhead dominates).
//!
//! *Epilogue and parallelism (Rust).* A channel is computed in row chunks into a 16 KiB stack
//! buffer; bias, residual and activation are applied while copying the valid columns to the output
//! (auto-vectorised). Output channels are split into contiguous ranges of roughly equal work
//! (non-zeros + epilogue) with recursive `rayon::join`, which allocates nothing.
//!
//! [`CodegenOptions::unroll_max_nnz`]: super::CodegenOptions::unroll_max_nnz
//! [`CodegenOptions::vector_table`]: super::CodegenOptions::vector_table

use std::collections::BTreeMap;
use std::sync::Arc;

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{types, AbiParam};
use cranelift_codegen::Context;
use cranelift_frontend::FunctionBuilderContext;
use cranelift_module::Module;
use rayon::prelude::*;

use super::emit::{build_table, build_unrolled, Terms};
use super::{CodeHolder, Jit};
use crate::kernels::epilogue;
use crate::kernels::par::simd;
use crate::kernels::planes::Planes;
use crate::spec::{Activation, ConvGeom, Epilogue};
use crate::JitError;

/// Floats of the per-thread stack buffer one chunk of output rows is computed into.
const BUF: usize = 4096;

type UnrolledFn = unsafe extern "C" fn(*const f32, *mut f32, usize);
type TableFn =
    unsafe extern "C" fn(*const f32, *mut f32, usize, *const i32, *const i32, *const i32);

#[derive(Clone, Copy)]
enum Chan {
    /// All weights zero: the output is the epilogue of 0.
    Zero,
    Unrolled(UnrolledFn),
    /// Word ranges of `StreamConv::table`: singles `[start, s_end)`, groups `[s_end, g_end)`.
    Table {
        start: usize,
        s_end: usize,
        g_end: usize,
    },
}

/// A compiled convolution with its weights baked in. See the module docs for the design.
pub struct StreamConv {
    geom: ConvGeom,
    bias: Vec<f32>,
    residual: bool,
    act: Activation,
    /// The padded, phase-split input layout.
    planes: Planes,
    pad_len: usize,
    /// Grouped convs: each run leaf fills one group's planes right before computing its output
    /// channels, into a slot of `group_stride` floats; offsets are relative to the group.
    fused: bool,
    group_stride: usize,
    tile: usize,
    rows_per_chunk: usize,
    chans: Vec<Chan>,
    table_fn: Option<TableFn>,
    table: Vec<i32>,
    /// Prefix sums of the per-channel work estimate, for the parallel split.
    cum_cost: Vec<u64>,
    nnz: usize,
    _code: Arc<CodeHolder>,
}

impl std::fmt::Debug for StreamConv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConv")
            .field("geom", &self.geom)
            .field("nnz", &self.nnz)
            .field("table", &self.table_fn.is_some())
            .finish()
    }
}

fn invalid(msg: impl Into<String>) -> JitError {
    JitError::Invalid(msg.into())
}

fn check_geom(g: &ConvGeom) -> Result<(), JitError> {
    let pos = [
        g.c_in,
        g.c_out,
        g.group,
        g.h,
        g.w,
        g.kh,
        g.kw,
        g.stride[0],
        g.stride[1],
        g.dilation[0],
        g.dilation[1],
        g.h_out,
        g.w_out,
    ];
    if pos.contains(&0) {
        return Err(invalid(format!("zero dimension in {g:?}")));
    }
    if !g.c_in.is_multiple_of(g.group) || !g.c_out.is_multiple_of(g.group) {
        return Err(invalid(format!(
            "group {} does not divide c_in {} and c_out {}",
            g.group, g.c_in, g.c_out
        )));
    }
    // Bound everything so the layout arithmetic below cannot overflow.
    const LIM: usize = 1 << 20;
    if pos.iter().chain(&g.pads).any(|&d| d > LIM) {
        return Err(JitError::Unsupported(format!(
            "dimension above 2^20 in {g:?}"
        )));
    }
    let out = |n: usize, p0: usize, p1: usize, k: usize, s: usize, d: usize| {
        let span = (k - 1) * d + 1;
        (n + p0 + p1).checked_sub(span).map(|r| r / s + 1)
    };
    let ho = out(g.h, g.pads[0], g.pads[2], g.kh, g.stride[0], g.dilation[0]);
    let wo = out(g.w, g.pads[1], g.pads[3], g.kw, g.stride[1], g.dilation[1]);
    if ho != Some(g.h_out) || wo != Some(g.w_out) {
        return Err(invalid(format!(
            "output {}x{} does not match the geometry (expected {ho:?}x{wo:?})",
            g.h_out, g.w_out
        )));
    }
    Ok(())
}

impl StreamConv {
    /// Compiles one convolution. `weights`: `[c_out, c_in/group, kh, kw]` row-major (ONNX Conv).
    pub fn compile(
        jit: &mut Jit,
        geom: &ConvGeom,
        weights: &[f32],
        epi: &Epilogue,
    ) -> Result<StreamConv, JitError> {
        let g = *geom;
        check_geom(&g)?;
        let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
        let taps = g.kh * g.kw;
        let per_oc = cin_g
            .checked_mul(taps)
            .ok_or_else(|| JitError::Unsupported("kernel too large".into()))?;
        if Some(weights.len()) != g.c_out.checked_mul(per_oc) {
            return Err(invalid(format!(
                "{} weights for [{}, {cin_g}, {}, {}]",
                weights.len(),
                g.c_out,
                g.kh,
                g.kw
            )));
        }
        let bias = match &epi.bias {
            Some(b) if b.len() != g.c_out => {
                return Err(invalid(format!(
                    "{} biases for {} channels",
                    b.len(),
                    g.c_out
                )))
            }
            Some(b) => b.clone(),
            None => vec![0.0; g.c_out],
        };

        // Layout of the padded / phase-split planes.
        let planes = Planes::new(&g);
        let (wq, plane) = (planes.wq, planes.plane());
        let nph = planes.phases.len();
        // On AVX2 hosts every layer walks its table in the 8-wide Rust loop (`kernels::sparse`,
        // tiles of 32 or 64 floats): measured against unrolled Cranelift code even on a small
        // layer (64->64 56x56 at 10%, 3.8k non-zeros) it ran 0.56-0.73 ms against 0.87-0.91.
        // Elsewhere small layers get unrolled Cranelift code and large ones the Cranelift table
        // loop.
        let nnz_total = weights.iter().filter(|&&w| w != 0.0).count();
        let vector_table = jit.opts.vector_table && crate::kernels::par::has_avx2_fma();
        let unroll = !vector_table && nnz_total <= jit.opts.unroll_max_nnz;
        let nv = if vector_table {
            crate::kernels::sparse::tile_for(g.h_out * wq) / 4
        } else {
            jit.opts.tile_vectors
        };
        let tile = 4 * nv;
        let fused = g.group > 1;
        let group_stride = cin_g * nph * plane + tile;
        let pad_len = if fused {
            g.group * group_stride
        } else {
            g.c_in * nph * plane + tile
        };
        if pad_len.saturating_mul(4) >= i32::MAX as usize {
            return Err(JitError::Unsupported(format!(
                "padded input of {pad_len} floats exceeds 2 GiB"
            )));
        }
        if wq + tile > BUF {
            return Err(JitError::Unsupported(format!(
                "output rows of {wq} padded columns exceed the {BUF}-float row buffer"
            )));
        }
        let rows_per_chunk = ((BUF - tile) / wq).max(1);

        // Terms per output channel.
        let mut terms = Vec::with_capacity(g.c_out);
        for oc in 0..g.c_out {
            let grp = oc / cout_g;
            let mut by_val: BTreeMap<u32, Vec<i32>> = BTreeMap::new();
            for j in 0..cin_g {
                let ic = if fused { j } else { grp * cin_g + j };
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let w = weights[(oc * cin_g + j) * taps + ky * g.kw + kx];
                        if w == 0.0 {
                            continue;
                        }
                        let off = planes.offset(ic, ky, kx);
                        by_val.entry(w.to_bits()).or_default().push(off as i32);
                    }
                }
            }
            let mut t = Terms::default();
            for (bits, offs) in by_val {
                let w = f32::from_bits(bits);
                if offs.len() == 1 {
                    t.singles.push((offs[0], w));
                } else {
                    t.groups.push((w, offs));
                }
            }
            // Walk memory forwards: consecutive terms mostly share cache lines.
            t.singles.sort_by_key(|s| s.0);
            terms.push(t);
        }
        let nnz: usize = terms.iter().map(Terms::nnz).sum();
        let mut cum_cost = Vec::with_capacity(g.c_out + 1);
        cum_cost.push(0u64);
        for t in &terms {
            // Fused groups also fill their planes (per output channel: `cin_g / cout_g` planes).
            let fill = if fused {
                (cin_g * nph).div_ceil(cout_g)
            } else {
                0
            };
            let c = (t.nnz() + 3 + fill) as u64;
            cum_cost.push(cum_cost.last().copied().unwrap_or(0) + c);
        }

        let mut module = jit.module();
        let cg = |e: &dyn std::fmt::Display| JitError::Codegen {
            kernel: format!("conv {}x{}x{}x{}", g.c_out, cin_g, g.kh, g.kw),
            msg: e.to_string(),
        };
        let mut sig = module.make_signature();
        debug_assert_eq!(nnz, nnz_total);
        let n_params = if unroll { 3 } else { 6 };
        for _ in 0..n_params {
            sig.params.push(AbiParam::new(types::I64));
        }
        let isa = jit.isa.clone();
        let call_conv = isa.default_call_conv();
        let fma = jit.fma;
        let cfg = isa.frontend_config();
        let align_min = (isa.function_alignment().minimum as u64).max(isa.symbol_alignment());
        let compile_one = |ctx: &mut Context,
                           fctx: &mut FunctionBuilderContext,
                           t: Option<&Terms>|
         -> Result<(Vec<u8>, u64), JitError> {
            ctx.clear();
            ctx.func.signature.call_conv = call_conv;
            match t {
                Some(t) => build_unrolled(&mut ctx.func, fctx, cfg, t, nv, fma),
                None => build_table(&mut ctx.func, fctx, cfg, nv, fma),
            }
            let code = ctx
                .compile(&*isa, &mut ControlPlane::default())
                .map_err(|e| cg(&format!("{:?}", e.inner)))?;
            if !code.buffer.relocs().is_empty() {
                return Err(cg(&"generated code needs relocations"));
            }
            let align = (code.buffer.alignment as u64).max(align_min);
            Ok((code.code_buffer().to_vec(), align))
        };

        let mut chans = vec![Chan::Zero; g.c_out];
        let mut table = Vec::new();
        let mut table_fn = None;
        if unroll {
            let work: Vec<usize> = (0..g.c_out).filter(|&c| !terms[c].is_empty()).collect();
            let init = || (Context::new(), FunctionBuilderContext::new());
            let bodies: Vec<Result<(Vec<u8>, u64), JitError>> = if jit.opts.parallel_compile {
                work.par_iter()
                    .map_init(init, |(ctx, f), &c| compile_one(ctx, f, Some(&terms[c])))
                    .collect()
            } else {
                let (mut ctx, mut f) = init();
                work.iter()
                    .map(|&c| compile_one(&mut ctx, &mut f, Some(&terms[c])))
                    .collect()
            };
            let mut ids = Vec::with_capacity(work.len());
            for body in bodies {
                let (bytes, align) = body?;
                ids.push(define_bytes(&mut module, &sig, &bytes, align).map_err(|e| cg(&e))?);
            }
            module.finalize_definitions().map_err(|e| cg(&e))?;
            for (&c, &id) in work.iter().zip(&ids) {
                let p = module.get_finalized_function(id);
                // SAFETY: the function was built by `build_unrolled` with three I64 parameters in
                // the ISA's default (System V / Windows x64 = "C") calling convention.
                chans[c] =
                    Chan::Unrolled(unsafe { std::mem::transmute::<*const u8, UnrolledFn>(p) });
            }
        } else {
            for (c, t) in terms.iter().enumerate() {
                if t.is_empty() {
                    continue;
                }
                let start = table.len();
                for &(off, w) in &t.singles {
                    table.push(4 * off);
                    table.push(w.to_bits() as i32);
                }
                let s_end = table.len();
                for (w, offs) in &t.groups {
                    table.push(offs.len() as i32);
                    table.push(w.to_bits() as i32);
                    table.extend(offs.iter().map(|o| 4 * o));
                }
                chans[c] = Chan::Table {
                    start,
                    s_end,
                    g_end: table.len(),
                };
            }
            if !vector_table {
                let (bytes, align) = compile_one(
                    &mut Context::new(),
                    &mut FunctionBuilderContext::new(),
                    None,
                )?;
                let id = define_bytes(&mut module, &sig, &bytes, align).map_err(|e| cg(&e))?;
                module.finalize_definitions().map_err(|e| cg(&e))?;
                let p = module.get_finalized_function(id);
                // SAFETY: built by `build_table` with six I64 parameters, default calling
                // convention.
                table_fn = Some(unsafe { std::mem::transmute::<*const u8, TableFn>(p) });
            }
        }

        Ok(StreamConv {
            geom: g,
            bias,
            residual: epi.residual,
            act: epi.act,
            planes,
            pad_len,
            fused,
            group_stride,
            tile,
            rows_per_chunk,
            chans,
            table_fn,
            table,
            cum_cost,
            nnz,
            _code: CodeHolder::new(module),
        })
    }

    /// f32 elements of per-image scratch the caller must pass to [`run`](Self::run).
    pub fn scratch_len(&self) -> usize {
        self.pad_len
    }

    /// Number of non-zero weights baked in.
    pub fn nnz(&self) -> usize {
        self.nnz
    }

    /// Estimated useful multiply-accumulates per image (`nnz * h_out * w_out`).
    pub fn macs(&self) -> usize {
        self.nnz * self.geom.h_out * self.geom.w_out
    }

    /// The geometry this kernel was compiled for.
    pub fn geom(&self) -> &ConvGeom {
        &self.geom
    }

    /// Whether this kernel runs the table-driven loop (large layers) instead of unrolled code.
    pub fn is_table_driven(&self) -> bool {
        !self.table.is_empty()
    }

    /// The code that runs the layer, for reports: `cranelift` (unrolled, weights as
    /// immediates), `cranelift-table` (the generated table loop) or `table-avx2` (the 8-wide
    /// Rust table loop).
    pub fn kind(&self) -> &'static str {
        match (self.is_table_driven(), self.table_fn.is_some()) {
            (false, _) => "cranelift",
            (true, true) => "cranelift-table",
            (true, false) => "table-avx2",
        }
    }

    /// One image: `input` `[c_in*h*w]`, `residual` and `output` `[c_out*h_out*w_out]` (NCHW).
    /// Parallelises over output channels on the current rayon pool. Allocates nothing.
    ///
    /// # Panics
    /// If a slice has the wrong length, `scratch` is shorter than [`scratch_len`](Self::scratch_len),
    /// or `residual` is present exactly when the epilogue does not ask for it (caller bugs: the
    /// generated code relies on these bounds).
    pub fn run(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = &self.geom;
        let hw = g.h_out * g.w_out;
        assert_eq!(input.len(), g.c_in * g.h * g.w, "StreamConv: input length");
        assert_eq!(output.len(), g.c_out * hw, "StreamConv: output length");
        assert!(
            scratch.len() >= self.pad_len,
            "StreamConv: scratch too short"
        );
        assert_eq!(residual.is_some(), self.residual, "StreamConv: residual");
        if let Some(r) = residual {
            assert_eq!(r.len(), output.len(), "StreamConv: residual length");
        }
        let threads = rayon::current_num_threads().max(1);
        let pad = &mut scratch[..self.pad_len];
        if self.fused {
            self.run_split(0, g.c_out, threads, &[], pad, input, residual, output);
            return;
        }
        let chan_len = self.planes.chan_len();
        let (planes, slack) = pad.split_at_mut(g.c_in * chan_len);
        slack.fill(0.0);
        self.planes.fill_split(0, g.c_in, threads, input, planes);
        let pad: &[f32] = pad;
        self.run_split(0, g.c_out, threads, pad, &mut [], input, residual, output);
    }

    /// Fills the planes of group `grp` into `slot` (`group_stride` floats, offsets relative to
    /// its start). With `borders`, also the zero borders and the `tile` floats of slack after the
    /// planes; without, those must be left from an earlier fill of the same slot.
    #[inline(always)]
    fn fill_group(&self, grp: usize, input: &[f32], slot: &mut [f32], borders: bool) {
        let g = &self.geom;
        let cin_g = g.cin_g();
        let chan_len = self.planes.chan_len();
        let hw = g.h * g.w;
        let (planes, slack) = slot[..self.group_stride].split_at_mut(cin_g * chan_len);
        if borders {
            slack.fill(0.0);
        }
        for (j, dst) in planes.chunks_exact_mut(chan_len).enumerate() {
            let ic = grp * cin_g + j;
            self.planes
                .fill_channel(&input[ic * hw..(ic + 1) * hw], dst, borders);
        }
    }

    /// Runs output channels `lo..hi` (`out`/`res` start at channel `lo`) in `parts` pieces of
    /// about equal work. Unfused: every leaf reads the shared filled `pad`. Fused: `slots` holds
    /// one `group_stride` slot per group from group `lo / cout_g` on; splits fall on group
    /// boundaries and each leaf refills its first slot per group.
    #[allow(clippy::too_many_arguments)]
    fn run_split(
        &self,
        lo: usize,
        hi: usize,
        parts: usize,
        pad: &[f32],
        slots: &mut [f32],
        input: &[f32],
        res: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let cg = if self.fused { self.geom.cout_g() } else { 1 };
        if parts <= 1 || hi - lo <= cg {
            simd(
                #[inline(always)]
                || self.run_channels(lo, hi, pad, slots, input, res, out),
            );
            return;
        }
        let left = parts / 2;
        let (c0, c1) = (self.cum_cost[lo], self.cum_cost[hi]);
        let target = c0 + (c1 - c0) * left as u64 / parts as u64;
        let mid = lo + self.cum_cost[lo..hi].partition_point(|&c| c < target);
        // `lo` and `hi` are multiples of `cg`; so is `mid`, strictly between them.
        let mid = ((mid + cg / 2) / cg * cg).clamp(lo + cg, hi - cg);
        let hw = self.geom.h_out * self.geom.w_out;
        let (oa, ob) = out.split_at_mut((mid - lo) * hw);
        let (ra, rb) = match res {
            Some(r) => {
                let (a, b) = r.split_at((mid - lo) * hw);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let split = if self.fused {
            (mid - lo) / cg * self.group_stride
        } else {
            0
        };
        let (sa, sb) = slots.split_at_mut(split);
        rayon::join(
            || self.run_split(lo, mid, left, pad, sa, input, ra, oa),
            || self.run_split(mid, hi, parts - left, pad, sb, input, rb, ob),
        );
    }

    /// Output channels `lo..hi`: fills, generated kernel calls and epilogues (inlined into
    /// `run_split`'s `simd` call, so the Rust parts run as AVX2 code where the host has it).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn run_channels(
        &self,
        lo: usize,
        hi: usize,
        shared: &[f32],
        slots: &mut [f32],
        input: &[f32],
        res: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let g = &self.geom;
        let (hw, wo, wq) = (g.h_out * g.w_out, g.w_out, self.planes.wq);
        let cout_g = g.cout_g();
        let mut filled = usize::MAX;
        let mut buf = [0f32; BUF];
        for oc in lo..hi {
            let o = &mut out[(oc - lo) * hw..(oc - lo + 1) * hw];
            let r = res.map(|r| &r[(oc - lo) * hw..(oc - lo + 1) * hw]);
            let bias = self.bias[oc];
            if let Chan::Zero = self.chans[oc] {
                epilogue(None, bias, [r, None], o, self.act);
                continue;
            }
            let pad: &[f32] = if self.fused {
                let grp = oc / cout_g;
                if grp != filled {
                    self.fill_group(grp, input, slots, filled == usize::MAX);
                    filled = grp;
                }
                &slots[..self.group_stride]
            } else {
                shared
            };
            let mut y0 = 0;
            while y0 < g.h_out {
                let rows = self.rows_per_chunk.min(g.h_out - y0);
                let n_tiles = (rows * wq).div_ceil(self.tile);
                // In bounds: see the module docs; `n_tiles * tile <= rows*wq + tile <= BUF`.
                let inp = pad[y0 * wq..].as_ptr();
                let acc = buf.as_mut_ptr();
                match self.chans[oc] {
                    Chan::Zero => {}
                    // SAFETY: the kernel reads `inp + [0, n_tiles*tile) + offsets`, which the
                    // layout keeps below `pad.len()` floats from `pad`'s start (`pad_len`, or
                    // `group_stride` for a fused group), and writes `n_tiles*tile <= BUF` floats.
                    Chan::Unrolled(f) => unsafe { f(inp, acc, n_tiles) },
                    Chan::Table {
                        start,
                        s_end,
                        g_end,
                    } => {
                        let t = self.table.as_ptr();
                        if let Some(f) = self.table_fn {
                            // SAFETY: as above; the table pointers bound this channel's words.
                            unsafe {
                                f(inp, acc, n_tiles, t.add(start), t.add(s_end), t.add(g_end))
                            }
                        } else {
                            // SAFETY: as above (the tile is `sparse::TILE` floats here).
                            unsafe {
                                crate::kernels::sparse::table_tiles(
                                    inp,
                                    acc,
                                    n_tiles,
                                    self.tile,
                                    &self.table[start..s_end],
                                    &self.table[s_end..g_end],
                                )
                            }
                        }
                    }
                }
                for yy in 0..rows {
                    let y = y0 + yy;
                    epilogue(
                        Some(&buf[yy * wq..yy * wq + wo]),
                        bias,
                        [r.map(|r| &r[y * wo..(y + 1) * wo]), None],
                        &mut o[y * wo..(y + 1) * wo],
                        self.act,
                    );
                }
                y0 += rows;
            }
        }
    }
}

/// Declares an anonymous function of signature `sig` in `module` and defines it as `bytes`
/// (the error as text: `cranelift_module::ModuleError` is large).
fn define_bytes(
    module: &mut impl Module,
    sig: &cranelift_codegen::ir::Signature,
    bytes: &[u8],
    align: u64,
) -> Result<cranelift_module::FuncId, String> {
    let id = module
        .declare_anonymous_function(sig)
        .map_err(|e| e.to_string())?;
    module
        .define_function_bytes(id, align, bytes, &[])
        .map_err(|e| e.to_string())?;
    Ok(id)
}
