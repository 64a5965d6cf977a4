//! Runs the library example (`examples/custom_rule.rs`) in the test suite, so the documented way
//! to add a rule and a cost model keeps compiling and keeps doing what it says.

#[path = "../examples/custom_rule.rs"]
mod custom_rule;

#[test]
fn custom_rule_and_cost_model_run() {
    let out = custom_rule::run();
    let (mac, penalty) = out.split_once("with NodePenaltyCost").unwrap();
    // All three alternatives exist; under MAC costs the custom one (grouped 1x1) wins.
    assert!(
        mac.contains(r#"fired ["block-diagonal-to-grouped", "kernel-crop", "group-and-crop"]"#),
        "{out}"
    );
    assert!(
        mac.contains("conv: Conv 3x3 dense -> perm·Conv 1x1 G=2·perm (macs 20736 -> 1152"),
        "{out}"
    );
    // The custom cost charges 1000 MACs per node: two gathers outweigh the 1152 MACs saved,
    // so the plain crop (one node) wins.
    assert!(
        penalty.contains("conv: Conv 3x3 dense -> Conv 1x1 dense (macs 20736 -> 2304"),
        "{out}"
    );
}
