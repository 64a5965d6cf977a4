//! Extraction result to IR: evaluates the chosen symbolic weights into new initializers, emits
//! the chosen ops in place of each rewritten conv, and removes what became dead.
//!
//! Every original value keeps its e-class's value id, so consumers of a rewritten conv need no
//! rewiring: the last op of the replacement writes the conv's own output value. New ops are
//! placed just before the conv they replace (in creation order), new names come from
//! [`ssc_ir::Graph::fresh_name`], and every new value is typed, so the result is deterministic
//! and passes shape inference.

use std::collections::HashMap;

use egg::{EGraph, Id, Language};
use ssc_ir::{
    Attribute, DataType, Dim, Graph, Model, OpDesc, OpId, Tensor, TensorType, ValueId, ValueType,
};
use ssc_structure::PAD;

use crate::analysis::{attrs_of, SscAnalysis};
use crate::build::Built;
use crate::extract::{cost_input, Extraction};
use crate::lang::{SscNode, WeightOp};
use crate::{DroppedRewrite, LayerReport, RewriteError};

/// A dense f32 tensor being evaluated (also by the analysis, for the facts of a rule's
/// symbolic weight: see [`crate::analysis::conv_weight_facts`]).
pub(crate) struct Dense {
    pub(crate) dims: Vec<usize>,
    pub(crate) data: Vec<f32>,
}

struct Ctx<'a> {
    egraph: &'a EGraph<SscNode, SscAnalysis>,
    choice: &'a HashMap<Id, SscNode>,
    /// Classes that already have a value in the graph.
    class_value: HashMap<Id, ValueId>,
    /// Evaluated symbolic weights.
    dense: HashMap<Id, Dense>,
    /// The op being replaced (placement anchor) and its name (naming base).
    anchor: OpId,
    base: String,
    counter: usize,
}

impl Ctx<'_> {
    fn node(&self, c: Id) -> Result<&SscNode, RewriteError> {
        self.choice
            .get(&self.egraph.find(c))
            .ok_or_else(|| RewriteError::Materialize(format!("class {c} has no extracted node")))
    }

    fn typed(&self, c: Id) -> Option<ValueType> {
        let shape = self.egraph[c].data.shape.as_ref()?;
        Some(ValueType::Tensor(TensorType {
            elem: DataType::Float,
            shape: Some(shape.iter().map(|&d| Dim::Known(d)).collect()),
        }))
    }

    fn add_op(
        &mut self,
        g: &mut Graph,
        desc: OpDesc,
        inputs: Vec<Option<ValueId>>,
        out: ValueId,
    ) -> Result<(), RewriteError> {
        self.counter += 1;
        let desc = desc.with_name(format!("{}/ssc{}", self.base, self.counter));
        // ONNX allows omitting trailing optional inputs, and runtimes are faster without an
        // explicit empty one (measured: ORT ran an SSC 1x1 branch with `[x, w, ""]` about 10%
        // slower than with `[x, w]`).
        let mut inputs = inputs;
        while inputs.last() == Some(&None) {
            inputs.pop();
        }
        let op = g.add_op(desc, inputs, vec![Some(out)])?;
        g.place_before(op, self.anchor);
        Ok(())
    }

    fn constant(&mut self, g: &mut Graph, base: &str, t: Tensor) -> ValueId {
        let ty = ValueType::Tensor(TensorType {
            elem: t.dtype,
            shape: Some(t.dims.iter().map(|&d| Dim::Known(d)).collect()),
        });
        let name = g.fresh_name(&format!("{}_{base}", self.base));
        let v = g.add_value(name, Some(ty)).expect("fresh names are unique");
        g.set_initializer(v, t);
        // Before IR version 4 every initializer must also be a graph input.
        if g.legacy_initializer_inputs {
            let mut inputs = g.inputs().to_vec();
            inputs.push(v);
            g.set_inputs(inputs);
        }
        v
    }

    /// The value of class `c`, emitting its chosen expression when it has none yet. With
    /// `target`, the root op writes that value.
    fn value(
        &mut self,
        g: &mut Graph,
        c: Id,
        target: Option<ValueId>,
    ) -> Result<ValueId, RewriteError> {
        let c = self.egraph.find(c);
        if target.is_none() {
            if let Some(&v) = self.class_value.get(&c) {
                return Ok(v);
            }
        }
        let node = self.node(c)?.clone();
        if let SscNode::WeightOp { .. } | SscNode::Literal(_) = node {
            let d = self.eval(c)?;
            let t = Tensor::from_f32(d.dims.clone(), &d.data);
            let v = self.constant(g, "w", t);
            self.class_value.insert(c, v);
            return Ok(v);
        }
        let (desc, inputs) = match &node {
            SscNode::Conv([a, x, w, b]) => {
                let attrs = attrs_of(self.egraph, *a)
                    .ok_or_else(|| RewriteError::Materialize("conv without attrs".into()))?
                    .clone();
                let xv = self.value(g, *x, None)?;
                let wv = self.value(g, *w, None)?;
                let bv = match self.node(*b)? {
                    SscNode::NoBias => None,
                    _ => Some(self.value(g, *b, None)?),
                };
                let i64s = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<i64>>();
                let mut pads = i64s(&attrs.pads_begin);
                pads.extend(i64s(&attrs.pads_end));
                let desc = OpDesc::new("Conv")
                    .with_attr(Attribute::ints("dilations", i64s(&attrs.dilations)))
                    .with_attr(Attribute::int("group", attrs.group as i64))
                    .with_attr(Attribute::ints("kernel_shape", i64s(&attrs.kernel)))
                    .with_attr(Attribute::ints("pads", pads))
                    .with_attr(Attribute::ints("strides", i64s(&attrs.strides)));
                (desc, vec![Some(xv), Some(wv), bv])
            }
            SscNode::Add([l, r]) | SscNode::Mul([l, r]) | SscNode::Concat([l, r]) => {
                let lv = self.value(g, *l, None)?;
                let rv = self.value(g, *r, None)?;
                let desc = match &node {
                    SscNode::Add(_) => OpDesc::new("Add"),
                    SscNode::Mul(_) => OpDesc::new("Mul"),
                    _ => OpDesc::new("Concat").with_attr(Attribute::int("axis", 1)),
                };
                (desc, vec![Some(lv), Some(rv)])
            }
            SscNode::AvgPool([a, x]) => {
                let attrs = attrs_of(self.egraph, *a)
                    .ok_or_else(|| RewriteError::Materialize("pool without attrs".into()))?
                    .clone();
                let xv = self.value(g, *x, None)?;
                let i64s = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<i64>>();
                let mut pads = i64s(&attrs.pads_begin);
                pads.extend(i64s(&attrs.pads_end));
                let desc = OpDesc::new("AveragePool")
                    .with_attr(Attribute::int("count_include_pad", 1))
                    .with_attr(Attribute::ints("kernel_shape", i64s(&attrs.kernel)))
                    .with_attr(Attribute::ints("pads", pads))
                    .with_attr(Attribute::ints("strides", i64s(&attrs.strides)));
                (desc, vec![Some(xv)])
            }
            SscNode::Gather { idx, arg } => {
                let xv = self.value(g, arg[0], None)?;
                let ix: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
                let iv = self.constant(g, "perm", Tensor::from_i64(vec![ix.len()], &ix));
                // The channel axis counted from the back (`1 - rank`, e.g. -3 for NCHW): the
                // same op in ONNX, but OpenVINO (2026.4) folds a channel permutation with a
                // non-negative axis into the next dense conv's weights with the inverse
                // permutation, computing a wrong result (docs/openvino_gather_conv.py); its
                // fusion skips negative axes.
                let rank = self.egraph[arg[0]].data.shape.as_ref().map(Vec::len);
                let axis = rank.map_or(1, |r| 1 - r as i64);
                (
                    OpDesc::new("Gather").with_attr(Attribute::int("axis", axis)),
                    vec![Some(xv), Some(iv)],
                )
            }
            other => {
                return Err(RewriteError::Materialize(format!(
                    "cannot emit {other} as an op"
                )))
            }
        };
        let out = match target {
            Some(t) => t,
            None => {
                let name = g.fresh_name(&format!("{}_t", self.base));
                g.add_value(name, self.typed(c))
                    .expect("fresh names are unique")
            }
        };
        self.add_op(g, desc, inputs, out)?;
        self.class_value.insert(c, out);
        Ok(out)
    }

    /// Evaluates a weight class to a dense f32 tensor.
    fn eval(&mut self, c: Id) -> Result<&Dense, RewriteError> {
        let c = self.egraph.find(c);
        if !self.dense.contains_key(&c) {
            let d = match self.node(c)?.clone() {
                SscNode::Weight(w) => {
                    let t = &self.egraph.analysis.weights[w as usize].tensor;
                    Dense {
                        dims: t.dims.clone(),
                        data: t.to_f32_vec().ok_or_else(|| {
                            RewriteError::Materialize("weight is not numeric".into())
                        })?,
                    }
                }
                SscNode::WeightOp { op, arg } => {
                    let src = self.eval(arg[0])?;
                    apply_weight_op(&op, src)
                }
                SscNode::Literal(l) => Dense {
                    dims: l.dims.clone(),
                    data: l.values(),
                },
                other => {
                    return Err(RewriteError::Materialize(format!(
                        "{other} is not a weight"
                    )))
                }
            };
            self.dense.insert(c, d);
        }
        Ok(&self.dense[&c])
    }
}

/// `op` applied to `src` (whose shape [`crate::validate`] checked against `op`).
pub(crate) fn apply_weight_op(op: &WeightOp, src: &Dense) -> Dense {
    let dims = &src.dims;
    let inner: usize = dims.iter().skip(2).product();
    match op {
        WeightOp::Blocks {
            groups,
            out_perm,
            in_perm,
        } => {
            let ci = dims[1];
            let (bo, bi) = (out_perm.len() / groups, in_perm.len() / groups);
            let mut data = Vec::with_capacity(out_perm.len() * bi * inner);
            for (j, &o) in out_perm.iter().enumerate() {
                for l in 0..bi {
                    let i = in_perm[(j / bo) * bi + l];
                    if o == PAD || i == PAD {
                        data.resize(data.len() + inner, 0.0);
                        continue;
                    }
                    let at = (o as usize * ci + i as usize) * inner;
                    data.extend_from_slice(&src.data[at..at + inner]);
                }
            }
            let mut nd = dims.clone();
            nd[0] = out_perm.len();
            nd[1] = bi;
            Dense { dims: nd, data }
        }
        WeightOp::MaskBlocks {
            groups,
            out_perm,
            in_perm,
        } => {
            let ci = dims[1];
            let (bo, bi) = (out_perm.len() / groups, in_perm.len() / groups);
            let mut data = src.data.clone();
            for (j, &o) in out_perm.iter().enumerate() {
                for l in 0..bi {
                    let i = in_perm[(j / bo) * bi + l];
                    if o == PAD || i == PAD {
                        continue;
                    }
                    let at = (o as usize * ci + i as usize) * inner;
                    data[at..at + inner].fill(0.0);
                }
            }
            Dense {
                dims: dims.clone(),
                data,
            }
        }
        WeightOp::Crop { begin, end } => {
            let taps: Vec<Vec<usize>> = begin
                .iter()
                .zip(end)
                .map(|(&b, &e)| (b..e).collect())
                .collect();
            pick_taps(src, dims, inner, &taps)
        }
        WeightOp::Taps { taps } => pick_taps(src, dims, inner, taps),
        WeightOp::ZeroTap { tap } => {
            // Row-major offset of the tap inside one kernel.
            let at = tap
                .iter()
                .zip(&dims[2..])
                .fold(0usize, |acc, (&t, &k)| acc * k + t);
            let mut data = src.data.clone();
            for k in data.chunks_mut(inner.max(1)) {
                k[at] = 0.0;
            }
            Dense {
                dims: dims.clone(),
                data,
            }
        }
        WeightOp::Gather0 { idx } => {
            let row: usize = dims.iter().skip(1).product();
            let mut data = Vec::with_capacity(idx.len() * row);
            for &i in idx.iter() {
                data.extend_from_slice(&src.data[i as usize * row..(i as usize + 1) * row]);
            }
            let mut nd = dims.clone();
            nd[0] = idx.len();
            Dense { dims: nd, data }
        }
        WeightOp::Gather1 { idx } => {
            let (co, ci) = (dims[0], dims[1]);
            let mut data = Vec::with_capacity(co * idx.len() * inner);
            for o in 0..co {
                for &i in idx.iter() {
                    let at = (o * ci + i as usize) * inner;
                    data.extend_from_slice(&src.data[at..at + inner]);
                }
            }
            let mut nd = dims.clone();
            nd[1] = idx.len();
            Dense { dims: nd, data }
        }
        WeightOp::KernelMean { scale } => {
            // f64 sums of equal f32 values are exact, so an exact constant kernel gives back its
            // value; the scale is a small integer (the pool size).
            let data = src
                .data
                .chunks(inner.max(1))
                .map(|k| {
                    let mean = k.iter().map(|&v| v as f64).sum::<f64>() / k.len() as f64;
                    (mean as f32) * *scale as f32
                })
                .collect();
            let mut nd = dims[..2].to_vec();
            nd.resize(dims.len(), 1);
            Dense { dims: nd, data }
        }
        WeightOp::Channel { batch, spatial } => {
            let plane: usize = spatial.iter().product();
            let mut one = Vec::with_capacity(src.data.len() * plane);
            for &v in &src.data {
                one.extend(std::iter::repeat_n(v, plane));
            }
            let data = one.repeat(*batch);
            let mut nd = vec![*batch, src.data.len()];
            nd.extend(spatial);
            Dense { dims: nd, data }
        }
    }
}

/// Whether class `c` is a constant (a weight, a symbolic weight or a literal).
/// The kernels of `src` (dims `[o, i, k...]`, `inner` elements per kernel) restricted to the
/// listed taps per spatial axis: the result has `taps[d].len()` taps along axis `d`, tap `j`
/// being source tap `taps[d][j]` (a crop is a contiguous list).
fn pick_taps(src: &Dense, dims: &[usize], inner: usize, taps: &[Vec<usize>]) -> Dense {
    let ks = &dims[2..];
    let nk: Vec<usize> = taps.iter().map(Vec::len).collect();
    let ninner: usize = nk.iter().product();
    let kernels = dims[0] * dims[1];
    let mut data = Vec::with_capacity(kernels * ninner);
    for k in 0..kernels {
        for t in 0..ninner {
            // Tap t of the picked kernel, row-major, mapped through `taps` per axis.
            let (mut rest, mut src_t, mut stride) = (t, 0usize, 1usize);
            for d in (0..nk.len()).rev() {
                let idx = taps[d][rest % nk[d]];
                rest /= nk[d];
                src_t += idx * stride;
                stride *= ks[d];
            }
            data.push(src.data[k * inner + src_t]);
        }
    }
    let mut nd = dims[..2].to_vec();
    nd.extend(nk);
    Dense { dims: nd, data }
}

fn is_const(egraph: &EGraph<SscNode, SscAnalysis>, choice: &HashMap<Id, SscNode>, c: Id) -> bool {
    matches!(
        choice.get(&egraph.find(c)),
        Some(SscNode::Weight(_) | SscNode::WeightOp { .. } | SscNode::Literal(_))
    )
}

/// Elements of constant class `c` (0 when it is not a constant or has no static shape).
fn const_numel(egraph: &EGraph<SscNode, SscAnalysis>, choice: &HashMap<Id, SscNode>, c: Id) -> u64 {
    if !is_const(egraph, choice, c) {
        return 0;
    }
    egraph[egraph.find(c)]
        .data
        .shape
        .as_ref()
        .map_or(0, |s| s.iter().product::<usize>() as u64)
}

/// MACs, parameters and a short description of the expression chosen for `c`, stopping at
/// classes in `boundary` (values that exist independently of this conv).
fn describe(
    egraph: &EGraph<SscNode, SscAnalysis>,
    choice: &HashMap<Id, SscNode>,
    boundary: &dyn Fn(Id) -> bool,
    node: &SscNode,
) -> (u64, u64, String) {
    let sub = |c: Id| -> Option<(u64, u64, String)> {
        let c = egraph.find(c);
        if boundary(c) {
            return None;
        }
        Some(describe(egraph, choice, boundary, choice.get(&c)?))
    };
    match node {
        SscNode::Conv([a, x, w, b]) => {
            let macs = cost_input(egraph, node).map_or(0, |c| c.macs);
            let numel = |c: Id| {
                egraph[c]
                    .data
                    .shape
                    .as_ref()
                    .map_or(0, |s| s.iter().product::<usize>() as u64)
            };
            let params = numel(*w) + numel(*b);
            let attrs = attrs_of(egraph, *a);
            let cin = egraph[*x]
                .data
                .shape
                .as_ref()
                .and_then(|s| s.get(1).copied());
            let form = match attrs {
                Some(at) if at.group == 1 => format!("Conv {} dense", at.kernel_str()),
                Some(at) if Some(at.group) == cin => format!("Conv {} depthwise", at.kernel_str()),
                Some(at) => format!("Conv {} G={}", at.kernel_str(), at.group),
                None => "Conv".to_string(),
            };
            let (im, ip, inner) = sub(*x).unwrap_or((0, 0, String::new()));
            // Only an input gather belongs to this conv's replacement: `Conv·perm`.
            let form = if inner.is_empty() {
                form
            } else {
                format!("{form}·{inner}")
            };
            (macs + im, params + ip, form)
        }
        SscNode::Add([l, r]) => {
            let own = cost_input(egraph, node).map_or(0, |c| c.macs);
            let (lm, lp, ls) = sub(*l).unwrap_or_default();
            if is_const(egraph, choice, *r) {
                let p = const_numel(egraph, choice, *r);
                return (own + lm, lp + p, format!("{ls} + bias"));
            }
            let (rm, rp, rs) = sub(*r).unwrap_or_default();
            (own + lm + rm, lp + rp, format!("{ls} + {rs}"))
        }
        SscNode::Gather { arg, idx } => {
            // A permutation keeps every channel once; anything else selects or repeats.
            let n_in = egraph[*arg.first().expect("gather has an input")]
                .data
                .shape
                .as_ref()
                .and_then(|s| s.get(1).copied());
            let mut seen = idx.to_vec();
            seen.sort_unstable();
            seen.dedup();
            let word = if Some(idx.len()) == n_in && seen.len() == idx.len() {
                "perm"
            } else {
                "gather"
            };
            match sub(arg[0]) {
                Some((m, p, s)) => (m, p, format!("{word}·{s}")),
                None => (0, 0, word.to_string()),
            }
        }
        SscNode::AvgPool([a, x]) => {
            let macs = cost_input(egraph, node).map_or(0, |c| c.macs);
            let k = attrs_of(egraph, *a).map_or(String::new(), |a| a.kernel_str());
            let (im, ip, inner) = sub(*x).unwrap_or_default();
            let form = if inner.is_empty() {
                format!("sumpool {k}")
            } else {
                format!("sumpool {k}·{inner}")
            };
            (macs + im, ip, form)
        }
        SscNode::Mul([l, r]) | SscNode::Concat([l, r]) => {
            // The right operand is a constant (signs, a constant plane).
            let own = cost_input(egraph, node).map_or(0, |c| c.macs);
            let (lm, lp, ls) = sub(*l).unwrap_or_default();
            let params = const_numel(egraph, choice, *r);
            let form = match node {
                SscNode::Mul(_) => format!("sign·{ls}"),
                _ => format!("concat({ls}, const)"),
            };
            (own + lm, lp + params, form)
        }
        other => (0, 0, other.to_string()),
    }
}

/// The classes inside the form chosen for `root` (not `root` itself), depth first in the order
/// of the chosen nodes' children, stopping at `boundary`; each class once.
fn nested_classes(
    egraph: &EGraph<SscNode, SscAnalysis>,
    choice: &HashMap<Id, SscNode>,
    boundary: &dyn Fn(Id) -> bool,
    root: Id,
) -> Vec<Id> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::from([root]);
    let mut stack: Vec<Id> = choice
        .get(&root)
        .map_or(Vec::new(), |n| n.children().iter().rev().copied().collect());
    while let Some(c) = stack.pop() {
        let c = egraph.find(c);
        if boundary(c) || !seen.insert(c) {
            continue;
        }
        out.push(c);
        if let Some(n) = choice.get(&c) {
            stack.extend(n.children().iter().rev());
        }
    }
    out
}

/// Appends `r` to `out` unless it is there already (first-reached order).
fn push_once(out: &mut Vec<String>, r: String) {
    if !out.contains(&r) {
        out.push(r);
    }
}

/// The rules that fired on classes inside the form chosen for `root` (not `root` itself),
/// stopping at `boundary`, in the order they are first reached.
fn nested_rules(
    egraph: &EGraph<SscNode, SscAnalysis>,
    choice: &HashMap<Id, SscNode>,
    boundary: &dyn Fn(Id) -> bool,
    fired: &HashMap<Id, Vec<String>>,
    root: Id,
) -> Vec<String> {
    let mut out = Vec::new();
    for c in nested_classes(egraph, choice, boundary, root) {
        for r in fired.get(&c).into_iter().flatten() {
            push_once(&mut out, r.clone());
        }
    }
    out
}

/// The rules whose alternative was chosen in a class inside the form chosen for `root` (not
/// `root` itself), stopping at `boundary`, in the order they are first reached.
fn nested_chosen_rules(
    egraph: &EGraph<SscNode, SscAnalysis>,
    choice: &HashMap<Id, SscNode>,
    boundary: &dyn Fn(Id) -> bool,
    root: Id,
) -> Vec<String> {
    let mut out = Vec::new();
    for c in nested_classes(egraph, choice, boundary, root) {
        if let Some(r) = choice.get(&c).and_then(|n| chosen_rule(egraph, c, n)) {
            push_once(&mut out, r);
        }
    }
    out
}

/// The rule whose alternative is `chosen` in class `c` (`None` for the original conv).
fn chosen_rule(egraph: &EGraph<SscNode, SscAnalysis>, c: Id, chosen: &SscNode) -> Option<String> {
    let canon = |n: &SscNode| n.clone().map_children(|x| egraph.find(x));
    let chosen = canon(chosen);
    egraph
        .analysis
        .alternatives
        .iter()
        .find(|(class, node, _)| egraph.find(*class) == c && canon(node) == chosen)
        .map(|(_, _, rule)| rule.to_string())
}

/// Applies the extraction to `model`; returns one report per conv some rule fired on, and the
/// alternatives dropped by validation, named by conv.
pub(crate) fn materialize(
    model: &mut Model,
    built: &Built,
    ex: &Extraction,
) -> Result<(Vec<LayerReport>, Vec<DroppedRewrite>), RewriteError> {
    let egraph = &built.egraph;
    let g = &mut model.graph;
    // Seed every original value; on a class shared by several values (identical convs merged by
    // hash-consing), the oldest value owns it.
    let mut owners: Vec<(ValueId, Id)> = built
        .value_class
        .iter()
        .map(|(&v, &c)| (v, egraph.find(c)))
        .collect();
    owners.sort_by_key(|&(v, _)| (g.value(v).order, v));
    let mut class_value = HashMap::new();
    for (v, c) in owners {
        class_value.entry(c).or_insert(v);
    }
    let originals: std::collections::HashSet<Id> = class_value.keys().copied().collect();
    let mut fired: HashMap<Id, Vec<String>> = HashMap::new();
    for (c, rule) in &egraph.analysis.fired {
        let list = fired.entry(egraph.find(*c)).or_default();
        if !list.iter().any(|r| r == rule) {
            list.push(rule.to_string());
        }
    }
    let mut ctx = Ctx {
        egraph,
        choice: &ex.choice,
        class_value,
        dense: HashMap::new(),
        anchor: OpId(Default::default()),
        base: String::new(),
        counter: 0,
    };
    let mut layers = Vec::new();
    let mut dropped = Vec::new();
    let mut removed_inputs = Vec::new();
    // An alternative dropped on a conv inside another rule's alternative (rules compose) has no
    // site of its own: report it too, so a broken composition is never silent.
    let site_classes: std::collections::HashSet<Id> = built
        .sites
        .iter()
        .map(|s| egraph.find(built.value_class[&s.out]))
        .collect();
    for (class, rule, reason) in &egraph.analysis.dropped {
        if !site_classes.contains(&egraph.find(*class)) {
            dropped.push(DroppedRewrite {
                node: "(a conv inside another rule's alternative)".into(),
                rule: rule.to_string(),
                reason: reason.clone(),
            });
        }
    }
    for site in &built.sites {
        let c = egraph.find(built.value_class[&site.out]);
        for (class, rule, reason) in &egraph.analysis.dropped {
            if egraph.find(*class) == c && ctx.class_value.get(&c) == Some(&site.out) {
                dropped.push(DroppedRewrite {
                    node: g.op_label(site.op),
                    rule: rule.to_string(),
                    reason: reason.clone(),
                });
            }
        }
        let Some(rules) = fired.get(&c) else {
            continue;
        };
        if ctx.class_value.get(&c) != Some(&site.out) {
            continue; // a duplicate of an earlier conv; left as it is
        }
        let orig = site.node.clone().map_children(|x| egraph.find(x));
        let chosen = ex
            .choice
            .get(&c)
            .ok_or_else(|| RewriteError::Materialize("conv class not extracted".into()))?
            .clone();
        let boundary = |x: Id| x != c && originals.contains(&x);
        let (mb, pb, fb) = describe(egraph, &ex.choice, &boundary, &orig);
        let (ma, pa, fa) = describe(egraph, &ex.choice, &boundary, &chosen);
        let name = g.op_label(site.op);
        // Rules that fired on the convs of the chosen form (a rule composed over another's
        // output) belong to this layer too.
        let mut rules = rules.clone();
        for r in nested_rules(egraph, &ex.choice, &boundary, &fired, c) {
            if !rules.contains(&r) {
                rules.push(r);
            }
        }
        let rule = (chosen != orig).then(|| chosen_rule(egraph, c, &chosen));
        let rule = rule.map(|r| r.unwrap_or_else(|| "(unknown rule)".to_string()));
        layers.push(LayerReport {
            node: name.clone(),
            form_before: fb,
            form_after: fa,
            macs_before: mb,
            macs_after: ma,
            params_before: pb,
            params_after: pa,
            rules_fired: rules,
            rewritten: chosen != orig,
            rule: rule.clone(),
            composed: if chosen != orig {
                nested_chosen_rules(egraph, &ex.choice, &boundary, c)
            } else {
                Vec::new()
            },
        });
        if chosen == orig {
            continue;
        }
        ctx.anchor = site.op;
        ctx.base = name;
        ctx.counter = 0;
        g.set_output(site.op, 0, None)?;
        let base = ctx.base.clone();
        let layer_error = |msg: String| RewriteError::MaterializeLayer {
            node: base.clone(),
            rule: rule.clone().unwrap_or_default(),
            msg,
        };
        match ctx.value(g, c, Some(site.out)) {
            Ok(v) if v == site.out => {}
            // A form that is only a constant cannot write the conv's output value.
            Ok(_) => {
                return Err(layer_error(
                    "the chosen form is a constant, not an op".into(),
                ))
            }
            Err(e) => return Err(layer_error(e.to_string())),
        }
        removed_inputs.extend(g.op(site.op).inputs().iter().flatten().copied());
        g.remove_op(site.op);
    }
    // Drop initializers only the replaced convs read.
    removed_inputs.sort();
    removed_inputs.dedup();
    for v in removed_inputs {
        if !g.is_used(v) && !g.is_graph_input(v) && g.initializer(v).is_some() {
            g.remove_initializer(v);
            g.remove_value(v);
        }
    }
    Ok((layers, dropped))
}
