//! Models with If and Loop run under the JIT: the ops run through the reference executor's
//! fallback kernel, which gets the graph values their subgraphs capture as extra inputs.

use ssc_ir::{parse_model, DataType, Tensor};
use ssc_jit::{CompiledModel, JitOptions};

fn run_both(src: &str, feeds: &[(String, Tensor)]) -> (Vec<f32>, Vec<f32>) {
    let m = parse_model(src).unwrap();
    let want = ssc_exec::run_model(&m, feeds).unwrap();
    let c = CompiledModel::compile(&m, &JitOptions::default()).unwrap();
    let got = c.run(feeds).unwrap();
    (
        want[0].1.to_f32_vec().unwrap(),
        got[0].1.to_f32_vec().unwrap(),
    )
}

/// If's branches read a computed value (`%h`, in the JIT's arena) and an initializer, both
/// captured; the branch is chosen at run time.
#[test]
fn if_with_captured_values() {
    let src = r#"
model ir_version=8
opset 17
graph g(%c: bool[], %x: float[2]) -> (%y: float[2]) {
  init %w: float[2] = [1.0, 2.0]
  %h = Relu(%x) : float[2]
  %y = If(%c) {else_branch=graph e() -> (%e: float[2]) {
    %e = Sub(%h, %w) : float[2]
  }, then_branch=graph t() -> (%t: float[2]) {
    %t = Mul(%h, %w) : float[2]
  }} : float[2] captures=[%h, %w]
  %z = Neg(%h) : float[2]
}
"#;
    let x = Tensor::from_f32(vec![2], &[-1.0, 3.0]);
    for (c, want) in [(true, [0.0, 6.0]), (false, [-1.0, 1.0])] {
        let feeds = [
            (
                "c".to_string(),
                Tensor::from_f64_as(DataType::Bool, vec![], &[f64::from(u8::from(c))]).unwrap(),
            ),
            ("x".to_string(), x.clone()),
        ];
        let (reference, jit) = run_both(src, &feeds);
        assert_eq!(reference, want);
        assert_eq!(jit, want);
    }
}

/// A Loop whose body adds a captured value three times, with a scan output.
#[test]
fn loop_with_a_captured_value() {
    let src = r#"
model ir_version=8
opset 17
graph g(%x: float[2], %w: float[2]) -> (%y: float[2], %s: float[3,2]) {
  init %n: int64[] = [3]
  %y, %s = Loop(%n, _, %x) {body=graph b(%i: int64[], %cond: bool[], %v: float[2]) -> (%cond: bool[], %v2: float[2], %v3: float[2]) {
    %v2 = Add(%v, %w) : float[2]
    %v3 = Identity(%v2) : float[2]
  }} : float[2], float[3,2] captures=[%w]
}
"#;
    let feeds = [
        ("x".to_string(), Tensor::from_f32(vec![2], &[0.0, 1.0])),
        ("w".to_string(), Tensor::from_f32(vec![2], &[1.0, 2.0])),
    ];
    let (reference, jit) = run_both(src, &feeds);
    assert_eq!(reference, [3.0, 7.0]);
    assert_eq!(jit, reference);
}
