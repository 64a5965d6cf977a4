//! `ssc-opt inspect`: opsets, interface, op counts, parameters and per-layer MACs of a model.

use std::collections::BTreeMap;

use ssc_ir::{AttrValue, Dim, Graph, Model, OpId, ValueId, ValueType};

/// A graph input or output as shown to users.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ValueSummary {
    pub name: String,
    /// Element type name, or `?` when undeclared.
    pub dtype: String,
    /// Dimensions as text: numbers, symbolic names, or `?`; `None` when the rank is unknown.
    pub shape: Option<Vec<String>>,
}

/// Multiply-accumulates of one Conv, ConvTranspose, Gemm or MatMul.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerMacs {
    pub node: String,
    pub op_type: String,
    /// `None` when shapes are not static.
    pub macs: Option<u64>,
}

/// Everything `inspect` reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelInfo {
    pub ir_version: i64,
    pub opsets: BTreeMap<String, i64>,
    pub producer: String,
    pub inputs: Vec<ValueSummary>,
    pub outputs: Vec<ValueSummary>,
    pub nodes: usize,
    pub op_counts: BTreeMap<String, usize>,
    pub initializers: usize,
    /// Constant nodes (weights some exporters, Paddle2ONNX among them, store as `Constant`
    /// nodes rather than initializers).
    pub constant_nodes: usize,
    /// Elements across all initializers and Constant nodes.
    pub parameters: u64,
    pub parameter_bytes: u64,
    pub layers: Vec<LayerMacs>,
    /// Sum over layers with known MACs.
    pub total_macs: u64,
    /// Layers whose MACs could not be computed.
    pub unknown_macs: usize,
    /// Graph inputs whose symbolic first (batch) dimension was taken as 1 to count MACs.
    pub batch_assumed: Vec<String>,
}

fn summary(g: &Graph, v: ValueId) -> ValueSummary {
    let val = g.value(v);
    let (dtype, shape) = match &val.ty {
        Some(ValueType::Tensor(t)) => (
            t.elem.name().into_owned(),
            t.shape.as_ref().map(|s| {
                s.iter()
                    .map(|d| match d {
                        Dim::Known(n) => n.to_string(),
                        Dim::Param(p) => p.clone(),
                        Dim::Unknown => "?".to_string(),
                    })
                    .collect()
            }),
        ),
        Some(ValueType::Opaque(_) | ValueType::Sequence(_) | ValueType::Optional(_)) => {
            ("(non-tensor)".to_string(), None)
        }
        None => ("?".to_string(), None),
    };
    ValueSummary {
        name: val.name.clone(),
        dtype,
        shape,
    }
}

/// The static shape of `v`: from its constant, else from its (declared or inferred) type.
pub(crate) fn static_shape(g: &Graph, v: ValueId) -> Option<Vec<usize>> {
    if let Some(t) = g.initializer(v) {
        return Some(t.dims.clone());
    }
    g.value(v).ty.as_ref()?.tensor()?.static_shape()
}

/// MACs of one op, when it is a Conv/ConvTranspose/Gemm/MatMul with static shapes.
pub(crate) fn op_macs(g: &Graph, op: OpId) -> Option<u64> {
    let o = g.op(op);
    let numel = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>();
    match o.desc.op_type.as_str() {
        // Each output element sums (Ci/group) * prod(kernel) products.
        "Conv" => {
            let w = static_shape(g, o.input(1)?)?;
            let y = static_shape(g, o.output(0)?)?;
            Some(numel(&y) * numel(w.get(1..)?))
        }
        // Each input element scatters into (Co/group) * prod(kernel) outputs.
        "ConvTranspose" => {
            let x = static_shape(g, o.input(0)?)?;
            let w = static_shape(g, o.input(1)?)?;
            Some(numel(&x) * numel(w.get(1..)?))
        }
        "Gemm" => {
            let a = static_shape(g, o.input(0)?)?;
            let y = static_shape(g, o.output(0)?)?;
            let trans_a = o.desc.get_int("transA").ok().flatten().unwrap_or(0) != 0;
            let k = if trans_a { *a.first()? } else { *a.get(1)? };
            Some(numel(&y) * k as u64)
        }
        "MatMul" => {
            let a = static_shape(g, o.input(0)?)?;
            let y = static_shape(g, o.output(0)?)?;
            Some(numel(&y) * *a.last()? as u64)
        }
        _ => None,
    }
}

/// The tensor a Constant node holds, whichever attribute carries it (`value`, or the list and
/// scalar forms of opset 12+), as (elements, bytes); `None` for other ops.
fn constant_node_size(g: &Graph, op: OpId) -> Option<(u64, u64)> {
    let d = &g.op(op).desc;
    if d.op_type != "Constant" || !d.is_onnx() {
        return None;
    }
    let a = d.attrs.first()?;
    Some(match &a.value {
        AttrValue::Tensor(t) => (t.numel() as u64, t.byte_len() as u64),
        AttrValue::Floats(v) => (v.len() as u64, 4 * v.len() as u64),
        AttrValue::Ints(v) => (v.len() as u64, 8 * v.len() as u64),
        AttrValue::Float(_) => (1, 4),
        AttrValue::Int(_) => (1, 8),
        _ => (0, 0),
    })
}

/// Inputs whose first dimension is symbolic, with the shape override that sets it to 1 (the
/// other dims kept as declared).
fn symbolic_batches(g: &Graph) -> Vec<(String, Vec<Dim>)> {
    g.inputs()
        .iter()
        .filter(|&&v| g.constant(v).is_none())
        .filter_map(|&v| {
            let t = g.value(v).ty.as_ref()?.tensor()?;
            let dims = t.shape.as_ref()?;
            if dims.is_empty() || matches!(dims[0], Dim::Known(_)) {
                return None;
            }
            let mut over = vec![Dim::Unknown; dims.len()];
            over[0] = Dim::Known(1);
            Some((g.value(v).name.clone(), over))
        })
        .collect()
}

/// Summarises a model. Call after shape inference so intermediate shapes are known. Where a
/// graph input has a symbolic batch dimension, MACs are counted for batch 1 (on a copy whose
/// shapes are re-inferred with that batch) and [`ModelInfo::batch_assumed`] says so.
pub fn inspect(model: &Model) -> ModelInfo {
    let mut info = inspect_as_is(model);
    let batches = symbolic_batches(&model.graph);
    if info.unknown_macs == 0 || batches.is_empty() {
        return info;
    }
    let mut one = model.clone();
    if ssc_passes::infer_shapes(&mut one, &batches).is_err() {
        return info;
    }
    let g = &one.graph;
    let order = g.topo_order().unwrap_or_else(|_| g.op_ids());
    let known: Vec<Option<u64>> = order
        .iter()
        .filter(|&&op| is_layer(g, op))
        .map(|&op| op_macs(g, op))
        .collect();
    if known.len() != info.layers.len() {
        return info;
    }
    let mut helped = false;
    for (l, m) in info.layers.iter_mut().zip(known) {
        if l.macs.is_none() && m.is_some() {
            l.macs = m;
            helped = true;
        }
    }
    if helped {
        info.total_macs = info.layers.iter().filter_map(|l| l.macs).sum();
        info.unknown_macs = info.layers.iter().filter(|l| l.macs.is_none()).count();
        info.batch_assumed = batches.into_iter().map(|(n, _)| n).collect();
    }
    info
}

/// Whether `op` is a layer whose MACs are counted.
fn is_layer(g: &Graph, op: OpId) -> bool {
    let d = &g.op(op).desc;
    d.is_onnx()
        && matches!(
            d.op_type.as_str(),
            "Conv" | "ConvTranspose" | "Gemm" | "MatMul"
        )
}

fn inspect_as_is(model: &Model) -> ModelInfo {
    let g = &model.graph;
    let mut op_counts = BTreeMap::new();
    let mut layers = Vec::new();
    let order = g.topo_order().unwrap_or_else(|_| g.op_ids());
    for &op in &order {
        let d = &g.op(op).desc;
        let key = if d.is_onnx() {
            d.op_type.clone()
        } else {
            format!("{}.{}", d.domain, d.op_type)
        };
        *op_counts.entry(key).or_insert(0) += 1;
        if is_layer(g, op) {
            layers.push(LayerMacs {
                node: g.op_label(op),
                op_type: d.op_type.clone(),
                macs: op_macs(g, op),
            });
        }
    }
    let inits = g.initializer_ids();
    let constants: Vec<(u64, u64)> = order
        .iter()
        .filter_map(|&op| constant_node_size(g, op))
        .collect();
    ModelInfo {
        ir_version: model.ir_version,
        opsets: model
            .opset_imports
            .iter()
            .map(|o| {
                let d = if o.domain.is_empty() {
                    "ai.onnx"
                } else {
                    &o.domain
                };
                (d.to_string(), o.version)
            })
            .collect(),
        producer: [
            model.producer_name.as_deref().unwrap_or(""),
            model.producer_version.as_deref().unwrap_or(""),
        ]
        .join(" ")
        .trim()
        .to_string(),
        inputs: g
            .inputs()
            .iter()
            .filter(|&&v| g.initializer(v).is_none())
            .map(|&v| summary(g, v))
            .collect(),
        outputs: g.outputs().iter().map(|&v| summary(g, v)).collect(),
        nodes: order.len(),
        op_counts,
        initializers: inits.len(),
        constant_nodes: constants.len(),
        parameters: inits
            .iter()
            .map(|&v| g.initializer(v).expect("listed").numel() as u64)
            .chain(constants.iter().map(|c| c.0))
            .sum(),
        parameter_bytes: inits
            .iter()
            .map(|&v| g.initializer(v).expect("listed").byte_len() as u64)
            .chain(constants.iter().map(|c| c.1))
            .sum(),
        total_macs: layers.iter().filter_map(|l| l.macs).sum(),
        unknown_macs: layers.iter().filter(|l| l.macs.is_none()).count(),
        layers,
        batch_assumed: Vec::new(),
    }
}

impl ModelInfo {
    /// A human-readable report.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let fmt_shape = |v: &ValueSummary| match &v.shape {
            Some(d) => format!("{}[{}]", v.dtype, d.join(",")),
            None => format!("{}[?]", v.dtype),
        };
        let _ = writeln!(s, "ir_version: {}", self.ir_version);
        let opsets: Vec<String> = self
            .opsets
            .iter()
            .map(|(d, v)| format!("{d} {v}"))
            .collect();
        let _ = writeln!(s, "opsets: {}", opsets.join(", "));
        if !self.producer.is_empty() {
            let _ = writeln!(s, "producer: {}", self.producer);
        }
        let _ = writeln!(s, "inputs:");
        for v in &self.inputs {
            let _ = writeln!(s, "  {:<24} {}", v.name, fmt_shape(v));
        }
        let _ = writeln!(s, "outputs:");
        for v in &self.outputs {
            let _ = writeln!(s, "  {:<24} {}", v.name, fmt_shape(v));
        }
        let _ = writeln!(s, "nodes: {}", self.nodes);
        for (op, n) in &self.op_counts {
            let _ = writeln!(s, "  {op:<24} {n}");
        }
        let constants = match self.constant_nodes {
            0 => String::new(),
            n => format!(" and {n} Constant nodes"),
        };
        let _ = writeln!(
            s,
            "parameters: {} in {} initializers{constants} ({})",
            self.parameters,
            self.initializers,
            human_bytes(self.parameter_bytes)
        );
        if !self.layers.is_empty() {
            let _ = writeln!(s, "MACs per layer:");
            for l in &self.layers {
                let m = l.macs.map_or("?".to_string(), |m| m.to_string());
                let _ = writeln!(s, "  {:<40} {:<14} {m:>14}", l.node, l.op_type);
            }
        }
        let unknown = if self.unknown_macs > 0 {
            format!(
                " ({} layers with unknown shapes not counted)",
                self.unknown_macs
            )
        } else {
            String::new()
        };
        let batch = if self.batch_assumed.is_empty() {
            String::new()
        } else {
            format!(
                ", batch 1 assumed for the symbolic batch of {}",
                self.batch_assumed.join(", ")
            )
        };
        let _ = writeln!(
            s,
            "total MACs: {} ({:.3} G){unknown}{batch}",
            self.total_macs,
            self.total_macs as f64 / 1e9
        );
        s
    }
}

/// Bytes as a short human string (KiB/MiB/GiB).
pub fn human_bytes(b: u64) -> String {
    let f = b as f64;
    if f >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", f / (1u64 << 30) as f64)
    } else if f >= (1u64 << 20) as f64 {
        format!("{:.2} MiB", f / (1u64 << 20) as f64)
    } else if f >= 1024.0 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{b} B")
    }
}
