//! The committed CNN fixtures (`tests/models`, made by `scripts/make_models.py`, and the
//! quantised and recurrent ones of `tests/models/deploy`, made by
//! `scripts/make_deploy_models.py`): inference must reproduce the value_info that ONNX's own
//! shape inference wrote into them, and the clean-ups must turn every `_bn` model into its
//! `_folded` sibling. Skips quietly when the fixtures are absent (a fresh checkout that has not
//! generated them).

mod common;

use std::path::{Path, PathBuf};

use common::{execute, rel_l2};
use ssc_ir::{Model, Tensor, ValueType};
use ssc_passes::{infer_shapes, run_cleanups, PassOptions};

fn fixtures() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/models");
    let mut v: Vec<PathBuf> = [root.clone(), root.join("deploy")]
        .iter()
        .flat_map(std::fs::read_dir)
        .flat_map(|d| d.filter_map(|e| e.ok().map(|e| e.path())))
        .collect();
    v.retain(|p| p.extension().is_some_and(|e| e == "onnx"));
    v.sort();
    eprintln!("{} fixtures", v.len());
    v
}

fn load(p: &Path) -> Model {
    ssc_onnx::load_model(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn inference_reproduces_onnx_value_info() {
    for p in fixtures() {
        let original = load(&p);
        // Checking against the declared types must find no conflict...
        infer_shapes(&mut original.clone(), &[]).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        // ...and inferring from scratch must recreate every one of them exactly.
        let mut m = original.clone();
        let g = &mut m.graph;
        for v in g.value_ids() {
            if !g.is_graph_input(v) && !g.is_graph_output(v) && g.initializer(v).is_none() {
                g.value_mut(v).ty = None;
            }
        }
        let rep = infer_shapes(&mut m, &[]).unwrap();
        assert!(rep.unhandled_ops.is_empty(), "{}: {rep}", p.display());
        for v in original.graph.value_ids() {
            let val = original.graph.value(v);
            let Some(ValueType::Tensor(declared)) = &val.ty else {
                continue;
            };
            let w = m.graph.value_by_name(&val.name).unwrap();
            let got = m.graph.value(w).ty.as_ref().and_then(ValueType::tensor);
            assert_eq!(got, Some(declared), "{}: value `{}`", p.display(), val.name);
        }
    }
}

#[test]
fn cleanups_turn_bn_models_into_their_folded_siblings() {
    for p in fixtures() {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix("_bn.onnx") else {
            continue;
        };
        let original = load(&p);
        let folded = load(&p.with_file_name(format!("{stem}_folded.onnx")));
        let mut m = original.clone();
        let rep = run_cleanups(&mut m, &PassOptions::default()).unwrap();
        assert!(rep.get("folded_bn") > 0, "{name}: {rep}");
        assert_eq!(m.graph.op_count(), folded.graph.op_count(), "{name}: {rep}");
        // Nothing to do on the folded sibling itself.
        let mut f = folded.clone();
        assert_eq!(
            run_cleanups(&mut f, &PassOptions::default())
                .unwrap()
                .total(),
            0,
            "{stem}_folded"
        );

        let input = original.graph.value(original.graph.inputs()[0]);
        let dims = input
            .ty
            .as_ref()
            .and_then(ValueType::tensor)
            .and_then(|t| t.static_shape())
            .unwrap();
        let n: usize = dims.iter().product();
        let x: Vec<f32> = (0..n)
            .map(|i| (i * 7919 % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let feeds = vec![(input.name.clone(), Tensor::from_f32(dims, &x))];
        let ours = execute(&m, &feeds);
        // Against the script's fold: both compute in f64 and round once, but the script adds
        // epsilon as an f64 literal where the model (and this pass) use the stored f32, so an
        // occasional weight differs by one ulp (relative 6e-8); against the unfolded model the
        // difference is that rounding plus summation order. 1e-6 norm-wise covers both with
        // margin while still catching any real mistake (a wrong channel is O(1)).
        for (what, other) in [("folded file", &folded), ("unfolded model", &original)] {
            let theirs = execute(other, &feeds);
            let err = rel_l2(&theirs[0].1, &ours[0].1);
            assert!(err < 1e-6, "{name} vs {what}: relative error {err}");
        }
    }
}
