//! The e-class analysis: static shapes for every class, and the weight-structure facts of every
//! weight leaf, computed once and cached, so appliers can ask "is this conv block-diagonal?"
//! without rescanning a tensor. A weight a rule derived (a [`SscNode::WeightOp`] chain over an
//! original weight) gets its facts the same way, evaluated once on first use, so rules compose:
//! a rule matches the convs another rule emitted ([`conv_weight_facts`]).

use std::collections::HashMap;
use std::sync::Arc;

use egg::{Analysis, DidMerge, EGraph, Id, Language};
use ssc_ir::{Tensor, ValueId};
use ssc_structure::{analyze_conv_weight, AnalysisOptions, ConvStructure};

use crate::lang::{ConvAttrs, SscNode, WeightOp};
use crate::materialize::{apply_weight_op, Dense};

/// The longest chain of symbolic weight ops a rule may match through: a conv whose weight is
/// deeper is left as it is. Every rule consumes the structure it matches (a sliced column is not
/// zero any more, a grouped conv is not block-diagonal again), so chains stop on their own; the
/// bound keeps a custom rule that does not from growing the e-graph until the node limit.
pub const MAX_WEIGHT_DEPTH: u8 = 6;

/// A value the e-graph refers to by index: its IR id and static shape.
#[derive(Clone, Debug)]
pub struct ValueEntry {
    /// The IR value.
    pub id: ValueId,
    /// Its shape when fully static.
    pub shape: Option<Vec<usize>>,
}

/// A constant weight or bias the e-graph refers to by index.
#[derive(Clone, Debug)]
pub struct WeightEntry {
    /// The IR value holding the initializer.
    pub id: ValueId,
    /// The tensor (payload shared with the graph's store, not copied).
    pub tensor: Tensor,
    /// Facts for the `group` they were computed with; `None` inside when analysis failed.
    facts: Option<(usize, Option<Arc<ConvStructure>>)>,
}

impl WeightEntry {
    /// A table entry with no facts computed yet.
    pub fn new(id: ValueId, tensor: Tensor) -> WeightEntry {
        WeightEntry {
            id,
            tensor,
            facts: None,
        }
    }
}

/// Per-class data: the static shape (when known) and, for weight leaves, the table index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassData {
    /// The static shape of the tensor this class computes.
    pub shape: Option<Vec<usize>>,
    /// The weight-table index when the class holds an original weight.
    pub weight: Option<u32>,
    /// For a symbolic weight ([`SscNode::WeightOp`] chain over an original weight), the number
    /// of ops in the chain (`1` for one op over an original weight).
    pub derived: Option<u8>,
}

/// The analysis: tables the leaves index into, plus the facts cache.
#[derive(Clone, Debug, Default)]
pub struct SscAnalysis {
    /// Values read by [`SscNode::Input`] and [`SscNode::Opaque`].
    pub values: Vec<ValueEntry>,
    /// Weights read by [`SscNode::Weight`].
    pub weights: Vec<WeightEntry>,
    /// How strict zero and equality are for the facts.
    pub options: AnalysisOptions,
    /// Which rules produced an alternative for which class (class id at the time, rule name),
    /// for the report.
    pub fired: Vec<(Id, &'static str)>,
    /// The root e-node of every alternative a rule added (its class at the time, the node,
    /// the rule), so the report can say which rule's form the extraction chose.
    pub alternatives: Vec<(Id, SscNode, &'static str)>,
    /// Alternatives that failed the `validate` module's check and were dropped: the matched
    /// conv's class at the time, the rule, and what was wrong.
    pub dropped: Vec<(Id, &'static str, String)>,
    /// `(conv class, rule)` pairs the rule must not fire on
    /// ([`crate::RewriteOptions::disabled`], resolved to classes at build time).
    pub disabled: Vec<(Id, String)>,
    /// The model's default-domain opset: rules that emit other ops check it, since an op's
    /// attributes (and whether the op exists) depend on it.
    pub opset: i64,
    /// Facts of symbolic weights by (class, group), computed on first use
    /// ([`conv_weight_facts`]); `None` inside when the weight could not be analysed.
    pub derived_facts: HashMap<(Id, usize), Option<Arc<ConvStructure>>>,
    /// Classes of the convs rules may match: the original graph's convs, and the convs inside
    /// alternatives that passed validation and joined the e-graph (rules compose). A dropped
    /// alternative's nodes stay in the e-graph, unreachable, and are never matched.
    pub composable: Vec<Id>,
}

impl SscAnalysis {
    /// Whether `rule` is disabled on the conv of class `class`.
    pub fn is_disabled(egraph: &EGraph<SscNode, SscAnalysis>, class: Id, rule: &str) -> bool {
        let class = egraph.find(class);
        egraph
            .analysis
            .disabled
            .iter()
            .any(|(c, r)| r == rule && egraph.find(*c) == class)
    }

    /// The structure facts of weight `w` as the weight of a conv with `group` groups, computed
    /// on first use and cached (a weight is analysed once however often the rules ask).
    pub fn facts(&mut self, w: u32, group: usize) -> Option<Arc<ConvStructure>> {
        let opts = self.options;
        let e = self.weights.get_mut(w as usize)?;
        match &e.facts {
            Some((g, f)) if *g == group => f.clone(),
            Some(_) => analyze_conv_weight(&e.tensor, group, &opts)
                .ok()
                .map(Arc::new),
            None => {
                let f = analyze_conv_weight(&e.tensor, group, &opts)
                    .ok()
                    .map(Arc::new);
                e.facts = Some((group, f.clone()));
                f
            }
        }
    }
}

/// Whether a conv whose weight is class `w` may be matched by a rule: an original weight, or a
/// symbolic weight at most [`MAX_WEIGHT_DEPTH`] ops above one.
pub fn matchable_weight(egraph: &EGraph<SscNode, SscAnalysis>, w: Id) -> bool {
    let d = &egraph[w].data;
    d.weight.is_some() || d.derived.is_some_and(|n| n <= MAX_WEIGHT_DEPTH)
}

/// Whether rules may match the conv in class `class`: an original conv, or one inside an
/// accepted alternative ([`SscAnalysis::composable`]).
pub fn is_composable(egraph: &EGraph<SscNode, SscAnalysis>, class: Id) -> bool {
    let class = egraph.find(class);
    egraph
        .analysis
        .composable
        .iter()
        .any(|&c| egraph.find(c) == class)
}

/// Records the convs of the accepted alternative rooted at `new` (walking down from it, not
/// into `stop`, the matched conv's own operands, nor into classes of the original graph) in
/// [`SscAnalysis::composable`].
pub fn mark_composable(egraph: &mut EGraph<SscNode, SscAnalysis>, new: Id, stop: &[Id]) {
    let stop: Vec<Id> = stop.iter().map(|&c| egraph.find(c)).collect();
    let mut seen: Vec<Id> = Vec::new();
    let mut stack = vec![egraph.find(new)];
    let mut found = Vec::new();
    while let Some(c) = stack.pop() {
        let c = egraph.find(c);
        if stop.contains(&c) || seen.contains(&c) {
            continue;
        }
        seen.push(c);
        for n in &egraph[c].nodes {
            match n {
                // The original graph (and its weights) is not part of any alternative.
                SscNode::Input(_) | SscNode::Opaque { .. } | SscNode::Weight(_) => break,
                SscNode::Conv(ch) => {
                    found.push(c);
                    stack.extend(ch);
                }
                other => stack.extend(other.children()),
            }
        }
    }
    for c in found {
        if !is_composable(egraph, c) {
            egraph.analysis.composable.push(c);
        }
    }
}

/// The original weight (table index) a weight class is, or derives from through weight ops.
pub fn base_weight(egraph: &EGraph<SscNode, SscAnalysis>, w: Id) -> Option<u32> {
    let mut c = w;
    for _ in 0..=MAX_WEIGHT_DEPTH {
        if let Some(idx) = egraph[c].data.weight {
            return Some(idx);
        }
        c = egraph[c].nodes.iter().find_map(|n| match n {
            SscNode::WeightOp { arg, .. } => Some(arg[0]),
            _ => None,
        })?;
    }
    None
}

/// Evaluates weight class `c` (an original weight or a weight-op chain over one) to a dense
/// f32 tensor; `None` when some op does not apply to its argument's shape (the chain of an
/// alternative that failed validation) or the weight is not numeric.
fn eval_weight(egraph: &EGraph<SscNode, SscAnalysis>, c: Id, depth: u8) -> Option<Dense> {
    if let Some(idx) = egraph[c].data.weight {
        let t = &egraph.analysis.weights.get(idx as usize)?.tensor;
        return Some(Dense {
            dims: t.dims.clone(),
            data: t.to_f32_vec()?,
        });
    }
    if depth == 0 {
        return None;
    }
    egraph[c].nodes.iter().find_map(|n| match n {
        SscNode::WeightOp { op, arg } => {
            let src = eval_weight(egraph, arg[0], depth - 1)?;
            crate::validate::check_weight_op(op, &src.dims).ok()?;
            Some(apply_weight_op(op, &src))
        }
        _ => None,
    })
}

/// The structure facts of weight class `w` as the weight of a conv with `group` groups: an
/// original weight's from the table cache ([`SscAnalysis::facts`]), a symbolic weight's by
/// evaluating its chain once and caching the result by class.
pub fn conv_weight_facts(
    egraph: &mut EGraph<SscNode, SscAnalysis>,
    w: Id,
    group: usize,
) -> Option<Arc<ConvStructure>> {
    if let Some(idx) = egraph[w].data.weight {
        return egraph.analysis.facts(idx, group);
    }
    let w = egraph.find(w);
    if let Some(f) = egraph.analysis.derived_facts.get(&(w, group)) {
        return f.clone();
    }
    let opts = egraph.analysis.options;
    let f = eval_weight(egraph, w, MAX_WEIGHT_DEPTH)
        .and_then(|d| analyze_conv_weight(&Tensor::from_f32(d.dims, &d.data), group, &opts).ok())
        .map(Arc::new);
    egraph.analysis.derived_facts.insert((w, group), f.clone());
    f
}

/// The attrs of a [`SscNode::ConvAttrs`] class.
pub fn attrs_of(egraph: &EGraph<SscNode, SscAnalysis>, id: Id) -> Option<&ConvAttrs> {
    egraph[id].nodes.iter().find_map(|n| match n {
        SscNode::ConvAttrs(a) => Some(&**a),
        _ => None,
    })
}

/// The shape a weight op produces from its argument's shape.
pub fn weight_op_shape(op: &WeightOp, arg: &[usize]) -> Option<Vec<usize>> {
    match op {
        WeightOp::Blocks {
            groups,
            out_perm,
            in_perm,
        } => {
            let mut s = arg.to_vec();
            if s.len() < 2 || *groups == 0 || !in_perm.len().is_multiple_of(*groups) {
                return None;
            }
            s[0] = out_perm.len();
            s[1] = in_perm.len() / groups;
            Some(s)
        }
        WeightOp::MaskBlocks { .. } => Some(arg.to_vec()),
        WeightOp::ZeroTap { tap } => {
            let inside =
                arg.len() == tap.len() + 2 && tap.iter().zip(&arg[2..]).all(|(t, k)| t < k);
            inside.then(|| arg.to_vec())
        }
        WeightOp::Crop { begin, end } => {
            if arg.len() != begin.len() + 2 {
                return None;
            }
            let mut s = arg[..2].to_vec();
            s.extend(begin.iter().zip(end).map(|(b, e)| e - b));
            Some(s)
        }
        WeightOp::Taps { taps } => {
            let inside = arg.len() == taps.len() + 2
                && taps
                    .iter()
                    .zip(&arg[2..])
                    .all(|(t, &k)| !t.is_empty() && t.iter().all(|&c| c < k));
            if !inside {
                return None;
            }
            let mut s = arg[..2].to_vec();
            s.extend(taps.iter().map(Vec::len));
            Some(s)
        }
        WeightOp::Gather0 { idx } => {
            let mut s = arg.to_vec();
            *s.first_mut()? = idx.len();
            Some(s)
        }
        WeightOp::Gather1 { idx } => {
            let mut s = arg.to_vec();
            *s.get_mut(1)? = idx.len();
            Some(s)
        }
        WeightOp::KernelMean { .. } => {
            if arg.len() < 3 {
                return None;
            }
            let mut s = arg[..2].to_vec();
            s.resize(arg.len(), 1);
            Some(s)
        }
        WeightOp::Channel { batch, spatial } => {
            let [c] = arg else {
                return None;
            };
            let mut s = vec![*batch, *c];
            s.extend(spatial);
            Some(s)
        }
    }
}

impl Analysis<SscNode> for SscAnalysis {
    type Data = ClassData;

    fn make(egraph: &mut EGraph<SscNode, Self>, enode: &SscNode, _id: Id) -> ClassData {
        let shape_of = |id: Id| egraph[id].data.shape.clone();
        let a = &egraph.analysis;
        match enode {
            SscNode::Input(v) | SscNode::Opaque { value: v, .. } => ClassData {
                shape: a.values.get(*v as usize).and_then(|e| e.shape.clone()),
                ..ClassData::default()
            },
            SscNode::Weight(w) => ClassData {
                shape: a.weights.get(*w as usize).map(|e| e.tensor.dims.clone()),
                weight: Some(*w),
                derived: None,
            },
            SscNode::NoBias | SscNode::ConvAttrs(_) => ClassData::default(),
            SscNode::Conv([at, x, w, _]) => {
                let shape = (|| {
                    let attrs = attrs_of(egraph, *at)?;
                    let (xs, ws) = (shape_of(*x)?, shape_of(*w)?);
                    let mut out = vec![*xs.first()?, *ws.first()?];
                    out.extend(attrs.output_spatial(xs.get(2..)?)?);
                    Some(out)
                })();
                ClassData {
                    shape,
                    ..ClassData::default()
                }
            }
            SscNode::Add([l, r]) => ClassData {
                shape: shape_of(*l).or_else(|| shape_of(*r)),
                ..ClassData::default()
            },
            SscNode::Gather { idx, arg } => ClassData {
                shape: shape_of(arg[0]).and_then(|mut s| {
                    *s.get_mut(1)? = idx.len();
                    Some(s)
                }),
                ..ClassData::default()
            },
            SscNode::WeightOp { op, arg } => {
                let below = &egraph[arg[0]].data;
                let derived = if below.weight.is_some() {
                    Some(1)
                } else {
                    below.derived.map(|n| n.saturating_add(1))
                };
                ClassData {
                    shape: shape_of(arg[0]).and_then(|s| weight_op_shape(op, &s)),
                    weight: None,
                    derived,
                }
            }
            SscNode::Literal(l) => ClassData {
                shape: Some(l.dims.clone()),
                ..ClassData::default()
            },
            SscNode::AvgPool([at, x]) => ClassData {
                shape: (|| {
                    let attrs = attrs_of(egraph, *at)?;
                    let xs = shape_of(*x)?;
                    let mut out = xs.get(..2)?.to_vec();
                    out.extend(attrs.output_spatial(xs.get(2..)?)?);
                    Some(out)
                })(),
                ..ClassData::default()
            },
            SscNode::Mul([l, _]) => ClassData {
                shape: shape_of(*l),
                ..ClassData::default()
            },
            SscNode::Concat([l, r]) => ClassData {
                shape: (|| {
                    let (mut a, b) = (shape_of(*l)?, shape_of(*r)?);
                    *a.get_mut(1)? += *b.get(1)?;
                    Some(a)
                })(),
                ..ClassData::default()
            },
        }
    }

    fn merge(&mut self, to: &mut ClassData, from: ClassData) -> DidMerge {
        // Rules only union equal computations, so known shapes agree; take what is missing.
        let mut changed = false;
        if to.shape.is_none() && from.shape.is_some() {
            to.shape = from.shape.clone();
            changed = true;
        }
        if to.weight.is_none() && from.weight.is_some() {
            to.weight = from.weight;
            changed = true;
        }
        if from
            .derived
            .is_some_and(|f| to.derived.is_none_or(|t| f < t))
        {
            to.derived = from.derived;
            changed = true;
        }
        DidMerge(
            changed,
            to.shape != from.shape || to.weight != from.weight || to.derived != from.derived,
        )
    }
}
