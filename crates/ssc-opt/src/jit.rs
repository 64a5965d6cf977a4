//! Running and benchmarking with the JIT: engine choice for `ssc-opt run`, and the timing
//! loop behind `ssc-opt bench`.

use std::time::{Duration, Instant};

use serde::Serialize;
use ssc_ir::{Dim, Model, Tensor};
use ssc_jit::{CompiledModel, JitError, JitOptions, StepInfo};

use crate::{random_inputs, run_reference, Error};

/// Which engine runs a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The JIT when it covers the model (no sequence or other non-tensor values), else the
    /// reference executor.
    Auto,
    Jit,
    Reference,
}

/// What [`run_with`] did besides producing outputs.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// The engine that ran the model (never [`Engine::Auto`]).
    pub engine: Engine,
    /// Why `Auto` chose the reference executor, if it did.
    pub reason: Option<String>,
    /// Nodes the JIT ran through reference kernels.
    pub fallback: Vec<StepInfo>,
}

/// Shapes of the fed tensors, for compiling exactly what is run.
fn feed_shapes(inputs: &[(String, Tensor)]) -> Vec<(String, Vec<usize>)> {
    inputs
        .iter()
        .map(|(n, t)| (n.clone(), t.dims.clone()))
        .collect()
}

/// Runs `model` on `inputs` with the chosen engine and `threads` worker threads (0: all cores;
/// the reference executor is single-threaded).
pub fn run_with(
    model: &Model,
    inputs: &[(String, Tensor)],
    engine: Engine,
    threads: usize,
) -> Result<(Vec<(String, Tensor)>, RunInfo), Error> {
    if engine == Engine::Reference {
        return Ok((
            run_reference(model, inputs)?,
            RunInfo {
                engine: Engine::Reference,
                reason: None,
                fallback: vec![],
            },
        ));
    }
    let opts = JitOptions {
        threads,
        input_shapes: feed_shapes(inputs),
        ..JitOptions::default()
    };
    match CompiledModel::compile(model, &opts) {
        Ok(c) => {
            let out = c.run(inputs)?;
            Ok((
                out,
                RunInfo {
                    engine: Engine::Jit,
                    reason: None,
                    fallback: c.fallback_nodes(),
                },
            ))
        }
        Err(JitError::NotCovered(why)) if engine == Engine::Auto => Ok((
            run_reference(model, inputs)?,
            RunInfo {
                engine: Engine::Reference,
                reason: Some(why),
                fallback: vec![],
            },
        )),
        Err(e) => Err(e.into()),
    }
}

/// How to benchmark.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Worker threads (0: all cores).
    pub threads: usize,
    /// Timed runs.
    pub iters: usize,
    /// Untimed runs first (page faults, caches, thread start-up).
    pub warmup: usize,
    /// Shapes for symbolic input dims.
    pub input_shapes: Vec<(String, Vec<Dim>)>,
    /// Seed of the random inputs.
    pub seed: u64,
    /// Compile with [`JitOptions::dense_only`]: every convolution gets a dense kernel, the
    /// baseline that a sparse, block-sparse or unified kernel must beat layer by layer.
    pub dense_only: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            threads: 1,
            iters: 20,
            warmup: 3,
            input_shapes: Vec::new(),
            seed: 0,
            dense_only: false,
        }
    }
}

/// One step of the compiled plan with its median time, from [`bench()`]'s profiled runs.
#[derive(Clone, Debug, Serialize)]
pub struct StepTime {
    /// The node the step computes (nodes fused into it, such as its epilogue, have no step).
    pub node: String,
    pub op_type: String,
    /// The kernel chosen, for example `conv gemm 3x3 +bias +relu`.
    pub kernel: String,
    /// Median wall time of the step per run, in ms.
    pub median_ms: f64,
}

/// The result of [`bench()`].
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub threads: usize,
    pub iters: usize,
    pub compile_ms: f64,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Every timed run, in order.
    pub times_ms: Vec<f64>,
    /// The planned activation arena plus kernel scratch.
    pub peak_activation_bytes: usize,
    pub steps: usize,
    /// Nodes run through the reference executor's kernels: `node (op_type)`.
    pub fallback_nodes: Vec<String>,
    /// Whether the model was compiled with [`BenchOptions::dense_only`].
    pub dense_only: bool,
    /// Every step with its kernel and median time per run (from a separate profiled pass of
    /// up to 5 runs after the timed runs), in execution order.
    pub kernels: Vec<StepTime>,
}

impl BenchReport {
    /// The human-readable form `ssc-opt bench` prints.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "latency: median {:.3} ms, min {:.3} ms, max {:.3} ms over {} runs, {} thread{}\n",
            self.median_ms,
            self.min_ms,
            self.max_ms,
            self.iters,
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        );
        s += &format!(
            "compile: {:.1} ms, {} steps, peak activation memory {}\n",
            self.compile_ms,
            self.steps,
            crate::human_bytes(self.peak_activation_bytes as u64)
        );
        if self.fallback_nodes.is_empty() {
            s += "fallback nodes: none\n";
        } else {
            s += &format!(
                "fallback nodes ({}): {}\n",
                self.fallback_nodes.len(),
                self.fallback_nodes.join(", ")
            );
        }
        s
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

/// Compiles `model` with the JIT and times `iters` runs on seeded random inputs.
pub fn bench(model: &Model, opts: &BenchOptions) -> Result<BenchReport, Error> {
    if opts.iters == 0 {
        return Err(Error::Usage("--iters must be at least 1".into()));
    }
    let inputs = random_inputs(model, &opts.input_shapes, opts.seed)?;
    let jo = JitOptions {
        threads: opts.threads,
        input_shapes: feed_shapes(&inputs),
        dense_only: opts.dense_only,
        ..JitOptions::default()
    };
    let compiled = CompiledModel::compile(model, &jo)?;
    let mut session = compiled.session();
    let feeds: Vec<(&str, &Tensor)> = inputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
    for _ in 0..opts.warmup {
        session.run_in_place(&feeds)?;
    }
    let mut times = Vec::with_capacity(opts.iters);
    for _ in 0..opts.iters {
        let t = Instant::now();
        session.run_in_place(&feeds)?;
        times.push(t.elapsed());
    }
    // A separate profiled pass, so timing each step does not perturb the latency above.
    let mut per_step: Vec<Vec<Duration>> = Vec::new();
    for _ in 0..opts.iters.min(5) {
        let mut t = vec![Duration::ZERO; compiled.steps().len()];
        session.run_profiled(&feeds, &mut t)?;
        per_step.push(t);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (min, max) = (
        *times.iter().min().expect("iters >= 1"),
        *times.iter().max().expect("iters >= 1"),
    );
    let steps = compiled.steps();
    Ok(BenchReport {
        threads: compiled.threads(),
        iters: opts.iters,
        compile_ms: ms(compiled.compile_time()),
        times_ms: times.iter().map(|&d| ms(d)).collect(),
        median_ms: ms(median(&mut times)),
        min_ms: ms(min),
        max_ms: ms(max),
        peak_activation_bytes: compiled.peak_activation_bytes(),
        steps: steps.len(),
        fallback_nodes: steps
            .iter()
            .filter(|s| s.fallback)
            .map(|s| format!("{} ({})", s.node, s.op_type))
            .collect(),
        dense_only: opts.dense_only,
        kernels: steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut t: Vec<Duration> = per_step.iter().map(|r| r[i]).collect();
                StepTime {
                    node: s.node.clone(),
                    op_type: s.op_type.clone(),
                    kernel: s.kernel.clone(),
                    median_ms: ms(median(&mut t)),
                }
            })
            .collect(),
    })
}
