//! The rule families and what they share: a searcher that finds every Conv e-node a rule may
//! match, the guard data ([`ConvMatch`]) every rule starts from, and the [`ConvRewrite`] trait
//! whose [`ConvApplier`] adapter holds the match-and-commit logic once.
//!
//! Invariants every rule keeps (as in Cranelift's `opts/README.md`):
//! - **exact**: an alternative computes the same function in real arithmetic (facts are exact
//!   unless the user gave an epsilon, which the report marks);
//! - **one alternative per matched conv**, and rules compose: a rule matches any conv whose
//!   weight is an original initializer or a symbolic weight another rule derived from one (at
//!   most [`MAX_WEIGHT_DEPTH`](crate::analysis::MAX_WEIGHT_DEPTH) weight ops deep), so, e.g.,
//!   the 1x1 remainder of an SSC split has its zero columns sliced by `zero-inputs-sliced`.
//!   Saturation stays bounded: each rule consumes the structure it matched, and the node,
//!   iteration and time limits of [`crate::RewriteOptions`] stop a rule that does not;
//! - **never densify**: no rule produces a conv with fewer groups than it matched.

use std::sync::Arc;

use egg::{Applier, EGraph, Id, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use ssc_ir::DataType;
use ssc_structure::ConvStructure;

use crate::analysis::{
    attrs_of, base_weight, conv_weight_facts, is_composable, mark_composable, matchable_weight,
    SscAnalysis,
};
use crate::lang::{ConvAttrs, Indices, SscNode, WeightOp};

pub mod blockdiag;
pub mod kernel;
pub mod ssc;
pub mod taps;
pub mod unified;
pub mod zero;

/// The rule set [`crate::rewrite_model`] runs by default, in priority order.
pub fn default_rules() -> Vec<Rewrite<SscNode, SscAnalysis>> {
    vec![
        blockdiag::rule(),
        ssc::rule(),
        kernel::rule(),
        taps::rule(),
        unified::const_kernel_rule(),
        unified::input_classes_rule(),
        unified::output_classes_rule(),
        zero::zero_inputs_rule(),
    ]
}

/// The variables a [`ConvSearcher`] binds: attrs, input, weight, bias.
pub fn conv_vars() -> [Var; 4] {
    ["?attrs", "?x", "?w", "?b"].map(|v| v.parse().expect("valid variable"))
}

/// Finds every `Conv(attrs, x, w, b)` of the original graph or of an accepted alternative
/// ([`is_composable`]) whose weight class holds an original (table) weight or a
/// symbolic weight derived from one by another rule (at most
/// [`MAX_WEIGHT_DEPTH`](crate::analysis::MAX_WEIGHT_DEPTH) weight ops deep); binds
/// [`conv_vars`]. Public so other crates can write facts-driven conv rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConvSearcher;

impl Searcher<SscNode, SscAnalysis> for ConvSearcher {
    fn search_eclass_with_limit(
        &self,
        egraph: &EGraph<SscNode, SscAnalysis>,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, SscNode>> {
        let vars = conv_vars();
        let substs: Vec<Subst> = egraph[eclass]
            .nodes
            .iter()
            .filter_map(|n| match n {
                SscNode::Conv(c)
                    if matchable_weight(egraph, c[2]) && is_composable(egraph, eclass) =>
                {
                    let mut s = Subst::with_capacity(4);
                    for (v, id) in vars.iter().zip(c) {
                        s.insert(*v, *id);
                    }
                    Some(s)
                }
                _ => None,
            })
            .take(limit)
            .collect();
        (!substs.is_empty()).then_some(SearchMatches {
            eclass,
            substs,
            ast: None,
        })
    }

    fn vars(&self) -> Vec<Var> {
        conv_vars().to_vec()
    }
}

/// A matched conv with everything a guard needs.
#[derive(Debug)]
pub struct ConvMatch {
    /// The conv's attributes.
    pub attrs: ConvAttrs,
    /// Input class.
    pub x: Id,
    /// Weight class: an original weight, or a symbolic weight another rule derived from one
    /// (build new weight ops over it either way; materialization evaluates the chain).
    pub w: Id,
    /// Bias class ([`SscNode::NoBias`] when absent).
    pub b: Id,
    /// Whether there is a bias.
    pub has_bias: bool,
    /// The input's static shape.
    pub x_shape: Vec<usize>,
    /// The weight's structure facts.
    pub facts: Arc<ConvStructure>,
}

impl ConvMatch {
    /// Collects the match, or `None` when a shared guard fails: the input shape must be static
    /// (costs need it), the weight (and bias) must be f32 constants or symbolic weights over
    /// them, the kernel rank must match the input, and the facts must be computable.
    pub fn new(egraph: &mut EGraph<SscNode, SscAnalysis>, subst: &Subst) -> Option<ConvMatch> {
        let [va, vx, vw, vb] = conv_vars();
        let (a, x, w, b) = (subst[va], subst[vx], subst[vw], subst[vb]);
        let attrs = attrs_of(egraph, a)?.clone();
        let x_shape = egraph[x].data.shape.clone()?;
        let is_f32 = |c: Id| {
            base_weight(egraph, c).is_some_and(|idx| {
                egraph.analysis.weights[idx as usize].tensor.dtype == DataType::Float
            })
        };
        if !matchable_weight(egraph, w) || !is_f32(w) || x_shape.len() != attrs.kernel.len() + 2 {
            return None;
        }
        let has_bias = !egraph[b].nodes.iter().any(|n| matches!(n, SscNode::NoBias));
        if has_bias && !is_f32(b) {
            return None;
        }
        let facts = conv_weight_facts(egraph, w, attrs.group)?;
        Some(ConvMatch {
            attrs,
            x,
            w,
            b,
            has_bias,
            x_shape,
            facts,
        })
    }
}

/// True when `p` is `0, 1, 2, ...`.
pub(crate) fn is_identity(p: &[u32]) -> bool {
    p.iter().enumerate().all(|(j, &x)| x as usize == j)
}

/// `Gather(x, idx, axis = 1)` unless `idx` is the identity on all of `x`'s channels.
///
/// A prefix `0, 1, .., k-1` of more channels is a selection, not the identity: the gather
/// must stay (dropping it once fed a 6-channel input to a conv narrowed to 3 inputs).
pub(crate) fn gather_channels(egraph: &mut EGraph<SscNode, SscAnalysis>, x: Id, idx: &[u32]) -> Id {
    let channels = egraph[x]
        .data
        .shape
        .as_ref()
        .and_then(|s| s.get(1).copied());
    if channels == Some(idx.len()) && is_identity(idx) {
        return x;
    }
    egraph.add(SscNode::Gather {
        idx: Indices::from(idx),
        arg: [x],
    })
}

/// A symbolic weight op over `w`.
pub(crate) fn weight_op(egraph: &mut EGraph<SscNode, SscAnalysis>, op: WeightOp, w: Id) -> Id {
    egraph.add(SscNode::WeightOp { op, arg: [w] })
}

/// The permuted grouped conv of a block-diagonal weight, with the input gather, the bias
/// permuted like the outputs (or dropped when `with_bias` is false), and the output gather
/// back to the original channel order.
pub(crate) fn grouped_branch(
    egraph: &mut EGraph<SscNode, SscAnalysis>,
    m: &ConvMatch,
    blocks: &ssc_structure::BlockDiagonal,
    with_bias: bool,
) -> Id {
    let out_perm: Indices = Indices::from(&blocks.output_perm[..]);
    let in_perm: Indices = Indices::from(&blocks.input_perm[..]);
    let xin = gather_channels(egraph, m.x, &in_perm);
    let w = weight_op(
        egraph,
        WeightOp::Blocks {
            groups: blocks.groups,
            out_perm: out_perm.clone(),
            in_perm,
        },
        m.w,
    );
    let b = if with_bias && m.has_bias {
        if is_identity(&out_perm) {
            m.b
        } else {
            weight_op(egraph, WeightOp::Gather0 { idx: out_perm }, m.b)
        }
    } else {
        egraph.add(SscNode::NoBias)
    };
    let attrs = ConvAttrs {
        group: blocks.groups,
        ..m.attrs.clone()
    };
    let a = egraph.add(SscNode::ConvAttrs(Box::new(attrs)));
    let y = egraph.add(SscNode::Conv([a, xin, w, b]));
    gather_channels(egraph, y, &blocks.output_unperm())
}

/// A facts-driven conv rewrite: given a matched conv (over an original or a derived weight),
/// add at most one alternative.
/// Public so other crates can write conv rules; [`conv_rule`] turns one into an egg rewrite.
pub trait ConvRewrite: Send + Sync + 'static {
    /// The rule's name, in egg and in reports.
    fn name(&self) -> &'static str;

    /// Adds the alternative for the matched conv and returns its e-class, or `None` when the
    /// rule's guard does not hold (then it must not have added anything).
    fn alternative(&self, egraph: &mut EGraph<SscNode, SscAnalysis>, m: &ConvMatch) -> Option<Id>;
}

/// Adapts a [`ConvRewrite`] to egg's [`Applier`]: collects the [`ConvMatch`], asks the rule for
/// its alternative, unions it into the matched e-class and records the rule for the report.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConvApplier<R>(pub R);

impl<R: ConvRewrite> Applier<SscNode, SscAnalysis> for ConvApplier<R> {
    fn apply_one(
        &self,
        egraph: &mut EGraph<SscNode, SscAnalysis>,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<SscNode>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let rule = self.0.name();
        if SscAnalysis::is_disabled(egraph, eclass, rule) {
            return Vec::new();
        }
        let Some(m) = ConvMatch::new(egraph, subst) else {
            return Vec::new();
        };
        let Some(new) = self.0.alternative(egraph, &m) else {
            return Vec::new();
        };
        // A malformed alternative is a bug in the rule, never the model's fault: drop it, say
        // so in the report, and go on with the other rules.
        if let Err(why) = crate::validate::check_alternative(egraph, eclass, new, &[m.x, m.w, m.b])
        {
            let class = egraph.find(eclass);
            let known = egraph.analysis.dropped.iter();
            if !known
                .clone()
                .any(|(c, r, _)| *r == rule && egraph.find(*c) == class)
            {
                egraph.analysis.dropped.push((eclass, rule, why));
            }
            return Vec::new();
        }
        let root = egraph[new].nodes.first().cloned();
        // Only now, validated, may other rules match the convs inside it (rules compose).
        mark_composable(egraph, new, &[m.x, m.w, m.b]);
        if egraph.union(eclass, new) {
            egraph.analysis.fired.push((eclass, rule));
            if let Some(root) = root {
                egraph.analysis.alternatives.push((eclass, root, rule));
            }
            vec![eclass]
        } else {
            Vec::new()
        }
    }
}

/// The egg rewrite of a conv rule: [`ConvSearcher`] plus [`ConvApplier`], named
/// [`ConvRewrite::name`].
pub fn conv_rule<R: ConvRewrite>(r: R) -> Rewrite<SscNode, SscAnalysis> {
    Rewrite::new(r.name(), ConvSearcher, ConvApplier(r)).expect("variables are bound")
}
