//! Regression tests for what exporters write and ONNX Runtime runs: a `-1` dim in a type, a
//! declared type that disagrees with the ops, weights in Constant nodes, a symbolic batch, and
//! a `run --output-dir` that does not exist yet. The models are in the malformed corpus
//! (`scripts/make_malformed.py`), whose own test checks their warnings; these check the rest.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ssc_opt::ir::{Dim, ValueType};

const BIN: &str = env!("CARGO_BIN_EXE_ssc-opt");

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/malformed")
        .join(name)
}

fn ssc(args: &[&str]) -> Output {
    let o = Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the binary runs");
    assert!(
        o.status.success(),
        "ssc-opt {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The declared type of graph output `y` in the model at `path`, as text.
fn output_type(path: &Path) -> String {
    let m = ssc_opt::load(path).unwrap().model;
    let g = &m.graph;
    let v = g.value_by_name("y").unwrap();
    match &g.value(v).ty {
        Some(ValueType::Tensor(t)) => {
            let dims: Vec<String> = t
                .shape
                .as_ref()
                .unwrap()
                .iter()
                .map(|d| match d {
                    Dim::Known(n) => n.to_string(),
                    Dim::Param(p) => p.clone(),
                    Dim::Unknown => "?".into(),
                })
                .collect();
            format!("{}[{}]", t.elem.name(), dims.join(","))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_wrong_declared_type_warns_and_is_kept_unless_fixed() {
    let input = corpus("wrong_declared_shape.onnx");
    let inp = input.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let o = ssc(&[inp, "-o", out.to_str().unwrap()]);
    let err = stderr(&o);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("ssc-opt: warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains(&format!("{inp}: value `y`: declared type float[1,seqlen]")),
        "{err}"
    );
    // The output keeps the model's declaration...
    assert_eq!(output_type(&out), "float[1,seqlen]");
    // ... unless asked to fix it.
    let fixed = dir.path().join("fixed.onnx");
    ssc(&[inp, "-o", fixed.to_str().unwrap(), "--fix-types"]);
    assert_eq!(output_type(&fixed), "float[1,4,8,8]");
    // --quiet silences warnings too.
    let o = ssc(&[inp, "-o", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(stderr(&o), "");
    // `run` and `inspect` warn the same way, and run the model.
    let o = ssc(&["run", inp]);
    assert!(stderr(&o).contains("declared type float[1,seqlen]"));
    let o = ssc(&["inspect", inp, "-q"]);
    assert_eq!(stderr(&o), "");
    // The library reports the same warning, and leaves the declaration for export.
    let mut m = ssc_opt::load(&input).unwrap().model;
    let rep = ssc_opt::optimize(&mut m, &Default::default()).unwrap();
    assert_eq!(rep.warnings.len(), 1);
    assert_eq!(rep.types_fixed, 0);
}

#[test]
fn a_negative_dim_is_symbolic_and_constant_weights_count() {
    let input = corpus("negative_type_dim.onnx");
    let inp = input.to_str().unwrap();
    // inspect: the -1 batch is read as unknown, with one warning; the Constant node's weight
    // counts as parameters; MACs assume batch 1 and say so.
    let o = ssc(&["inspect", inp]);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("negative dimension in a declared type"),
        "{err}"
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("x                        float[?,3,8,8]"),
        "{text}"
    );
    assert!(
        text.contains("parameters: 108 in 0 initializers and 1 Constant nodes"),
        "{text}"
    );
    // 4 filters x 27 taps x 8x8 pixels at batch 1.
    assert!(
        text.contains("total MACs: 6912 (0.000 G), batch 1 assumed for the symbolic batch of x"),
        "{text}"
    );
    let o = ssc(&["inspect", inp, "--json", "-q"]);
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["parameters"], 108);
    assert_eq!(info["constant_nodes"], 1);
    assert_eq!(info["total_macs"], 6912);
    assert_eq!(info["batch_assumed"][0], "x");
    // Optimising: the summary gives MACs at batch 1, and the output declares the batch as
    // unknown (canonical ONNX: no negative dims).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let o = ssc(&[inp, "-o", out.to_str().unwrap()]);
    assert!(stderr(&o).contains("GMACs at batch 1"), "{}", stderr(&o));
    assert_eq!(output_type(&out), "float[?,4,8,8]");
    let o = ssc(&[inp, "-o", out.to_str().unwrap(), "--report", "json", "-q"]);
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["optimize"]["macs_before"], 6912);
    assert_eq!(rep["optimize"]["macs_batch_assumed"][0], "x");
}

#[test]
fn run_creates_a_missing_output_dir() {
    let input = corpus("negative_type_dim.onnx");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("not/yet/there");
    ssc(&[
        "run",
        input.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "-q",
    ]);
    let y = ssc_opt::read_npy(&out.join("y.npy")).unwrap();
    assert_eq!(y.dims, vec![1, 4, 8, 8]);
}
