//! A model loaded once and run many times, from any number of threads: what the Python
//! `InferenceSession` wraps. It picks the engine as `ssc-opt run --engine auto` does (the JIT
//! when it covers the model, else the reference executor) and keeps a pool of JIT sessions.
//!
//! Concurrency: [`Runner::run`] takes `&self`. Each call borrows a JIT session (arena and
//! scratch) from a pool, or makes one when every pooled session is busy, and returns it
//! afterwards; so concurrent calls never share an arena, and a pool holds at most as many
//! sessions as calls were ever in flight at once. All calls share the compiled model's
//! worker threads (`threads`). The reference engine keeps no state between calls.
//!
//! Shapes: a model whose inputs have static shapes (declared, or fixed by
//! [`RunnerOptions::input_shapes`]) is compiled when the runner is made, so compile errors
//! surface there. A model with symbolic dimensions (a dynamic batch, say) is compiled on first
//! use for each distinct set of fed shapes; the last [`MAX_SHAPE_PLANS`] are kept.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use ssc_ir::{DataType, Dim, Model, Tensor, ValueType};
use ssc_jit::{CompiledModel, JitError, JitOptions, SharedSession};

use crate::{Engine, Error};

/// How many compiled plans (one per distinct set of input shapes) a runner keeps.
pub const MAX_SHAPE_PLANS: usize = 8;

/// How to make a [`Runner`].
#[derive(Clone, Debug)]
pub struct RunnerOptions {
    /// The engine; [`Engine::Auto`] is the JIT when it covers the model, else the reference.
    pub engine: Engine,
    /// JIT worker threads (0: one per core). The reference executor is single-threaded.
    pub threads: usize,
    /// Symbolic input dimensions to fix, by input name.
    pub input_shapes: Vec<(String, Vec<Dim>)>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            engine: Engine::Auto,
            threads: 0,
            input_shapes: Vec::new(),
        }
    }
}

/// A graph input or output: its name, element type (`None`: undeclared, or not a tensor) and
/// shape (`None`: unknown rank).
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    pub name: String,
    pub dtype: Option<DataType>,
    pub shape: Option<Vec<Dim>>,
}

/// One compiled plan and its idle sessions.
struct Plan {
    /// The fed shapes this plan was compiled for, in the order of [`Runner::inputs`]
    /// (`None`: the input was not fed and its default initializer is used).
    key: Vec<Option<Vec<usize>>>,
    compiled: Arc<CompiledModel>,
    idle: Vec<SharedSession>,
}

/// A loaded model, ready to run many times (see the module docs).
pub struct Runner {
    model: Model,
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
    /// The engine asked for.
    requested: Engine,
    /// Set when `Auto` found the JIT does not cover the model: from then on the reference
    /// executor runs it.
    reason: OnceLock<String>,
    threads: usize,
    /// Compiled plans, most recently used last. Locked only to take or return a session.
    plans: Mutex<Vec<Plan>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("engine", &self.engine())
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

fn value_info(model: &Model, v: ssc_ir::ValueId) -> ValueInfo {
    let val = model.graph.value(v);
    let (dtype, shape) = match &val.ty {
        Some(ValueType::Tensor(t)) => (Some(t.elem), t.shape.clone()),
        _ => (None, None),
    };
    ValueInfo {
        name: val.name.clone(),
        dtype,
        shape,
    }
}

/// `[N,3,224,224]`: known sizes, symbolic names, `?` for unknown.
fn shape_text(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Known(n) => n.to_string(),
            Dim::Param(p) => p.clone(),
            Dim::Unknown => "?".into(),
        })
        .collect();
    format!("[{}]", parts.join(","))
}

impl Runner {
    /// Prepares `model` to run: checks that every op can run, applies `input_shapes`, infers
    /// shapes, and with static input shapes compiles it with the JIT (unless the engine is the
    /// reference).
    pub fn new(mut model: Model, opts: &RunnerOptions) -> Result<Runner, Error> {
        // Every engine runs what it has no native kernel for through the reference executor's
        // kernels, so an op that executor lacks is reported now (all of them at once), not at
        // the first run.
        ssc_exec::check_supported(&model)?;
        // Inference fills in output shapes for `outputs()`. A model it cannot follow may
        // still run (the reference executor needs no shapes), so without overrides to apply
        // its failure only leaves the declared types.
        let mut inferred = model.clone();
        match ssc_passes::infer_shapes(&mut inferred, &opts.input_shapes) {
            Ok(_) => model = inferred,
            Err(e) if !opts.input_shapes.is_empty() => return Err(e.into()),
            Err(_) => {}
        }
        let g = &model.graph;
        let inputs = g
            .inputs()
            .iter()
            .filter(|&&v| g.initializer(v).is_none())
            .map(|&v| value_info(&model, v))
            .collect();
        let outputs = g.outputs().iter().map(|&v| value_info(&model, v)).collect();
        let runner = Runner {
            requested: opts.engine,
            model,
            inputs,
            outputs,
            reason: OnceLock::new(),
            threads: opts.threads,
            plans: Mutex::new(Vec::new()),
        };
        if runner.requested != Engine::Reference {
            let key: Option<Vec<Option<Vec<usize>>>> = runner
                .inputs
                .iter()
                .map(|i| {
                    Some(Some(
                        i.shape
                            .as_ref()?
                            .iter()
                            .map(Dim::known)
                            .collect::<Option<_>>()?,
                    ))
                })
                .collect();
            if let Some(key) = key {
                match runner.compile(&key) {
                    Ok(compiled) => runner.lock().push(Plan {
                        key,
                        compiled,
                        idle: Vec::new(),
                    }),
                    Err(e) => runner.not_covered(e)?,
                }
            }
        }
        Ok(runner)
    }

    /// In `Auto`, a model the JIT does not cover (non-tensor values: whatever the
    /// shapes) switches the runner to the reference executor for good; other errors stand.
    fn not_covered(&self, e: Error) -> Result<(), Error> {
        match e {
            Error::Jit(JitError::NotCovered(why)) if self.requested == Engine::Auto => {
                let _ = self.reason.set(why);
                Ok(())
            }
            e => Err(e),
        }
    }

    fn compile(&self, key: &[Option<Vec<usize>>]) -> Result<Arc<CompiledModel>, Error> {
        let opts = JitOptions {
            threads: self.threads,
            input_shapes: self
                .inputs
                .iter()
                .zip(key)
                .filter_map(|(i, d)| Some((i.name.clone(), d.clone()?)))
                .collect(),
            ..JitOptions::default()
        };
        Ok(Arc::new(CompiledModel::compile(&self.model, &opts)?))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Plan>> {
        // A panic while the lock was held left the plan list itself consistent (it is only
        // pushed to and popped from), so a poisoned lock is still usable.
        self.plans.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The graph inputs a caller feeds (those without an initializer), in graph order.
    pub fn inputs(&self) -> &[ValueInfo] {
        &self.inputs
    }

    /// The graph outputs, in graph order, with the shapes inference found.
    pub fn outputs(&self) -> &[ValueInfo] {
        &self.outputs
    }

    /// The engine that runs the model: [`Engine::Jit`] or [`Engine::Reference`].
    pub fn engine(&self) -> Engine {
        if self.requested == Engine::Reference || self.reason.get().is_some() {
            Engine::Reference
        } else {
            Engine::Jit
        }
    }

    /// Why `Auto` chose the reference executor, if it did.
    pub fn reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }

    /// Nodes the JIT runs through reference kernels, in the most recently compiled plan.
    pub fn fallback_nodes(&self) -> Vec<ssc_jit::StepInfo> {
        self.lock()
            .last()
            .map(|p| p.compiled.fallback_nodes())
            .unwrap_or_default()
    }

    /// Runs the model on `feeds` and returns every graph output, in order. Safe to call from
    /// several threads at once (see the module docs).
    pub fn run(&self, feeds: &[(&str, &Tensor)]) -> Result<Vec<(String, Tensor)>, Error> {
        if self.engine() == Engine::Reference {
            let owned: Vec<(String, Tensor)> = feeds
                .iter()
                .map(|(n, t)| (n.to_string(), (*t).clone()))
                .collect();
            return crate::run_reference(&self.model, &owned);
        }
        // A fed shape that contradicts a static declared one is the caller's mistake; caught
        // here, it is not mistaken for a new shape to compile for.
        for (name, t) in feeds {
            let Some(info) = self.inputs.iter().find(|i| i.name == *name) else {
                continue;
            };
            let fits = info.shape.as_ref().is_none_or(|s| {
                s.len() == t.dims.len()
                    && s.iter()
                        .zip(&t.dims)
                        .all(|(d, &n)| d.known().is_none_or(|k| k == n))
            });
            if !fits {
                return Err(Error::Usage(format!(
                    "input `{name}`: shape {:?} does not fit the model's {}",
                    t.dims,
                    shape_text(info.shape.as_deref().unwrap_or(&[]))
                )));
            }
        }
        let key: Vec<Option<Vec<usize>>> = self
            .inputs
            .iter()
            .map(|i| {
                feeds
                    .iter()
                    .find(|(n, _)| *n == i.name)
                    .map(|(_, t)| t.dims.clone())
            })
            .collect();
        let (compiled, mut session) = match self.take_session(&key) {
            Ok(s) => s,
            Err(e) => {
                self.not_covered(e)?;
                return self.run(feeds);
            }
        };
        let out = session.run_refs(feeds);
        // The session goes back to its plan (if the plan is still cached) whatever the run
        // did: a failed run leaves an arena that the next run overwrites.
        let mut plans = self.lock();
        if let Some(p) = plans
            .iter_mut()
            .find(|p| Arc::ptr_eq(&p.compiled, &compiled))
        {
            p.idle.push(session);
        }
        drop(plans);
        Ok(out?)
    }

    /// An idle session of the plan for `key`, compiling the plan first if needed.
    fn take_session(
        &self,
        key: &[Option<Vec<usize>>],
    ) -> Result<(Arc<CompiledModel>, SharedSession), Error> {
        {
            let mut plans = self.lock();
            if let Some(i) = plans.iter().position(|p| p.key == key) {
                let mut plan = plans.remove(i);
                let session = plan
                    .idle
                    .pop()
                    .unwrap_or_else(|| plan.compiled.shared_session());
                let compiled = Arc::clone(&plan.compiled);
                plans.push(plan);
                return Ok((compiled, session));
            }
        }
        // Compiled without the lock held, so other shapes keep running meanwhile; two threads
        // racing on one new shape both compile, and the first plan stored wins.
        let compiled = self.compile(key)?;
        let mut plans = self.lock();
        let compiled = match plans.iter().find(|p| p.key == key) {
            Some(p) => Arc::clone(&p.compiled),
            None => {
                if plans.len() >= MAX_SHAPE_PLANS {
                    plans.remove(0);
                }
                plans.push(Plan {
                    key: key.to_vec(),
                    compiled: Arc::clone(&compiled),
                    idle: Vec::new(),
                });
                compiled
            }
        };
        let session = compiled.shared_session();
        Ok((compiled, session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(text: &str) -> Model {
        ssc_ir::parse_model(text).unwrap()
    }

    const RELU: &str = r#"
model ir_version=8
opset 17
graph g(%x: float[N,2]) -> (%y: float[N,2]) {
  %y = Relu(%x)
}
"#;

    #[test]
    fn runs_dynamic_batches_and_keeps_a_plan_per_shape() {
        let r = Runner::new(model(RELU), &RunnerOptions::default()).unwrap();
        assert_eq!(r.engine(), Engine::Jit);
        assert_eq!(
            r.inputs()[0].shape,
            Some(vec![Dim::Param("N".into()), Dim::Known(2)])
        );
        for n in [1usize, 3, 1] {
            let vals: Vec<f32> = (0..2 * n).map(|i| i as f32 - 2.0).collect();
            let x = Tensor::from_f32(vec![n, 2], &vals);
            let out = r.run(&[("x", &x)]).unwrap();
            let want: Vec<f32> = vals.iter().map(|v| v.max(0.0)).collect();
            assert_eq!(out[0].0, "y");
            assert_eq!(out[0].1.to_f32_vec().unwrap(), want);
        }
        assert_eq!(r.lock().len(), 2);
    }

    #[test]
    fn static_models_compile_up_front_and_reference_agrees() {
        let text = RELU.replace("N", "4");
        let jit = Runner::new(model(&text), &RunnerOptions::default()).unwrap();
        assert_eq!(jit.lock().len(), 1);
        let reference = Runner::new(
            model(&text),
            &RunnerOptions {
                engine: Engine::Reference,
                ..RunnerOptions::default()
            },
        )
        .unwrap();
        let x = Tensor::from_f32(vec![4, 2], &[-1.0, 2.0, -3.0, 4.0, 5.0, -6.0, 7.0, -8.0]);
        let a = jit.run(&[("x", &x)]).unwrap();
        let b = reference.run(&[("x", &x)]).unwrap();
        assert_eq!(a, b);
        let bad = Tensor::from_f32(vec![2, 2], &[1.0; 4]);
        let e = jit.run(&[("x", &bad)]).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{e}");
        let e = jit.run(&[("nope", &x)]).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{e}");
    }

    #[test]
    fn concurrent_runs_use_separate_sessions() {
        let r = Runner::new(model(&RELU.replace("N", "64")), &RunnerOptions::default()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let r = &r;
                s.spawn(move || {
                    for k in 0..50 {
                        let v: Vec<f32> = (0..128).map(|i| (i + t * 7 + k) as f32 - 60.0).collect();
                        let x = Tensor::from_f32(vec![64, 2], &v);
                        let out = r.run(&[("x", &x)]).unwrap();
                        let want: Vec<f32> = v.iter().map(|a| a.max(0.0)).collect();
                        assert_eq!(out[0].1.to_f32_vec().unwrap(), want);
                    }
                });
            }
        });
        let plans = r.lock();
        assert!(!plans[0].idle.is_empty() && plans[0].idle.len() <= 4);
    }
}
