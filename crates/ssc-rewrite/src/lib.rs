//! Structure-aware rewriting of ssc-opt models by equality saturation (egg).
//!
//! Dense convolutions whose weights hide structure (block-diagonal blocks under permutation,
//! SSC full/point kernel mixes, zero rings) are rewritten into cheaper, exactly equivalent
//! standard operators. The pipeline of [`rewrite_model`]:
//!
//! 1. **build** the e-graph ([`lang`]): one e-class per IR value; Convs the rules understand
//!    become [`SscNode::Conv`] nodes, everything else opaque nodes that keep their inputs;
//!    weights are leaves indexing a table outside the e-graph;
//! 2. **saturate** with the rules ([`rules`]), each a conditional applier guarded by the
//!    weight facts of [`ssc_structure`] (computed once per weight, cached in [`analysis`]); every
//!    rule adds at most one alternative per matched conv, and rules compose: they also match
//!    the convs of another rule's alternative, whose symbolic weights are evaluated for their
//!    facts (bounded by [`analysis::MAX_WEIGHT_DEPTH`] and the limits of [`RewriteOptions`]);
//! 3. **extract** with a DAG-aware greedy extractor ([`extract`]) costing nodes with a
//!    [`CostModel`], counting shared sub-graphs once;
//! 4. **materialize** the choice: symbolic weight operations become initializers only now.
//!
//! Architecture invariant: every rewrite is exact (up to f32 summation order) unless
//! [`RewriteOptions::epsilon`] is non-zero, and no rule turns a grouped conv into a denser one.
//! Shapes come from the value types, so run `ssc_passes::infer_shapes` first; convs whose input
//! shape is not static are left alone.
//!
//! ```
//! use ssc_ir::{Attribute, DataType, Dim, Model, OpDesc, Tensor, TensorType, ValueType};
//! use ssc_rewrite::{rewrite_model, RewriteOptions};
//!
//! // A 4->4 3x3 conv whose kernels are all centre taps: really a 1x1 conv.
//! let mut model = Model::default();
//! let g = &mut model.graph;
//! let ty = |c| Some(ValueType::Tensor(TensorType {
//!     elem: DataType::Float,
//!     shape: Some([1, c, 5, 5].map(Dim::Known).to_vec()),
//! }));
//! let x = g.add_value("x", ty(4)).unwrap();
//! let y = g.add_value("y", ty(4)).unwrap();
//! let w = g.add_value("w", None).unwrap();
//! let mut wv = vec![0.0f32; 4 * 4 * 9];
//! for k in 0..16 { wv[k * 9 + 4] = 1.0 + k as f32; }
//! g.set_initializer(w, Tensor::from_f32(vec![4, 4, 3, 3], &wv));
//! g.add_op(OpDesc::new("Conv").with_attr(Attribute::ints("pads", vec![1; 4])),
//!          vec![Some(x), Some(w)], vec![Some(y)]).unwrap();
//! g.set_inputs(vec![x]);
//! g.set_outputs(vec![y]);
//!
//! let report = rewrite_model(&mut model, &RewriteOptions::default())?;
//! assert_eq!(report.layers[0].form_after, "Conv 1x1 dense");
//! assert_eq!(report.macs_after * 9, report.macs_before);
//! # Ok::<(), ssc_rewrite::RewriteError>(())
//! ```

// Every public item is documented: other compilers plug rules and cost models in here.
#![warn(missing_docs)]

pub mod analysis;
mod build;
pub mod channels;
pub mod cost;
pub mod extract;
pub mod lang;
mod materialize;
pub mod permute;
pub mod rules;
mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use egg::{Rewrite, Runner, SimpleScheduler, StopReason};
use serde::Serialize;
use ssc_ir::{IrError, Model};
use ssc_structure::AnalysisOptions;

pub use analysis::SscAnalysis;
pub use cost::{CalibratedCost, CostModel, MacCost, NodeCostInput, OpKind};
pub use lang::{ConvAttrs, SscLang, SscNode, WeightOp};
pub use rules::{conv_rule, default_rules, ConvApplier, ConvMatch, ConvRewrite, ConvSearcher};

/// Everything that can go wrong while rewriting.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// The IR rejected an operation (a cycle, a duplicate producer).
    #[error(transparent)]
    Ir(#[from] IrError),
    /// The epsilon is negative or not finite.
    #[error("epsilon must be finite and >= 0, got {0}")]
    Epsilon(f32),
    /// The extraction could not be turned back into IR (a bug in a rule).
    #[error("materializing the extracted graph: {0}")]
    Materialize(String),
    /// Emitting the form chosen for one conv failed (a bug in the rule that offered it);
    /// retrying with that rule in [`RewriteOptions::disabled`] for that conv avoids it.
    #[error("materializing `{node}` (rule `{rule}`): {msg}")]
    MaterializeLayer {
        /// The conv's name (as in [`LayerReport::node`]).
        node: String,
        /// The rule whose form was chosen.
        rule: String,
        /// What went wrong.
        msg: String,
    },
}

/// How to rewrite.
#[derive(Clone)]
pub struct RewriteOptions {
    /// Node cost model for extraction.
    pub cost: Arc<dyn CostModel>,
    /// Rules run in addition to [`default_rules`].
    pub extra_rules: Vec<Rewrite<SscNode, SscAnalysis>>,
    /// Stop saturating beyond this many e-nodes.
    pub node_limit: usize,
    /// Stop saturating after this many iterations.
    pub iter_limit: usize,
    /// Stop saturating after this long.
    pub time_limit: Duration,
    /// `0` is exact. Otherwise weights with `|w| <= epsilon` count as zero, and the rewrite is
    /// approximate (reported in [`RewriteReport::approximate`]).
    pub epsilon: f32,
    /// `(conv name, rule name)` pairs: the rule does not fire on that conv (names as in
    /// [`LayerReport::node`] and [`LayerReport::rule`]). The facade fills this when a rule's
    /// output failed validation, to redo the rewrite without it.
    pub disabled: Vec<(String, String)>,
    /// Run channel removal ([`channels`]) before and after the e-graph. The facade turns it off
    /// to redo a rewrite whose result failed validation without naming a rule.
    pub channels: bool,
}

impl std::fmt::Debug for RewriteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewriteOptions")
            .field("cost", &self.cost)
            .field("extra_rules", &self.extra_rules.len())
            .field("node_limit", &self.node_limit)
            .field("iter_limit", &self.iter_limit)
            .field("time_limit", &self.time_limit)
            .field("epsilon", &self.epsilon)
            .field("disabled", &self.disabled)
            .field("channels", &self.channels)
            .finish()
    }
}

impl Default for RewriteOptions {
    fn default() -> Self {
        RewriteOptions {
            cost: Arc::new(CalibratedCost::default()),
            extra_rules: Vec::new(),
            // One alternative per conv needs a handful of nodes each; these limits only stop
            // runaway extra rules.
            node_limit: 1_000_000,
            iter_limit: 8,
            time_limit: Duration::from_secs(10),
            epsilon: 0.0,
            disabled: Vec::new(),
            channels: true,
        }
    }
}

/// What happened to one conv that some rule matched.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerReport {
    /// The conv's name (or `Conv#index`).
    pub node: String,
    /// E.g. `Conv 3x3 dense`.
    pub form_before: String,
    /// E.g. `perm·Conv 3x3 G=4 + Conv 1x1 dense` (equal to `form_before` when not rewritten).
    pub form_after: String,
    /// MACs of the original conv (per run, batch included).
    pub macs_before: u64,
    /// MACs of the chosen replacement (additions of an `Add` count as MACs).
    pub macs_after: u64,
    /// Weight and bias elements before.
    pub params_before: u64,
    /// Weight and bias elements after.
    pub params_after: u64,
    /// Rules that added an alternative for this conv.
    pub rules_fired: Vec<String>,
    /// Whether the extraction chose an alternative.
    pub rewritten: bool,
    /// The rule whose alternative the extraction chose (`None` when not rewritten).
    pub rule: Option<String>,
    /// Rules whose alternative the extraction chose for a conv *inside* the chosen form (a rule
    /// composed over [`rule`](Self::rule)'s output, e.g. `zero-inputs-sliced` on the 1x1
    /// remainder of `ssc-split`), outermost first; empty when one rule's form was taken as is.
    pub composed: Vec<String>,
}

/// An alternative a rule offered that failed validation and was dropped (a bug in the rule;
/// the conv keeps its other alternatives).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DroppedRewrite {
    /// The conv's name (or `Conv#index`).
    pub node: String,
    /// The rule that offered the alternative.
    pub rule: String,
    /// What was wrong with it.
    pub reason: String,
}

/// What [`rewrite_model`] did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RewriteReport {
    /// One entry per conv some rule fired on, in topological order.
    pub layers: Vec<LayerReport>,
    /// E-nodes after saturation.
    pub egraph_nodes: usize,
    /// E-classes after saturation.
    pub egraph_classes: usize,
    /// Saturation iterations run.
    pub iterations: usize,
    /// Why saturation stopped (`Saturated`, `IterationLimit(n)`, ...).
    pub stop_reason: String,
    /// Time spent saturating.
    #[serde(serialize_with = "secs")]
    pub saturation_time: Duration,
    /// Time for the whole call.
    #[serde(serialize_with = "secs")]
    pub total_time: Duration,
    /// Sum of `macs_before` over `layers`.
    pub macs_before: u64,
    /// Sum of `macs_after` over `layers`.
    pub macs_after: u64,
    /// Sum of `params_before` over `layers`.
    pub params_before: u64,
    /// Sum of `params_after` over `layers`.
    pub params_after: u64,
    /// Convs replaced.
    pub rewritten: usize,
    /// The rewrite used a non-zero epsilon, so outputs may change.
    pub approximate: bool,
    /// What channel removal did (before and after the e-graph).
    pub channels: channels::ChannelReport,
    /// Channel permutations folded into neighbouring convs (after extraction).
    pub permutations: permute::PermuteReport,
    /// Alternatives dropped because they failed validation (bugs in rules, not in the model).
    pub dropped: Vec<DroppedRewrite>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Channel removal when `opts.channels`; a failure (a bug in the pass, never the model's fault)
/// leaves the model as it was and is reported in `dropped`.
fn run_channels(
    model: &mut Model,
    opts: &RewriteOptions,
    dropped: &mut Vec<DroppedRewrite>,
) -> channels::ChannelReport {
    if !opts.channels {
        return channels::ChannelReport::default();
    }
    let backup = model.clone();
    match channels::remove_channels(model, opts.cost.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            *model = backup;
            dropped.push(DroppedRewrite {
                node: "(graph)".into(),
                rule: channels::NAME.into(),
                reason: e.to_string(),
            });
            channels::ChannelReport::default()
        }
    }
}

/// Folds channel permutations into neighbouring convs; a failure (a bug in the pass) leaves the
/// model as it was and is reported in `dropped`.
fn run_permutations(
    model: &mut Model,
    dropped: &mut Vec<DroppedRewrite>,
) -> permute::PermuteReport {
    if !permute::any_permutation(&model.graph) {
        return permute::PermuteReport::default();
    }
    let backup = model.clone();
    match permute::fold_permutations(model) {
        Ok(r) => r,
        Err(e) => {
            *model = backup;
            dropped.push(DroppedRewrite {
                node: "(graph)".into(),
                rule: permute::NAME.into(),
                reason: e.to_string(),
            });
            permute::PermuteReport::default()
        }
    }
}

/// Rewrites `model` in place with [`default_rules`] plus `opts.extra_rules`, choosing per conv
/// the cheapest equivalent form under `opts.cost`.
pub fn rewrite_model(
    model: &mut Model,
    opts: &RewriteOptions,
) -> Result<RewriteReport, RewriteError> {
    let start = Instant::now();
    if !(opts.epsilon.is_finite() && opts.epsilon >= 0.0) {
        return Err(RewriteError::Epsilon(opts.epsilon));
    }
    let mut dropped_channels = Vec::new();
    let mut channels = run_channels(model, opts, &mut dropped_channels);
    let built = build::build(
        &model.graph,
        AnalysisOptions {
            epsilon: opts.epsilon,
        },
        model.onnx_opset(),
        &opts.disabled,
    )?;
    let build::Built {
        egraph,
        value_class,
        sites,
        roots,
    } = built;
    let mut rules = default_rules();
    rules.extend(opts.extra_rules.iter().cloned());
    let sat_start = Instant::now();
    // The simple scheduler: every rule matches each conv once, so backing off would only delay.
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_scheduler(SimpleScheduler)
        .with_node_limit(opts.node_limit)
        .with_iter_limit(opts.iter_limit)
        .with_time_limit(opts.time_limit)
        .run(&rules);
    let saturation_time = sat_start.elapsed();
    let stop_reason = match &runner.stop_reason {
        Some(StopReason::Saturated) => "Saturated".to_string(),
        Some(r) => format!("{r:?}"),
        None => "None".to_string(),
    };
    let iterations = runner.iterations.len();
    let built = build::Built {
        egraph: runner.egraph,
        value_class,
        sites,
        roots,
    };
    let preferred: Vec<SscNode> = built.sites.iter().map(|s| s.node.clone()).collect();
    let ex = extract::extract(&built.egraph, opts.cost.as_ref(), &preferred);
    let (layers, dropped) = materialize::materialize(model, &built, &ex)?;
    // Rewrites can leave constant channels behind (a remainder with zero rows, padded blocks);
    // with nothing rewritten the graph is the one the first run left, which it would not change.
    if layers.iter().any(|l| l.rewritten) {
        channels.merge(run_channels(model, opts, &mut dropped_channels));
    }
    // The block permutations the rewrites emitted (and any in the input) go into the convs
    // next to them where one can absorb them.
    let permutations = run_permutations(model, &mut dropped_channels);
    let mut dropped = dropped;
    dropped.extend(dropped_channels);
    let mut report = RewriteReport {
        channels,
        permutations,
        egraph_nodes: built.egraph.total_size(),
        egraph_classes: built.egraph.number_of_classes(),
        iterations,
        stop_reason,
        saturation_time,
        approximate: opts.epsilon > 0.0,
        dropped,
        ..RewriteReport::default()
    };
    for l in &layers {
        report.macs_before += l.macs_before;
        report.macs_after += l.macs_after;
        report.params_before += l.params_before;
        report.params_after += l.params_after;
        report.rewritten += l.rewritten as usize;
    }
    report.layers = layers;
    report.total_time = start.elapsed();
    Ok(report)
}
