//! Regression tests for what the JIT must decline with `JitError::NotCovered` at compile time
//! (so `--engine auto` falls back to the reference executor) instead of failing at run time.

use ssc_ir::{parse_model, Tensor};
use ssc_jit::{CompiledModel, JitError, JitOptions};

/// Sequence intermediates carry no type in the model (no value_info), so a check on value
/// types alone missed them and the run failed in the per-node fallback ("sequence outputs
/// cannot be returned as tensors"): the onnx test data's `simple/test_sequence_model*`.
#[test]
fn sequence_values_are_not_covered() {
    let m = parse_model(
        r#"
model ir_version=8
opset 17
graph g(%x: float[2]) -> (%y: float[4]) {
  %s = SequenceConstruct(%x, %x)
  %y = ConcatFromSequence(%s) {axis=0}
}
"#,
    )
    .unwrap();
    // The reference executor runs it.
    let x = Tensor::from_f32(vec![2], &[1.0, 2.0]);
    let want = ssc_exec::run_model(&m, &[("x".to_string(), x)]).unwrap();
    assert_eq!(want[0].1.to_f32_vec().unwrap(), vec![1.0, 2.0, 1.0, 2.0]);
    match CompiledModel::compile(&m, &JitOptions::default()) {
        Err(JitError::NotCovered(why)) => assert!(why.contains("SequenceConstruct"), "{why}"),
        other => panic!("expected NotCovered, got {other:?}"),
    }
}
