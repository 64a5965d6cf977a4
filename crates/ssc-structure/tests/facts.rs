//! One small hand-made weight per fact the analysis reports, each with a near miss that must not
//! be reported, so a rule guarded by a fact can trust it.

use ssc_ir::{DataType, Tensor};
use ssc_structure::{
    analyze_conv_weight, analyze_matrix, analyze_matrix_transposed, AnalysisOptions, AxisExtent,
    ConvStructure, KernelClass, StructureError, TapSet, PAD,
};

type K3 = [f32; 9];

const Z: K3 = [0.0; 9];

/// A full 3x3 kernel with distinct non-zero taps, different for each seed.
fn full(seed: usize) -> K3 {
    std::array::from_fn(|t| 1.0 + t as f32 + 10.0 * seed as f32)
}

fn point(v: f32) -> K3 {
    let mut k = Z;
    k[4] = v;
    k
}

/// A `co x ci x 3 x 3` weight built kernel by kernel.
fn conv3(co: usize, ci: usize, f: impl Fn(usize, usize) -> K3) -> Tensor {
    let mut w = Vec::with_capacity(co * ci * 9);
    for o in 0..co {
        for i in 0..ci {
            w.extend_from_slice(&f(o, i));
        }
    }
    Tensor::from_f32(vec![co, ci, 3, 3], &w)
}

/// A `co x ci x 1 x 1` weight.
fn conv1(co: usize, ci: usize, f: impl Fn(usize, usize) -> f32) -> Tensor {
    let w: Vec<f32> = (0..co * ci).map(|k| f(k / ci, k % ci)).collect();
    Tensor::from_f32(vec![co, ci, 1, 1], &w)
}

fn check(w: &Tensor, group: usize) -> ConvStructure {
    analyze_conv_weight(w, group, &AnalysisOptions::exact()).unwrap()
}

fn check_eps(w: &Tensor, group: usize, eps: f32) -> ConvStructure {
    analyze_conv_weight(w, group, &AnalysisOptions::approximate(eps)).unwrap()
}

/// `W[out_perm][:, in_perm]` of a 1x1 or k x k weight is exactly block-diagonal with `g` blocks.
fn assert_block_diagonal(w: &Tensor, s: &ConvStructure) {
    let b = s.connectivity.blocks.as_ref().expect("blocks");
    let v = w.to_f32_vec().unwrap();
    let (co, cig, taps) = (s.outputs(), s.weight_shape[1], s.taps_per_kernel());
    let cog = co / s.group;
    for (jo, &o) in b.output_perm.iter().enumerate() {
        for (ji, &i) in b.input_perm.iter().enumerate() {
            let (o, i) = (o as usize, i as usize);
            let inside = jo / b.block_outputs == ji / b.block_inputs
                && jo < b.groups * b.block_outputs
                && ji < b.groups * b.block_inputs;
            if i / cig != o / cog {
                continue; // outside the conv's own groups: structurally zero
            }
            let il = i % cig;
            let nz = (0..taps).any(|t| v[(o * cig + il) * taps + t] != 0.0);
            assert!(
                inside || !nz,
                "non-zero kernel ({o}, {i}) outside the blocks"
            );
        }
    }
}

// ----- kernel classes -----

#[test]
fn classes_f_p_z_and_partial() {
    let w = conv3(2, 2, |o, i| match (o, i) {
        (0, 0) => full(0),
        (0, 1) => point(3.0),
        (1, 0) => Z,
        _ => [0., 1., 0., 1., 1., 1., 0., 1., 0.],
    });
    let s = check(&w, 1);
    let m = &s.kernel_map;
    assert_eq!(m.class(0, 0), KernelClass::Full);
    assert_eq!(m.class(0, 1), KernelClass::Point);
    assert_eq!(m.class(1, 0), KernelClass::Zero);
    assert_eq!(m.class(1, 1), KernelClass::Partial);
    assert_eq!(m.taps(1, 1), TapSet::from_taps(9, [1, 3, 4, 5, 7]));
    assert_eq!(m.taps(0, 1), TapSet::from_taps(9, [4]));
    let k = s.kernels;
    assert_eq!((k.full, k.point, k.zero, k.partial), (1, 1, 1, 1));
    assert_eq!(s.nnz, 9 + 1 + 5);
    assert_eq!(s.numel, 36);
}

#[test]
fn point_kernel_with_a_tiny_off_centre_tap_is_spatial() {
    let mut near = point(1.0);
    near[0] = 1e-30;
    let w = conv3(1, 1, |_, _| near);
    let s = check(&w, 1);
    assert_eq!(s.kernel_map.class(0, 0), KernelClass::Partial);
    assert!(s.kernel_map.class(0, 0).is_spatial());
    // Within epsilon it is a point kernel again, and the result says it is approximate.
    let s = check_eps(&w, 1, 1e-6);
    assert_eq!(s.kernel_map.class(0, 0), KernelClass::Point);
    assert!(s.approximate);
    assert!(s.to_string().starts_with("Conv 1x1x3x3 g=1 eps=0.000001:"));
}

#[test]
fn even_kernels_have_no_point_class() {
    let w = Tensor::from_f32(vec![1, 1, 2, 2], &[0.0, 0.0, 0.0, 5.0]);
    let s = check(&w, 1);
    assert_eq!(s.kernel_map.class(0, 0), KernelClass::Partial);
    assert!(s.ssc.is_none());
}

#[test]
fn one_by_one_kernels_are_points() {
    let w = conv1(2, 2, |o, i| if o == i { 1.0 } else { 0.0 });
    let s = check(&w, 1);
    assert_eq!(s.kernels.point, 2);
    assert!(s.ssc.is_none());
    assert_eq!(s.to_string(), "Conv 2x2x1x1 g=1: Z 50%; depthwise m=1");
}

#[test]
fn one_d_and_three_d_kernels() {
    // 1-D: [o, i, 3]
    let w = Tensor::from_f32(vec![2, 1, 3], &[0.0, 2.0, 0.0, 1.0, 2.0, 3.0]);
    let s = check(&w, 1);
    assert_eq!(s.kernel_map.class(0, 0), KernelClass::Point);
    assert_eq!(s.kernel_map.class(1, 0), KernelClass::Full);
    // 3-D: centre of 3x3x3 is tap 13
    let mut v = vec![0.0f32; 27];
    v[13] = 1.0;
    let s = check(&Tensor::from_f32(vec![1, 1, 3, 3, 3], &v), 1);
    assert_eq!(s.kernel_map.class(0, 0), KernelClass::Point);
    assert_eq!(s.taps.shrunk_shape(), Some(vec![1, 1, 1]));
}

#[test]
fn wide_one_d_kernels_use_several_mask_words() {
    let k = 100;
    let mut v = vec![0.0f32; k];
    v[3] = 1.0;
    v[97] = 2.0;
    let s = check(&Tensor::from_f32(vec![1, 1, k], &v), 1);
    assert_eq!(
        s.kernel_map.taps(0, 0).iter().collect::<Vec<_>>(),
        vec![3, 97]
    );
    assert_eq!(s.taps.extent, Some(vec![AxisExtent { begin: 3, end: 98 }]));
}

// ----- tap support -----

#[test]
fn zero_ring_shrinks_the_kernel() {
    let mut v = vec![0.0f32; 2 * 25];
    for o in 0..2 {
        for y in 1..4 {
            for x in 1..4 {
                v[o * 25 + y * 5 + x] = (1 + o + y * 5 + x) as f32;
            }
        }
    }
    let s = check(&Tensor::from_f32(vec![2, 1, 5, 5], &v), 1);
    assert!(s.taps.shrinkable);
    assert_eq!(
        s.taps.extent,
        Some(vec![AxisExtent { begin: 1, end: 4 }; 2])
    );
    assert!(s.to_string().contains("taps 5x5->3x3 full"), "{s}");
    // A single stray tap in the ring defeats the shrink on that axis only.
    v[25 + 2] = 1.0;
    let s = check(&Tensor::from_f32(vec![2, 1, 5, 5], &v), 1);
    assert_eq!(
        s.taps.extent,
        Some(vec![
            AxisExtent { begin: 0, end: 4 },
            AxisExtent { begin: 1, end: 4 }
        ])
    );
    assert!(!s.taps.uniform);
}

#[test]
fn shared_plus_shape() {
    let plus = |s: usize| -> K3 {
        let f = full(s);
        std::array::from_fn(|t| {
            if [1, 3, 4, 5, 7].contains(&t) {
                f[t]
            } else {
                0.0
            }
        })
    };
    let w = conv3(3, 2, |o, i| if o == 2 && i == 1 { Z } else { plus(o + i) });
    let s = check(&w, 1);
    assert!(s.taps.uniform);
    assert_eq!(s.taps.shared, TapSet::from_taps(9, [1, 3, 4, 5, 7]));
    assert!(!s.taps.shrinkable);
    assert!(
        s.to_string().contains("taps 3x3 uniform .#./###/.#."),
        "{s}"
    );
    // Near miss: one kernel also uses a corner.
    let w = conv3(3, 2, |o, i| {
        let mut k = plus(o + i);
        if o == 1 && i == 0 {
            k[0] = 0.5;
        }
        k
    });
    let s = check(&w, 1);
    assert!(!s.taps.uniform);
    assert_eq!(s.taps.shared, TapSet::from_taps(9, [1, 3, 4, 5, 7]));
    assert_eq!(s.taps.union.count(), 6);
}

// ----- connectivity -----

#[test]
fn block_diagonal_and_a_stray_weight() {
    let block = |o: usize, i: usize| o / 2 == i / 2;
    let w = conv1(
        6,
        6,
        |o, i| if block(o, i) { (1 + o + i) as f32 } else { 0.0 },
    );
    let s = check(&w, 1);
    let b = s.connectivity.blocks.as_ref().unwrap();
    assert_eq!((b.groups, b.block_outputs, b.block_inputs), (3, 2, 2));
    assert!(b.identity && !b.padded);
    assert_eq!(s.connectivity.depthwise_multiplier, None);
    assert_eq!(s.to_string(), "Conv 6x6x1x1 g=1: Z 67%; G=3");
    // One stray non-zero joins two blocks: 2 components of unequal size, no block form.
    let w = conv1(6, 6, |o, i| {
        if block(o, i) || (o, i) == (0, 5) {
            1.0
        } else {
            0.0
        }
    });
    let s = check(&w, 1);
    assert_eq!(s.connectivity.components.len(), 2);
    assert!(s.connectivity.blocks.is_none());
    assert!(s.to_string().contains("irregular 2 comps"));
    // Strays joining everything: one component, dense.
    let w = conv1(6, 6, |o, i| {
        if block(o, i) || i == (o + 2) % 6 {
            1.0
        } else {
            0.0
        }
    });
    let s = check(&w, 1);
    assert!(s.connectivity.is_dense());
    assert_eq!(s.connectivity.groups(), Some(1));
}

#[test]
fn block_diagonal_under_permutation() {
    // Output o and input i are in block (o * 5) % 3 and (i * 7) % 3 respectively.
    let w = conv3(6, 9, |o, i| {
        if (o * 5) % 3 == (i * 7) % 3 {
            full(o + i)
        } else {
            Z
        }
    });
    let s = check(&w, 1);
    let b = s.connectivity.blocks.as_ref().unwrap();
    assert_eq!((b.groups, b.block_outputs, b.block_inputs), (3, 2, 3));
    assert!(!b.identity);
    assert_eq!(b.output_perm, vec![0, 3, 1, 4, 2, 5]);
    assert_eq!(b.input_perm, vec![0, 3, 6, 2, 5, 8, 1, 4, 7]);
    assert_block_diagonal(&w, &s);
}

#[test]
fn depthwise_with_multipliers() {
    let s = check(&conv3(4, 4, |o, i| if o == i { full(o) } else { Z }), 1);
    assert_eq!(s.connectivity.depthwise_multiplier, Some(1));
    assert!(s.connectivity.blocks.as_ref().unwrap().identity);
    // ONNX layout: output o reads input o / m.
    let s = check(&conv3(8, 4, |o, i| if o / 2 == i { full(o) } else { Z }), 1);
    assert_eq!(s.connectivity.depthwise_multiplier, Some(2));
    assert!(s.connectivity.blocks.as_ref().unwrap().identity);
    // i = o mod 4: the same after permutation.
    let w = conv3(8, 4, |o, i| if o % 4 == i { full(o) } else { Z });
    let s = check(&w, 1);
    assert_eq!(s.connectivity.depthwise_multiplier, Some(2));
    assert!(!s.connectivity.blocks.as_ref().unwrap().identity);
    assert!(s.to_string().contains("depthwise m=2 (perm)"), "{s}");
    assert_block_diagonal(&w, &s);
    // Near miss: one output reads two inputs.
    let s = check(
        &conv3(4, 4, |o, i| {
            if o == i || (o, i) == (3, 2) {
                full(o)
            } else {
                Z
            }
        }),
        1,
    );
    assert_eq!(s.connectivity.depthwise_multiplier, None);
}

#[test]
fn grouped_conv_is_analysed_in_the_full_channel_space() {
    // group = 2, Co = 4, Ci = 4 (2 per group), dense inside each group.
    let w = conv3(4, 2, |o, i| full(o * 2 + i));
    let s = check(&w, 2);
    assert_eq!(s.inputs(), 4);
    let c = &s.connectivity;
    assert_eq!(c.components.len(), 2);
    assert_eq!(c.components[1].outputs, vec![2, 3]);
    assert_eq!(c.components[1].inputs, vec![2, 3]);
    assert!(c.blocks.as_ref().unwrap().identity);
    // Inside each group only the "diagonal" kernel is non-zero: depthwise over all 4 channels.
    let w = conv3(4, 2, |o, i| if o % 2 == i { full(o) } else { Z });
    let s = check(&w, 2);
    assert_eq!(s.connectivity.depthwise_multiplier, Some(1));
    assert_eq!(s.connectivity.groups(), Some(4));
    // Crossed inside each group: still depthwise, now permuted.
    let w = conv3(4, 2, |o, i| if o % 2 != i { full(o) } else { Z });
    let s = check(&w, 2);
    let b = s.connectivity.blocks.as_ref().unwrap();
    assert_eq!(b.input_perm, vec![1, 0, 3, 2]);
    assert_block_diagonal(&w, &s);
}

#[test]
fn zero_channels_are_isolated_and_trail_the_blocks() {
    let w = conv1(
        4,
        4,
        |o, i| if o == i && o != 1 && i != 2 { 1.0 } else { 0.0 },
    );
    let s = check(&w, 1);
    assert_eq!(s.unified.zero_outputs, vec![1, 2]);
    assert_eq!(s.unified.zero_inputs, vec![1, 2]);
    let b = s.connectivity.blocks.as_ref().unwrap();
    assert!(b.padded);
    assert_eq!(b.output_perm, vec![0, 3, 1, 2]);
    assert!(s.to_string().ends_with("zero-out 2, zero-in 2"), "{s}");
}

// ----- SSC -----

#[test]
fn ssc_block_grouped() {
    let w = conv3(8, 8, |o, i| {
        if o / 2 == i / 2 {
            full(o + i)
        } else {
            point(1.0 + (o * 8 + i) as f32)
        }
    });
    let s = check(&w, 1);
    assert!(s.connectivity.is_dense());
    let ssc = s.ssc.as_ref().unwrap();
    let b = ssc.spatial.blocks.as_ref().unwrap();
    assert_eq!((b.groups, b.block_outputs, b.block_inputs), (4, 2, 2));
    assert!(b.identity);
    assert_eq!(ssc.pointwise_kernels, 48);
    assert_eq!(ssc.pointwise_density, 0.75);
    assert_eq!(
        s.to_string(),
        "Conv 8x8x3x3 g=1: F 25% P 75% Z 0%; dense; ssc G=4 + pointwise 75%; taps 3x3 mixed"
    );
}

#[test]
fn ssc_hetconv_shifted_needs_a_permutation() {
    let w = conv3(8, 8, |o, i| {
        if (i + 8 - o) % 4 == 0 {
            full(o + i)
        } else {
            point(-2.0)
        }
    });
    let s = check(&w, 1);
    let ssc = s.ssc.as_ref().unwrap();
    let b = ssc.spatial.blocks.as_ref().unwrap();
    assert_eq!(b.groups, 4);
    assert_eq!(b.output_perm, vec![0, 4, 1, 5, 2, 6, 3, 7]);
    assert_eq!(b.input_perm, b.output_perm);
    assert_eq!(ssc.pointwise_density, 0.75);
    assert!(
        s.to_string().contains("ssc G=4 (perm) + pointwise 75%"),
        "{s}"
    );
}

#[test]
fn ssc_depthwise_plus_pointwise_and_absorbed_points() {
    let w = conv3(4, 4, |o, i| if o == i { full(o) } else { point(1.0) });
    let ssc = check(&w, 1).ssc.unwrap();
    assert_eq!(ssc.spatial.depthwise_multiplier, Some(1));
    assert_eq!(ssc.pointwise_kernels, 12);
    // F blocks of 2 with one P kernel inside a block: it is absorbed by the grouped conv.
    let w = conv3(4, 4, |o, i| match (o / 2 == i / 2, (o, i)) {
        (true, (0, 1)) => point(1.0),
        (true, _) => full(o),
        _ => point(2.0),
    });
    let ssc = check(&w, 1).ssc.unwrap();
    assert_eq!(ssc.spatial.groups(), Some(2));
    assert_eq!((ssc.pointwise_kernels, ssc.absorbed_point_kernels), (8, 1));
    // No P outside the spatial blocks: no split to report.
    let w = conv3(4, 4, |o, i| match (o / 2 == i / 2, (o, i)) {
        (true, (0, 1)) => point(1.0),
        (true, _) => full(o),
        _ => Z,
    });
    let s = check(&w, 1);
    assert!(s.ssc.is_none(), "{s}");
    assert_eq!(s.connectivity.groups(), Some(2));
}

#[test]
fn ssc_with_unequal_spatial_components() {
    let w = conv3(4, 4, |o, i| {
        if (o < 3 && i < 3) || (o, i) == (3, 3) {
            full(o)
        } else {
            point(1.0)
        }
    });
    let ssc = check(&w, 1).ssc.unwrap();
    assert_eq!(ssc.spatial.components.len(), 2);
    assert!(ssc.spatial.blocks.is_none());
    // Padded to two blocks of 3 x 3 slots.
    let p = ssc.padded.as_ref().unwrap();
    assert_eq!((p.groups, p.block_outputs, p.block_inputs), (2, 3, 3));
    assert_eq!(p.out_slots, vec![0, 1, 2, 3, PAD, PAD]);
    assert_eq!(p.in_slots, vec![0, 1, 2, 3, PAD, PAD]);
    assert!(p.hubs.is_empty());
    assert_eq!(p.output_slot_of(4), Some(vec![0, 1, 2, 3]));
}

#[test]
fn ssc_hub_column_is_set_aside_and_isolated_outputs_fill_short_blocks() {
    // Outputs in blocks 0..4, 4..7, 7..10, 10; output 11 has point kernels only. Inputs in
    // blocks 0..4, 4..7, 7..10, 10..12; input 12 has full kernels into outputs 0..11: a hub
    // that joins every block into one spatial component.
    let ob = |o: usize| [4, 7, 10, 11].iter().position(|&e| o < e);
    let ib = |i: usize| [4, 7, 10, 12].iter().position(|&e| i < e);
    let w = conv3(12, 13, |o, i| {
        if (ob(o).is_some() && ob(o) == ib(i)) || (i == 12 && o < 11) {
            full(o + i)
        } else {
            point(1.0)
        }
    });
    let s = check(&w, 1);
    let ssc = s.ssc.as_ref().unwrap();
    assert_eq!(ssc.spatial.components.len(), 1);
    let p = ssc.padded.as_ref().unwrap();
    assert_eq!((p.groups, p.block_outputs, p.block_inputs), (4, 4, 4));
    assert_eq!(p.hubs, vec![12]);
    let x = PAD;
    assert_eq!(
        p.out_slots,
        vec![0, 1, 2, 3, 4, 5, 6, x, 7, 8, 9, x, 10, 11, x, x]
    );
    assert_eq!(
        p.in_slots,
        vec![0, 1, 2, 3, 4, 5, 6, x, 7, 8, 9, x, 10, 11, x, x]
    );
    assert!(s.to_string().contains("(padded G=4 of 4x4, 1 hub)"), "{s}");
    // Near miss: the same column into one block's outputs only is an ordinary member of that
    // block (degree 4 is not above 1.5 x the median 3): nothing is set aside, block 0 reads 5.
    let w = conv3(12, 13, |o, i| {
        if (ob(o).is_some() && ob(o) == ib(i)) || (i == 12 && o < 4) {
            full(o + i)
        } else {
            point(1.0)
        }
    });
    let p = check(&w, 1).ssc.unwrap().padded.unwrap();
    assert!(p.hubs.is_empty());
    assert_eq!((p.groups, p.block_inputs), (4, 5));
}

// ----- unified weights -----

#[test]
fn constant_kernels() {
    let w = conv3(2, 3, |o, i| {
        if (o, i) == (1, 1) {
            Z
        } else {
            [(1 + o * 3 + i) as f32; 9]
        }
    });
    let s = check(&w, 1);
    assert!(s.unified.all_kernels_constant);
    assert_eq!(s.unified.constant_kernels, 5);
    assert_eq!(
        s.unified.kernel_values.as_deref(),
        Some(&[1.0, 2.0, 3.0, 4.0, 0.0, 6.0][..])
    );
    assert!(s.to_string().contains("const kernels"));
    // Near miss: one tap of one kernel differs.
    let w = conv3(2, 3, |o, i| {
        let mut k = [(1 + o * 3 + i) as f32; 9];
        if (o, i) == (0, 2) {
            k[8] = 3.5;
        }
        k
    });
    let s = check(&w, 1);
    assert!(!s.unified.all_kernels_constant);
    assert!(s.unified.kernel_values.is_none());
    assert_eq!(s.unified.constant_kernels, 5);
    assert!(s.to_string().contains("const kernels 83%"), "{s}");
    // Within epsilon it is constant again (value: the mean).
    let s = check_eps(&w, 1, 0.6);
    assert!(s.unified.all_kernels_constant);
    let a = s.unified.kernel_values.unwrap()[2];
    assert!((a - (3.0 * 8.0 + 3.5) / 9.0).abs() < 1e-9);
}

#[test]
fn one_by_one_kernels_are_not_reported_constant() {
    let s = check(&conv1(2, 2, |_, _| 1.0), 1);
    assert!(!s.unified.all_kernels_constant);
    assert_eq!(s.unified.constant_kernels, 0);
}

#[test]
fn equal_input_channel_blocks() {
    // Inputs 2b and 2b+1 share every (output, tap) value.
    let w = conv3(3, 6, |o, i| full(o * 10 + i / 2));
    let s = check(&w, 1);
    assert_eq!(
        s.unified.input_classes,
        vec![vec![0, 1], vec![2, 3], vec![4, 5]]
    );
    assert_eq!(s.unified.distinct_inputs, 3);
    assert!(s.to_string().contains("in 3/6 distinct"), "{s}");
    // Near miss: inputs 0 and 1 differ at one output.
    let w = conv3(3, 6, |o, i| {
        let mut k = full(o * 10 + i / 2);
        if (o, i) == (2, 1) {
            k[4] += 1.0;
        }
        k
    });
    let s = check(&w, 1);
    assert_eq!(s.unified.input_classes, vec![vec![2, 3], vec![4, 5]]);
    assert_eq!(s.unified.distinct_inputs, 4);
}

#[test]
fn grouped_inputs_only_match_within_their_group() {
    // group 2: inputs 0,1 (group 0) and 2,3 (group 1) all have the same local columns.
    let w = conv1(4, 2, |o, _| (o % 2 + 1) as f32);
    let s = check(&w, 2);
    assert_eq!(s.unified.input_classes, vec![vec![0, 1], vec![2, 3]]);
    // Outputs 0 and 2 have equal local filters but read different inputs: not equal.
    assert!(s.unified.output_classes.is_empty());
}

#[test]
fn identical_negated_and_scaled_filters() {
    let base = |i: usize| full(i);
    let w = conv3(5, 2, |o, i| {
        let k = base(i);
        match o {
            0 | 3 => k,
            1 => k.map(|x| -x),
            2 => k.map(|x| 2.0 * x),
            _ => full(7 + i),
        }
    });
    let s = check(&w, 1);
    assert_eq!(s.unified.output_classes.len(), 1);
    let c = &s.unified.output_classes[0];
    assert_eq!(c.representative, 0);
    let m: Vec<(u32, bool)> = c.members.iter().map(|m| (m.channel, m.negated)).collect();
    assert_eq!(m, vec![(0, false), (1, true), (3, false)]);
    assert_eq!(s.unified.distinct_outputs, 3);
    assert!(s.to_string().contains("out 3/5 distinct (±)"), "{s}");
}

#[test]
fn negative_zero_is_zero_and_equal_to_zero() {
    let w = conv3(3, 2, |o, i| match (o, i) {
        (0, _) => [-0.0; 9],
        (1, 0) => {
            let mut k = [-0.0; 9];
            k[4] = 1.0;
            k
        }
        (2, 0) => point(1.0),
        _ => full(i),
    });
    let s = check(&w, 1);
    assert_eq!(s.unified.zero_outputs, vec![0]);
    assert_eq!(s.kernel_map.class(1, 0), KernelClass::Point);
    // Outputs 1 and 2 are equal: -0.0 == 0.0.
    assert_eq!(s.unified.output_classes.len(), 1);
    assert_eq!(s.unified.output_classes[0].members.len(), 2);
    // ... and a filter equals its own negation's class when all its zeros flip sign.
    let w = conv1(2, 2, |o, i| match (o, i) {
        (0, 0) => 1.0,
        (0, 1) => 0.0,
        (1, 0) => -1.0,
        _ => -0.0,
    });
    let s = check(&w, 1);
    assert!(s.unified.output_classes[0].members[1].negated);
}

#[test]
fn nan_is_never_zero_and_never_equal() {
    let w = conv3(2, 2, |_, i| if i == 0 { point(f32::NAN) } else { full(1) });
    let s = check(&w, 1);
    assert_eq!(s.kernel_map.class(0, 0), KernelClass::Point);
    assert_eq!(s.nnz, 2 * (1 + 9));
    assert!(s.unified.output_classes.is_empty());
    assert!(s.unified.input_classes.is_empty());
    let w = conv3(1, 1, |_, _| [f32::NAN; 9]);
    let s = check(&w, 1);
    assert!(!s.unified.all_kernels_constant);
    let s = check_eps(&w, 1, 0.1);
    assert!(!s.unified.all_kernels_constant);
    assert_eq!(s.kernels.full, 1);
}

#[test]
fn epsilon_zeros_and_equalities() {
    let w = conv1(3, 3, |o, i| match (o, i) {
        (_, 2) => 1e-5,
        (0, _) => 1.0,
        (1, _) => 1.0 + 1e-5,
        _ => -1.0,
    });
    let exact = check(&w, 1);
    assert_eq!(exact.zero_fraction, 0.0);
    assert!(exact.unified.output_classes.is_empty());
    let s = check_eps(&w, 1, 1e-4);
    assert!(s.approximate);
    assert_eq!(s.unified.zero_inputs, vec![2]);
    assert_eq!(s.unified.input_classes, vec![vec![0, 1]]);
    let m: Vec<(u32, bool)> = s.unified.output_classes[0]
        .members
        .iter()
        .map(|m| (m.channel, m.negated))
        .collect();
    assert_eq!(m, vec![(0, false), (1, false), (2, true)]);
}

#[test]
fn double_and_half_weights() {
    // Two f64 values that are the same f32 must stay distinct.
    let a = 1.0f64;
    let b = 1.0 + 1e-12;
    assert_eq!(a as f32, b as f32);
    let w = Tensor::from_f64(vec![2, 1, 1, 1], &[a, b]);
    let s = analyze_conv_weight(&w, 1, &AnalysisOptions::exact()).unwrap();
    assert!(s.unified.output_classes.is_empty());
    let w = Tensor::from_f64_as(DataType::Float16, vec![2, 1, 1, 1], &[0.5, -0.5]).unwrap();
    let s = analyze_conv_weight(&w, 1, &AnalysisOptions::exact()).unwrap();
    assert!(s.unified.output_classes[0].members[1].negated);
}

#[test]
fn bad_inputs_are_errors() {
    let opts = AnalysisOptions::exact();
    let m = Tensor::from_f32(vec![2, 2], &[1.0; 4]);
    assert!(matches!(
        analyze_conv_weight(&m, 1, &opts),
        Err(StructureError::ConvRank(_))
    ));
    let w = Tensor::from_f32(vec![3, 1, 1, 1], &[1.0; 3]);
    assert!(matches!(
        analyze_conv_weight(&w, 2, &opts),
        Err(StructureError::Group { .. })
    ));
    assert!(matches!(
        analyze_conv_weight(&w, 0, &opts),
        Err(StructureError::Group { .. })
    ));
    let i = Tensor::from_i64(vec![1, 1, 1, 1], &[1]);
    assert!(matches!(
        analyze_conv_weight(&i, 1, &opts),
        Err(StructureError::UnsupportedDtype(DataType::Int64))
    ));
    for eps in [-1.0, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            analyze_conv_weight(&w, 1, &AnalysisOptions::approximate(eps)),
            Err(StructureError::Epsilon(_))
        ));
    }
    let e = Tensor::from_f32(vec![1, 1, 0, 3], &[]);
    assert!(matches!(
        analyze_conv_weight(&e, 1, &opts),
        Err(StructureError::EmptyKernel(_))
    ));
    assert!(matches!(
        analyze_matrix(&w, &opts),
        Err(StructureError::MatrixRank(_))
    ));
}

#[test]
fn all_zero_weight() {
    let s = check(&conv3(2, 2, |_, _| Z), 1);
    assert_eq!(s.zero_fraction, 1.0);
    assert!(s.connectivity.blocks.is_none());
    assert!(s.taps.extent.is_none() && !s.taps.uniform);
    assert!(s.taps.shared.is_empty());
    assert_eq!(
        s.to_string(),
        "Conv 2x2x3x3 g=1: F 0% P 0% Z 100%; all zero; zero-out 2, zero-in 2"
    );
}

// ----- matrices -----

#[test]
fn matrix_structure() {
    // B[K=4, N=4]: columns 0 and 2 use rows {0, 2}, column 1 uses row 1, column 3 is zero,
    // row 3 is unused; column 2 is column 0 negated.
    let b = [
        [1.0, 0.0, -1.0, 0.0],
        [0.0, 5.0, 0.0, 0.0],
        [2.0, 0.0, -2.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ];
    let flat: Vec<f32> = b.iter().flatten().copied().collect();
    let m = analyze_matrix(
        &Tensor::from_f32(vec![4, 4], &flat),
        &AnalysisOptions::exact(),
    )
    .unwrap();
    assert_eq!((m.rows, m.cols), (4, 4));
    assert_eq!(m.zero_rows, vec![3]);
    assert_eq!(m.zero_cols, vec![3]);
    assert_eq!(m.column_classes.len(), 1);
    assert!(m.column_classes[0].members[1].negated);
    assert_eq!(m.connectivity.components.len(), 2);
    assert!(m.connectivity.blocks.is_none());
    assert_eq!(m.nnz, 5);
    assert_eq!(
        m.to_string(),
        "Matrix 4x4: Z 69%; irregular 2 comps; cols 2/3 distinct (±), zero-cols 1, zero-rows 1"
    );
    // The same matrix stored transposed gives the same facts.
    let t: Vec<f32> = (0..16).map(|k| b[k % 4][k / 4]).collect();
    let mt =
        analyze_matrix_transposed(&Tensor::from_f32(vec![4, 4], &t), &AnalysisOptions::exact())
            .unwrap();
    assert_eq!(mt.to_string(), m.to_string());
    assert_eq!(mt.connectivity, m.connectivity);
}

#[test]
fn matrix_block_diagonal_and_equal_rows() {
    // B[6, 4]: rows r and columns c connect when r % 2 == c % 2; rows 0 and 2 are equal.
    let v: Vec<f32> = (0..24)
        .map(|k| {
            let (r, c) = (k / 4, k % 4);
            if r % 2 == c % 2 {
                (1 + c + 4 * (r / 2).min(1) * (r % 2 + r / 4)) as f32
            } else {
                0.0
            }
        })
        .collect();
    let m = analyze_matrix(&Tensor::from_f32(vec![6, 4], &v), &AnalysisOptions::exact()).unwrap();
    let b = m.connectivity.blocks.as_ref().unwrap();
    assert_eq!((b.groups, b.block_outputs, b.block_inputs), (2, 2, 3));
    assert_eq!(b.output_perm, vec![0, 2, 1, 3]);
    assert_eq!(b.input_perm, vec![0, 2, 4, 1, 3, 5]);
    assert_eq!(m.row_classes, vec![vec![0, 2]]);
}

#[test]
fn serializes_to_json() {
    let w = conv3(4, 4, |o, i| {
        if (i + 4 - o) % 2 == 0 {
            full(o)
        } else {
            point(1.0)
        }
    });
    let s = check(&w, 1);
    let j: serde_json::Value = serde_json::to_value(&s).unwrap();
    assert_eq!(j["ssc"]["spatial"]["blocks"]["groups"], 2);
    assert_eq!(j["taps"]["union"].as_array().unwrap().len(), 9);
    assert_eq!(j["kernels"]["point"], 8);
    assert!(j.get("kernel_map").is_none());
}
