//! The JIT's library contract: compile once and run many times through sessions, bad feeds
//! and unresolved shapes as typed errors (never a panic), and fallback nodes listed. (Residual
//! fusion order is exercised by the ResNet blocks in `models.rs`: fusing into the wrong conv
//! changes their outputs.)

use ssc_ir::{parse_model, Model, Tensor};
use ssc_jit::{CompiledModel, JitError, JitOptions};

fn model(text: &str) -> Model {
    parse_model(text).unwrap()
}

const RELU: &str = r#"
model ir_version=8
opset 17
graph g(%x: float[1,2,2,2]) -> (%y: float[1,2,2,2]) {
  %y = Relu(%x)
}
"#;

#[test]
fn sessions_reuse_the_compiled_model() {
    let c = CompiledModel::compile(&model(RELU), &JitOptions::default()).unwrap();
    let mut s = c.session();
    for k in 0..3 {
        let v: Vec<f32> = (0..8).map(|i| i as f32 - 4.0 + k as f32).collect();
        let x = Tensor::from_f32(vec![1, 2, 2, 2], &v);
        s.run_in_place(&[("x", &x)]).unwrap();
        let want: Vec<f32> = v.iter().map(|&a| a.max(0.0)).collect();
        assert_eq!(s.output_f32("y").unwrap(), &want[..]);
    }
    assert!(c.fallback_nodes().is_empty());
    assert!(c.peak_activation_bytes() >= 2 * 8 * 4);
}

#[test]
fn bad_feeds_are_typed_errors() {
    let c = CompiledModel::compile(&model(RELU), &JitOptions::default()).unwrap();
    let x = Tensor::from_f32(vec![1, 2, 2, 2], &[0.0; 8]);
    let mut s = c.session();
    assert!(matches!(s.run_in_place(&[]), Err(JitError::MissingInput(n)) if n == "x"));
    assert!(matches!(
        s.run_in_place(&[("nope", &x)]),
        Err(JitError::UnknownInput(n)) if n == "nope"
    ));
    assert!(matches!(
        s.run_in_place(&[("x", &x), ("x", &x)]),
        Err(JitError::BadInput { .. })
    ));
    let wrong = Tensor::from_f32(vec![1, 8], &[0.0; 8]);
    let e = s.run_in_place(&[("x", &wrong)]).unwrap_err();
    assert!(e.to_string().contains("compiled for"), "{e}");
}

#[test]
fn symbolic_shapes_need_input_shapes() {
    let m = model(
        r#"
model ir_version=8
opset 17
graph g(%x: float[N,4]) -> (%y: float[N,4]) {
  %y = Relu(%x)
}
"#,
    );
    let e = CompiledModel::compile(&m, &JitOptions::default()).unwrap_err();
    assert!(matches!(e, JitError::Shape(_)), "{e}");
    assert!(e.to_string().contains("--input-shape"), "{e}");
    let opts = JitOptions {
        input_shapes: vec![("x".into(), vec![3, 4])],
        ..JitOptions::default()
    };
    let c = CompiledModel::compile(&m, &opts).unwrap();
    let x = Tensor::from_f32(vec![3, 4], &[-1.0; 12]);
    let out = c.run(&[("x".into(), x)]).unwrap();
    assert_eq!(out[0].1.to_f32_vec().unwrap(), vec![0.0; 12]);
}

#[test]
fn ops_without_a_kernel_fall_back_alone() {
    // Hardmax has no native kernel: it runs through the reference, the Relu stays native.
    let m = model(
        r#"
model ir_version=8
opset 17
graph g(%x: float[2,3]) -> (%y: float[2,3]) {
  %h = Relu(%x)
  %y = Hardmax(%h) {axis=1}
}
"#,
    );
    let c = CompiledModel::compile(&m, &JitOptions::default()).unwrap();
    let fb = c.fallback_nodes();
    assert_eq!(fb.len(), 1);
    assert_eq!(fb[0].op_type, "Hardmax");
    let x = Tensor::from_f32(vec![2, 3], &[1.0, 2.0, 3.0, -1.0, 0.0, 1.0]);
    let got = c.run(&[("x".into(), x.clone())]).unwrap();
    let want = ssc_exec::run_model(&m, &[("x".into(), x)]).unwrap();
    let (g, w) = (
        got[0].1.to_f32_vec().unwrap(),
        want[0].1.to_f32_vec().unwrap(),
    );
    for (a, b) in g.iter().zip(&w) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-6), "{g:?} vs {w:?}");
    }
}

/// Views and in-place concatenation (`plan::alias`) in the shapes that could go wrong: a
/// Concat reading the same value twice, a Concat of a Split part next to a conv output, a
/// Reshape of the graph input (which keeps its own buffer), DenseNet-style concats of growing
/// prefixes, a view that is a graph output. Each against the reference executor.
#[test]
fn views_and_in_place_concats_compute_the_same() {
    let m = model(
        r#"
model ir_version=8
opset 17
graph g(%x: float[1,4,3,3]) -> (%y: float[1,12,3,3], %v: float[1,36], %s: float[1,2,3,3]) {
  init %w: float[2,4,1,1] = [0.5, -1, 0.25, 2, 1, 1, -0.5, 0.75]
  init %sp: int64[2] = [2, 2]
  init %shape: int64[2] = [1, 36]
  %a = Conv(%x, %w) {kernel_shape=[1, 1]}
  %b = Relu(%x)
  %c1 = Concat(%b, %a) {axis=1}
  %d = Conv(%c1, %w2) {kernel_shape=[1, 1]}
  %c2 = Concat(%b, %a, %d) {axis=1}
  %p, %q = Split(%c2, %sp8) {axis=1}
  %c3 = Concat(%p, %a, %a) {axis=1}
  %y = Concat(%c3, %q) {axis=1}
  %v = Reshape(%x, %shape)
  %r = Relu(%q)
  %s = Slice(%r, %st, %en, %ax)
  init %w2: float[2,6,1,1] = [1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, -1]
  init %sp8: int64[2] = [4, 4]
  init %st: int64[1] = [1]
  init %en: int64[1] = [3]
  init %ax: int64[1] = [1]
}
"#,
    );
    let c = CompiledModel::compile(&m, &JitOptions::default()).unwrap();
    assert!(c.fallback_nodes().is_empty(), "{:?}", c.fallback_nodes());
    let kinds: Vec<String> = c.steps().iter().map(|s| s.kernel.clone()).collect();
    assert!(kinds.iter().any(|k| k.contains("in place")), "{kinds:?}");
    assert!(kinds.iter().any(|k| k.contains("view")), "{kinds:?}");
    let vals: Vec<f32> = (0..36).map(|i| (i as f32 * 0.77).sin()).collect();
    let x = Tensor::from_f32(vec![1, 4, 3, 3], &vals);
    let got = c.run(&[("x".into(), x.clone())]).unwrap();
    let want = ssc_exec::run_model(&m, &[("x".into(), x)]).unwrap();
    for ((n, g), (_, w)) in got.iter().zip(&want) {
        let (g, w) = (g.to_f32_vec().unwrap(), w.to_f32_vec().unwrap());
        for (a, b) in g.iter().zip(&w) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{n}: {g:?} vs {w:?}"
            );
        }
    }
}
