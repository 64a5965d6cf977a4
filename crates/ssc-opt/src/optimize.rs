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
    /// Analyse the weights of the optimised model ([`ssc_structure::analyze_model`]: kernel
    /// classes, MSWU tiles, N:M runs, per-output density) into [`Report::structure`], for
    /// `--report`. Off by default: it is a report, not a pass.
    pub analyze_structure: bool,
    /// Write the types the ops compute where the model declared others (`--fix-types`). By
    /// default a declaration that disagrees with inference is reported in
    /// [`Report::warnings`] and written back as the model had it.
    pub fix_types: bool,
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
            analyze_structure: false,
            fix_types: false,
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
    /// MACs of Conv/ConvTranspose/Gemm/MatMul with static shapes, before and after (for
    /// batch 1 where a graph input's batch is symbolic: see `macs_batch_assumed`).
    pub macs_before: u64,
    pub macs_after: u64,
    /// Inputs whose symbolic batch dimension was taken as 1 to count MACs.
    pub macs_batch_assumed: Vec<String>,
    /// Layers after optimisation whose MACs are unknown (symbolic shapes) and not counted.
    pub macs_unknown_layers: usize,
    /// Things the user should know that did not stop the work, one line each: quirks of the
    /// model (a declared type that disagrees with what its op computes, ...), and rewrites
    /// dropped because their result failed validation (bugs in ssc-opt, never in the model),
    /// each naming the rule and the conv. The loader's own warnings are in
    /// [`crate::Loaded::warnings`].
    pub warnings: Vec<String>,
    /// Values whose wrong declared type was replaced by the computed one (`fix_types`).
    pub types_fixed: usize,
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
    /// The weight structure of every Conv/Gemm/MatMul of the optimised model, what the JIT's
    /// kernel choice sees (with [`Options::analyze_structure`]).
    pub structure: Option<ssc_structure::ModelStructure>,
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Report {
    /// One line for humans.
    pub fn summary(&self) -> String {
        let macs = if self.macs_before == 0 && self.macs_unknown_layers > 0 {
            "MACs unknown (symbolic shapes: fix them with --input-shape)".to_string()
        } else {
            let batch = if self.macs_batch_assumed.is_empty() {
                ""
            } else {
                " at batch 1"
            };
            let unknown = match self.macs_unknown_layers {
                0 => String::new(),
                n => format!(" ({n} layers of symbolic size not counted: fix with --input-shape)"),
            };
            format!(
                "{:.3} -> {:.3} GMACs{batch}{unknown}",
                self.macs_before as f64 / 1e9,
                self.macs_after as f64 / 1e9,
            )
        };
        let mut s = format!(
            "{} -> {} nodes, {macs}",
            self.nodes_before, self.nodes_after,
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
/// is 0 or the clean-ups are off) [`verify`](crate::verify()) it against the original on seeded random
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
    if opts.cleanups || opts.fix_types || !opts.input_shapes.is_empty() {
        let inferred =
            ssc_passes::infer_shapes_with(model, &opts.input_shapes, &InferOptions::default())?;
        report.bindings = inferred.bindings;
        report.unhandled_ops = inferred.unhandled_ops;
        report.warnings = inferred.warnings;
    }
    report.macs_before = crate::inspect(model).total_macs;
    if opts.cleanups {
        // The input passed inference above, so a graph the clean-ups leave invalid is their
        // bug: keep the model as it was, say so, and go on.
        let before = model.clone();
        let passes = ssc_passes::run_cleanups(
            model,
            &PassOptions {
                fold_size_limit: opts.fold_size_limit,
                phases: opts.phases.clone(),
                ..PassOptions::default()
            },
        )?;
        match ssc_passes::infer_shapes_with(model, &[], &InferOptions::default()) {
            Ok(_) => {
                report.rewrites = passes
                    .counts
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect();
            }
            Err(e) => {
                report.warnings.push(format!(
                    "the clean-up passes produced an invalid graph ({e}); continuing without them (an ssc-opt bug, please report it)"
                ));
                *model = before;
            }
        }
    }
    if opts.cleanups && opts.rewrite {
        // The rewriter reads shapes from value types, which the inference above just refreshed.
        report.rewrite = Some(rewrite_validated(
            model,
            &opts.rewrite_options,
            &mut report.warnings,
        )?);
    }
    if opts.cleanups {
        report.jit = ssc_passes::annotate_for_jit(model);
    }
    if opts.fix_types {
        report.types_fixed = model.graph.fix_declared_types();
    }
    if opts.analyze_structure {
        report.structure = Some(ssc_structure::analyze_model(
            model,
            &ssc_structure::AnalysisOptions::exact(),
        )?);
    }
    let after = crate::inspect(model);
    report.macs_after = after.total_macs;
    report.macs_batch_assumed = after.batch_assumed;
    report.macs_unknown_layers = after.unknown_macs;
    report.nodes_after = model.graph.op_count();
    report.initializers_after = model.graph.initializer_ids().len();
    report.elapsed = start.elapsed();
    Ok(report)
}

/// How many times [`rewrite_validated`] redoes the rewrite without a rule that broke it
/// before it gives up on structure rewriting for this model.
const MAX_REWRITE_RETRIES: usize = 8;

/// The structure-aware rewrite, validated: alternatives that fail the rewriter's own check are
/// dropped inside it (reported in `dropped`); if the rewritten graph then fails shape inference
/// (or cannot be emitted), the rule whose form broke it is disabled on that conv and the rewrite
/// is redone from the clean-up output. The input already passed inference, so none of this is
/// the user's fault: each step becomes a warning, and exit code 2 stays for malformed input.
/// If no culprit can be named, the model is kept without structure rewrites.
fn rewrite_validated(
    model: &mut Model,
    opts: &ssc_rewrite::RewriteOptions,
    warnings: &mut Vec<String>,
) -> Result<ssc_rewrite::RewriteReport, Error> {
    let before = model.clone();
    let mut opts = opts.clone();
    for _ in 0..=MAX_REWRITE_RETRIES {
        let mut m = before.clone();
        let failure = match ssc_rewrite::rewrite_model(&mut m, &opts) {
            Err(ssc_rewrite::RewriteError::MaterializeLayer { node, rule, msg }) => {
                Err((Some((node, rule)), msg))
            }
            Err(ssc_rewrite::RewriteError::Epsilon(e)) => {
                return Err(ssc_rewrite::RewriteError::Epsilon(e).into())
            }
            Err(e) => Err((None, e.to_string())),
            Ok(r) => match ssc_passes::infer_shapes_with(&mut m, &[], &InferOptions::default()) {
                Ok(_) => Ok(r),
                Err(e) => Err((culprit(&r, &e), e.to_string())),
            },
        };
        match failure {
            Ok(r) => {
                for d in &r.dropped {
                    warnings.push(format!(
                        "rule `{}` on `{}` produced an invalid alternative ({}); dropped it (an ssc-opt bug, please report it)",
                        d.rule, d.node, d.reason
                    ));
                }
                *model = m;
                return Ok(r);
            }
            Err((Some((node, rule)), msg))
                if !opts.disabled.iter().any(|(n, r)| *n == node && *r == rule) =>
            {
                warnings.push(format!(
                    "rule `{rule}` on `{node}` produced an invalid graph ({msg}); optimising without it (an ssc-opt bug, please report it)"
                ));
                opts.disabled.push((node, rule));
            }
            Err((_, msg)) if opts.channels => {
                warnings.push(format!(
                    "structure rewriting produced an invalid graph ({msg}); optimising without channel removal (an ssc-opt bug, please report it)"
                ));
                opts.channels = false;
            }
            Err((_, msg)) => {
                warnings.push(format!(
                    "structure rewriting produced an invalid graph ({msg}); the model is written with clean-ups only (an ssc-opt bug, please report it)"
                ));
                break;
            }
        }
    }
    *model = before;
    Ok(ssc_rewrite::RewriteReport::default())
}

/// The rewritten layer whose emitted ops (named `{layer}/ssc{n}`) or own output an inference
/// error names, with the rule that chose its form.
fn culprit(r: &ssc_rewrite::RewriteReport, e: &ssc_passes::PassError) -> Option<(String, String)> {
    let node = match e {
        ssc_passes::PassError::Shape { node, .. }
        | ssc_passes::PassError::TypeConflict { node, .. } => node,
        _ => return None,
    };
    r.layers
        .iter()
        .filter(|l| l.rewritten)
        .filter(|l| *node == l.node || node.starts_with(&format!("{}/ssc", l.node)))
        .max_by_key(|l| l.node.len())
        .and_then(|l| Some((l.node.clone(), l.rule.clone()?)))
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
            let c = &r.channels;
            let _ = writeln!(
                s,
                "channel removal: {} channel groups removed ({} carriers kept, {} constant groups pinned), {} producers narrowed",
                c.groups_removed,
                c.carriers,
                c.groups_pinned,
                c.producers_narrowed.len()
            );
            for p in &c.producers_narrowed {
                let _ = writeln!(
                    s,
                    "  {:<40} computes {} of {} filters, gathered back in place",
                    p.node, p.filters_after, p.filters_before
                );
            }
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
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
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
        if let Some(st) = &self.structure {
            let _ = writeln!(
                s,
                "weight structure of the output ({} layers; what the JIT compiles):",
                st.nodes.len()
            );
            for (label, n) in &st.nodes {
                let _ = match n {
                    ssc_structure::NodeStructure::Conv(c) if !c.sparsity.to_string().is_empty() => {
                        writeln!(s, "  {label}: {c}; {}", c.sparsity)
                    }
                    _ => writeln!(s, "  {label}: {n}"),
                };
            }
        }
        s
    }
}
