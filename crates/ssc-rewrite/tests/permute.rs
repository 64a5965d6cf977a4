//! Snapshot tests of permutation folding (`ssc_rewrite::permute`): each case is a small network
//! in the IR text format with a channel `Gather` next to convs; its snapshot (in
//! `snapshots/permute/` at the repository root) holds the IR before, the pass's report and the
//! IR after. Near misses (a permutation nothing can absorb, a gather that is not a
//! permutation) show what stays.
//!
//! Every case also runs both models through the reference executor, so a snapshot can never
//! bless a fold that changes the function.

mod common;

use common::assert_same_function;
use ssc_rewrite::permute::{fold_permutations, PermuteReport};

/// Parses `text`, infers shapes, folds permutations, checks the function is unchanged and
/// snapshots before / report / after under `name`.
fn check(name: &str, text: &str) -> PermuteReport {
    let mut before = ssc_ir::parse_model(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    ssc_passes::infer_shapes(&mut before, &[]).unwrap();
    let mut after = before.clone();
    let r = fold_permutations(&mut after).unwrap();
    ssc_passes::infer_shapes(&mut after, &[]).unwrap();
    assert_same_function(&before, &after, 11);
    let snap = format!(
        "# before\n{}\n# report\ninto readers {}, into producer {}, kept {}\n\n# after\n{}",
        ssc_ir::print_model(&before),
        r.into_readers,
        r.into_producer,
        r.kept,
        ssc_ir::print_model(&after)
    );
    insta::with_settings!({
        snapshot_path => "../../../snapshots/permute",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, snap);
    });
    r
}

/// The form `block-diagonal-to-grouped` emits between two dense convs: the input permutation
/// goes into the producer's filters, the output permutation (through Relu) into the reader's
/// columns.
#[test]
fn grouped_block_permutations_fold_into_both_neighbours() {
    let text = r#"
graph main(%x: float[1,3,7,7]) -> (%y) {
  init %w0: float[8,3,3,3] = seeded(1)
  init %b0: float[8] = seeded(2)
  init %p_in: int64[8] = [0, 2, 4, 6, 1, 3, 5, 7]
  init %wg: float[8,4,3,3] = seeded(3)
  init %bg: float[8] = seeded(4)
  init %p_out: int64[8] = [0, 4, 1, 5, 2, 6, 3, 7]
  init %w2: float[5,8,3,3] = seeded(5)
  %a = Conv(%x, %w0, %b0) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv0"
  %t = Gather(%a, %p_in) {axis=-3} name="conv/ssc1"
  %g = Conv(%t, %wg, %bg) {group=2, kernel_shape=[3, 3], pads=[1, 0, 1, 2], strides=[2, 2]} name="conv/ssc2"
  %u = Gather(%g, %p_out) {axis=-3} name="conv/ssc3"
  %r = Relu(%u) name="relu"
  %y = Conv(%r, %w2) {kernel_shape=[3, 3], pads=[1, 1, 1, 1], dilations=[2, 2]} name="conv2"
}
"#;
    let r = check("grouped_block_permutations_fold_into_both_neighbours", text);
    assert_eq!((r.into_readers, r.into_producer, r.kept), (1, 1, 0));
}

/// A permutation that keeps each group's channels in the group goes into a grouped reader's
/// columns; two readers (one through Clip and MaxPool) both absorb it.
#[test]
fn within_group_permutation_folds_into_grouped_and_dense_readers() {
    let text = r#"
graph main(%x: float[1,6,5,5]) -> (%y, %z) {
  init %p: int64[6] = [2, 0, 1, 4, 5, 3]
  init %wg: float[4,3,3,3] = seeded(6)
  init %w1: float[3,6,1,1] = seeded(7)
  init %lo: float[] = [0.0]
  init %hi: float[] = [6.0]
  %t = Gather(%x, %p) {axis=1} name="perm"
  %y = Conv(%t, %wg) {group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="grouped"
  %c = Clip(%t, %lo, %hi) name="clip"
  %m = MaxPool(%c) {kernel_shape=[2, 2], strides=[2, 2]} name="pool"
  %z = Conv(%m, %w1) {kernel_shape=[1, 1]} name="dense"
}
"#;
    let r = check(
        "within_group_permutation_folds_into_grouped_and_dense_readers",
        text,
    );
    assert_eq!((r.into_readers, r.into_producer, r.kept), (1, 0, 0));
}

/// Near misses: the first gather's input is also read by a residual Add and its readers are an
/// Add and a conv (the Add cannot absorb it); the second reads a graph input and its
/// permutation crosses the reader's groups; the third repeats an index (not a permutation).
/// All three stay.
#[test]
fn near_miss_permutations_nothing_can_absorb_stay() {
    let text = r#"
graph main(%x: float[1,4,5,5]) -> (%y, %s, %d) {
  init %w0: float[4,4,1,1] = seeded(8)
  init %p: int64[4] = [1, 0, 3, 2]
  init %q: int64[4] = [0, 2, 1, 3]
  init %dup: int64[4] = [0, 0, 1, 2]
  init %w1: float[4,4,3,3] = seeded(9)
  init %wg: float[2,2,3,3] = seeded(10)
  init %w3: float[2,4,1,1] = seeded(11)
  %a = Conv(%x, %w0) {kernel_shape=[1, 1]} name="conv0"
  %t = Gather(%a, %p) {axis=1} name="perm"
  %s = Add(%t, %a) name="add"
  %y = Conv(%t, %w1) {kernel_shape=[3, 3]} name="conv1"
  %u = Gather(%x, %q) {axis=1} name="cross_groups"
  %g = Conv(%u, %wg) {group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="grouped"
  %v = Gather(%a, %dup) {axis=1} name="not_a_permutation"
  %e = Conv(%v, %w3) {kernel_shape=[1, 1]} name="conv3"
  %d = Add(%e, %g) name="sum"
}
"#;
    let r = check("near_miss_permutations_nothing_can_absorb_stay", text);
    assert_eq!((r.into_readers, r.into_producer, r.kept), (0, 0, 2));
}

/// A permutation whose output is a graph output folds into its producer (through Relu) and the
/// output keeps its name.
#[test]
fn permutation_at_a_graph_output_folds_into_its_producer() {
    let text = r#"
graph main(%x: float[1,3,6,6]) -> (%y) {
  init %w0: float[5,3,3,3] = seeded(12)
  init %b0: float[5] = seeded(13)
  init %p: int64[5] = [4, 2, 0, 1, 3]
  %a = Conv(%x, %w0, %b0) {kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0]} name="conv0"
  %r = Relu(%a) name="relu"
  %y = Gather(%r, %p) {axis=1} name="perm"
}
"#;
    let r = check(
        "permutation_at_a_graph_output_folds_into_its_producer",
        text,
    );
    assert_eq!((r.into_readers, r.into_producer, r.kept), (0, 1, 0));
}

/// Two grouped convs as `block-diagonal-to-grouped` emits them back to back: the first's output
/// permutation (through Relu) composes with the second's input permutation into the identity,
/// so both gathers go; a third gather whose composition is not the identity stays, composed.
#[test]
fn back_to_back_block_permutations_compose() {
    let text = r#"
graph main(%x: float[1,6,5,5]) -> (%y, %s) {
  init %wa: float[6,3,3,3] = seeded(14)
  init %p: int64[6] = [0, 3, 1, 4, 2, 5]
  init %q: int64[6] = [0, 2, 4, 1, 3, 5]
  init %wb: float[6,3,3,3] = seeded(15)
  init %r: int64[6] = [5, 4, 3, 2, 1, 0]
  %a = Conv(%x, %wa) {group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="first/ssc2"
  %u = Gather(%a, %p) {axis=-3} name="first/ssc3"
  %v = Relu(%u) name="relu"
  %t = Gather(%v, %q) {axis=-3} name="second/ssc1"
  %y = Conv(%t, %wb) {group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="second/ssc2"
  %m = MaxPool(%u) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="pool"
  %z = Gather(%m, %r) {axis=1} name="reverse"
  %s = Add(%z, %x) name="add"
}
"#;
    let r = check("back_to_back_block_permutations_compose", text);
    assert_eq!((r.into_readers, r.into_producer, r.kept), (2, 0, 1));
}
