//! `ssc-opt run` and verification end to end: good feeds produce one `.npy` per output, bad
//! `.npy` files are rejected with one line naming the file, and a wrong optimisation is caught.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ssc_opt::ir::{DataType, Tensor};

const BIN: &str = env!("CARGO_BIN_EXE_ssc-opt");

fn model() -> PathBuf {
    // A committed small ResNet-18 whose only input is `input: float[1,3,64,64]`.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/models/resnet18_bn.onnx")
}

fn ssc(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_npy(dir: &Path, name: &str, t: &Tensor) -> String {
    let p = dir.join(name);
    std::fs::write(&p, ssc_opt::encode_npy(t, name).unwrap()).unwrap();
    p.display().to_string()
}

/// Asserts a one-line error with exit 2 that contains every fragment.
fn assert_bad(o: &Output, fragments: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("ssc-opt: error:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for f in fragments {
        assert!(err.contains(f), "`{f}` missing from: {err}");
    }
}

#[test]
fn run_writes_one_npy_per_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = ssc_opt::random_tensor(DataType::Float, vec![1, 3, 64, 64], 7).unwrap();
    let x = write_npy(dir.path(), "x.npy", &input);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let m = model();
    let o = ssc(&[
        "run",
        m.to_str().unwrap(),
        "--input",
        &format!("input={x}"),
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.starts_with("output: float[1, 10]"), "{stdout}");
    let y = ssc_opt::read_npy(&out.join("output.npy")).unwrap();
    assert_eq!(y.dims, vec![1, 10]);
    // The default engine is the JIT; it agrees with the reference executor within the
    // suite's 1e-4 norm-wise tolerance (f32 against f64 accumulation), and `--engine
    // reference` gives exactly the library's reference numbers.
    let model = ssc_opt::load(&m).unwrap().model;
    let want = ssc_opt::run_reference(&model, &[("input".into(), input)]).unwrap();
    let err = ssc_opt::rel_err(&want[0].1, &y);
    assert!(err <= 1e-4, "JIT vs reference: {err:e}");
    let out_ref = dir.path().join("out_ref");
    std::fs::create_dir(&out_ref).unwrap();
    let o = ssc(&[
        "run",
        m.to_str().unwrap(),
        "--engine",
        "reference",
        "--input",
        &format!("input={x}"),
        "--output-dir",
        out_ref.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("reference executor"), "{}", stderr(&o));
    assert_eq!(
        want[0].1,
        ssc_opt::read_npy(&out_ref.join("output.npy")).unwrap()
    );
    // `NAME=random` is seeded: two runs agree.
    let r1 = ssc(&["run", m.to_str().unwrap(), "--input", "input=random", "-q"]);
    let r2 = ssc(&["run", m.to_str().unwrap(), "--input", "input=random", "-q"]);
    assert!(r1.status.success());
    assert_eq!(r1.stdout, r2.stdout);
}

#[test]
fn bad_npy_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let m = model();
    let m = m.to_str().unwrap();
    let feed = |file: &str| ssc(&["run", m, "--input", file]);
    let f64_in = write_npy(
        dir.path(),
        "f64.npy",
        &Tensor::from_f64(vec![1, 3, 64, 64], &vec![0.0; 3 * 64 * 64]),
    );
    let rank3 = write_npy(
        dir.path(),
        "rank3.npy",
        &Tensor::from_f32(vec![3, 64, 64], &vec![0.0; 3 * 64 * 64]),
    );
    let shape = write_npy(
        dir.path(),
        "shape.npy",
        &Tensor::from_f32(vec![1, 3, 32, 32], &vec![0.0; 3 * 32 * 32]),
    );
    let good = write_npy(
        dir.path(),
        "good.npy",
        &Tensor::from_f32(vec![1, 3, 64, 64], &vec![0.0; 3 * 64 * 64]),
    );
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.npy");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let truncated = truncated.display().to_string();

    let cases: [(String, &[&str]); 6] = [
        (
            format!("input={f64_in}"),
            &["f64.npy", "wants float", "double"],
        ),
        (format!("input={rank3}"), &["rank3.npy", "rank 4"]),
        (format!("input={shape}"), &["shape.npy", "dim 2 = 64"]),
        (format!("input={truncated}"), &["truncated.npy"]),
        (format!("nope={good}"), &["`nope` is not an input"]),
        ("input".to_string(), &["expected NAME=FILE.npy"]),
    ];
    for (spec, fragments) in cases {
        assert_bad(&feed(&spec), fragments);
    }
    let missing = dir.path().join("missing.npy").display().to_string();
    assert_bad(&feed(&format!("input={missing}")), &["missing.npy"]);
}

#[test]
fn verification_passes_on_exact_folds_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let m = model();
    let o = ssc(&[
        m.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--verify",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("folded_bn"), "{err}");
    assert!(err.contains("verified on 1 random input sets"), "{err}");
}

#[test]
fn a_wrong_optimisation_is_caught_by_verify() {
    // Verification through the library: a model compared with a perturbed copy of itself fails
    // the default tolerance, which is what makes the CLI exit 1 without writing.
    let model = ssc_opt::load(&model()).unwrap().model;
    let mut broken = model.clone();
    let g = &mut broken.graph;
    let w = g
        .initializer_ids()
        .into_iter()
        .find(|&v| g.initializer(v).is_some_and(|t| t.dims.len() == 4))
        .unwrap();
    let t = g.initializer(w).unwrap().clone();
    let mut vals = t.to_f32_vec().unwrap();
    vals.iter_mut().for_each(|v| *v *= 1.01);
    g.set_initializer(w, Tensor::from_f32(t.dims.clone(), &vals));
    let v = ssc_opt::verify(&model, &broken, &[], &ssc_opt::VerifyOptions::default()).unwrap();
    assert!(!v.passed(), "{}", v.summary());
    assert!(v.max_rel_err > 1e-3);
    let same = ssc_opt::verify(&model, &model, &[], &ssc_opt::VerifyOptions::default()).unwrap();
    assert!(same.passed() && same.max_rel_err == 0.0);
}

#[test]
fn bench_prints_latency_memory_and_fallbacks() {
    // The BN-folded twin, so the convs carry bias and fuse the residual Add and Relu.
    let m = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/models/resnet18_folded.onnx");
    let o = ssc(&[
        "bench",
        m.to_str().unwrap(),
        "--iters",
        "2",
        "--warmup",
        "0",
        "--kernels",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("latency: median"), "{out}");
    assert!(out.contains("peak activation memory"), "{out}");
    assert!(out.contains("fallback nodes: none"), "{out}");
    assert!(out.contains("conv gemm 3x3 +bias +add +relu"), "{out}");
    let o = ssc(&["bench", m.to_str().unwrap(), "--iters", "2", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["times_ms"].as_array().unwrap().len(), 2);
    // Bad input: a missing file and zero iterations are clean errors.
    assert_bad(
        &ssc(&["bench", "/nonexistent.onnx"]),
        &["/nonexistent.onnx"],
    );
    assert_bad(
        &ssc(&["bench", m.to_str().unwrap(), "--iters", "0"]),
        &["--iters"],
    );
}

/// A reader that goes away (`ssc-opt bench ... | head`) ends the command quietly: exit 0, no
/// panic message.
#[test]
fn closed_stdout_is_not_a_panic() {
    let m = model();
    let mut child = std::process::Command::new(BIN)
        .args(["bench", m.to_str().unwrap(), "--iters", "3", "--kernels"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the bench prints anything.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{:?}: {err}", o.status);
    assert!(!err.contains("panicked"), "{err}");
}
