//! Test helpers: a terse builder for small graphs, a text form of value types for assertions,
//! a deterministic random source and a before/after comparison through the reference executor.
#![allow(dead_code)] // each test binary uses a different subset

use ssc_ir::{
    Attribute, DataType, Dim, Graph, Model, OpDesc, OpId, OpsetImport, Tensor, TensorType, ValueId,
    ValueType,
};
use ssc_passes::{run_phase, PassOptions, PassReport};

/// A model under construction; values are created on first mention by name.
pub struct G {
    pub m: Model,
}

impl G {
    pub fn new(opset: i64) -> G {
        G::with_ir(opset, 8)
    }

    /// IR versions below 4 list every initializer as a graph input too.
    pub fn with_ir(opset: i64, ir_version: i64) -> G {
        let mut graph = Graph::new("test");
        graph.legacy_initializer_inputs = ir_version < 4;
        G {
            m: Model {
                ir_version,
                opset_imports: vec![OpsetImport {
                    domain: String::new(),
                    version: opset,
                }],
                graph,
                ..Model::default()
            },
        }
    }

    pub fn g(&mut self) -> &mut Graph {
        &mut self.m.graph
    }

    /// The value named `name`, created untyped if new.
    pub fn v(&mut self, name: &str) -> ValueId {
        match self.m.graph.value_by_name(name) {
            Some(v) => v,
            None => self.m.graph.add_value(name, None).unwrap(),
        }
    }

    /// A graph input of type `ty` (see [`ty`]).
    pub fn input(&mut self, name: &str, t: &str) -> ValueId {
        let v = self.v(name);
        self.m.graph.value_mut(v).ty = Some(ValueType::Tensor(ty(t)));
        let mut ins = self.m.graph.inputs().to_vec();
        ins.push(v);
        self.m.graph.set_inputs(ins);
        v
    }

    /// An initializer; below IR 4 also a graph input, as the spec requires.
    pub fn init(&mut self, name: &str, t: Tensor) -> ValueId {
        let v = self.v(name);
        self.m.graph.set_initializer(v, t);
        if self.m.graph.legacy_initializer_inputs {
            let mut ins = self.m.graph.inputs().to_vec();
            ins.push(v);
            self.m.graph.set_inputs(ins);
        }
        v
    }

    /// Declares `name`'s type (as value_info would).
    pub fn declare(&mut self, name: &str, t: &str) {
        let v = self.v(name);
        self.m.graph.value_mut(v).ty = Some(ValueType::Tensor(ty(t)));
    }

    /// An op; `""` in `ins`/`outs` is an empty optional slot.
    pub fn op(&mut self, op_type: &str, ins: &[&str], outs: &[&str]) -> OpId {
        self.op_a(op_type, ins, outs, vec![])
    }

    pub fn op_a(
        &mut self,
        op_type: &str,
        ins: &[&str],
        outs: &[&str],
        attrs: Vec<Attribute>,
    ) -> OpId {
        let mut desc = OpDesc::new(op_type).with_name(outs.first().map_or("", |s| s).to_string());
        desc.attrs = attrs;
        let ins: Vec<Option<ValueId>> = ins
            .iter()
            .map(|n| (!n.is_empty()).then(|| self.v(n)))
            .collect();
        let outs: Vec<Option<ValueId>> = outs
            .iter()
            .map(|n| (!n.is_empty()).then(|| self.v(n)))
            .collect();
        self.m.graph.add_op(desc, ins, outs).unwrap()
    }

    pub fn outputs(&mut self, names: &[&str]) {
        let vs: Vec<ValueId> = names.iter().map(|n| self.v(n)).collect();
        self.m.graph.set_outputs(vs);
    }

    /// `name`'s type in text form, `-` when untyped, `?` when the value does not exist.
    pub fn ty_of(&self, name: &str) -> String {
        let Some(v) = self.m.graph.value_by_name(name) else {
            return "?".into();
        };
        match &self.m.graph.value(v).ty {
            None => "-".into(),
            Some(ValueType::Tensor(t)) => fmt_ty(t),
            Some(ValueType::Opaque(_) | ValueType::Sequence(_) | ValueType::Optional(_)) => {
                "opaque".into()
            }
        }
    }

    /// Op types in topological order.
    pub fn ops(&self) -> Vec<String> {
        let g = &self.m.graph;
        g.topo_order()
            .unwrap()
            .into_iter()
            .map(|o| g.op(o).desc.op_type.clone())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.m.graph.value_by_name(name).is_some()
    }

    pub fn init_of(&self, name: &str) -> Option<&Tensor> {
        self.m.graph.initializer(self.m.graph.value_by_name(name)?)
    }

    pub fn input_names(&self) -> Vec<String> {
        let g = &self.m.graph;
        g.inputs()
            .iter()
            .map(|&v| g.value(v).name.clone())
            .collect()
    }

    pub fn output_names(&self) -> Vec<String> {
        let g = &self.m.graph;
        g.outputs()
            .iter()
            .map(|&v| g.value(v).name.clone())
            .collect()
    }

    /// The op producing `name`, by type.
    pub fn producer_type(&self, name: &str) -> Option<String> {
        let g = &self.m.graph;
        let (op, _) = g.producer(g.value_by_name(name)?)?;
        Some(g.op(op).desc.op_type.clone())
    }

    /// Runs one phase with default options.
    pub fn run(&mut self, phase: &str) -> PassReport {
        run_phase(&mut self.m, phase, &PassOptions::default()).unwrap()
    }
}

/// Parses `float[1,3,N,?]` (`?` unknown, a name is symbolic) or `float[*]` (unknown rank).
pub fn ty(s: &str) -> TensorType {
    let (elem, rest) = s.split_once('[').expect("type[dims]");
    let elem = DataType::from_name(elem).expect("element type");
    let dims = rest.strip_suffix(']').expect("closing ]");
    if dims == "*" {
        return TensorType { elem, shape: None };
    }
    TensorType {
        elem,
        shape: Some(shape(dims)),
    }
}

/// Parses `1,3,N,?` into dims.
pub fn shape(s: &str) -> Vec<Dim> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p {
            "?" => Dim::Unknown,
            _ => p
                .parse()
                .map_or_else(|_| Dim::Param(p.to_string()), Dim::Known),
        })
        .collect()
}

pub fn fmt_ty(t: &TensorType) -> String {
    match &t.shape {
        None => format!("{}[*]", t.elem),
        Some(s) => {
            let d: Vec<String> = s
                .iter()
                .map(|d| match d {
                    Dim::Known(n) => n.to_string(),
                    Dim::Param(p) => p.clone(),
                    Dim::Unknown => "?".into(),
                })
                .collect();
            format!("{}[{}]", t.elem, d.join(","))
        }
    }
}

pub fn ints(dims: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_i64(dims.to_vec(), v)
}

pub fn floats(dims: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(dims.to_vec(), v)
}

/// A deterministic pseudo-random source (an LCG), so tests need no extra crates and never flake.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * u
    }

    pub fn vec_f32(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi) as f32).collect()
    }
}

/// Runs `model` through the reference executor on `feeds` and returns the outputs by name.
pub fn execute(model: &Model, feeds: &[(String, Tensor)]) -> Vec<(String, Vec<f64>)> {
    ssc_exec::run_model(model, feeds)
        .expect("reference executor runs the model")
        .into_iter()
        .map(|(n, t)| (n, t.to_f64_vec().expect("numeric output")))
        .collect()
}

/// Relative L2 distance between two vectors: |a - b| / max(|a|, tiny).
pub fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let den: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    num / den.max(1e-300)
}
