//! Snapshot tests of the rewrite rules: each case is a small model in the IR text format, and its
//! snapshot (in `snapshots/rewrite/` at the repository root) holds the IR before, the report's
//! per-layer line and the IR after, so a review reads exactly what a rule did.
//!
//! Every case also runs both models through the reference executor, so a snapshot can never
//! bless a rewrite that changes the function. Costs are `MacCost`, so the choices are
//! structural and do not depend on a calibration table.

mod common;

use std::fmt::Write as _;

use common::{assert_same_function, mac_opts, Lcg};
use ssc_rewrite::rewrite_model;

/// Parses `text`, infers shapes, rewrites with MAC costs, checks the function is unchanged and
/// snapshots before / report / after under `name`.
fn check(name: &str, text: &str) {
    let mut before = ssc_ir::parse_model(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    ssc_passes::infer_shapes(&mut before, &[]).unwrap();
    let mut after = before.clone();
    let report = rewrite_model(&mut after, &mac_opts()).unwrap();
    ssc_passes::infer_shapes(&mut after, &[]).unwrap();
    assert_same_function(&before, &after, 7);

    let (before_text, after_text) = (ssc_ir::print_model(&before), ssc_ir::print_model(&after));
    if report.rewritten == 0 {
        assert_eq!(
            before_text, after_text,
            "{name}: nothing rewritten, yet the IR changed"
        );
    }
    let mut layers = String::new();
    for l in &report.layers {
        writeln!(
            layers,
            "{}: {} -> {} | macs {} -> {} | params {} -> {} | fired [{}] | {}{}",
            l.node,
            l.form_before,
            l.form_after,
            l.macs_before,
            l.macs_after,
            l.params_before,
            l.params_after,
            l.rules_fired.join(", "),
            if l.rewritten { "rewritten" } else { "kept" },
            if l.composed.is_empty() {
                String::new()
            } else {
                format!(" | composed [{}]", l.composed.join(", "))
            },
        )
        .unwrap();
    }
    if layers.is_empty() {
        layers.push_str("(no rule fired)\n");
    }
    let snap = format!("# before\n{before_text}\n# report\n{layers}\n# after\n{after_text}");
    insta::with_settings!({
        snapshot_path => "../../../snapshots/rewrite",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, snap);
    });
}

/// The layer most rule snapshots plant their weights in: a biased 3x3 conv, 8 -> 8 channels,
/// pads 1, on a 6x6 input (`$W` filled by [`with_w`]).
const CONV_3X3_8X8: &str = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,3,3] = $W
  init %b: float[8] = seeded(2)
  %y = Conv(%x, %w, %b) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv"
}
"#;

/// Fills the `$W` placeholder of `text` with an explicit weight list of shape
/// `[co, ci, k, k]`: seeded non-zero values where `keep(o, i, tap)`, zeros elsewhere (taps are
/// row-major, so `4` is the centre of a 3x3 kernel).
fn with_w(
    text: &str,
    [co, ci, k]: [usize; 3],
    keep: impl Fn(usize, usize, usize) -> bool,
) -> String {
    let mut r = Lcg(1);
    let mut v = Vec::with_capacity(co * ci * k * k);
    for o in 0..co {
        for i in 0..ci {
            for t in 0..k * k {
                let x = r.next_f32();
                v.push(if keep(o, i, t) {
                    x.to_string()
                } else {
                    "0".into()
                });
            }
        }
    }
    text.replace("$W", &format!("[{}]", v.join(", ")))
}

/// Fills the `$W` placeholder of `text` with the weights `value(o, i, tap)` of shape
/// `[co, ci, k, k]`, for fixtures whose structure is shared values rather than zeros.
fn with_w_values(
    text: &str,
    [co, ci, k]: [usize; 3],
    value: impl Fn(usize, usize, usize) -> f32,
) -> String {
    let mut v = Vec::with_capacity(co * ci * k * k);
    for o in 0..co {
        for i in 0..ci {
            for t in 0..k * k {
                v.push(value(o, i, t).to_string());
            }
        }
    }
    text.replace("$W", &format!("[{}]", v.join(", ")))
}

/// `n` seeded non-zero values in `[-1, 1)`.
fn table(n: usize, seed: u64) -> Vec<f32> {
    Lcg(seed).vec(n)
}

// ----- a. block-diagonal-to-grouped -----

#[test]
fn a_identity_blocks_become_grouped() {
    let text = CONV_3X3_8X8;
    check(
        "a_identity_blocks_become_grouped",
        &with_w(text, [8, 8, 3], |o, i, _| o / 4 == i / 4),
    );
}

#[test]
fn a_permuted_blocks_get_gathers() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,3,3] = $W
  init %b: float[8] = seeded(2)
  %y = Conv(%x, %w, %b) {kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]} name="conv"
}
"#;
    check(
        "a_permuted_blocks_get_gathers",
        &with_w(text, [8, 8, 3], |o, i, _| o % 2 == i % 2),
    );
}

#[test]
fn a_scaled_permutation_1x1_becomes_depthwise() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,1,1] = $W
  %y = Conv(%x, %w) {kernel_shape=[1, 1]} name="conv"
}
"#;
    check(
        "a_scaled_permutation_1x1_becomes_depthwise",
        &with_w(text, [8, 8, 1], |o, i, _| i == (o * 3) % 8),
    );
}

#[test]
fn a_near_miss_one_coupling_weight() {
    let text = CONV_3X3_8X8;
    // One weight outside the blocks (output 0, input 7, top-left tap) couples them.
    check(
        "a_near_miss_one_coupling_weight",
        &with_w(text, [8, 8, 3], |o, i, t| {
            o / 4 == i / 4 || (o == 0 && i == 7 && t == 0)
        }),
    );
}

#[test]
fn a_near_miss_unequal_blocks() {
    let text = CONV_3X3_8X8;
    // Blocks of 2 and 6 channels: a grouped conv needs equal groups.
    check(
        "a_near_miss_unequal_blocks",
        &with_w(text, [8, 8, 3], |o, i, _| (o < 2) == (i < 2)),
    );
}

#[test]
fn a_near_miss_already_grouped() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,4,3,3] = $W
  init %b: float[8] = seeded(2)
  %y = Conv(%x, %w, %b) {kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2} name="conv"
}
"#;
    // Each group is itself two 2x2 blocks (really G=4), but the rule matches group = 1 only: a
    // grouped conv's blocks would have to be found inside every group.
    check(
        "a_near_miss_already_grouped",
        &with_w(text, [8, 4, 3], |o, i, _| (o % 4) / 2 == i / 2),
    );
}

// ----- b. ssc-split -----

#[test]
fn b_group_blocks_split_into_grouped_plus_pointwise() {
    let text = CONV_3X3_8X8;
    check(
        "b_group_blocks_split_into_grouped_plus_pointwise",
        &with_w(text, [8, 8, 3], |o, i, t| o / 4 == i / 4 || t == 4),
    );
}

#[test]
fn b_hetconv_shift_uses_permutations() {
    let text = CONV_3X3_8X8;
    // Spatial kernels on the shifted diagonals i - o = 0 mod 4, centre taps elsewhere.
    check(
        "b_hetconv_shift_uses_permutations",
        &with_w(text, [8, 8, 3], |o, i, t| (i + 8 - o) % 4 == 0 || t == 4),
    );
}

#[test]
fn b_depthwise_plus_pointwise_strided_dilated() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,3,3] = $W
  %y = Conv(%x, %w) {kernel_shape=[3, 3], pads=[2, 2, 2, 2], strides=[2, 2], dilations=[2, 2]} name="conv"
}
"#;
    check(
        "b_depthwise_plus_pointwise_strided_dilated",
        &with_w(text, [8, 8, 3], |o, i, t| o == i || t == 4),
    );
}

#[test]
fn b_near_miss_without_padding_for_the_centre() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,3,3] = $W
  init %b: float[8] = seeded(2)
  %y = Conv(%x, %w, %b) {kernel_shape=[3, 3]} name="conv"
}
"#;
    // No pads: the centre tap of output y reads input y + 1, which a 1x1 conv cannot reach.
    check(
        "b_near_miss_without_padding_for_the_centre",
        &with_w(text, [8, 8, 3], |o, i, t| o / 4 == i / 4 || t == 4),
    );
}

#[test]
fn b_near_miss_asymmetric_pads() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,3,3] = $W
  init %b: float[8] = seeded(2)
  %y = Conv(%x, %w, %b) {kernel_shape=[3, 3], pads=[1, 1, 0, 1]} name="conv"
}
"#;
    check(
        "b_near_miss_asymmetric_pads",
        &with_w(text, [8, 8, 3], |o, i, t| o / 4 == i / 4 || t == 4),
    );
}

#[test]
fn b_unequal_blocks_and_a_hub_column() {
    let text = r#"
graph main(%x: float[1,8,7,7]) -> (%y) {
  init %w: float[7,8,3,3] = $W
  init %b: float[7] = seeded(2)
  %y = Conv(%x, %w, %b) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv"
}
"#;
    // What channel removal leaves of a filter-pruned SSC conv: outputs in spatial blocks
    // {0,1,2} {3,4} {5} reading inputs {0,1,2} {3,4} {5,6}; output 6 has point kernels only;
    // input 7 is a carrier with full kernels into outputs 0..5, joining every block. Point
    // kernels elsewhere. Split: 3 groups padded to 3 x 3 slots, the 1x1 remainder over inputs
    // 0..6 with the bias, and input 7's own 3x3 conv.
    let ob = |o: usize| [3, 5, 6].iter().position(|&e| o < e);
    let ib = |i: usize| [3, 5, 7].iter().position(|&e| i < e);
    check(
        "b_unequal_blocks_and_a_hub_column",
        &with_w(text, [7, 8, 3], |o, i, t| {
            t == 4 || (ob(o).is_some() && ob(o) == ib(i)) || (i == 7 && o < 6)
        }),
    );
}

#[test]
fn b_near_miss_off_block_kernel_uses_a_corner() {
    let text = CONV_3X3_8X8;
    // One off-block kernel (output 0, input 5) is centre plus a corner: not a point kernel, so
    // the spatial kernels no longer form blocks.
    check(
        "b_near_miss_off_block_kernel_uses_a_corner",
        &with_w(text, [8, 8, 3], |o, i, t| {
            o / 4 == i / 4 || t == 4 || (o == 0 && i == 5 && t == 0)
        }),
    );
}

// ----- c. kernel-crop -----

#[test]
fn c_centre_only_becomes_1x1_with_stride() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,3,3] = $W
  init %b: float[8] = seeded(2)
  %y = Conv(%x, %w, %b) {kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]} name="conv"
}
"#;
    check(
        "c_centre_only_becomes_1x1_with_stride",
        &with_w(text, [8, 8, 3], |_, _, t| t == 4),
    );
}

#[test]
fn c_zero_ring_shrinks_5x5_to_3x3() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,5,5] = $W
  init %b: float[8] = seeded(2)
  %y = Conv(%x, %w, %b) {kernel_shape=[5, 5], pads=[2, 2, 2, 2]} name="conv"
}
"#;
    check(
        "c_zero_ring_shrinks_5x5_to_3x3",
        &with_w(text, [8, 8, 5], |_, _, t| {
            (1..4).contains(&(t / 5)) && (1..4).contains(&(t % 5))
        }),
    );
}

#[test]
fn c_one_sided_crop_keeps_groups() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,4,3,3] = $W
  %y = Conv(%x, %w) {kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2} name="conv"
}
"#;
    // Taps only in the top-left 2x2: the end pads drop by one, the groups stay.
    check(
        "c_one_sided_crop_keeps_groups",
        &with_w(text, [8, 4, 3], |_, _, t| t / 3 < 2 && t % 3 < 2),
    );
}

#[test]
fn c_plus_taps_split_into_column_and_row() {
    let text = CONV_3X3_8X8;
    // '+' taps (centre row and column): a 3x1 conv with the bias plus a 1x2 conv with dilation 2
    // over the row's two outer taps (the centre is the column's).
    check(
        "c_plus_taps_split_into_column_and_row",
        &with_w(text, [8, 8, 3], |_, _, t| t / 3 == 1 || t % 3 == 1),
    );
}

#[test]
fn c_plus_near_miss_one_corner_tap() {
    let text = CONV_3X3_8X8;
    // '+' taps, but one kernel (output 2, input 6) also uses a corner: nothing fires.
    check(
        "c_plus_near_miss_one_corner_tap",
        &with_w(text, [8, 8, 3], |o, i, t| {
            t / 3 == 1 || t % 3 == 1 || (o, i, t) == (2, 6, 8)
        }),
    );
}

#[test]
fn c_near_miss_pads_would_go_negative() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,3,3] = $W
  init %b: float[8] = seeded(2)
  %y = Conv(%x, %w, %b) {kernel_shape=[3, 3]} name="conv"
}
"#;
    // Centre-only, but without pads a 1x1 conv would need pad -1 at both ends.
    check(
        "c_near_miss_pads_would_go_negative",
        &with_w(text, [8, 8, 3], |_, _, t| t == 4),
    );
}

#[test]
fn c_near_miss_corner_taps_span_the_kernel() {
    let text = CONV_3X3_8X8;
    // Centre-only kernels, except two with opposite corner taps: together they span the box.
    check(
        "c_near_miss_corner_taps_span_the_kernel",
        &with_w(text, [8, 8, 3], |o, i, t| {
            t == 4 || (o == 2 && i == 6 && t == 8) || (o == 5 && i == 1 && t == 0)
        }),
    );
}

// ----- d. const-kernel-to-sumpool -----

/// `a[o, i]` for constant kernels, with every fifth kernel zero.
fn const_kernel(a: &[f32], o: usize, i: usize) -> f32 {
    if (o * 8 + i).is_multiple_of(5) {
        0.0
    } else {
        a[o * 8 + i]
    }
}

#[test]
fn d_const_kernels_become_sumpool_then_pointwise() {
    let text = CONV_3X3_8X8;
    let a = table(64, 3);
    check(
        "d_const_kernels_become_sumpool_then_pointwise",
        &with_w_values(text, [8, 8, 3], |o, i, _| const_kernel(&a, o, i)),
    );
}

#[test]
fn d_const_kernels_strided_asymmetric_pads() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,3,3] = $W
  %y = Conv(%x, %w) {kernel_shape=[3, 3], pads=[0, 1, 2, 2], strides=[2, 2]} name="conv"
}
"#;
    let a = table(64, 4);
    check(
        "d_const_kernels_strided_asymmetric_pads",
        &with_w_values(text, [8, 8, 3], |o, i, _| const_kernel(&a, o, i)),
    );
}

#[test]
fn d_const_near_miss_one_tap_differs() {
    let text = CONV_3X3_8X8;
    // Kernel (3, 2) has one tap (bottom centre) 0.5 above the others: no longer constant.
    let a = table(64, 5);
    check(
        "d_const_near_miss_one_tap_differs",
        &with_w_values(text, [8, 8, 3], |o, i, t| {
            const_kernel(&a, o, i) + if (o, i, t) == (3, 2, 7) { 0.5 } else { 0.0 }
        }),
    );
}

#[test]
fn d_const_near_miss_dilated() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,3,3] = $W
  init %b: float[8] = seeded(2)
  %y = Conv(%x, %w, %b) {kernel_shape=[3, 3], pads=[2, 2, 2, 2], dilations=[2, 2]} name="conv"
}
"#;
    // Constant kernels, but dilated: AveragePool's dilations need opset 19.
    let a = table(64, 6);
    check(
        "d_const_near_miss_dilated",
        &with_w_values(text, [8, 8, 3], |o, i, _| const_kernel(&a, o, i)),
    );
}

// ----- d. equal-inputs-summed -----

#[test]
fn d_equal_input_blocks_summed_by_grouped_ones() {
    let text = CONV_3X3_8X8;
    // Input channel i reads column i / 4: two classes of four contiguous channels.
    let t = table(8 * 8 * 9, 7);
    check(
        "d_equal_input_blocks_summed_by_grouped_ones",
        &with_w_values(text, [8, 8, 3], |o, i, tap| t[(o * 8 + i / 4) * 9 + tap]),
    );
}

#[test]
fn d_equal_inputs_interleaved_get_a_gather() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,3,3] = $W
  %y = Conv(%x, %w) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv"
}
"#;
    // Even and odd input channels: the members are gathered class by class first.
    let t = table(8 * 8 * 9, 8);
    check(
        "d_equal_inputs_interleaved_get_a_gather",
        &with_w_values(text, [8, 8, 3], |o, i, tap| t[(o * 8 + i % 2) * 9 + tap]),
    );
}

#[test]
fn d_equal_inputs_near_miss_one_output_differs() {
    let text = CONV_3X3_8X8;
    // Columns equal in blocks of four, except that output 5 shifts each column's centre tap
    // differently: no two columns are equal any more.
    let t = table(8 * 8 * 9, 9);
    check(
        "d_equal_inputs_near_miss_one_output_differs",
        &with_w_values(text, [8, 8, 3], |o, i, tap| {
            let v = t[(o * 8 + i / 4) * 9 + tap];
            if o == 5 && tap == 4 {
                v + 0.125 * i as f32
            } else {
                v
            }
        }),
    );
}

// ----- d. duplicate-filters-gathered -----

#[test]
fn d_duplicate_filters_without_bias_are_gathered() {
    let text = r#"
graph main(%x: float[1,8,6,6]) -> (%y) {
  init %w: float[8,8,3,3] = $W
  %y = Conv(%x, %w) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv"
}
"#;
    // Filter o equals filter o % 4.
    let t = table(8 * 8 * 9, 10);
    check(
        "d_duplicate_filters_without_bias_are_gathered",
        &with_w_values(text, [8, 8, 3], |o, i, tap| t[((o % 4) * 8 + i) * 9 + tap]),
    );
}

#[test]
fn d_negated_filters_get_signs_and_the_bias_after() {
    let text = CONV_3X3_8X8;
    // Filter o + 4 is minus filter o.
    let t = table(8 * 8 * 9, 11);
    check(
        "d_negated_filters_get_signs_and_the_bias_after",
        &with_w_values(text, [8, 8, 3], |o, i, tap| {
            let v = t[((o % 4) * 8 + i) * 9 + tap];
            if o >= 4 {
                -v
            } else {
                v
            }
        }),
    );
}

#[test]
fn d_duplicate_near_miss_scaled_by_two() {
    let text = CONV_3X3_8X8;
    // Filter o + 4 is twice filter o: equal up to a scale, not up to sign.
    let t = table(8 * 8 * 9, 12);
    check(
        "d_duplicate_near_miss_scaled_by_two",
        &with_w_values(text, [8, 8, 3], |o, i, tap| {
            let v = t[((o % 4) * 8 + i) * 9 + tap];
            if o >= 4 {
                2.0 * v
            } else {
                v
            }
        }),
    );
}

#[test]
fn d_zero_input_columns_are_sliced_away() {
    let text = CONV_3X3_8X8;
    // Input column 2 is entirely zero.
    check(
        "d_zero_input_columns_are_sliced_away",
        &with_w(text, [8, 8, 3], |_, i, _| i != 2),
    );
}

#[test]
fn d_zero_inputs_near_miss_one_nonzero_weight() {
    let text = CONV_3X3_8X8;
    // Input column 2 is zero except the centre tap of output 3.
    check(
        "d_zero_inputs_near_miss_one_nonzero_weight",
        &with_w(text, [8, 8, 3], |o, i, t| i != 2 || (o == 3 && t == 4)),
    );
}

// ----- f. rules that compose (a rule matching another rule's output) -----

#[test]
fn f_ssc_remainder_zero_columns_are_sliced() {
    let text = CONV_3X3_8X8;
    // SSC blocks of 2 (spatial kernels where o / 2 == i / 2), centre taps elsewhere except from
    // inputs 1 and 5: the split's 1x1 remainder has zero columns 1 and 5, which
    // `zero-inputs-sliced` then removes (the original weight has no zero column).
    check(
        "f_ssc_remainder_zero_columns_are_sliced",
        &with_w(text, [8, 8, 3], |o, i, t| {
            o / 2 == i / 2 || (t == 4 && i != 1 && i != 5)
        }),
    );
}

#[test]
fn f_near_miss_remainder_column_with_one_weight() {
    let text = CONV_3X3_8X8;
    // As above with only input 1 free of centre taps, but output 6 reads its centre tap: the
    // remainder has no zero column, so the split stays as it is.
    check(
        "f_near_miss_remainder_column_with_one_weight",
        &with_w(text, [8, 8, 3], |o, i, t| {
            o / 2 == i / 2 || (t == 4 && (i != 1 || o == 6))
        }),
    );
}
