//! The optimisation pipeline the main `ssc-opt IN -o OUT` job runs, with its options and report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ssc_ir::{Dim, Model};
use ssc_passes::{InferOptions, PassOptions};

use crate::Error;

/// What to do to a model.
#[derive(Clone, Debug)]
pub struct Options {
    /// Run the exact clean-up passes. `false` makes `optimize` a pass-through (apart from
    /// `input_shapes`, which are still applied to the declared input types).
    pub cleanups: bool,
    /// Symbolic input dimensions to fix, by input name (`--input-shape`).
    pub input_shapes: Vec<(String, Vec<Dim>)>,
    /// Largest constant, in bytes, that folding may create (see [`ssc_passes::PassOptions`]).
    pub fold_size_limit: usize,
    /// Run only these clean-up phases (names from [`ssc_passes::PHASES`]); `None` runs all.
    pub phases: Option<Vec<String>>,
    /// Run the structure-aware rewriter (egg) after the clean-ups. Its own options, including
    /// the cost model and any extra rules, are in `rewrite_options`.
    pub rewrite: bool,
    pub rewrite_options: ssc_rewrite::RewriteOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cleanups: true,
            input_shapes: Vec::new(),
            fold_size_limit: ssc_passes::DEFAULT_FOLD_SIZE_LIMIT,
            phases: None,
            rewrite: true,
            rewrite_options: ssc_rewrite::RewriteOptions::default(),
        }
    }
}

/// What `optimize` did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub initializers_before: usize,
    pub initializers_after: usize,
    /// MACs of Conv/ConvTranspose/Gemm/MatMul with static shapes, before and after.
    pub macs_before: u64,
    pub macs_after: u64,
    /// How often each clean-up rewrite fired, by name.
    pub rewrites: BTreeMap<String, usize>,
    /// Symbolic dimensions fixed by `input_shapes`.
    pub bindings: BTreeMap<String, usize>,
    /// Ops shape inference has no rule for (left untouched), with counts.
    pub unhandled_ops: BTreeMap<String, usize>,
    /// What the structure-aware rewriter did, layer by layer (absent when it did not run).
    pub rewrite: Option<ssc_rewrite::RewriteReport>,
    /// The IR-only hints recorded for the JIT on the final graph (epilogues to fuse, layers
    /// marked sparse; see [`ssc_passes::annotate`]). Empty when the clean-ups are off.
    pub jit: ssc_passes::AnnotateReport,
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Report {
    /// One line for humans.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} -> {} nodes, {:.3} -> {:.3} GMACs",
            self.nodes_before,
            self.nodes_after,
            self.macs_before as f64 / 1e9,
            self.macs_after as f64 / 1e9,
        );
        let mut fired: Vec<String> = self
            .rewrites
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if let Some(r) = self.rewrite.as_ref().filter(|r| r.rewritten > 0) {
            fired.push(format!("structured convs {}", r.rewritten));
        }
        if !fired.is_empty() {
            s.push_str(&format!(" ({})", fired.join(", ")));
        }
        s
    }
}

/// Everything the main job reports: what `optimize` did and how verification went. `ssc-opt
/// --report json` prints it and Python's `Optimized.report` holds it (one serializer for both).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct JobReport {
    pub optimize: Report,
    /// `None` when verification was off (or there was nothing to verify).
    pub verification: Option<crate::Verification>,
}

/// The main job short of writing: [`optimize`] `model` in place, then (unless `verify.samples`
/// is 0 or the clean-ups are off) [`crate::verify`] it against the original on seeded random
/// inputs. A failed verification is [`Error::VerificationFailed`]. `phase` is told when each
/// stage starts (`"optimising"`, `"verifying"`), for progress displays.
pub fn optimize_verified(
    model: &mut Model,
    opts: &Options,
    verify: &crate::VerifyOptions,
    phase: &mut dyn FnMut(&str),
) -> Result<JobReport, Error> {
    let check = verify.samples > 0 && opts.cleanups;
    let original = check.then(|| model.clone());
    phase("optimising");
    let optimize = self::optimize(model, opts)?;
    let mut verification = None;
    if let Some(original) = &original {
        phase("verifying");
        let v = crate::verify(original, model, &opts.input_shapes, verify)?;
        if !v.passed() {
            return Err(Error::VerificationFailed(v));
        }
        verification = Some(v);
    }
    Ok(JobReport {
        optimize,
        verification,
    })
}

/// The cost model named by `spec`: `calibrated` (ONNX Runtime timings measured on the
/// reference machine), `macs` (fewest multiply-accumulates), or the path of a calibration table
/// written by `scripts/calibrate_cost.py`.
pub fn cost_model(spec: &str) -> Result<std::sync::Arc<dyn ssc_rewrite::CostModel>, Error> {
    use ssc_rewrite::{CalibratedCost, MacCost};
    Ok(match spec {
        "calibrated" => std::sync::Arc::new(CalibratedCost::default()),
        "macs" => std::sync::Arc::new(MacCost),
        path => {
            let err = |msg: String| Error::CostModel {
                spec: path.to_string(),
                msg,
            };
            let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
            std::sync::Arc::new(CalibratedCost::from_json(&text).map_err(|e| err(e.to_string()))?)
        }
    })
}

fn total_macs(model: &Model) -> u64 {
    crate::inspect(model).total_macs
}

/// Optimises `model` in place: shape inference (with `input_shapes` applied), the exact
/// clean-up pipeline to a fixed point, then the structure-aware rewriter, re-inferring shapes
/// after each so the next stage and the report see final shapes. Last, the JIT annotations
/// ([`ssc_passes::annotate_for_jit`]) are recorded on the final IR; they change nothing a
/// saved ONNX file holds.
pub fn optimize(model: &mut Model, opts: &Options) -> Result<Report, Error> {
    let start = Instant::now();
    let mut report = Report {
        nodes_before: model.graph.op_count(),
        initializers_before: model.graph.initializer_ids().len(),
        ..Report::default()
    };
    if opts.cleanups || !opts.input_shapes.is_empty() {
        let inferred =
            ssc_passes::infer_shapes_with(model, &opts.input_shapes, &InferOptions::default())?;
        report.bindings = inferred.bindings;
        report.unhandled_ops = inferred.unhandled_ops;
    }
    report.macs_before = total_macs(model);
    if opts.cleanups {
        let passes = ssc_passes::run_cleanups(
            model,
            &PassOptions {
                fold_size_limit: opts.fold_size_limit,
                phases: opts.phases.clone(),
                ..PassOptions::default()
            },
        )?;
        report.rewrites = passes
            .counts
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        ssc_passes::infer_shapes_with(model, &[], &InferOptions::default())?;
    }
    if opts.cleanups && opts.rewrite {
        // The rewriter reads shapes from value types, which the inference above just refreshed.
        report.rewrite = Some(ssc_rewrite::rewrite_model(model, &opts.rewrite_options)?);
        ssc_passes::infer_shapes_with(model, &[], &InferOptions::default())?;
    }
    if opts.cleanups {
        report.jit = ssc_passes::annotate_for_jit(model);
    }
    report.macs_after = total_macs(model);
    report.nodes_after = model.graph.op_count();
    report.initializers_after = model.graph.initializer_ids().len();
    report.elapsed = start.elapsed();
    Ok(report)
}

impl Report {
    /// A multi-line, per-layer report for humans (`--report text`).
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.summary());
        if let Some(r) = &self.rewrite {
            let _ = writeln!(
                s,
                "structure rewriting: {} convs rewritten ({} matched by some rule); e-graph {} nodes / {} classes, {} iterations ({}), saturation {:.1} ms, total {:.1} ms",
                r.rewritten,
                r.layers.len(),
                r.egraph_nodes,
                r.egraph_classes,
                r.iterations,
                r.stop_reason,
                r.saturation_time.as_secs_f64() * 1e3,
                r.total_time.as_secs_f64() * 1e3,
            );
            for l in r.layers.iter().filter(|l| l.rewritten) {
                let _ = writeln!(
                    s,
                    "  {:<40} {} -> {}  MACs {} -> {}  params {} -> {}  [{}]",
                    l.node,
                    l.form_before,
                    l.form_after,
                    l.macs_before,
                    l.macs_after,
                    l.params_before,
                    l.params_after,
                    l.rules_fired.join(", ")
                );
            }
        }
        let _ = writeln!(
            s,
            "jit annotations: {} epilogues, {} sparse layers",
            self.jit.epilogues,
            self.jit.sparse.len()
        );
        for l in &self.jit.sparse {
            let _ = writeln!(
                s,
                "  {:<40} {} sparse {:.2} (marked for JIT)",
                l.node, l.op_type, l.density
            );
        }
        s
    }
}
