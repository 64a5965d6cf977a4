//! The structured fixture models (tests/models/structured): rewrite each, check the function is
//! unchanged through the reference executor, and compare the MACs reached with the manifest's
//! per-layer ideal for the families the rules cover.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use ssc_ir::Model;
use ssc_rewrite::{rewrite_model, RewriteOptions, RewriteReport};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/models/structured")
}

fn load(file: &str) -> Model {
    let mut m = ssc_onnx::load_model(&dir().join(file)).unwrap();
    ssc_passes::infer_shapes(&mut m, &[]).unwrap();
    m
}

/// Conv MACs per original layer of a rewritten model: replacement ops are named
/// `{layer}/ssc{n}`, so they are summed under their layer's name.
fn conv_macs_by_layer(m: &Model) -> BTreeMap<String, u64> {
    let g = &m.graph;
    let mut out = BTreeMap::new();
    for op in g.op_ids() {
        let o = g.op(op);
        if o.desc.op_type != "Conv" {
            continue;
        }
        let shape = |v| {
            g.value(v)
                .ty
                .as_ref()
                .and_then(|t| t.tensor())
                .and_then(|t| t.static_shape())
                .unwrap()
        };
        let (w, y) = (shape(o.input(1).unwrap()), shape(o.output(0).unwrap()));
        let macs: usize = w.iter().product::<usize>() * y[0] * y[2..].iter().product::<usize>();
        let name = o.desc.name.split("/ssc").next().unwrap().to_string();
        *out.entry(name).or_insert(0) += macs as u64;
    }
    out
}

/// Rewrites one family's model (MAC costs, so the choice follows the MAC count the manifest
/// measures) and returns (report, dense, reached, ideal) MACs over the affected layers, where
/// "reached" counts Conv MACs only, as the manifest's ideal does; the branch `Add` of an SSC
/// split is reported separately by [`check_family`].
fn run_family(name: &str) -> (RewriteReport, u64, u64, u64) {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap())
            .unwrap();
    let entry = &manifest["models"][name];
    let model = load(entry["file"].as_str().unwrap());
    let mut after = model.clone();
    let report = rewrite_model(&mut after, &mac_opts()).unwrap();
    ssc_passes::infer_shapes(&mut after, &[]).unwrap();
    assert_same_function(&model, &after, 3);
    let by_layer = conv_macs_by_layer(&after);
    let (mut dense, mut reached, mut ideal) = (0u64, 0u64, 0u64);
    for (node, layer) in entry["layers"].as_object().unwrap() {
        if !layer["affected"].as_bool().unwrap() {
            continue;
        }
        let d = layer["dense_macs"].as_u64().unwrap();
        dense += d;
        ideal += layer["ideal_macs"].as_u64().unwrap();
        reached += by_layer[node.as_str()];
    }
    (report, dense, reached, ideal)
}

fn check_family(name: &str) {
    let (report, dense, reached, ideal) = run_family(name);
    let ratio = reached as f64 / ideal as f64;
    // The report's MACs also count the Adds joining SSC branches (one per output element).
    let report_after: u64 = report
        .layers
        .iter()
        .filter(|l| l.rewritten)
        .map(|l| l.macs_after)
        .sum();
    let report_before: u64 = report
        .layers
        .iter()
        .filter(|l| l.rewritten)
        .map(|l| l.macs_before)
        .sum();
    eprintln!(
        "{name}: affected layers dense {dense} -> {reached} conv MACs, ideal {ideal} ({:+.1}% vs ideal); rewritten layers report {report_before} -> {report_after} MACs incl. Adds; {} convs rewritten; e-graph {} nodes / {} classes, {} iterations, {:?}",
        (ratio - 1.0) * 100.0,
        report.rewritten,
        report.egraph_nodes,
        report.egraph_classes,
        report.iterations,
        report.saturation_time,
    );
    assert!(ratio <= 1.10, "{name}: {reached} MACs vs ideal {ideal}");
}

#[test]
fn ssc_block_reaches_ideal() {
    check_family("resnet18_ssc_block");
}

#[test]
fn ssc_shift_reaches_ideal() {
    check_family("resnet18_ssc_shift");
}

#[test]
fn ssc_dw_reaches_ideal() {
    check_family("resnet18_ssc_dw");
}

#[test]
fn blockdiag_reaches_ideal() {
    check_family("resnet18_blockdiag");
}

/// Families the rules do not (fully) cover must still come out exact; report what they reach.
#[test]
fn other_families_stay_exact() {
    for name in [
        "resnet18_dense",
        "resnet18_plus",
        "resnet18_zero_filters",
        "resnet18_const_kernels",
        "resnet18_in_blocks4",
        "resnet18_sparse90",
    ] {
        let (r, dense, reached, ideal) = run_family(name);
        eprintln!(
            "{name}: {dense} -> {reached} MACs (ideal {ideal}), {} rewritten",
            r.rewritten
        );
        assert!(reached <= dense);
    }
}

/// The optimisation-time budget: ResNet-50 (~100 MB of weights) in under a second, without
/// verification. Skipped when the model has not been generated (see the crate README).
#[test]
fn resnet50_rewrites_quickly() {
    let path = PathBuf::from("/tmp/full/resnet50_folded.onnx");
    if !path.exists() {
        eprintln!("skipped: {} not found", path.display());
        return;
    }
    let mut m = ssc_onnx::load_model(&path).unwrap();
    ssc_passes::infer_shapes(&mut m, &[]).unwrap();
    let r = rewrite_model(&mut m, &RewriteOptions::default()).unwrap();
    eprintln!(
        "resnet50: {:?} total, saturation {:?}, e-graph {} nodes / {} classes, {} iterations, {}",
        r.total_time,
        r.saturation_time,
        r.egraph_nodes,
        r.egraph_classes,
        r.iterations,
        r.stop_reason
    );
    ssc_passes::infer_shapes(&mut m, &[]).unwrap();
    // Unoptimised test builds are several times slower than release; the budget is for release.
    let budget = if cfg!(debug_assertions) { 10.0 } else { 1.0 };
    assert!(r.total_time.as_secs_f64() < budget, "{:?}", r.total_time);
}
