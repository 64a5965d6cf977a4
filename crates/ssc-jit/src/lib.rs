//! The ssc-opt JIT: compiles an optimised model into native CPU kernels, once, and runs it many times.
//!
//! [`CompiledModel::compile`] resolves every shape statically (from the model or from
//! [`JitOptions::input_shapes`]), lowers each op to a kernel, plans one activation arena in
//! which tensors with disjoint lifetimes share memory, and generates the weight-specialised
//! kernels with Cranelift. A [`Session`] owns the arena, so running it allocates nothing for
//! the native steps.
//!
//! Kernels (see `docs/ARCHITECTURE.md`):
//! * dense convolutions and Gemm/MatMul go to the `gemm` crate (im2col for k x k convs, none
//!   for 1x1), with bias, residual add and activation fused into the same pass;
//! * depthwise and sparse convolutions (few non-zero weights) get Cranelift code with the
//!   weights baked in: no instruction for a zero, one multiply for a block of equal weights;
//! * pools, broadcasting elementwise ops, reshapes and concats have plain Rust kernels;
//! * everything else runs, node by node, through the reference executor's kernel
//!   ([`ssc_exec::eval_node`]); [`CompiledModel::fallback_nodes`] lists those nodes.
//!
//! Threads: all kernels run inside a rayon pool of [`JitOptions::threads`] threads.
//!
//! ```
//! use ssc_ir::{parse_model, Tensor};
//! use ssc_jit::{CompiledModel, JitOptions};
//!
//! let model = parse_model(r#"
//! model ir_version=8
//! opset 17
//! graph g(%x: float[1,1,2,2]) -> (%y: float[1,1,2,2]) {
//!   %y = Relu(%x)
//! }
//! "#).unwrap();
//! let compiled = CompiledModel::compile(&model, &JitOptions::default()).unwrap();
//! let mut session = compiled.session();
//! let x = Tensor::from_f32(vec![1, 1, 2, 2], &[-1.0, 2.0, -3.0, 4.0]);
//! let out = session.run(&[("x".to_string(), x)]).unwrap();
//! assert_eq!(out[0].1.to_f32_vec().unwrap(), vec![0.0, 2.0, 0.0, 4.0]);
//! ```

// The JIT calls generated code and the gemm crate, and lets parallel tasks write disjoint parts
// of one buffer; every unsafe block states its invariant.
#![allow(unsafe_code)]

pub mod codegen;
mod error;
mod kernels;
mod memory;
mod plan;
mod runtime;
pub mod spec;
#[cfg(test)]
mod testutil;

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssc_ir::{Dim, Model, Tensor, TensorData};

pub use error::JitError;
use plan::{Kernel, Loc, Plan};
use runtime::State;

/// How to compile.
#[derive(Clone, Debug)]
pub struct JitOptions {
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
    /// Shapes for graph inputs whose declared shape is not fully static (name, dims).
    pub input_shapes: Vec<(String, Vec<usize>)>,
    /// Weight density (non-zeros / weights) at or below which a convolution gets the
    /// Cranelift / AVX2 sparse-weight kernel (`StreamConv`) instead of a dense one, on hosts
    /// without AVX-512 (or for activations the AVX-512 kernel does not compute). On AVX-512
    /// hosts a cost model (`plan::choice`) chooses between the dense kernels, this kernel (at
    /// <= 12% density) and the AVX-512 sparse kernel, and this threshold is not used.
    pub sparse_threshold: f32,
    /// Never use the sparse-weight kernels (to compare against the dense path).
    pub dense_only: bool,
    /// Compute deep 3x3 stride-1 convolutions by Winograd F(4x4, 3x3) or F(2x2, 3x3) (fewer
    /// multiplies; results within ~1e-5 relative of the direct sum, see
    /// `kernels::winograd`); off means im2col + GEMM for them.
    pub winograd: bool,
    /// Run fused elementwise chains of two or more generated instructions as Cranelift code
    /// (`codegen::chain`; measured 1.1-5x faster than the Rust form, see `docs/benchmarks.md`);
    /// off means the Rust form for every chain.
    pub cranelift_chains: bool,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            threads: 0,
            input_shapes: Vec::new(),
            sparse_threshold: DEFAULT_SPARSE_THRESHOLD,
            dense_only: false,
            winograd: true,
            cranelift_chains: true,
        }
    }
}

/// The density below which the sparse-weight kernel beats the dense ones on this machine: it
/// runs ~34 GFLOP/s of useful work (AVX2 table loop) against ~80-130 GFLOP/s dense-equivalent
/// for im2col + GEMM and Winograd, a break-even at 0.26-0.42 (see `docs/benchmarks.md`).
pub const DEFAULT_SPARSE_THRESHOLD: f32 = 0.3;

/// One step of a compiled plan, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepInfo {
    /// The node's name (or op type when unnamed).
    pub node: String,
    pub op_type: String,
    /// The kernel chosen, for example `conv gemm 3x3 +bias +relu`.
    pub kernel: String,
    /// Whether the node runs through the reference executor's kernel.
    pub fallback: bool,
}

/// A model compiled for this machine. Immutable; run it through [`Session`]s.
pub struct CompiledModel {
    plan: Plan,
    pool: rayon::ThreadPool,
    threads: usize,
    compile_time: Duration,
}

impl std::fmt::Debug for CompiledModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModel")
            .field("steps", &self.plan.steps.len())
            .field("arena_bytes", &self.peak_activation_bytes())
            .field("threads", &self.threads)
            .finish()
    }
}

impl CompiledModel {
    /// Infers static shapes, lowers and plans the model, and generates its kernels.
    pub fn compile(model: &Model, opts: &JitOptions) -> Result<CompiledModel, JitError> {
        let start = Instant::now();
        let mut m = model.clone();
        // `Constant` nodes become initializers, so every lowering finds weights, pads, scales
        // and Clip bounds where it looks for constants, whatever form the exporter chose
        // (Paddle2ONNX gives conv weights as Constant nodes).
        ssc_passes::run_phase(&mut m, "fold_constant", &ssc_passes::PassOptions::default())
            .map_err(|e| JitError::Model(e.to_string()))?;
        let overrides: Vec<(String, Vec<Dim>)> = opts
            .input_shapes
            .iter()
            .map(|(n, d)| (n.clone(), d.iter().map(|&x| Dim::Known(x)).collect()))
            .collect();
        ssc_passes::infer_shapes(&mut m, &overrides).map_err(|e| JitError::Shape(e.to_string()))?;
        // Fused epilogues and sparse layers come from the IR annotations; a model loaded from
        // ONNX has none, so they are (re)computed here (the analysis is idempotent).
        ssc_passes::annotate_for_jit(&mut m);
        let g = &m.graph;
        for &v in g.inputs() {
            let ty = g.value(v).ty.as_ref();
            // Sequences and optionals have no one shape; they live outside the arena.
            let tensor = ty.is_none_or(|t| t.is_tensor());
            let known = ty.and_then(|t| t.tensor()).and_then(|t| t.static_shape());
            if tensor && known.is_none() && g.initializer(v).is_none() {
                return Err(JitError::Shape(format!(
                    "graph input `{}` has no static shape; give it one (--input-shape {}:DIMS)",
                    g.value(v).name,
                    g.value(v).name
                )));
            }
        }
        let threads = if opts.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            opts.threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("ssc-jit-{i}"))
            .build()
            .map_err(|e| JitError::Threads(e.to_string()))?;
        let mut jit = codegen::Jit::new()?;
        let resolved = JitOptions {
            threads,
            ..opts.clone()
        };
        let plan = plan::lower(&m, &resolved, &mut jit)?;
        Ok(CompiledModel {
            plan,
            pool,
            threads,
            // Each Cranelift kernel holds its own code memory (see `codegen`), so the `Jit`
            // (ISA and options) is not kept.
            compile_time: start.elapsed(),
        })
    }

    /// A session: the arena and scratch this model runs in (allocated here, once).
    pub fn session(&self) -> Session<'_> {
        SessionOf {
            model: self,
            state: State::new(&self.plan),
        }
    }

    /// A session that shares ownership of the model, so it can be stored beside it (a pool
    /// of sessions serving several threads, say).
    pub fn shared_session(self: &Arc<Self>) -> SharedSession {
        SessionOf {
            model: Arc::clone(self),
            state: State::new(&self.plan),
        }
    }

    /// Compiles nothing, allocates a session, runs once: for one-off use.
    pub fn run(&self, feeds: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>, JitError> {
        self.session().run(feeds)
    }

    /// [`run`](Self::run) for models whose inputs or outputs may be sequences or optionals
    /// (the nodes that make or read them run through the reference executor's kernels).
    pub fn run_values(
        &self,
        feeds: &[(String, ssc_ir::RunValue)],
    ) -> Result<Vec<(String, ssc_ir::RunValue)>, JitError> {
        self.session().run_values(feeds)
    }

    /// Bytes of the planned activation arena (every intermediate f32 tensor) plus the largest
    /// kernel scratch.
    pub fn peak_activation_bytes(&self) -> usize {
        (self.plan.arena_len + self.plan.int_len + self.plan.scratch_len) * 4
    }

    /// Bytes that must be live at once at the plan's busiest step: the lower bound for any
    /// arena (the memory plan's quality is `peak_activation_bytes` against this).
    pub fn live_activation_bound_bytes(&self) -> usize {
        (self.plan.live_bound + self.plan.scratch_len) * 4
    }

    /// The steps of the plan, in execution order.
    pub fn steps(&self) -> Vec<StepInfo> {
        self.plan
            .steps
            .iter()
            .map(|s| StepInfo {
                node: s.label.clone(),
                op_type: s.op_type.clone(),
                kernel: s.what.clone(),
                fallback: matches!(s.kernel, Kernel::Fallback { .. }),
            })
            .collect()
    }

    /// Nodes that run through the reference executor's kernels.
    pub fn fallback_nodes(&self) -> Vec<StepInfo> {
        self.steps().into_iter().filter(|s| s.fallback).collect()
    }

    /// Wall time [`compile`](Self::compile) took.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Worker threads the model runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Graph input names, in order.
    pub fn input_names(&self) -> Vec<&str> {
        self.plan.inputs.iter().map(|i| i.name.as_str()).collect()
    }

    /// Graph inputs with their element type and compiled shape.
    pub fn input_specs(&self) -> Vec<(String, ssc_ir::DataType, Option<Vec<usize>>)> {
        self.plan
            .inputs
            .iter()
            .map(|i| (i.name.clone(), i.dtype, i.dims.clone()))
            .collect()
    }
}

/// A run context of a [`CompiledModel`]: owns the arena, so runs through it allocate nothing
/// on the native path. Not shareable across threads; make one session per caller thread.
/// `M` is how the session holds its model: borrowed ([`Session`]) or shared
/// ([`SharedSession`]).
pub struct SessionOf<M> {
    model: M,
    state: State,
}

/// A session borrowing its model ([`CompiledModel::session`]).
pub type Session<'c> = SessionOf<&'c CompiledModel>;

/// A session sharing ownership of its model ([`CompiledModel::shared_session`]).
pub type SharedSession = SessionOf<Arc<CompiledModel>>;

impl<M: Deref<Target = CompiledModel>> std::fmt::Debug for SessionOf<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("model", &*self.model)
            .finish()
    }
}

impl<M: Deref<Target = CompiledModel>> SessionOf<M> {
    /// Runs the model and returns its outputs as tensors.
    pub fn run(&mut self, feeds: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>, JitError> {
        let refs: Vec<(&str, &Tensor)> = feeds.iter().map(|(n, t)| (n.as_str(), t)).collect();
        self.run_refs(&refs)
    }

    /// [`run`](Self::run) on borrowed feeds.
    pub fn run_refs(
        &mut self,
        feeds: &[(&str, &Tensor)],
    ) -> Result<Vec<(String, Tensor)>, JitError> {
        self.run_in_place(feeds)?;
        let plan = &self.model.plan;
        plan.outputs
            .iter()
            .map(|io| {
                Ok((
                    io.name.clone(),
                    runtime::output_tensor(plan, &self.state, io)?,
                ))
            })
            .collect()
    }

    /// Runs the model, leaving the outputs in the session (read them with
    /// [`output_f32`](Self::output_f32)). Allocates nothing unless a node falls back.
    pub fn run_in_place(&mut self, feeds: &[(&str, &Tensor)]) -> Result<(), JitError> {
        self.run_timed(feeds, None)
    }

    /// [`run_in_place`](Self::run_in_place), adding each step's wall time to `times[i]` (one
    /// entry per [`CompiledModel::steps`] entry): a per-node profile.
    pub fn run_profiled(
        &mut self,
        feeds: &[(&str, &Tensor)],
        times: &mut [Duration],
    ) -> Result<(), JitError> {
        if times.len() != self.model.plan.steps.len() {
            return Err(JitError::Run(format!(
                "profile needs {} entries, got {}",
                self.model.plan.steps.len(),
                times.len()
            )));
        }
        self.run_timed(feeds, Some(times))
    }

    fn run_timed(
        &mut self,
        feeds: &[(&str, &Tensor)],
        times: Option<&mut [Duration]>,
    ) -> Result<(), JitError> {
        let plan = &self.model.plan;
        check_feed_names(plan, feeds.iter().map(|(n, _)| *n))?;
        let state = &mut self.state;
        runtime::load_inputs(plan, state, feeds)?;
        self.model
            .pool
            .install(|| runtime::execute(plan, state, times))
    }

    /// [`run`](Self::run) for models whose inputs or outputs may be sequences or optionals.
    pub fn run_values(
        &mut self,
        feeds: &[(String, ssc_ir::RunValue)],
    ) -> Result<Vec<(String, ssc_ir::RunValue)>, JitError> {
        let plan = &self.model.plan;
        check_feed_names(plan, feeds.iter().map(|(n, _)| n.as_str()))?;
        let refs: Vec<(&str, &ssc_ir::RunValue)> =
            feeds.iter().map(|(n, v)| (n.as_str(), v)).collect();
        let state = &mut self.state;
        runtime::load_value_inputs(plan, state, &refs)?;
        self.model
            .pool
            .install(|| runtime::execute(plan, state, None))?;
        plan.outputs
            .iter()
            .map(|io| {
                Ok((
                    io.name.clone(),
                    runtime::output_value(plan, &self.state, io)?,
                ))
            })
            .collect()
    }

    /// An f32 output left by [`run_in_place`](Self::run_in_place), without copying.
    pub fn output_f32(&self, name: &str) -> Option<&[f32]> {
        let io = self.model.plan.outputs.iter().find(|o| o.name == name)?;
        match io.loc {
            Loc::Arena { off, len } => Some(&self.state.arena[off..off + len]),
            Loc::Const(c) => Some(&self.model.plan.consts_f32[c]),
            Loc::Int { .. } | Loc::Dyn(_) => None,
        }
    }
}

/// Decodes little-endian f32 tensor data into `dst` without allocating.
pub(crate) fn decode_f32_into(t: &Tensor, dst: &mut [f32]) -> bool {
    match &t.data {
        TensorData::Raw(b) if b.len() == dst.len() * 4 => {
            for (d, c) in dst.iter_mut().zip(b.chunks_exact(4)) {
                *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            true
        }
        _ => false,
    }
}

/// Every fed name must be a graph input, fed once. Checked without building a lookup table, so
/// a run allocates nothing here.
fn check_feed_names<'a>(
    plan: &plan::Plan,
    names: impl Iterator<Item = &'a str> + Clone,
) -> Result<(), JitError> {
    for (i, name) in names.clone().enumerate() {
        if !plan.inputs.iter().any(|io| io.name == name) {
            return Err(JitError::UnknownInput(name.to_string()));
        }
        if names.clone().take(i).any(|n| n == name) {
            return Err(JitError::BadInput {
                name: name.to_string(),
                msg: "fed twice".into(),
            });
        }
    }
    Ok(())
}
