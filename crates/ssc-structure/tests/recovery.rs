//! Property-style: plant a known structure in random weights, shuffle the channels with random
//! permutations, and check that the analysis finds the planted group count and permutations
//! that make the weight exactly block-diagonal again.

use ssc_ir::Tensor;
use ssc_structure::{analyze_conv_weight, invert, AnalysisOptions, BlockDiagonal, ConvStructure};

/// xorshift64*: a seeded generator, enough for test data without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    /// A non-zero value in ±[0.5, 1.5).
    fn nonzero(&mut self) -> f32 {
        let m = 0.5 + (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        if self.next() & 1 == 0 {
            m
        } else {
            -m
        }
    }

    fn perm(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for j in (1..n).rev() {
            p.swap(j, self.below(j + 1));
        }
        p
    }
}

/// What to put in a kernel.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Fill {
    Zero,
    Point,
    Full,
    /// A random non-empty tap subset.
    Random,
}

struct Planted {
    w: Vec<f32>,
    dims: Vec<usize>,
    group: usize,
}

/// Builds `W[co, cig, kernel]` from a per-(o, local i) fill, with values drawn from `rng`.
fn plant(
    rng: &mut Rng,
    co: usize,
    cig: usize,
    group: usize,
    kernel: &[usize],
    fill: impl Fn(usize, usize) -> Fill,
) -> Planted {
    let taps: usize = kernel.iter().product();
    let centre = kernel.iter().fold(0, |acc, &k| acc * k + k / 2);
    let mut w = vec![0.0f32; co * cig * taps];
    for o in 0..co {
        for i in 0..cig {
            let ker = &mut w[(o * cig + i) * taps..(o * cig + i + 1) * taps];
            match fill(o, i) {
                Fill::Zero => {}
                Fill::Point => ker[centre] = rng.nonzero(),
                Fill::Full => ker.iter_mut().for_each(|x| *x = rng.nonzero()),
                Fill::Random => {
                    let forced = rng.below(taps);
                    for (t, x) in ker.iter_mut().enumerate() {
                        if t == forced || rng.next() & 1 == 0 {
                            *x = rng.nonzero();
                        }
                    }
                }
            }
        }
    }
    let mut dims = vec![co, cig];
    dims.extend_from_slice(kernel);
    Planted { w, dims, group }
}

/// Reorders channels: new output `o` is old `po[o]`, new local input `i` is old `pi[i]` (an
/// input permutation of a grouped conv acts the same way inside every group).
fn shuffle(p: &Planted, po: &[usize], pi: &[usize]) -> Planted {
    let (co, cig) = (p.dims[0], p.dims[1]);
    let taps: usize = p.dims[2..].iter().product();
    let mut w = vec![0.0f32; p.w.len()];
    for o in 0..co {
        for i in 0..cig {
            let src = (po[o] * cig + pi[i]) * taps;
            w[(o * cig + i) * taps..][..taps].copy_from_slice(&p.w[src..src + taps]);
        }
    }
    Planted {
        w,
        dims: p.dims.clone(),
        group: p.group,
    }
}

fn analyze(p: &Planted) -> ConvStructure {
    analyze_conv_weight(
        &Tensor::from_f32(p.dims.clone(), &p.w),
        p.group,
        &AnalysisOptions::exact(),
    )
    .unwrap()
}

/// Every kernel for which `edge` holds lies inside a diagonal block of `b`.
fn assert_blocks(p: &Planted, b: &BlockDiagonal, edge: impl Fn(&[f32]) -> bool, what: &str) {
    let (co, cig) = (p.dims[0], p.dims[1]);
    let taps: usize = p.dims[2..].iter().product();
    let cog = co / p.group;
    assert_eq!(b.output_perm.len(), co);
    assert_eq!(b.input_perm.len(), cig * p.group);
    let pos_out = invert(&b.output_perm);
    let pos_in = invert(&b.input_perm);
    for (o, &jo) in pos_out.iter().enumerate() {
        for il in 0..cig {
            let i = (o / cog) * cig + il;
            if !edge(&p.w[(o * cig + il) * taps..][..taps]) {
                continue;
            }
            let (jo, ji) = (jo as usize, pos_in[i] as usize);
            assert!(
                jo < b.groups * b.block_outputs
                    && ji < b.groups * b.block_inputs
                    && jo / b.block_outputs == ji / b.block_inputs,
                "{what}: kernel ({o}, {i}) lands outside the blocks"
            );
        }
    }
}

const KERNELS: &[&[usize]] = &[&[1, 1], &[3, 3], &[5, 5], &[3], &[3, 3, 3]];
const CASES: u64 = 150;

#[test]
fn block_diagonal_and_depthwise_are_recovered() {
    for seed in 1..=CASES {
        let mut rng = Rng(seed * 0x9e37_79b9);
        let g = rng.pick(&[1, 2, 3, 4, 6, 8]);
        let (a, b) = (1 + rng.below(4), 1 + rng.below(4));
        let kernel = rng.pick(KERNELS);
        let fill = if rng.next() & 1 == 0 {
            Fill::Full
        } else {
            Fill::Random
        };
        let p = plant(&mut rng, g * a, g * b, 1, kernel, |o, i| {
            if o / a == i / b {
                fill
            } else {
                Fill::Zero
            }
        });
        let (po, pi) = (rng.perm(g * a), rng.perm(g * b));
        let p = shuffle(&p, &po, &pi);
        let s = analyze(&p);
        let blocks = s.connectivity.blocks.as_ref().expect("blocks");
        let ctx = format!("seed {seed}: G={g} {a}x{b} {kernel:?}");
        assert_eq!(
            (blocks.groups, blocks.block_outputs, blocks.block_inputs),
            (g, a, b),
            "{ctx}"
        );
        assert!(!blocks.padded, "{ctx}");
        assert_eq!(
            s.connectivity.depthwise_multiplier,
            (b == 1).then_some(a),
            "{ctx}"
        );
        assert_blocks(&p, blocks, |k| k.iter().any(|&x| x != 0.0), &ctx);
    }
}

#[test]
fn ssc_groups_are_recovered_from_shuffled_block_and_shifted_patterns() {
    for seed in 1..=CASES {
        let mut rng = Rng(seed * 0x85eb_ca6b + 7);
        let kernel = rng.pick(&[&[3usize, 3][..], &[5, 5], &[3], &[3, 3, 3]]);
        let g = rng.pick(&[2, 3, 4, 8]);
        let (a, b) = (1 + rng.below(3), 1 + rng.below(3));
        let (co, ci) = (g * a, g * b);
        let shifted = rng.next() & 1 == 0;
        // Block pattern: F inside diagonal blocks. Shifted (HetConv): F where o = i mod g.
        let in_block = move |o: usize, i: usize| {
            if shifted {
                o % g == i % g
            } else {
                o / a == i / b
            }
        };
        let p = plant(&mut rng, co, ci, 1, kernel, |o, i| {
            if in_block(o, i) {
                Fill::Full
            } else {
                Fill::Point
            }
        });
        let (po, pi) = (rng.perm(co), rng.perm(ci));
        let p = shuffle(&p, &po, &pi);
        let s = analyze(&p);
        let ctx = format!("seed {seed}: G={g} {a}x{b} shifted={shifted} {kernel:?}");
        assert!(s.connectivity.is_dense(), "{ctx}");
        let ssc = s.ssc.as_ref().expect("ssc split");
        let blocks = ssc.spatial.blocks.as_ref().expect("spatial blocks");
        assert_eq!(
            (blocks.groups, blocks.block_outputs, blocks.block_inputs),
            (g, a, b),
            "{ctx}"
        );
        assert_eq!(ssc.pointwise_kernels as usize, co * ci - g * a * b, "{ctx}");
        assert_eq!(ssc.absorbed_point_kernels, 0, "{ctx}");
        let taps: usize = kernel.iter().product();
        let centre = kernel.iter().fold(0, |acc, &k| acc * k + k / 2);
        let spatial = |k: &[f32]| (0..taps).any(|t| t != centre && k[t] != 0.0);
        assert_blocks(&p, blocks, spatial, &ctx);
    }
}

#[test]
fn sub_blocks_of_grouped_convs_are_recovered() {
    for seed in 1..=CASES {
        let mut rng = Rng(seed * 0xc2b2_ae35 + 3);
        let group = rng.pick(&[2, 3, 4]);
        let h = rng.pick(&[1, 2, 4]);
        let (a, b) = (1 + rng.below(3), 1 + rng.below(3));
        // Per group: h sub-blocks of a x b.
        let (cog, cig) = (h * a, h * b);
        let kernel = rng.pick(KERNELS);
        let p = plant(&mut rng, group * cog, cig, group, kernel, |o, i| {
            if (o % cog) / a == i / b {
                Fill::Full
            } else {
                Fill::Zero
            }
        });
        // Permute outputs within their group only (crossing groups would change the conv), and
        // local inputs the same way in every group.
        let mut po = Vec::new();
        for gi in 0..group {
            po.extend(rng.perm(cog).into_iter().map(|o| gi * cog + o));
        }
        let pi = rng.perm(cig);
        let p = shuffle(&p, &po, &pi);
        let s = analyze(&p);
        let ctx = format!("seed {seed}: group={group} h={h} {a}x{b}");
        let blocks = s.connectivity.blocks.as_ref().expect("blocks");
        assert_eq!(
            (blocks.groups, blocks.block_outputs, blocks.block_inputs),
            (group * h, a, b),
            "{ctx}"
        );
        assert_blocks(&p, blocks, |k| k.iter().any(|&x| x != 0.0), &ctx);
    }
}
