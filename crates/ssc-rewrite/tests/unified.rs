//! Rule family d (unified weights and pruning): one positive and one near-miss fixture per
//! rule, each rewritten under MAC costs, checked for the form chosen and numerically against
//! the original through the reference executor; then the structured ResNet-18 fixtures of the
//! family against the manifest's ideal MACs.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use ssc_ir::{Model, Tensor};
use ssc_rewrite::rewrite_model;

/// `W[co, ci, k, k]` from a per-(o, i, tap) function.
fn weight_fn(co: usize, ci: usize, k: usize, f: impl Fn(usize, usize, usize) -> f32) -> Tensor {
    let mut v = Vec::with_capacity(co * ci * k * k);
    for o in 0..co {
        for i in 0..ci {
            for t in 0..k * k {
                v.push(f(o, i, t));
            }
        }
    }
    Tensor::from_f32(vec![co, ci, k, k], &v)
}

fn rand_table(n: usize, seed: u64) -> Vec<f32> {
    Lcg(seed).vec(n)
}

fn model(w: Tensor, bias: bool, attrs: &Attrs) -> Model {
    let ci = w.dims[1] * attrs.group;
    conv_model(w, bias, attrs, [2, ci, 9, 9])
}

// ----- constant kernels -> sum-pool + 1x1 -----

/// `W[o, i, :, :] = a[o, i]`, with every fifth kernel zero.
fn const_weight(co: usize, ci: usize, seed: u64) -> Tensor {
    let a = rand_table(co * ci, seed);
    weight_fn(co, ci, 3, |o, i, _| {
        if (o * ci + i).is_multiple_of(5) {
            0.0
        } else {
            a[o * ci + i]
        }
    })
}

#[test]
fn const_kernels_become_sumpool_then_pointwise() {
    let (m, r) = check(
        &model(const_weight(8, 8, 1), true, &Attrs::default()),
        Some("Conv 1x1 dense·sumpool 3x3"),
    );
    assert_eq!(op_types(&m), ["AveragePool", "Conv"]);
    assert_eq!(fired(&r), ["const-kernel-to-sumpool"]);
    // 8*8*9 -> 8*9 (pool) + 8*8 per output pixel.
    let l = &r.layers[0];
    assert_eq!(l.macs_before, 2 * 8 * 8 * 9 * 81);
    assert_eq!(l.macs_after, 2 * (8 * 9 + 8 * 8) * 81);
}

/// Old models: the rewriter must emit only what their opset and IR version allow (found by the
/// round-trip suite on ONNX's `light/` models: opset 9, IR 3, constant kernels).
#[test]
fn const_kernels_respect_old_opsets_and_ir_versions() {
    let with = |opset: i64, ir: i64| {
        let mut m = model(const_weight(8, 8, 1), true, &Attrs::default());
        m.opset_imports[0].version = opset;
        m.ir_version = ir;
        m.graph.legacy_initializer_inputs = ir < 4;
        m
    };
    // Opset 9 (AveragePool has count_include_pad but no ceil_mode) and IR 3 (initializers
    // must be graph inputs): it fires, and every new initializer is listed as an input.
    let (m, _) = check(&with(9, 3), Some("Conv 1x1 dense·sumpool 3x3"));
    let g = &m.graph;
    for v in g.initializer_ids() {
        let name = &g.value(v).name;
        assert!(
            g.is_graph_input(v) || name == "W" || name == "B",
            "{name} is not an input"
        );
    }
    let pool = g
        .op_ids()
        .into_iter()
        .find(|&o| g.op(o).desc.op_type == "AveragePool")
        .unwrap();
    assert!(g.op(pool).desc.attr("ceil_mode").is_none());
    // Opset 6 has no count_include_pad: nothing fires.
    check(&with(6, 3), None);
}

#[test]
fn const_kernels_with_stride_and_asymmetric_pads() {
    let a = Attrs {
        strides: vec![2, 2],
        pads: vec![0, 1, 2, 2],
        ..Attrs::default()
    };
    check(
        &model(const_weight(8, 8, 2), true, &a),
        Some("Conv 1x1 dense·sumpool 3x3"),
    );
}

#[test]
fn const_kernels_grouped_keep_their_groups() {
    let a = Attrs {
        group: 2,
        ..Attrs::default()
    };
    check(
        &model(const_weight(8, 4, 3), false, &a),
        Some("Conv 1x1 G=2·sumpool 3x3"),
    );
}

#[test]
fn const_kernels_near_miss_one_tap_differs() {
    let w = const_weight(8, 8, 4);
    let mut v = w.to_f32_vec().unwrap();
    v[(3 * 8 + 2) * 9 + 7] += 0.5;
    check(
        &model(
            Tensor::from_f32(w.dims.clone(), &v),
            true,
            &Attrs::default(),
        ),
        None,
    );
}

#[test]
fn const_kernels_near_miss_dilated() {
    let a = Attrs {
        dilations: vec![2, 2],
        pads: vec![2, 2, 2, 2],
        ..Attrs::default()
    };
    check(&model(const_weight(8, 8, 5), true, &a), None);
}

// ----- equal input channels summed -----

/// Input channel `i` reads column `class(i)` of a random table.
fn in_class_weight(co: usize, ci: usize, seed: u64, class: impl Fn(usize) -> usize) -> Tensor {
    let t = rand_table(co * ci * 9, seed);
    weight_fn(co, ci, 3, |o, i, tap| t[(o * ci + class(i)) * 9 + tap])
}

#[test]
fn input_blocks_sum_with_a_grouped_ones_conv() {
    let w = in_class_weight(8, 8, 6, |i| i / 4);
    let (m, r) = check(
        &model(w, true, &Attrs::default()),
        Some("Conv 3x3 dense·Conv 1x1 G=2"),
    );
    assert_eq!(op_types(&m), ["Conv", "Conv"]);
    assert_eq!(fired(&r), ["equal-inputs-summed"]);
    // 8 inputs summed into 2 (8 adds per pixel), then 8*2*9.
    assert_eq!(r.layers[0].macs_after, 2 * (8 + 8 * 2 * 9) * 81);
}

#[test]
fn input_classes_interleaved_get_a_gather() {
    let w = in_class_weight(8, 8, 7, |i| i % 2);
    let (m, _) = check(
        &model(w, true, &Attrs::default()),
        Some("Conv 3x3 dense·Conv 1x1 G=2·perm"),
    );
    assert_eq!(op_types(&m), ["Gather", "Conv", "Conv"]);
}

#[test]
fn input_classes_of_unequal_size_use_a_selector() {
    // {0, 1, 2} equal, the rest distinct: 6 classes.
    let w = in_class_weight(8, 8, 8, |i| if i < 3 { 0 } else { i });
    let (m, _) = check(
        &model(w, false, &Attrs::default()),
        Some("Conv 3x3 dense·Conv 1x1 dense"),
    );
    assert_eq!(op_types(&m), ["Conv", "Conv"]);
}

#[test]
fn input_classes_near_miss_one_output_differs() {
    let w = in_class_weight(8, 8, 9, |i| i / 4);
    let mut v = w.to_f32_vec().unwrap();
    // Output 5 breaks every class: each of its columns is shifted differently.
    for i in 0..8 {
        v[(5 * 8 + i) * 9 + 4] += 0.125 * i as f32;
    }
    check(
        &model(
            Tensor::from_f32(w.dims.clone(), &v),
            true,
            &Attrs::default(),
        ),
        None,
    );
}

// ----- duplicate / negated filters -----

/// Filter `o` is `scale(o)` times filter `rep(o)` of a random table.
fn out_class_weight(
    co: usize,
    ci: usize,
    seed: u64,
    rep: impl Fn(usize) -> usize,
    scale: impl Fn(usize) -> f32,
) -> Tensor {
    let t = rand_table(co * ci * 9, seed);
    weight_fn(co, ci, 3, |o, i, tap| {
        scale(o) * t[(rep(o) * ci + i) * 9 + tap]
    })
}

#[test]
fn duplicate_filters_without_bias_are_one_conv_and_a_gather() {
    let w = out_class_weight(8, 8, 10, |o| o % 4, |_| 1.0);
    let (m, r) = check(
        &model(w, false, &Attrs::default()),
        Some("gather·Conv 3x3 dense"),
    );
    assert_eq!(op_types(&m), ["Conv", "Gather"]);
    assert_eq!(fired(&r), ["duplicate-filters-gathered"]);
}

#[test]
fn negated_filters_with_bias_get_signs_and_the_bias_after() {
    let w = out_class_weight(8, 8, 11, |o| o % 4, |o| if o >= 4 { -1.0 } else { 1.0 });
    let (m, r) = check(
        &model(w, true, &Attrs::default()),
        Some("sign·gather·Conv 3x3 dense + bias"),
    );
    assert_eq!(op_types(&m), ["Conv", "Gather", "Mul", "Add"]);
    // 4*8*9 plus a Mul and an Add per output element.
    assert_eq!(r.layers[0].macs_after, 2 * (4 * 8 * 9 + 8 + 8) * 81);
}

#[test]
fn duplicate_filters_with_distinct_biases_add_the_bias_after() {
    let w = out_class_weight(8, 8, 12, |o| o % 4, |_| 1.0);
    let (m, _) = check(
        &model(w, true, &Attrs::default()),
        Some("gather·Conv 3x3 dense + bias"),
    );
    assert_eq!(op_types(&m), ["Conv", "Gather", "Add"]);
}

#[test]
fn duplicate_filters_near_miss_scaled_by_two() {
    let w = out_class_weight(8, 8, 13, |o| o % 4, |o| if o >= 4 { 2.0 } else { 1.0 });
    check(&model(w, true, &Attrs::default()), None);
}

// ----- zero output filters -----

fn zero_filter_weight(seed: u64, zero: &'static [usize]) -> Tensor {
    weight(8, 8, 3, seed, |o, _, _| !zero.contains(&o))
}

#[test]
fn zero_filter_with_bias_becomes_a_constant_channel() {
    // The conv's output is the graph's, so its two constant channels stay: the conv computes
    // its six other filters and one zero filter, a gather puts every channel back in place and
    // a per-channel vector restores the two biases (channel removal, not a rule).
    let before = model(zero_filter_weight(14, &[1, 6]), true, &Attrs::default());
    let mut m = before.clone();
    let r = ssc_rewrite::rewrite_model(&mut m, &common::mac_opts()).unwrap();
    assert_same_function(&before, &m, 7);
    assert_eq!(op_types(&m), ["Conv", "Gather", "Add"]);
    assert!(fired(&r).is_empty());
    assert_eq!(r.channels.producers_narrowed.len(), 1);
    assert_eq!(r.channels.producers_narrowed[0].filters_after, 7);
}

#[test]
fn zero_filter_without_bias_is_a_zero_channel() {
    let a = Attrs {
        strides: vec![2, 2],
        ..Attrs::default()
    };
    // One zero filter: computing a zero filter in its place saves nothing, so it stays.
    check(&model(zero_filter_weight(15, &[0]), false, &a), None);
}

#[test]
fn zero_filter_near_miss_one_nonzero_tap() {
    let w = zero_filter_weight(16, &[2]);
    let mut v = w.to_f32_vec().unwrap();
    v[(2 * 8 + 5) * 9 + 3] = 0.5;
    check(
        &model(
            Tensor::from_f32(w.dims.clone(), &v),
            true,
            &Attrs::default(),
        ),
        None,
    );
}

// ----- zero input columns -----

#[test]
fn zero_input_columns_are_sliced_away() {
    let w = weight(8, 8, 3, 17, |_, i, _| i != 2 && i != 5);
    let (m, r) = check(
        &model(w, true, &Attrs::default()),
        Some("Conv 3x3 dense·gather"),
    );
    assert_eq!(op_types(&m), ["Gather", "Conv"]);
    assert_eq!(fired(&r), ["zero-inputs-sliced"]);
    assert_eq!(r.layers[0].macs_after, 2 * 8 * 6 * 9 * 81);
}

#[test]
fn trailing_zero_input_columns_keep_their_gather() {
    // Regression (fuzzing, issue 15): the kept channels 0..3 are a prefix of the input's 6, so
    // the gather looked like the identity and was dropped, feeding 6 channels to a conv narrowed
    // to 3 (`input has 6 channels but weight expects 3 x group 1`, refused with exit 2).
    let w = weight(4, 6, 3, 19, |_, i, _| i < 3);
    let (m, r) = check(
        &model(w, true, &Attrs::default()),
        Some("Conv 3x3 dense·gather"),
    );
    assert_eq!(op_types(&m), ["Gather", "Conv"]);
    assert_eq!(fired(&r), ["zero-inputs-sliced"]);
}

#[test]
fn equal_inputs_before_trailing_zero_columns_keep_their_gather() {
    // The same bug through `equal-inputs-summed`: the class members 0..4 are a prefix of the
    // 8 inputs (4..8 are zero columns), so their gather must stay.
    let t = rand_table(8 * 8 * 9, 20);
    let w = weight_fn(8, 8, 3, |o, i, tap| {
        if i < 4 {
            t[(o * 8 + i / 2) * 9 + tap]
        } else {
            0.0
        }
    });
    let (m, r) = check(
        &model(w, true, &Attrs::default()),
        Some("Conv 3x3 dense·Conv 1x1 G=2·gather"),
    );
    assert_eq!(op_types(&m), ["Gather", "Conv", "Conv"]);
    assert!(fired(&r).contains(&"equal-inputs-summed".to_string()));
}

#[test]
fn zero_input_near_miss_one_nonzero_weight() {
    let w = weight(8, 8, 3, 18, |o, i, t| i != 2 || (o == 3 && t == 4));
    check(&model(w, true, &Attrs::default()), None);
}

// ----- structured ResNet-18 fixtures -----

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/models/structured")
}

/// Conv and AveragePool MACs per original layer (replacement ops are named `{layer}/ssc{n}`);
/// a pool costs one add per window tap and output element, as the manifest's ideal counts it.
fn macs_by_layer(m: &Model) -> BTreeMap<String, u64> {
    let g = &m.graph;
    let mut out = BTreeMap::new();
    for op in g.op_ids() {
        let o = g.op(op);
        let shape = |v| {
            g.value(v)
                .ty
                .as_ref()
                .and_then(|t| t.tensor())
                .and_then(|t| t.static_shape())
                .unwrap()
        };
        let macs: usize = match o.desc.op_type.as_str() {
            "Conv" => {
                let (w, y) = (shape(o.input(1).unwrap()), shape(o.output(0).unwrap()));
                w.iter().product::<usize>() * y[0] * y[2..].iter().product::<usize>()
            }
            "AveragePool" => {
                let k = o.desc.get_ints("kernel_shape").unwrap().unwrap();
                let y = shape(o.output(0).unwrap());
                k.iter().product::<i64>() as usize * y.iter().product::<usize>()
            }
            _ => continue,
        };
        let name = o.desc.name.split("/ssc").next().unwrap().to_string();
        *out.entry(name).or_insert(0) += macs as u64;
    }
    out
}

fn family(name: &str) {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap())
            .unwrap();
    let entry = &manifest["models"][name];
    let mut model = ssc_onnx::load_model(&dir().join(entry["file"].as_str().unwrap())).unwrap();
    ssc_passes::infer_shapes(&mut model, &[]).unwrap();
    let mut after = model.clone();
    let report = rewrite_model(&mut after, &mac_opts()).unwrap();
    ssc_passes::infer_shapes(&mut after, &[]).unwrap();
    let err = assert_same_function(&model, &after, 3);
    let by_layer = macs_by_layer(&after);
    let (mut dense, mut reached, mut ideal, mut layers) = (0u64, 0u64, 0u64, 0usize);
    for (node, layer) in entry["layers"].as_object().unwrap() {
        if !layer["affected"].as_bool().unwrap() {
            continue;
        }
        layers += 1;
        dense += layer["dense_macs"].as_u64().unwrap();
        ideal += layer["ideal_macs"].as_u64().unwrap();
        reached += by_layer[node.as_str()];
    }
    let ratio = reached as f64 / ideal as f64;
    let mut rules: Vec<String> = fired(&report);
    rules.sort();
    rules.dedup();
    eprintln!(
        "{name}: {layers} affected layers, dense {dense} -> {reached} conv+pool MACs, ideal {ideal} ({:+.1}% vs ideal); {} convs rewritten by {rules:?}; rel err {err:.1e}",
        (ratio - 1.0) * 100.0,
        report.rewritten,
    );
    assert!(ratio <= 1.10, "{name}: {reached} MACs vs ideal {ideal}");
}

#[test]
fn const_kernels_family_reaches_ideal() {
    family("resnet18_const_kernels");
}

#[test]
fn in_blocks4_family_reaches_ideal() {
    family("resnet18_in_blocks4");
}

#[test]
fn zero_filters_family_reaches_ideal() {
    family("resnet18_zero_filters");
}
