//! The pipeline as a whole: phases reaching a fixed point together, the report, running a
//! subset, observing phases, and refusing cyclic graphs.

mod common;

use common::{execute, floats, rel_l2, Rng, G};
use ssc_ir::{AttrValue, Attribute};
use ssc_passes::{
    infer_shapes, run_cleanups, run_cleanups_with, run_phase, PassError, PassOptions, PHASES,
};

/// An exporter-style block: BN parameters as Constant ops, an Identity between Conv and BN, a
/// Dropout, and the Flatten target computed from the input's shape.
fn exported_block() -> G {
    let mut rng = Rng::new(21);
    let mut g = G::new(13);
    g.input("x", "float[N,3,6,6]");
    g.init("w", floats(&[4, 3, 3, 3], &rng.vec_f32(108, -1.0, 1.0)));
    for (name, lo, hi) in [
        ("gamma", 0.5, 1.5),
        ("beta", -0.1, 0.1),
        ("mean", -0.1, 0.1),
        ("var", 0.5, 1.5),
    ] {
        let t = floats(&[4], &rng.vec_f32(4, lo, hi));
        g.op_a(
            "Constant",
            &[],
            &[name],
            vec![Attribute::new("value", AttrValue::Tensor(t))],
        );
    }
    g.op_a(
        "Conv",
        &["x", "w"],
        &["c"],
        vec![Attribute::ints("pads", vec![1; 4])],
    );
    g.op("Identity", &["c"], &["c_id"]);
    g.op(
        "BatchNormalization",
        &["c_id", "gamma", "beta", "mean", "var"],
        &["bn"],
    );
    g.op("Relu", &["bn"], &["r"]);
    g.op("Dropout", &["r"], &["d"]);
    g.op("Shape", &["d"], &["s"]);
    g.init("zero", common::ints(&[], &[0]));
    g.init("axes", common::ints(&[1], &[0]));
    g.init("m1", common::ints(&[1], &[-1]));
    g.op_a(
        "Gather",
        &["s", "zero"],
        &["n"],
        vec![Attribute::int("axis", 0)],
    );
    g.op("Unsqueeze", &["n", "axes"], &["n1"]);
    g.op_a(
        "Concat",
        &["n1", "m1"],
        &["target"],
        vec![Attribute::int("axis", 0)],
    );
    g.op("Reshape", &["d", "target"], &["out"]);
    g.outputs(&["out"]);
    g
}

#[test]
fn inference_then_cleanups_reach_a_fixed_point() {
    let mut g = exported_block();
    let before = g.m.clone();
    infer_shapes(&mut g.m, &[("x".into(), common::shape("2,3,6,6"))]).unwrap();
    let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    assert_eq!(g.ops(), ["Conv", "Relu", "Reshape"]);
    // 10 unused initializers: the four BN parameters, the three Gather/Unsqueeze/Concat
    // operands, and the three intermediate constants of the shape chain (s, n, n1).
    assert_eq!(
        rep.to_string(),
        "folded_bn: 1, folded_constant: 4, folded_shape: 1, folded_shape_arith: 3, \
         removed_dropout: 1, removed_identity: 1, removed_unused_initializer: 10"
    );
    assert_eq!(
        rep.iterations, 2,
        "one sweep that changes things, one that confirms"
    );
    assert_eq!(g.ty_of("out"), "float[2,144]");
    let mut rng = Rng::new(22);
    let feeds = vec![(
        "x".to_string(),
        floats(&[2, 3, 6, 6], &rng.vec_f32(216, -1.0, 1.0)),
    )];
    let err = rel_l2(&execute(&before, &feeds)[0].1, &execute(&g.m, &feeds)[0].1);
    assert!(err < 1e-6, "relative error {err}");
    // Running again changes nothing.
    let again = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    assert_eq!(
        (again.to_string().as_str(), again.iterations),
        ("no changes", 1)
    );
}

#[test]
fn reports_are_deterministic() {
    let run = || {
        let mut g = exported_block();
        run_cleanups(&mut g.m, &PassOptions::default()).unwrap()
    };
    assert_eq!(run(), run());
}

#[test]
fn a_subset_runs_in_pipeline_order() {
    let mut g = exported_block();
    let opts = PassOptions {
        phases: Some(vec!["dce".into(), "eliminate_identity".into()]),
        ..PassOptions::default()
    };
    let mut seen = Vec::new();
    let rep = run_cleanups_with(&mut g.m, &opts, &mut |phase, sweep, _| {
        seen.push(format!("{phase}@{sweep}"))
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            "eliminate_identity@1",
            "dce@1",
            "eliminate_identity@2",
            "dce@2"
        ]
    );
    assert_eq!(rep.get("removed_identity"), 1);
    assert_eq!(rep.get("folded_bn"), 0, "not selected");
    let bad = PassOptions {
        phases: Some(vec!["fold_everything".into()]),
        ..PassOptions::default()
    };
    let e = run_cleanups(&mut g.m, &bad).unwrap_err();
    assert!(matches!(e, PassError::UnknownPhase { .. }));
    assert!(e.to_string().contains(&PHASES.join(", ")));
    assert!(run_phase(&mut g.m, "nope", &PassOptions::default()).is_err());
}

#[test]
fn iterations_are_bounded() {
    let mut g = exported_block();
    let opts = PassOptions {
        max_iterations: 1,
        ..PassOptions::default()
    };
    assert_eq!(run_cleanups(&mut g.m, &opts).unwrap().iterations, 1);
}

#[test]
fn cyclic_graphs_are_refused_before_any_change() {
    let mut g = G::new(13);
    g.op("Identity", &["a"], &["b"]);
    g.op("Identity", &["b"], &["a"]);
    g.outputs(&["a"]);
    let e = run_cleanups(&mut g.m, &PassOptions::default()).unwrap_err();
    assert!(e.to_string().contains("cycle"), "{e}");
    assert_eq!(g.ops_count(), 2);
}

trait OpsCount {
    fn ops_count(&self) -> usize;
}

impl OpsCount for G {
    fn ops_count(&self) -> usize {
        self.m.graph.op_count()
    }
}
