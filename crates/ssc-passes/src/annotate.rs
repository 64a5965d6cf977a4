//! JIT annotations: IR-only hints ([`ssc_ir::OpDesc::annotations`]) that tell the Cranelift JIT
//! what it may fuse into a conv's output loop (its bias, a residual Add, one activation) and
//! which layers hold mostly exact zeros. ONNX operators cannot exploit either, so the facade
//! records them last, on the final graph; they never reach an exported ONNX file.
//!
//! # Annotations
//!
//! **Epilogue**, on an f32 `Conv`, or a `Gemm` whose `B` is a constant: the chain of ops after
//! it that one output loop can compute, in this order, each part optional:
//!
//! 1. `bias`: the op's own bias input (Conv `B`, Gemm `C`);
//! 2. `add`: an `Add` whose other operand is a float tensor of exactly the op's static output
//!    shape (a residual; never a broadcast) that exists before the op runs: a graph input, a
//!    constant, or the output of an op earlier in topological order. So when two convs meet in
//!    one Add (a ResNet downsample branch, the two halves of a `plus-taps-split`), only the
//!    later one fuses it and reads the other's output;
//! 3. one activation: `relu`, `clip(min,max)` (opset < 11: the `min`/`max` attributes; later:
//!    constant scalar inputs, an absent one unbounded), `leaky_relu(alpha)`.
//!
//! The ResNet block's `conv -> Add -> Relu` is the full chain. Each value between fused ops has
//! exactly one consumer (an op input) and is neither a graph output nor read by a subgraph, so
//! no one else needs it in memory. A conv with nothing to fuse gets no annotation, or `bias`
//! alone. Keys (values are plain strings; float fields use Rust's shortest round-trip form):
//!
//! | key | value |
//! |---|---|
//! | `epilogue` | the steps, space-separated: `bias add relu`, `clip(0,6)`, `leaky_relu(0.1)` |
//! | `epilogue.add` | the name of the Add's other operand (only with an `add` step) |
//! | `epilogue.output` | the name of the value the fused chain produces |
//! | `epilogue.absorbed` | the names of the fused ops, comma-separated (`%` and `,` in a name are written `%25`, `%2C`); absent when nothing but the bias is fused |
//!
//! **Sparse**, on a `Conv`, `Gemm` or `MatMul` whose weight (input 1; for `MatMul`, input 0
//! when input 1 is not constant) is a constant f32 tensor with at least half of its elements
//! exactly zero: `sparse` = the density, non-zeros / elements, with 4 decimals (`"0.1000"`).
//!
//! Read them back with [`epilogue_of`] and [`sparse_density_of`].

use std::collections::HashMap;

use ssc_ir::{AttrValue, DataType, Graph, Model, OpDesc, OpId, Tensor, TensorData, ValueId};

use crate::util::is_onnx_op;

/// Annotation key: the epilogue's steps.
pub const EPILOGUE: &str = "epilogue";
/// Annotation key: the Add steps' other operands, in order (comma-separated, `%`-escaped).
pub const EPILOGUE_ADD: &str = "epilogue.add";
/// Annotation key: the value the fused chain produces.
pub const EPILOGUE_OUTPUT: &str = "epilogue.output";
/// Annotation key: the fused ops' names.
pub const EPILOGUE_ABSORBED: &str = "epilogue.absorbed";
/// Annotation key: the weight density of a layer marked sparse.
pub const SPARSE: &str = "sparse";
/// A weight is marked sparse when its density (non-zeros / elements) is at most this.
pub const SPARSE_MAX_DENSITY: f64 = 0.5;

/// One step of a fused epilogue, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub enum EpilogueStep {
    /// Add the op's own bias.
    Bias,
    /// Add the named tensor, of the output's shape.
    Add(String),
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, lo), hi)`.
    Clip(f32, f32),
    /// `x` if `x >= 0`, else `alpha * x`.
    LeakyRelu(f32),
}

/// A parsed `epilogue` annotation.
#[derive(Clone, Debug, PartialEq)]
pub struct EpilogueAnnotation {
    /// What to apply to each output element, in order.
    pub steps: Vec<EpilogueStep>,
    /// The name of the value the fused chain produces (the op's own output for `bias` alone).
    pub output: String,
    /// The names of the ops fused into the annotated one, in order.
    pub absorbed: Vec<String>,
}

/// A layer marked sparse.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SparseLayer {
    /// The op's name (or `OpType#index`).
    pub node: String,
    /// `Conv`, `Gemm` or `MatMul`.
    pub op_type: String,
    /// Non-zeros / elements of its constant weight.
    pub density: f64,
}

/// What [`annotate_for_jit`] recorded.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct AnnotateReport {
    /// Ops that got an `epilogue` annotation.
    pub epilogues: usize,
    /// Ops that got a `sparse` annotation, in topological order.
    pub sparse: Vec<SparseLayer>,
}

/// Records the epilogue and sparse annotations (see the module docs) on every op of `model`'s
/// main graph, replacing any the ops already carried, and says how many it wrote. Shapes and
/// types should be inferred first: without a static output shape no residual Add is fused.
pub fn annotate_for_jit(model: &mut Model) -> AnnotateReport {
    let opset = model.onnx_opset();
    let g = &mut model.graph;
    let mut report = AnnotateReport::default();
    let order = g.topo_order().unwrap_or_else(|_| g.op_ids());
    for &op in &order {
        let d = g.desc_mut(op);
        for key in [
            EPILOGUE,
            EPILOGUE_ADD,
            EPILOGUE_OUTPUT,
            EPILOGUE_ABSORBED,
            SPARSE,
        ] {
            d.remove_annotation(key);
        }
    }
    let position: HashMap<OpId, usize> = order.iter().enumerate().map(|(i, &o)| (o, i)).collect();
    for &op in &order {
        let notes = epilogue(g, op, opset, &position)
            .map(|e| {
                report.epilogues += 1;
                encode_epilogue(&e)
            })
            .unwrap_or_default();
        let sparse = sparse_density(g, op);
        let d = g.desc_mut(op);
        for (k, v) in notes {
            d.set_annotation(k, v);
        }
        if let Some(density) = sparse {
            d.set_annotation(SPARSE, format!("{density:.4}"));
            report.sparse.push(SparseLayer {
                node: g.op_label(op),
                op_type: g.op(op).desc.op_type.clone(),
                density,
            });
        }
    }
    report
}

/// The `epilogue` annotation of `desc`, parsed; `None` when it has none or it is malformed.
pub fn epilogue_of(desc: &OpDesc) -> Option<EpilogueAnnotation> {
    let mut adds = desc
        .annotation(EPILOGUE_ADD)
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(unescape);
    let steps = desc
        .annotation(EPILOGUE)?
        .split_whitespace()
        .map(|s| parse_step(s, &mut adds))
        .collect::<Option<Vec<_>>>()?;
    if adds.next().is_some() {
        return None;
    }
    let absorbed = match desc.annotation(EPILOGUE_ABSORBED) {
        None | Some("") => Vec::new(),
        Some(list) => list.split(',').map(unescape).collect(),
    };
    Some(EpilogueAnnotation {
        steps,
        output: desc.annotation(EPILOGUE_OUTPUT)?.to_string(),
        absorbed,
    })
}

/// The density recorded by the `sparse` annotation of `desc`, if any.
pub fn sparse_density_of(desc: &OpDesc) -> Option<f32> {
    desc.annotation(SPARSE)?.parse().ok()
}

fn parse_step(s: &str, adds: &mut impl Iterator<Item = String>) -> Option<EpilogueStep> {
    let args = |s: &str, name: &str| -> Option<Vec<f32>> {
        let inner = s.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')?;
        inner.split(',').map(|x| x.parse().ok()).collect()
    };
    Some(match s {
        "bias" => EpilogueStep::Bias,
        "add" => EpilogueStep::Add(adds.next()?),
        "relu" => EpilogueStep::Relu,
        _ => {
            if let Some([lo, hi]) = args(s, "clip").as_deref() {
                EpilogueStep::Clip(*lo, *hi)
            } else if let Some([alpha]) = args(s, "leaky_relu").as_deref() {
                EpilogueStep::LeakyRelu(*alpha)
            } else {
                return None;
            }
        }
    })
}

fn encode_epilogue(e: &EpilogueAnnotation) -> Vec<(&'static str, String)> {
    let mut adds = Vec::new();
    let steps: Vec<String> = e
        .steps
        .iter()
        .map(|s| match s {
            EpilogueStep::Bias => "bias".to_string(),
            EpilogueStep::Add(other) => {
                adds.push(escape(other));
                "add".to_string()
            }
            EpilogueStep::Relu => "relu".to_string(),
            EpilogueStep::Clip(lo, hi) => format!("clip({lo},{hi})"),
            EpilogueStep::LeakyRelu(a) => format!("leaky_relu({a})"),
        })
        .collect();
    let mut notes = vec![
        (EPILOGUE, steps.join(" ")),
        (EPILOGUE_OUTPUT, e.output.clone()),
    ];
    if !adds.is_empty() {
        notes.push((EPILOGUE_ADD, adds.join(",")));
    }
    if !e.absorbed.is_empty() {
        let names: Vec<String> = e.absorbed.iter().map(|n| escape(n)).collect();
        notes.push((EPILOGUE_ABSORBED, names.join(",")));
    }
    notes
}

fn escape(name: &str) -> String {
    name.replace('%', "%25").replace(',', "%2C")
}

fn unescape(name: &str) -> String {
    name.replace("%2C", ",").replace("%25", "%")
}

fn is_float(g: &Graph, v: ValueId) -> bool {
    g.value(v)
        .ty
        .as_ref()
        .and_then(|t| t.tensor())
        .is_some_and(|t| t.elem == DataType::Float)
}

/// The epilogue of `op`, when it is an f32 Conv or a Gemm with constant `B` and has a bias or
/// something to fuse.
fn epilogue(
    g: &Graph,
    op: OpId,
    opset: i64,
    position: &HashMap<OpId, usize>,
) -> Option<EpilogueAnnotation> {
    let o = g.op(op);
    let d = &o.desc;
    let kind_ok = d.is_onnx()
        && match d.op_type.as_str() {
            "Conv" => true,
            "Gemm" => o.input(1).is_some_and(|b| g.constant(b).is_some()),
            _ => false,
        };
    let y = o.output(0)?;
    if !kind_ok || !is_float(g, y) || o.outputs().len() != 1 {
        return None;
    }
    let mut steps = Vec::new();
    if o.input(2).is_some() {
        steps.push(EpilogueStep::Bias);
    }
    let (mut cur, mut absorbed) = (y, Vec::new());
    // Up to two residual Adds of exactly the output's shape (an SSC pair's branch sum, then
    // the block's skip connection), each with an operand that exists before `op` runs.
    for _ in 0..2 {
        let Some((add, slot)) = g
            .sole_consumer(cur)
            .filter(|&(c, _)| is_onnx_op(g, c, "Add"))
        else {
            break;
        };
        let a = g.op(add);
        let ([_, _], Some(shape), Some(out)) = (
            a.inputs(),
            g.static_shape(cur, DataType::Float),
            a.output(0),
        ) else {
            break;
        };
        let earlier = |v: ValueId| match g.producer(v) {
            None => true,
            Some((p, _)) => position.get(&p) < position.get(&op),
        };
        let other = a.input(1 - slot).filter(|&v| v != cur && earlier(v));
        let Some(other) =
            other.filter(|&v| g.static_shape(v, DataType::Float).as_ref() == Some(&shape))
        else {
            break;
        };
        steps.push(EpilogueStep::Add(g.value(other).name.clone()));
        absorbed.push(g.op_label(add));
        cur = out;
    }
    // One activation.
    if let Some((act, _)) = g.sole_consumer(cur) {
        if let Some(step) = activation_step(g, act, opset) {
            if let Some(out) = g.op(act).output(0) {
                steps.push(step);
                absorbed.push(g.op_label(act));
                cur = out;
            }
        }
    }
    (!steps.is_empty()).then(|| EpilogueAnnotation {
        steps,
        output: g.value(cur).name.clone(),
        absorbed,
    })
}

/// The activation `op` applies elementwise to its first input, as an epilogue step, when it is
/// one the JIT fuses: Relu, LeakyRelu, or Clip with constant bounds (an absent bound is no
/// bound, in every opset).
pub fn activation_step(g: &Graph, op: OpId, opset: i64) -> Option<EpilogueStep> {
    let o = g.op(op);
    let d = &o.desc;
    if !d.is_onnx() || o.outputs().len() != 1 {
        return None;
    }
    let float_attr = |name: &str| match d.attr(name).map(|a| &a.value) {
        None => Some(None),
        Some(AttrValue::Float(f)) => Some(Some(*f)),
        Some(_) => None,
    };
    match d.op_type.as_str() {
        "Relu" if o.inputs().len() == 1 => Some(EpilogueStep::Relu),
        "LeakyRelu" if o.inputs().len() == 1 => Some(EpilogueStep::LeakyRelu(
            float_attr("alpha")?.unwrap_or(0.01),
        )),
        "Clip" if opset < 11 => {
            if o.inputs().len() != 1 {
                return None;
            }
            // Unbounded by default, as the reference executor computes Clip-6 (which only
            // differs from the spec's numeric-limit defaults on infinite inputs).
            let lo = float_attr("min")?.unwrap_or(f32::NEG_INFINITY);
            let hi = float_attr("max")?.unwrap_or(f32::INFINITY);
            Some(EpilogueStep::Clip(lo, hi))
        }
        "Clip" => {
            // An absent bound is no bound; a present one must be a constant float scalar.
            let bound = |slot: usize, none: f32| -> Option<f32> {
                let Some(v) = o.input(slot) else {
                    return Some(none);
                };
                let t = g.constant(v)?;
                if t.dtype != DataType::Float || t.numel() != 1 {
                    return None;
                }
                t.to_f32_vec()?.first().copied()
            };
            if o.inputs().len() > 3 {
                return None;
            }
            Some(EpilogueStep::Clip(
                bound(1, f32::NEG_INFINITY)?,
                bound(2, f32::INFINITY)?,
            ))
        }
        _ => None,
    }
}

/// The density of `op`'s constant f32 weight when it is at most [`SPARSE_MAX_DENSITY`].
fn sparse_density(g: &Graph, op: OpId) -> Option<f64> {
    let o = g.op(op);
    let d = &o.desc;
    if !d.is_onnx() {
        return None;
    }
    let w = match d.op_type.as_str() {
        "Conv" | "Gemm" => g.constant(o.input(1)?)?,
        "MatMul" => o
            .input(1)
            .and_then(|v| g.constant(v))
            .or_else(|| o.input(0).and_then(|v| g.constant(v)))?,
        _ => return None,
    };
    let (nnz, total) = count_nonzero_f32(w)?;
    if total == 0 {
        return None;
    }
    let density = nnz as f64 / total as f64;
    (density <= SPARSE_MAX_DENSITY).then_some(density)
}

/// Non-zero and total elements of an f32 tensor (`-0.0` is zero).
fn count_nonzero_f32(t: &Tensor) -> Option<(usize, usize)> {
    if t.dtype != DataType::Float {
        return None;
    }
    let nnz = match &t.data {
        TensorData::Raw(b) => b
            .chunks_exact(4)
            .filter(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) != 0.0)
            .count(),
        _ => t.to_f32_vec()?.iter().filter(|&&x| x != 0.0).count(),
    };
    Some((nnz, t.numel()))
}
