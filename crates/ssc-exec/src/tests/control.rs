//! If, Loop and Scan: models written in the IR text form (subgraphs need a graph around them),
//! run by the executor; expected values by hand in the comments.

use ssc_ir::{parse_model, DataType, Tensor};

use super::{assert_close, f, i, t};
use crate::{ExecError, Executor};

fn run_text(src: &str, feeds: &[(&str, Tensor)]) -> Result<Vec<Tensor>, ExecError> {
    let m = parse_model(src).unwrap_or_else(|e| panic!("{e}"));
    let feeds: Vec<(String, Tensor)> = feeds
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    Ok(Executor::new(&m)?
        .run(&feeds)?
        .into_iter()
        .map(|(_, t)| t)
        .collect())
}

fn flag(c: bool) -> Tensor {
    t(DataType::Bool, &[], &[f64::from(u8::from(c))])
}

/// The then branch computes from a captured value; the else branch returns an enclosing
/// value as it is (a subgraph output nothing in the subgraph defines).
const IF: &str = r#"
model ir_version=8
opset 17
graph g(%c: bool[], %x: float[2]) -> (%y: float[2]) {
  %y = If(%c) {else_branch=graph e() -> (%x) {
  }, then_branch=graph t() -> (%t: float[2]) {
    %t = Neg(%x) : float[2]
  }} : float[2] captures=[%x]
}
"#;

#[test]
fn if_runs_the_chosen_branch() {
    let x = f(&[2], &[1.0, -2.0]);
    let y = run_text(IF, &[("c", flag(true)), ("x", x.clone())]).unwrap();
    assert_close(&y[0], &f(&[2], &[-1.0, 2.0]));
    let y = run_text(IF, &[("c", flag(false)), ("x", x.clone())]).unwrap();
    assert_close(&y[0], &x);
}

#[test]
fn if_condition_must_hold_one_value() {
    let c = t(DataType::Bool, &[2], &[1.0, 0.0]);
    let m = parse_model(&IF.replace("%c: bool[]", "%c: bool[2]")).unwrap();
    let feeds = [
        ("c".to_string(), c),
        ("x".to_string(), f(&[2], &[1.0, 2.0])),
    ];
    let err = Executor::new(&m).unwrap().run(&feeds).unwrap_err();
    assert!(err.to_string().contains("one-element"), "{err}");
}

/// Sum 0 + 1 + ... while i < M and the running sum stays under `limit` (the body's condition),
/// with the partial sums as a scan output.
const LOOP: &str = r#"
model ir_version=8
opset 17
graph g(%m: int64[], %limit: float[], %s0: float[]) -> (%s: float[], %all: float[?]) {
  init %go: bool[] = [1]
  %s, %all = Loop(%m, %go, %s0) {body=graph b(%i: int64[], %c: bool[], %acc: float[]) -> (%more: bool[], %next: float[], %out: float[]) {
    %fi = Cast(%i) {to=1} : float[]
    %next = Add(%acc, %fi) : float[]
    %more = Less(%next, %limit) : bool[]
    %out = Identity(%next) : float[]
  }} : float[], float[?] captures=[%limit]
}
"#;

#[test]
fn loop_trip_count_and_condition() {
    let feeds = |m: i64, limit: f32| {
        [
            ("m", i(&[], &[m])),
            ("limit", f(&[], &[limit])),
            ("s0", f(&[], &[0.0])),
        ]
    };
    // The trip count ends it: 0 + 1 + 2 + 3 = 6, partial sums 0, 1, 3, 6.
    let y = run_text(LOOP, &feeds(4, 100.0)).unwrap();
    assert_close(&y[0], &f(&[], &[6.0]));
    assert_close(&y[1], &f(&[4], &[0.0, 1.0, 3.0, 6.0]));
    // The condition ends it: after i = 2 the sum is 3, not under 3.
    let y = run_text(LOOP, &feeds(10, 3.0)).unwrap();
    assert_close(&y[0], &f(&[], &[3.0]));
    assert_close(&y[1], &f(&[3], &[0.0, 1.0, 3.0]));
    // No iteration: the initial value and an empty scan output of the body's declared type.
    let y = run_text(LOOP, &feeds(0, 100.0)).unwrap();
    assert_close(&y[0], &f(&[], &[0.0]));
    assert_eq!((y[1].dtype, y[1].dims.clone()), (DataType::Float, vec![0]));
}

/// Scan (opset 9+): a running sum over the rows of `x` read in reverse, the partial sums
/// stacked along output axis 1.
const SCAN: &str = r#"
model ir_version=8
opset 17
graph g(%s0: float[2], %x: float[3,2]) -> (%s: float[2], %all: float[2,3]) {
  %s, %all = Scan(%s0, %x) {body=graph b(%acc: float[2], %row: float[2]) -> (%next: float[2], %out: float[2]) {
    %next = Add(%acc, %row) : float[2]
    %out = Identity(%next) : float[2]
  }, num_scan_inputs=1, scan_input_directions=[1], scan_output_axes=[1]} : float[2], float[2,3]
}
"#;

#[test]
fn scan_reverse_input_and_output_axis() {
    let x = f(&[3, 2], &[1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
    let y = run_text(SCAN, &[("s0", f(&[2], &[0.0, 0.0])), ("x", x)]).unwrap();
    assert_close(&y[0], &f(&[2], &[6.0, 60.0]));
    // Rows read 3, 2, 1: partial sums 3, 5, 6 (and 30, 50, 60), one column per step.
    assert_close(&y[1], &f(&[2, 3], &[3.0, 5.0, 6.0, 30.0, 50.0, 60.0]));
}

/// A Loop nested in an If reads a main-graph value through two subgraph levels.
#[test]
fn nested_subgraphs_read_through_two_levels() {
    let src = r#"
model ir_version=8
opset 17
graph main(%c: bool[], %x: float[2]) -> (%y: float[2]) {
  init %w: float[2] = [1.0, 2.0]
  %y = If(%c) {else_branch=graph other() -> (%e: float[2]) {
    init %n: int64[] = [3]
    %e = Loop(%n, _, %x) {body=graph step(%i: int64[], %cond: bool[], %v: float[2]) -> (%cond: bool[], %v2: float[2]) {
      %v2 = Add(%v, %w) : float[2]
    }} : float[2] captures=[%w]
  }, then_branch=graph then() -> (%t: float[2]) {
    %t = Mul(%x, %w) : float[2]
  }} : float[2] captures=[%w, %x]
}
"#;
    let x = f(&[2], &[1.0, 1.0]);
    // x + 3w = [4, 7]; x * w = [1, 2].
    let y = run_text(src, &[("c", flag(false)), ("x", x.clone())]).unwrap();
    assert_close(&y[0], &f(&[2], &[4.0, 7.0]));
    let y = run_text(src, &[("c", flag(true)), ("x", x)]).unwrap();
    assert_close(&y[0], &f(&[2], &[1.0, 2.0]));
}

/// An op inside a subgraph the executor cannot run is reported with its path.
#[test]
fn unsupported_ops_inside_subgraphs_are_named_by_path() {
    let src = IF.replace("%t = Neg(%x)", "%t = NoSuchOp(%x)");
    let err = run_text(&src, &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/then_branch/"), "{msg}");
    assert!(msg.contains("NoSuchOp"), "{msg}");
}
