//! Snapshot tests of channel removal (`ssc_rewrite::channels`): each case is a small network
//! in the IR text format whose pruned (zero or constant) channels cross Relu, BatchNorm, pools,
//! residual Adds and Concat; its snapshot (in `snapshots/channels/` at the repository root)
//! holds the IR before, the pass's report and the IR after. Near misses show what stays.
//!
//! Every case also runs both models through the reference executor, so a snapshot can never
//! bless a removal that changes the function. Costs are `MacCost`.

mod common;

use std::fmt::Write as _;

use common::{assert_same_function, Lcg};
use ssc_rewrite::channels::remove_channels;
use ssc_rewrite::MacCost;

/// Parses `text`, infers shapes, runs channel removal, checks the function is unchanged and
/// snapshots before / report / after under `name`.
fn check(name: &str, text: &str) -> ssc_rewrite::channels::ChannelReport {
    let mut before = ssc_ir::parse_model(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    ssc_passes::infer_shapes(&mut before, &[]).unwrap();
    let mut after = before.clone();
    let r = remove_channels(&mut after, &MacCost).unwrap();
    ssc_passes::infer_shapes(&mut after, &[]).unwrap();
    assert_same_function(&before, &after, 7);
    let mut rep = String::new();
    writeln!(
        rep,
        "groups removed {}, carriers {}, constant groups pinned {}",
        r.groups_removed, r.carriers, r.groups_pinned
    )
    .unwrap();
    for (v, n) in &r.removed_per_value {
        writeln!(rep, "  {v}: {n} channels removed").unwrap();
    }
    for p in &r.producers_narrowed {
        writeln!(
            rep,
            "  {}: computes {} of {} filters, gathered back in place",
            p.node, p.filters_after, p.filters_before
        )
        .unwrap();
    }
    let snap = format!(
        "# before\n{}\n# report\n{rep}\n# after\n{}",
        ssc_ir::print_model(&before),
        ssc_ir::print_model(&after)
    );
    insta::with_settings!({
        snapshot_path => "../../../snapshots/channels",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, snap);
    });
    r
}

/// Replaces `$NAME` in `text` with a weight `[co, ci, k, k]` of seeded values where
/// `keep(o, i)`, zeros elsewhere.
fn w(
    text: &str,
    name: &str,
    [co, ci, k]: [usize; 3],
    keep: impl Fn(usize, usize) -> bool,
) -> String {
    let mut r = Lcg(co as u64 * 31 + ci as u64);
    let mut v = Vec::new();
    for o in 0..co {
        for i in 0..ci {
            for _ in 0..k * k {
                let x = r.next_f32();
                v.push(if keep(o, i) {
                    x.to_string()
                } else {
                    "0".into()
                });
            }
        }
    }
    text.replace(name, &format!("[{}]", v.join(", ")))
}

#[test]
fn relu_then_padded_conv_folds_into_a_carrier() {
    let text = r#"
graph main(%x: float[1,4,6,6]) -> (%y) {
  init %w1: float[8,4,3,3] = $W1
  init %b1: float[8] = [0.5, 0.7, -0.2, 0.3, -0.4, 0.1, 0.9, 0.2]
  init %w2: float[6,8,3,3] = seeded(3)
  init %b2: float[6] = seeded(4)
  %c = Conv(%x, %w1, %b1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv1"
  %r = Relu(%c) name="relu"
  %y = Conv(%r, %w2, %b2) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv2"
}
"#;
    // Filters 1, 4 and 6 are pruned: channel 4 is relu(-0.4) = 0 and simply goes; channels 1
    // (0.7) and 6 (0.9) are constants that conv2's zero padding sees only in the interior, so 6
    // stays as the carrier and conv2's column 6 absorbs column 1 scaled by 0.7 / 0.9.
    let r = check(
        "relu_then_padded_conv_folds_into_a_carrier",
        &w(text, "$W1", [8, 4, 3], |o, _| ![1, 4, 6].contains(&o)),
    );
    assert_eq!((r.groups_removed, r.carriers), (2, 1));
}

#[test]
fn batchnorm_then_pointwise_folds_into_the_bias() {
    let text = r#"
graph main(%x: float[1,4,6,6]) -> (%y) {
  init %w1: float[8,4,3,3] = $W1
  init %s: float[8] = [1.1, 0.9, 1.0, 1.2, 0.8, 1.0, 1.05, 0.95]
  init %bb: float[8] = [0.1, 0.3, -0.2, 0.4, 0.2, -0.1, 0.05, 0.6]
  init %m: float[8] = [0.0, 0.1, 0.2, -0.1, 0.0, 0.05, -0.2, 0.1]
  init %v: float[8] = [1.0, 0.5, 2.0, 1.5, 1.0, 0.8, 1.2, 0.9]
  init %w2: float[6,8,1,1] = seeded(5)
  %c = Conv(%x, %w1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv1"
  %n = BatchNormalization(%c, %s, %bb, %m, %v) {epsilon=1e-5} name="bn"
  %r = Relu(%n) name="relu"
  %y = Conv(%r, %w2) {kernel_shape=[1, 1]} name="conv2"
}
"#;
    // Filters 0 and 3 are pruned: after the BN each is its shift, relu'd (0.1 and 0.4 + 0.1 *
    // ..); the 1x1 conv has no padding, so both fold into a new bias, and the BN loses them.
    let r = check(
        "batchnorm_then_pointwise_folds_into_the_bias",
        &w(text, "$W1", [8, 4, 3], |o, _| o != 0 && o != 3),
    );
    assert_eq!((r.groups_removed, r.carriers), (2, 0));
}

#[test]
fn maxpool_keeps_constants_and_the_padded_reader_uses_a_carrier() {
    let text = r#"
graph main(%x: float[1,4,8,8]) -> (%y) {
  init %w1: float[8,4,3,3] = $W1
  init %b1: float[8] = [0.5, 0.7, 0.25, 0.3, -0.4, 0.6, 0.9, 0.2]
  init %w2: float[6,8,3,3] = seeded(3)
  %c = Conv(%x, %w1, %b1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv1"
  %r = Relu(%c) name="relu"
  %p = MaxPool(%r) {kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]} name="pool"
  %y = Conv(%p, %w2) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv2"
}
"#;
    // MaxPool pads with -inf, so a constant stays itself; conv2 is zero-padded: carrier 5.
    let r = check(
        "maxpool_keeps_constants_and_the_padded_reader_uses_a_carrier",
        &w(text, "$W1", [8, 4, 3], |o, _| o != 2 && o != 5),
    );
    assert_eq!((r.groups_removed, r.carriers), (1, 1));
}

#[test]
fn near_miss_avgpool_counting_padding_is_constant_except_at_one_border() {
    let text = r#"
graph main(%x: float[1,4,8,8]) -> (%y) {
  init %w1: float[8,4,3,3] = $W1
  init %b1: float[8] = [0.5, 0.7, 0.25, 0.3, -0.4, 0.6, 0.9, 0.2]
  init %w2: float[6,8,1,1] = seeded(3)
  %c = Conv(%x, %w1, %b1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv1"
  %p = AveragePool(%c) {kernel_shape=[2, 2], pads=[0, 0, 1, 1], count_include_pad=1} name="pool"
  %y = Conv(%p, %w2) {kernel_shape=[1, 1]} name="conv2"
}
"#;
    // The pool counts its bottom/right zero padding: channels 2 and 5 are constant except at
    // that border, so they cannot be folded into conv2 and stay. conv1 still computes only its
    // six live filters (plus a zero one) and a gather puts the constants back before the pool.
    let r = check(
        "near_miss_avgpool_counting_padding_is_constant_except_at_one_border",
        &w(text, "$W1", [8, 4, 3], |o, _| o != 2 && o != 5),
    );
    assert_eq!(r.groups_removed, 0);
}

#[test]
fn residual_group_with_every_member_constant_is_removed() {
    let text = r#"
graph main(%x: float[1,4,6,6]) -> (%y) {
  init %wa: float[8,4,3,3] = $WA
  init %ba: float[8] = seeded(6)
  init %wb: float[8,4,1,1] = $WB
  init %bb: float[8] = seeded(7)
  init %w3: float[6,8,1,1] = seeded(8)
  %a = Conv(%x, %wa, %ba) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv_a"
  %b = Conv(%x, %wb, %bb) {kernel_shape=[1, 1]} name="conv_b"
  %s = Add(%a, %b) name="add"
  %r = Relu(%s) name="relu"
  %y = Conv(%r, %w3) {kernel_shape=[1, 1]} name="conv3"
}
"#;
    // Both writers of channels 1 and 3 are pruned: the whole residual group goes.
    let t = w(text, "$WA", [8, 4, 3], |o, _| o != 1 && o != 3);
    let t = w(&t, "$WB", [8, 4, 1], |o, _| o != 1 && o != 3);
    let r = check("residual_group_with_every_member_constant_is_removed", &t);
    assert_eq!(r.groups_removed, 2);
}

#[test]
fn near_miss_residual_group_with_one_live_member() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %wa: float[8,8,3,3] = $WA
  init %ba: float[8] = seeded(6)
  init %w3: float[6,8,1,1] = seeded(8)
  %a = Conv(%x, %wa, %ba) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv_a"
  %s = Add(%a, %x) name="add"
  %r = Relu(%s) name="relu"
  %y = Conv(%r, %w3) {kernel_shape=[1, 1]} name="conv3"
}
"#;
    // conv_a's filters 1, 3 and 5 are pruned, but the skip connection is live in every
    // channel: the groups stay. conv_a computes its five live filters and a zero one; a gather
    // and a per-channel vector put its constants back before the Add.
    let t = w(text, "$WA", [8, 8, 3], |o, _| ![1, 3, 5].contains(&o));
    let r = check("near_miss_residual_group_with_one_live_member", &t);
    assert_eq!(r.groups_removed, 0);
    assert_eq!(r.producers_narrowed.len(), 1);
}

#[test]
fn concat_carries_removal_to_both_producers() {
    let text = r#"
graph main(%x: float[1,4,6,6]) -> (%y) {
  init %wa: float[4,4,3,3] = $WA
  init %ba: float[4] = [0.2, 0.4, -0.3, 0.1]
  init %wb: float[4,4,1,1] = $WB
  init %bb: float[4] = [0.3, -0.5, 0.6, 0.2]
  init %w3: float[6,8,1,1] = seeded(8)
  %a = Conv(%x, %wa, %ba) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv_a"
  %b = Conv(%x, %wb, %bb) {kernel_shape=[1, 1]} name="conv_b"
  %c = Concat(%a, %b) {axis=1} name="concat"
  %r = Relu(%c) name="relu"
  %y = Conv(%r, %w3) {kernel_shape=[1, 1]} name="conv3"
}
"#;
    // conv_a's filter 1 and conv_b's filter 2 are pruned: concat channels 1 and 6.
    let t = w(text, "$WA", [4, 4, 3], |o, _| o != 1);
    let t = w(&t, "$WB", [4, 4, 1], |o, _| o != 2);
    let r = check("concat_carries_removal_to_both_producers", &t);
    assert_eq!(r.groups_removed, 2);
}

#[test]
fn depthwise_zero_filter_makes_its_input_channel_dead() {
    let text = r#"
graph main(%x: float[1,4,6,6]) -> (%y) {
  init %w1: float[8,4,1,1] = seeded(1)
  init %b1: float[8] = seeded(2)
  init %wd: float[8,1,3,3] = $WD
  init %bd: float[8] = seeded(4)
  init %w3: float[6,8,1,1] = seeded(5)
  %e = Conv(%x, %w1, %b1) {kernel_shape=[1, 1]} name="expand"
  %r = Relu(%e) name="relu1"
  %d = Conv(%r, %wd, %bd) {group=8, kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="dw"
  %s = Relu(%d) name="relu2"
  %y = Conv(%s, %w3) {kernel_shape=[1, 1]} name="project"
}
"#;
    // The depthwise filter 3 is pruned: its output is its bias, which the project conv folds,
    // and nothing reads expand's channel 3 any more, so the live expand filter 3 goes too.
    let t = w(text, "$WD", [8, 1, 3], |o, _| o != 3);
    let r = check("depthwise_zero_filter_makes_its_input_channel_dead", &t);
    assert_eq!(r.groups_removed, 1);
}

#[test]
fn constant_channel_read_through_a_zero_column_needs_no_carrier() {
    // Regression (MSWU-pruned ResNet-18, bugs.md 15:10): filter 1 of conv1 is pruned (bias 0.7)
    // and conv2, zero-padded, ignores channel 1 (its column is zero, as MSWU tile pruning
    // leaves it). No carrier is needed, since nothing reads the constant; the pass used to
    // fail with "no carrier" and the whole removal was dropped.
    let text = r#"
graph main(%x: float[1,4,6,6]) -> (%y) {
  init %w1: float[8,4,3,3] = $W1
  init %b1: float[8] = [0.5, 0.7, -0.2, 0.3, 0.4, 0.1, 0.9, 0.2]
  init %w2: float[6,8,3,3] = $W2
  init %b2: float[6] = seeded(4)
  %c = Conv(%x, %w1, %b1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv1"
  %r = Relu(%c) name="relu"
  %y = Conv(%r, %w2, %b2) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv2"
}
"#;
    let text = w(text, "$W1", [8, 4, 3], |o, _| o != 1);
    let r = check(
        "constant_channel_read_through_a_zero_column_needs_no_carrier",
        &w(&text, "$W2", [6, 8, 3], |_, i| i != 1),
    );
    assert_eq!((r.groups_removed, r.carriers), (1, 0));
}
