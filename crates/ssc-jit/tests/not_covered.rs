//! What the JIT runs outside its arena: sequences and optionals, whose nodes go through the
//! reference executor's kernels (`Kernel::Fallback`), inside a graph and at its interface.
//! (What it must still decline with `JitError::NotCovered`, so `--engine auto` falls back to the
//! reference executor, is a map or sparse value, which no text form writes.)

use ssc_ir::{parse_model, DataType, RunValue, Tensor};
use ssc_jit::{CompiledModel, JitError, JitOptions};

/// Sequence intermediates carry no type in the model (no value_info); they once failed in the
/// per-node fallback ("sequence outputs cannot be returned as tensors"), then were declined
/// (the onnx test data's `simple/test_sequence_model*`); now they run.
#[test]
fn sequence_intermediates_run_through_the_fallback() {
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
    let x = Tensor::from_f32(vec![2], &[1.0, 2.0]);
    let want = ssc_exec::run_model(&m, &[("x".to_string(), x.clone())]).unwrap();
    assert_eq!(want[0].1.to_f32_vec().unwrap(), vec![1.0, 2.0, 1.0, 2.0]);
    let c = CompiledModel::compile(&m, &JitOptions::default()).unwrap();
    assert_eq!(c.run(&[("x".to_string(), x)]).unwrap(), want);
}

/// A sequence fed in, an optional and a tensor out (`run_values`); `run` refuses the optional
/// output with a message naming it.
#[test]
fn sequences_and_optionals_at_the_interface() {
    let m = parse_model(
        r#"
model ir_version=8
opset 18
graph g(%s: seq(float[*]), %x: float[2]) -> (%o: optional(seq(float[*])), %y: float[?], %n: int64[]) {
  %t = SequenceInsert(%s, %x)
  %o = Optional(%t)
  %u = OptionalGetElement(%o)
  %y = ConcatFromSequence(%u) {axis=0}
  %n = SequenceLength(%u)
}
"#,
    )
    .unwrap();
    let s = RunValue::Sequence {
        elem: DataType::Float,
        items: vec![Tensor::from_f32(vec![1], &[5.0])],
    };
    let feeds = vec![
        ("s".to_string(), s),
        (
            "x".to_string(),
            RunValue::Tensor(Tensor::from_f32(vec![2], &[1.0, 2.0])),
        ),
    ];
    let want = ssc_exec::Executor::new(&m)
        .unwrap()
        .run_values(&feeds)
        .unwrap();
    let opts = JitOptions {
        input_shapes: vec![("x".to_string(), vec![2])],
        ..JitOptions::default()
    };
    let c = CompiledModel::compile(&m, &opts).unwrap();
    let got = c.run_values(&feeds).unwrap();
    assert_eq!(got, want);
    assert_eq!(
        got[1].1.tensor().unwrap().to_f32_vec().unwrap(),
        vec![5.0, 1.0, 2.0]
    );
    assert_eq!(got[2].1.tensor().unwrap().to_i64_vec().unwrap(), vec![2]);
    assert!(
        matches!(&got[0].1, RunValue::Optional(Some(v)) if matches!(**v, RunValue::Sequence { .. }))
    );
    // The same session type runs again with an empty sequence (its element type kept).
    let empty = vec![
        (
            "s".to_string(),
            RunValue::Sequence {
                elem: DataType::Float,
                items: vec![],
            },
        ),
        feeds[1].clone(),
    ];
    let got = c.run_values(&empty).unwrap();
    assert_eq!(got[2].1.tensor().unwrap().to_i64_vec().unwrap(), vec![1]);
    // `run` feeds tensors only: the sequence input is missing.
    let r = c.run(&[("x".to_string(), Tensor::from_f32(vec![2], &[1.0, 2.0]))]);
    assert!(
        matches!(&r, Err(JitError::MissingInput(n)) if n == "s"),
        "{r:?}"
    );
}
