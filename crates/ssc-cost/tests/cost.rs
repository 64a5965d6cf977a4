//! Tests of the cost model against the committed calibration: the table loads and is sane,
//! the Rust evaluation reproduces the Python fit, and the decisions the rewrite engine relies
//! on (measured in ORT, numbers in the comments) come out the way they measured.

use ssc_cost::{
    CalibratedCost, ConvShape, CostError, CostModel, MacCost, NodeCostInput, OpKind, F32_BYTES,
};

const TABLE: &str = include_str!("../calibration.json");

fn model() -> CalibratedCost {
    CalibratedCost::default()
}

/// A square 2-D conv, batch 1, bias, "same" padding.
fn conv(cin: usize, cout: usize, groups: usize, k: usize, hw: usize) -> NodeCostInput {
    ConvShape::new_2d(cin, cout, groups, k, 1, hw).cost_input()
}

fn add(c: usize, hw: usize) -> NodeCostInput {
    NodeCostInput::elementwise((c * hw * hw) as u64, 2)
}

/// Every kind of node, over a spread of sizes, for the property tests.
fn sweep() -> Vec<NodeCostInput> {
    let mut v = Vec::new();
    for &(c, hw) in &[(8, 8), (64, 56), (256, 14), (512, 7), (1024, 1)] {
        for &k in &[1, 3, 5, 7] {
            let mut g = 1;
            while g <= c {
                v.push(conv(c, c, g, k, hw));
                g *= 2;
            }
        }
        let n = (c * hw * hw) as u64;
        v.push(NodeCostInput::elementwise(n, 1));
        v.push(NodeCostInput::elementwise(n, 2));
        v.push(NodeCostInput::gather(n, n, c as u64));
        v.push(NodeCostInput::matmul(1, c as u64, 1000, true));
        for kind in [OpKind::Pool, OpKind::Other] {
            v.push(NodeCostInput {
                kind,
                macs: 9 * n,
                bytes_in: n * F32_BYTES,
                bytes_out: n * F32_BYTES,
                weight_bytes: 0,
            });
        }
    }
    v
}

#[test]
fn committed_table_loads() {
    let m = model();
    let t = m.calibration();
    assert!(!t.machine.cpu_model.is_empty());
    assert_eq!(t.machine.threads, 1);
    assert!(t.nchwc_block >= 8);
    for kind in ["conv", "pool", "elementwise", "gather", "matmul", "other"] {
        assert!(!t.buckets[kind].is_empty(), "{kind}");
    }
    assert!(t.samples.len() > 100, "{} samples", t.samples.len());
    assert!(!t.decisions.is_empty());
    assert_eq!(CalibratedCost::from_json(TABLE).unwrap(), m);
}

#[test]
fn costs_are_finite_and_non_negative() {
    let m = model();
    let mut nodes = sweep();
    nodes.extend(m.calibration().samples.iter().map(|s| s.input.clone()));
    // Degenerate and extreme inputs must not produce NaN, infinity or a negative cost.
    nodes.push(NodeCostInput {
        kind: OpKind::Conv {
            groups: 0,
            cin_per_group: 0,
            cout_per_group: 0,
            kernel: vec![],
            stride: vec![],
        },
        macs: 0,
        bytes_in: 0,
        bytes_out: 0,
        weight_bytes: 0,
    });
    nodes.push(NodeCostInput {
        kind: OpKind::Other,
        macs: u64::MAX,
        bytes_in: u64::MAX,
        bytes_out: u64::MAX,
        weight_bytes: u64::MAX,
    });
    for n in &nodes {
        for c in [m.node_cost(n), MacCost.node_cost(n)] {
            assert!(c.is_finite() && c >= 0.0, "{c} for {n:?}");
        }
    }
}

#[test]
fn monotonic_in_macs_within_a_kind() {
    let m = model();
    for n in sweep() {
        let mut prev = -1.0;
        for scale in [0u64, 1, 2, 3, 10, 100, 10_000] {
            let bigger = NodeCostInput {
                macs: n.macs.saturating_mul(scale),
                ..n.clone()
            };
            let c = m.node_cost(&bigger);
            assert!(
                c >= prev,
                "cost fell from {prev} to {c} as MACs grew: {bigger:?}"
            );
            prev = c;
        }
    }
}

/// The Rust evaluation (bucket choice and formula) reproduces the relative errors the Python
/// fit reported per kind, so the two implementations of the predicates agree.
#[test]
fn rust_reproduces_the_python_fit() {
    let m = model();
    let json: serde_json::Value = serde_json::from_str(TABLE).unwrap();
    let by_kind = json["fit_by_kind"].as_object().unwrap();
    for (kind, fit) in by_kind {
        let mut errs: Vec<f64> = m
            .calibration()
            .samples
            .iter()
            .filter(|s| kind_key(&s.input.kind) == kind)
            .map(|s| (m.node_cost(&s.input) - s.measured_us).abs() / s.measured_us)
            .collect();
        errs.sort_by(f64::total_cmp);
        let n = errs.len();
        assert_eq!(n as u64, fit["samples"].as_u64().unwrap(), "{kind}");
        let median = if n % 2 == 1 {
            errs[n / 2]
        } else {
            (errs[n / 2 - 1] + errs[n / 2]) / 2.0
        };
        let want = fit["median_rel_err"].as_f64().unwrap();
        assert!(
            (median - want).abs() <= 0.002 + 0.01 * want,
            "{kind}: Rust median rel err {median}, Python {want}"
        );
    }
}

fn kind_key(k: &OpKind) -> &'static str {
    match k {
        OpKind::Conv { .. } => "conv",
        OpKind::Pool => "pool",
        OpKind::Elementwise => "elementwise",
        OpKind::Gather => "gather",
        OpKind::MatMul => "matmul",
        OpKind::Other => "other",
    }
}

/// The SSC rewrite of ResNet-18's layer3 3x3 conv (256 -> 256 at 14x14, G = 4 diagonal blocks
/// plus pointwise off-block taps) must win over the dense conv.
/// Measured (calibration decision `ssc_g4_c256_hw14`, 2026-11-23): dense 2150 us, grouped4 +
/// 1x1 + Add 829 us.
#[test]
fn ssc_rewrite_beats_dense_on_resnet18_layer3() {
    let m = model();
    let dense = conv(256, 256, 1, 3, 14);
    let rewrite = [
        conv(256, 256, 4, 3, 14),
        conv(256, 256, 1, 1, 14),
        add(256, 14),
    ];
    let (d, r) = (m.node_cost(&dense), m.total_cost(&rewrite));
    assert!(r < d, "rewrite {r} us vs dense {d} us");
    // And by a wide margin, as measured (2.6x).
    assert!(d / r > 2.0, "rewrite {r} us vs dense {d} us");
}

/// Tiny groups: a 3x3 conv whose weights are block-diagonal with 128 blocks of 2 channels
/// (256 channels, 14x14). Fewest MACs is group=128, but ORT runs 2 channels per group as 128
/// small im2col + GEMM calls; merging blocks into group=16 (16 channels per group, zeros
/// inside, 8x the MACs) takes ORT's NCHWc kernels.
/// Measured (calibration decision `blockdiag_2cpg_c256_hw14`, 2026-11-23): dense 2125 us,
/// group=128 247 us, group=16 205 us. The calibrated model must prefer group=16; MacCost
/// prefers 128.
#[test]
fn tiny_groups_lose_to_coarser_aligned_groups() {
    let m = model();
    let g128 = conv(256, 256, 128, 3, 14);
    let g16 = conv(256, 256, 16, 3, 14);
    let dense = conv(256, 256, 1, 3, 14);
    assert!(m.node_cost(&g16) < m.node_cost(&g128));
    assert!(m.node_cost(&g128) < m.node_cost(&dense));
    // The MAC count gets the first decision wrong: the reason this crate exists.
    assert!(MacCost.node_cost(&g128) < MacCost.node_cost(&g16));
}

/// Many small nodes: a grouped conv on a small map (64 channels, 7x7, G = 16, 4 channels per
/// group) as one Conv(group=16), or as Split + 16 separate 4 -> 4 convs + Concat (fewer
/// bytes of weights, the same MACs, 18 nodes).
/// Measured (calibration decision `split_g16_c64_hw7`, 2026-11-23): one grouped node 23 us,
/// split form 34 us (the dense 64 -> 64 conv, 16x the MACs: 32 us). The single node must cost
/// least.
#[test]
fn one_grouped_node_beats_many_small_nodes() {
    let m = model();
    let n_el = 64 * 7 * 7;
    let data_move = NodeCostInput {
        kind: OpKind::Other,
        macs: n_el,
        bytes_in: n_el * F32_BYTES,
        bytes_out: n_el * F32_BYTES,
        weight_bytes: 0,
    };
    let mut split = vec![data_move.clone()];
    split.extend(std::iter::repeat_n(conv(4, 4, 1, 3, 7), 16));
    split.push(data_move);
    let one = conv(64, 64, 16, 3, 7);
    assert!(m.node_cost(&one) < m.total_cost(&split));
    // The convs do the same MACs: a MAC count cannot tell the two forms apart.
    let split_conv_macs: u64 = split[1..17].iter().map(|n| n.macs).sum();
    assert_eq!(one.macs, split_conv_macs);
}

/// Every decision in the table whose fastest form measured at least 10% faster than the
/// runner-up is predicted the same way (closer calls are within measurement noise).
#[test]
fn table_decisions_agree_with_measurement() {
    let m = model();
    for d in &m.calibration().decisions {
        let fastest = d.fastest_measured().unwrap();
        let runner_up = d
            .alternatives
            .iter()
            .filter(|a| a.name != fastest.name)
            .map(|a| a.measured_us)
            .fold(f64::INFINITY, f64::min);
        if runner_up < 1.1 * fastest.measured_us {
            continue;
        }
        let predicted = d
            .alternatives
            .iter()
            .min_by(|a, b| m.total_cost(&a.nodes).total_cmp(&m.total_cost(&b.nodes)))
            .unwrap();
        assert_eq!(
            predicted.name, fastest.name,
            "decision {}: predicted {:?}, measured {:?}",
            d.name, predicted.name, fastest.name
        );
    }
}

/// Loading a damaged table fails with the matching error; `edit` changes the committed JSON.
fn check_err(edit: impl FnOnce(&mut serde_json::Value), want: impl Fn(&CostError) -> bool) {
    let mut v: serde_json::Value = serde_json::from_str(TABLE).unwrap();
    edit(&mut v);
    match CalibratedCost::from_json(&v.to_string()) {
        Ok(_) => panic!("damaged table loaded"),
        Err(e) => assert!(want(&e), "unexpected error: {e}"),
    }
}

#[test]
fn damaged_tables_are_rejected() {
    assert!(matches!(
        CalibratedCost::from_json("{"),
        Err(CostError::Json(_))
    ));
    check_err(
        |v| v["format"] = "other".into(),
        |e| matches!(e, CostError::Format(_)),
    );
    check_err(
        |v| v["version"] = 99.into(),
        |e| matches!(e, CostError::Version { found: 99, .. }),
    );
    check_err(
        |v| {
            v["buckets"].as_object_mut().unwrap().remove("gather");
        },
        |e| matches!(e, CostError::MissingKind(k) if k == "gather"),
    );
    check_err(
        |v| v["buckets"]["conv"][0]["ns_per_mac"] = (-1.0).into(),
        |e| {
            matches!(
                e,
                CostError::BadCoefficient {
                    name: "ns_per_mac",
                    ..
                }
            )
        },
    );
    check_err(
        |v| {
            let conv = v["buckets"]["conv"].as_array_mut().unwrap();
            conv.pop();
        },
        |e| matches!(e, CostError::NoCatchAll { .. }),
    );
    check_err(
        |v| v["buckets"]["pool"][0]["when"] = serde_json::json!({"groups": [1, 1]}),
        |e| matches!(e, CostError::PredicateOnNonConv { .. }),
    );
    check_err(
        |v| v["buckets"]["conv"][0]["when"]["colour"] = "red".into(),
        |e| matches!(e, CostError::Json(_)),
    );
    check_err(
        |v| v["nchwc_block"] = 0.into(),
        |e| matches!(e, CostError::ZeroBlock),
    );
}

#[test]
fn committed_is_the_default_table() {
    assert_eq!(CalibratedCost::committed(), &CalibratedCost::default());
    // MacCost orders by MACs; among equal MACs, fewer nodes win.
    let relu = NodeCostInput::elementwise(0, 1);
    let one = MacCost.node_cost(&relu);
    assert!(one < MacCost.total_cost(&[relu.clone(), relu]));
}
