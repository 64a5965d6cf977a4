//! Shared test helpers: small conv models, seeded data, and the differential check that a
//! rewritten model computes what the original did (through the reference executor).

#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;

use ssc_ir::{Attribute, DataType, Dim, Model, OpDesc, OpsetImport, Tensor, TensorType, ValueType};
use ssc_rewrite::{rewrite_model, MacCost, RewriteOptions, RewriteReport};

/// Norm-wise relative tolerance. The rewrites are exact in real arithmetic; in f32 they only
/// change the order of summation (a grouped conv sums fewer zero products, the SSC split sums the
/// centre taps separately and adds the branches). Reordering a sum of K terms perturbs it by
/// about sqrt(K) * 2^-24 relative in practice (K * 2^-24 worst case); K <= 4608 here (512
/// channels x 9 taps) gives ~4e-6, so 1e-5 passes every reordering while a wrong weight or
/// pad, which moves whole terms, fails by orders of magnitude.
pub const TOL: f64 = 1e-5;

/// A deterministic generator (64-bit LCG), so tests need no RNG crate.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_f32(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Uniform in [-1, 1), never exactly zero (a planted zero must come from the fixture).
        let u = ((self.0 >> 40) as f32 + 0.5) / (1u64 << 24) as f32;
        2.0 * u - 1.0
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next_f32()).collect()
    }
}

pub fn f32_type(shape: &[usize]) -> Option<ValueType> {
    Some(ValueType::Tensor(TensorType {
        elem: DataType::Float,
        shape: Some(shape.iter().map(|&d| Dim::Known(d)).collect()),
    }))
}

/// Conv attributes for a fixture.
#[derive(Clone, Debug)]
pub struct Attrs {
    pub group: usize,
    pub pads: Vec<i64>,
    pub strides: Vec<i64>,
    pub dilations: Vec<i64>,
    pub auto_pad: Option<&'static str>,
}

impl Default for Attrs {
    fn default() -> Self {
        Attrs {
            group: 1,
            pads: vec![1, 1, 1, 1],
            strides: vec![1, 1],
            dilations: vec![1, 1],
            auto_pad: None,
        }
    }
}

/// A model `y = Conv(x, W, b)`, typed and shape-inferred.
pub fn conv_model(w: Tensor, bias: bool, attrs: &Attrs, x_shape: [usize; 4]) -> Model {
    let mut model = Model {
        ir_version: 8,
        opset_imports: vec![OpsetImport {
            domain: String::new(),
            version: 17,
        }],
        ..Model::default()
    };
    let g = &mut model.graph;
    let co = w.dims[0];
    let x = g.add_value("x", f32_type(&x_shape)).unwrap();
    let y = g.add_value("y", None).unwrap();
    let wv = g.add_value("W", None).unwrap();
    g.set_initializer(wv, w);
    let mut inputs = vec![Some(x), Some(wv)];
    if bias {
        let b = g.add_value("B", None).unwrap();
        g.set_initializer(b, Tensor::from_f32(vec![co], &Lcg(99).vec(co)));
        inputs.push(Some(b));
    }
    let mut d = OpDesc::new("Conv")
        .with_name("conv")
        .with_attr(Attribute::int("group", attrs.group as i64))
        .with_attr(Attribute::ints("strides", attrs.strides.clone()))
        .with_attr(Attribute::ints("dilations", attrs.dilations.clone()));
    match attrs.auto_pad {
        Some(p) => d = d.with_attr(Attribute::string("auto_pad", p)),
        None => d = d.with_attr(Attribute::ints("pads", attrs.pads.clone())),
    }
    g.add_op(d, inputs, vec![Some(y)]).unwrap();
    g.set_inputs(vec![x]);
    g.set_outputs(vec![y]);
    ssc_passes::infer_shapes(&mut model, &[]).unwrap();
    model
}

/// A weight `W[co, ci, k, k]` with random values where `keep(o, i, tap)` and zeros elsewhere.
pub fn weight(
    co: usize,
    ci: usize,
    k: usize,
    seed: u64,
    keep: impl Fn(usize, usize, usize) -> bool,
) -> Tensor {
    let mut r = Lcg(seed);
    let mut v = vec![0.0f32; co * ci * k * k];
    for o in 0..co {
        for i in 0..ci {
            for t in 0..k * k {
                let x = r.next_f32();
                if keep(o, i, t) {
                    v[((o * ci + i) * k * k) + t] = x;
                }
            }
        }
    }
    Tensor::from_f32(vec![co, ci, k, k], &v)
}

/// Seeded feeds for every graph input with a static f32 shape.
pub fn feeds(model: &Model, seed: u64) -> Vec<(String, Tensor)> {
    let g = &model.graph;
    let mut r = Lcg(seed);
    g.inputs()
        .iter()
        .filter(|&&v| g.constant(v).is_none())
        .map(|&v| {
            let val = g.value(v);
            let shape = val
                .ty
                .as_ref()
                .unwrap()
                .tensor()
                .unwrap()
                .static_shape()
                .unwrap();
            let n = shape.iter().product();
            (val.name.clone(), Tensor::from_f32(shape, &r.vec(n)))
        })
        .collect()
}

/// `|a - b| / |b|` over all elements.
pub fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims, b.dims, "output shapes differ");
    let (a, b) = (a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
    let num: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den.max(1e-300)).sqrt()
}

/// Runs both models on the same seeded feeds and asserts every output agrees within [`TOL`].
pub fn assert_same_function(before: &Model, after: &Model, seed: u64) -> f64 {
    let f = feeds(before, seed);
    let ya = ssc_exec::run_model(before, &f).unwrap();
    let yb = ssc_exec::run_model(after, &f).unwrap();
    assert_eq!(ya.len(), yb.len());
    let mut worst = 0.0f64;
    for ((na, ta), (nb, tb)) in ya.iter().zip(&yb) {
        assert_eq!(na, nb);
        let e = rel_err(tb, ta);
        assert!(e <= TOL, "output {na}: relative error {e:e} > {TOL:e}");
        worst = worst.max(e);
    }
    worst
}

/// Op types of a model in topological order.
pub fn op_types(model: &Model) -> Vec<String> {
    let g = &model.graph;
    g.topo_order()
        .unwrap()
        .into_iter()
        .map(|o| g.op(o).desc.op_type.clone())
        .collect()
}

/// Rewrite options that price alternatives by MACs, so which form wins depends on the structure
/// alone, never on measured timings.
pub fn mac_opts() -> RewriteOptions {
    RewriteOptions {
        cost: Arc::new(MacCost),
        ..RewriteOptions::default()
    }
}

/// Rewrites a copy of `model` with [`mac_opts`], checks it still infers and computes the same
/// function, and checks the form after (`None`: nothing may change). Returns the rewritten model
/// and the report.
pub fn check(model: &Model, expect: Option<&str>) -> (Model, RewriteReport) {
    let mut after = model.clone();
    let report = rewrite_model(&mut after, &mac_opts()).unwrap();
    ssc_passes::infer_shapes(&mut after, &[]).unwrap();
    assert_same_function(model, &after, 7);
    match expect {
        Some(form) => {
            assert_eq!(report.rewritten, 1, "{report:#?}");
            assert_eq!(report.layers[0].form_after, form, "{report:#?}");
            assert!(report.layers[0].macs_after < report.layers[0].macs_before);
        }
        None => {
            assert_eq!(report.rewritten, 0, "{report:#?}");
            assert_eq!(op_types(&after), op_types(model));
        }
    }
    (after, report)
}

/// Every rule that fired, layer by layer.
pub fn fired(r: &RewriteReport) -> Vec<String> {
    r.layers
        .iter()
        .flat_map(|l| l.rules_fired.clone())
        .collect()
}
