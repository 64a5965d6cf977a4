//! The facts sparse kernels are chosen by: MSWU tiles (pruned, one-value, sign-kept) of any
//! tile shape, N:M runs along input channels, and the density of each output channel.
//!
//! A pruned or micro-structured conv is exported as a dense `Conv` whose weight holds the
//! structure (PAPERS.md sections 2 and 4). The JIT's sparse, block-sparse and unified kernels
//! need it spelled out: which `b_out x b_in` tiles are all zero (skipped), which carry one
//! signed value (their input sum is computed once and shared by the tile's outputs), which one
//! magnitude with the signs kept, how many non-zeros each run of `m` input channels holds, and
//! how unevenly the non-zeros fall over the outputs (to balance threads).
//!
//! Cost: the tiles are classified with an early exit (a tile is "free" as soon as one weight
//! rules the other classes out), so a dense weight costs about two reads per tile and only
//! structured tiles are read whole; N:M reuses the kernel tap masks of the main pass.

use std::fmt;

use serde::Serialize;
use ssc_ir::Tensor;

use crate::decode::{check_channels, with_values};
use crate::elem::Elem;
use crate::kernels::{KernelClass, KernelMap};
use crate::report::pct;
use crate::scan::Dims;
use crate::{AnalysisOptions, StructureError};

/// A tile of `outputs x inputs` channels over all taps of the kernel: MSWU's micro-block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TileShape {
    /// Output channels per tile (`b_out`).
    pub outputs: usize,
    /// Input channels per tile (`b_in`, within a group).
    pub inputs: usize,
}

impl TileShape {
    /// The shapes every conv analysis reports: issue 14's `4x4`, `8x1`, `1x8` and `16x1`.
    pub const STANDARD: [TileShape; 4] = [
        TileShape::new(4, 4),
        TileShape::new(8, 1),
        TileShape::new(1, 8),
        TileShape::new(16, 1),
    ];

    /// A `outputs x inputs` tile.
    pub const fn new(outputs: usize, inputs: usize) -> TileShape {
        TileShape { outputs, inputs }
    }
}

/// `4x4`: outputs x inputs.
impl fmt::Display for TileShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.outputs, self.inputs)
    }
}

/// What one tile holds. The classes are disjoint: a one-value tile is not also counted as
/// sign-kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum TileClass {
    /// Every weight is zero: the tile is skipped.
    Pruned = 0,
    /// Every weight equals one non-zero value `v`: the tile's outputs each get `v` times the
    /// same input sum, computed once.
    OneValue = 1,
    /// Every weight has one non-zero magnitude `a` and the signs differ: each output sums its
    /// signed inputs and multiplies once by `a`.
    SignKept = 2,
    /// Anything else (a zero among non-zeros, unequal magnitudes, NaN).
    Free = 3,
}

/// The tile structure of a conv weight for one [`TileShape`].
///
/// Tiles never cross a group: group `g`'s outputs `g*Co/G ..` are cut into rows of
/// `shape.outputs` channels, its `Ci/G` inputs into columns of `shape.inputs`; where the channel
/// count is not a multiple, the last row or column is *ragged* (smaller). Tile `(row, col)`
/// covers outputs [`TileFacts::bounds`]. In exact mode a weight is zero only if it is `0.0` and
/// values are equal only if `==` (magnitudes: `|a| == |b|`); with an epsilon, `|w| <= eps` is
/// zero, each weight is compared with the tile's first non-zero within `eps`, and the facts are
/// `approximate`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TileFacts {
    /// The tile shape.
    pub shape: TileShape,
    /// Tile rows over all groups (`G * ceil((Co/G) / b_out)`) and columns (`ceil((Ci/G) / b_in)`).
    pub rows: usize,
    /// See `rows`.
    pub cols: usize,
    /// All tiles, `rows * cols`.
    pub tiles: u64,
    /// Tiles smaller than `shape` at the channel ends.
    pub ragged: u64,
    /// Tiles of each class.
    pub pruned: u64,
    /// See [`TileClass::OneValue`].
    pub one_value: u64,
    /// See [`TileClass::SignKept`].
    pub sign_kept: u64,
    /// See [`TileClass::Free`].
    pub free: u64,
    /// The facts hold only up to the analysis epsilon.
    pub approximate: bool,
    outputs_per_group: usize,
    inputs_per_group: usize,
    row_tiles_per_group: usize,
    #[serde(skip)]
    classes: Vec<TileClass>,
}

impl TileFacts {
    /// The class of tile `(row, col)`. Panics when out of range.
    pub fn class(&self, row: usize, col: usize) -> TileClass {
        assert!(
            row < self.rows && col < self.cols,
            "tile ({row}, {col}) out of range"
        );
        self.classes[row * self.cols + col]
    }

    /// The tile holding weight `W[o, i]` (`i` within the group, as the weight indexes it).
    pub fn tile_of(&self, o: usize, i: usize) -> (usize, usize) {
        let (g, ol) = (o / self.outputs_per_group, o % self.outputs_per_group);
        (
            g * self.row_tiles_per_group + ol / self.shape.outputs,
            i / self.shape.inputs,
        )
    }

    /// Tile `(row, col)`'s outputs `o0..o1` (full index) and inputs `i0..i1` (within the
    /// group): `(o0, o1, i0, i1)`.
    pub fn bounds(&self, row: usize, col: usize) -> (usize, usize, usize, usize) {
        let (g, r) = (
            row / self.row_tiles_per_group,
            row % self.row_tiles_per_group,
        );
        let o0 = g * self.outputs_per_group + r * self.shape.outputs;
        let o1 = (o0 + self.shape.outputs).min((g + 1) * self.outputs_per_group);
        let i0 = col * self.shape.inputs;
        let i1 = (i0 + self.shape.inputs).min(self.inputs_per_group);
        (o0, o1, i0, i1)
    }

    /// Tiles of `class`.
    pub fn count(&self, class: TileClass) -> u64 {
        match class {
            TileClass::Pruned => self.pruned,
            TileClass::OneValue => self.one_value,
            TileClass::SignKept => self.sign_kept,
            TileClass::Free => self.free,
        }
    }

    /// The fraction of tiles of `class` (0 for an empty weight).
    pub fn fraction(&self, class: TileClass) -> f64 {
        if self.tiles == 0 {
            0.0
        } else {
            self.count(class) as f64 / self.tiles as f64
        }
    }

    /// Tiles that are pruned or unified.
    pub fn structured(&self) -> u64 {
        self.pruned + self.one_value + self.sign_kept
    }
}

/// `4x4 of 64: pruned 32 (50%), sign-kept 32 (50%)`; only the classes present besides free.
impl fmt::Display for TileFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.shape, self.tiles)?;
        let mut sep = ":";
        for (class, name) in [
            (TileClass::Pruned, "pruned"),
            (TileClass::OneValue, "one-value"),
            (TileClass::SignKept, "sign-kept"),
        ] {
            let n = self.count(class);
            if n > 0 {
                write!(f, "{sep} {name} {n} ({})", pct(self.fraction(class)))?;
                sep = ",";
            }
        }
        Ok(())
    }
}

/// N:M structure along input channels: for every output and tap, the input channels of a
/// group are cut into runs of `m` consecutive channels (the last run of a group may be
/// shorter), and each run's non-zeros are counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NmFacts {
    /// The run length.
    pub m: usize,
    /// The longest run, `min(m, Ci/G)`: with fewer input channels than `m` no run is full.
    pub longest_run: usize,
    /// `histogram[k]`: runs with exactly `k` non-zeros, `k = 0..=m`.
    pub histogram: Vec<u64>,
}

impl NmFacts {
    /// All runs, `Co * taps * ceil((Ci/G) / m)`.
    pub fn runs(&self) -> u64 {
        self.histogram.iter().sum()
    }

    /// The most non-zeros in any run (0 for an all-zero weight).
    pub fn max_nonzeros(&self) -> usize {
        self.histogram.iter().rposition(|&c| c > 0).unwrap_or(0)
    }

    /// Every run has at most `n` non-zeros: the weight is `n:m`.
    pub fn holds(&self, n: usize) -> bool {
        self.max_nonzeros() <= n
    }

    /// The tightest `n` that [`holds`](Self::holds), when it is below the longest run (a
    /// weight whose every run may be full has no N:M pattern).
    pub fn pattern(&self) -> Option<usize> {
        let n = self.max_nonzeros();
        (n < self.longest_run && self.runs() > 0).then_some(n)
    }
}

/// How the non-zeros fall over the output channels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelDensity {
    /// The least, median and largest density (non-zeros over weights) of one output filter.
    pub min: f64,
    /// See `min`.
    pub median: f64,
    /// See `min`.
    pub max: f64,
    /// Non-zero weights of each output filter (large; not serialized).
    #[serde(skip)]
    pub nnz_per_output: Vec<u32>,
}

/// The sparse-kernel facts of one conv weight (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SparsityFacts {
    /// Density per output channel.
    pub output_density: ChannelDensity,
    /// The tile structure for each of [`TileShape::STANDARD`] (others: [`tile_facts`]).
    pub tiles: Vec<TileFacts>,
    /// N:M runs along input channels for `m = 4` and `m = 8`.
    pub nm: Vec<NmFacts>,
}

impl SparsityFacts {
    /// The tile shape whose pruned and unified tiles cover the most weights (ties: the
    /// first of [`TileShape::STANDARD`]); `None` when no tile is pruned or unified.
    pub fn best_tiles(&self) -> Option<&TileFacts> {
        self.tiles
            .iter()
            .filter(|t| t.structured() > 0)
            .rev()
            .max_by_key(|t| t.structured() * (t.shape.outputs * t.shape.inputs) as u64)
    }

    /// The tightest N:M pattern (lowest `n / m`; ties: the smaller `m`), as `(n, m)`.
    pub fn best_nm(&self) -> Option<(usize, usize)> {
        self.nm
            .iter()
            .filter_map(|f| f.pattern().map(|n| (n, f.m)))
            .min_by(|a, b| (a.0 * b.1).cmp(&(b.0 * a.1)).then(a.1.cmp(&b.1)))
    }
}

/// `out density 0.10 [0.05-0.16]; tiles 4x4 of 64: pruned 32 (50%); 2:4`, for people: the
/// median [min-max] output density when the weight has zeros, the [best](Self::best_tiles)
/// tile shape when at least a tenth of its tiles are pruned or unified, and the
/// [tightest](Self::best_nm) N:M pattern when `n <= m / 2`; nothing for a dense weight. The
/// JSON form holds every count.
impl fmt::Display for SparsityFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let d = &self.output_density;
        if d.min < 1.0 {
            parts.push(format!(
                "out density {:.2} [{:.2}-{:.2}]",
                d.median, d.min, d.max
            ));
        }
        if let Some(t) = self.best_tiles().filter(|t| t.structured() * 10 >= t.tiles) {
            parts.push(format!("tiles {t}"));
        }
        if let Some((n, m)) = self.best_nm().filter(|&(n, m)| 2 * n <= m) {
            parts.push(format!("{n}:{m}"));
        }
        write!(f, "{}", parts.join("; "))
    }
}

/// The tile structure of a conv weight `W[Co, Ci/group, k...]` for any tile shape.
///
/// ```
/// use ssc_ir::Tensor;
/// use ssc_structure::{tile_facts, AnalysisOptions, TileClass, TileShape};
///
/// // 4 outputs x 4 inputs, 1x1, in 2x2 tiles: one pruned, one one-value, one sign-kept, one free.
/// let w = [
///     0.0f32, 0.0, 0.5, 0.5, //
///     0.0, 0.0, 0.5, 0.5, //
///     0.25, -0.25, 1.0, 2.0, //
///     -0.25, 0.25, 3.0, 0.0,
/// ];
/// let t = tile_facts(&Tensor::from_f32(vec![4, 4, 1, 1], &w), 1, TileShape::new(2, 2), &AnalysisOptions::exact())?;
/// assert_eq!((t.pruned, t.one_value, t.sign_kept, t.free), (1, 1, 1, 1));
/// assert_eq!(t.class(1, 0), TileClass::SignKept);
/// assert_eq!(t.to_string(), "2x2 of 4: pruned 1 (25%), one-value 1 (25%), sign-kept 1 (25%)");
/// # Ok::<(), ssc_structure::StructureError>(())
/// ```
pub fn tile_facts(
    w: &Tensor,
    group: usize,
    shape: TileShape,
    opts: &AnalysisOptions,
) -> Result<TileFacts, StructureError> {
    opts.validate()?;
    if w.dims.len() < 3 {
        return Err(StructureError::ConvRank(w.dims.clone()));
    }
    if shape.outputs == 0 || shape.inputs == 0 {
        return Err(StructureError::TileShape(shape.outputs, shape.inputs));
    }
    let (co, cig) = (w.dims[0], w.dims[1]);
    if group == 0 || co % group != 0 {
        return Err(StructureError::Group { group, outputs: co });
    }
    check_channels(co)?;
    let d = Dims {
        co,
        cig,
        groups: group,
        taps: w.dims[2..].iter().product(),
        centre: None,
        layout: crate::scan::Layout::Oik,
    };
    let eps = opts.epsilon;
    with_values(
        w,
        |v| tiles(v, &d, shape, f32::from_f32(eps), eps > 0.0, false),
        |v| tiles(v, &d, shape, f64::from_f32(eps), eps > 0.0, false),
    )
}

/// Classifies every tile of `shape` (weights in `[o, i, taps]` layout). With `all_free` the
/// caller has shown that no tile can be pruned or unified, and none is read.
pub(crate) fn tiles<T: Elem>(
    w: &[T],
    d: &Dims,
    shape: TileShape,
    eps: T,
    approx: bool,
    all_free: bool,
) -> TileFacts {
    let (cog, cig, taps) = (d.cog(), d.cig, d.taps);
    let row_tiles = cog.div_ceil(shape.outputs);
    let cols = cig.div_ceil(shape.inputs);
    let rows = d.groups * row_tiles;
    let mut classes = Vec::with_capacity(rows * cols);
    let mut f = TileFacts {
        shape,
        rows,
        cols,
        tiles: (rows * cols) as u64,
        ragged: 0,
        pruned: 0,
        one_value: 0,
        sign_kept: 0,
        free: 0,
        approximate: approx,
        outputs_per_group: cog,
        inputs_per_group: cig,
        row_tiles_per_group: row_tiles,
        classes: Vec::new(),
    };
    for row in 0..rows {
        let (g, r) = (row / row_tiles, row % row_tiles);
        let o0 = g * cog + r * shape.outputs;
        let o1 = (o0 + shape.outputs).min((g + 1) * cog);
        for col in 0..cols {
            let i0 = col * shape.inputs;
            let i1 = (i0 + shape.inputs).min(cig);
            if o1 - o0 < shape.outputs || i1 - i0 < shape.inputs {
                f.ragged += 1;
            }
            let c = if all_free {
                TileClass::Free
            } else {
                classify(w, (o0..o1, cig, i0, i1, taps), eps)
            };
            match c {
                TileClass::Pruned => f.pruned += 1,
                TileClass::OneValue => f.one_value += 1,
                TileClass::SignKept => f.sign_kept += 1,
                TileClass::Free => f.free += 1,
            }
            classes.push(c);
        }
    }
    f.classes = classes;
    f
}

/// One tile, row by row, stopping as soon as only [`TileClass::Free`] is left.
fn classify<T: Elem>(
    w: &[T],
    (outs, cig, i0, i1, taps): (std::ops::Range<usize>, usize, usize, usize, usize),
    eps: T,
) -> TileClass {
    let mut first: Option<T> = None;
    let mut zero = false;
    let (mut one, mut sign) = (true, true);
    for o in outs {
        for &x in &w[(o * cig + i0) * taps..(o * cig + i1) * taps] {
            if x.is_zero(eps) {
                if first.is_some() {
                    return TileClass::Free;
                }
                zero = true;
                continue;
            }
            if zero {
                return TileClass::Free;
            }
            match first {
                None => first = Some(x),
                Some(v) => {
                    one &= x.close(v, eps);
                    sign &= x.abs().close(v.abs(), eps);
                    if !one && !sign {
                        return TileClass::Free;
                    }
                }
            }
        }
    }
    match first {
        None => TileClass::Pruned,
        Some(_) if one => TileClass::OneValue,
        Some(_) if sign => TileClass::SignKept,
        Some(_) => TileClass::Free,
    }
}

/// Non-zero 2-bit kernel classes in a byte of the class map (4 kernels).
const NONZERO_IN_BYTE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let mut k = 0;
        while k < 4 {
            if (b >> (2 * k)) & 3 != 0 {
                t[b] += 1;
            }
            k += 1;
        }
        b += 1;
    }
    t
};

/// N:M histograms from the kernel classes and tap masks of the main pass. `out_nnz` lets
/// fully dense outputs be counted without reading their kernels.
pub(crate) fn nm(km: &KernelMap, d: &Dims, m: usize, out_nnz: &[u32]) -> NmFacts {
    debug_assert!(
        (1..16).contains(&m),
        "four count planes hold counts up to 15"
    );
    let (co, cig, taps) = (d.co, d.cig, d.taps);
    let mut histogram = vec![0u64; m + 1];
    let (full_runs, tail) = (cig / m, cig % m);
    let dense = |h: &mut [u64]| {
        h[m] += (full_runs * taps) as u64;
        if tail > 0 {
            h[tail] += taps as u64;
        }
    };
    if taps == 1 {
        for (o, &nnz) in out_nnz.iter().enumerate().take(co) {
            if nnz as usize == cig {
                dense(&mut histogram);
                continue;
            }
            if m.is_multiple_of(4) && (o * cig).is_multiple_of(4) {
                // Whole bytes of the class map: a run of m kernels is m/4 bytes.
                let bytes = km.class_bytes(o * cig / 4, full_runs * m / 4);
                for run in bytes.chunks_exact(m / 4) {
                    let n: u8 = run.iter().map(|&b| NONZERO_IN_BYTE[b as usize]).sum();
                    histogram[n as usize] += 1;
                }
                if tail > 0 {
                    let i0 = full_runs * m;
                    let n = (i0..cig)
                        .filter(|&i| km.class_at(o * cig + i) != KernelClass::Zero)
                        .count();
                    histogram[n] += 1;
                }
                continue;
            }
            for i0 in (0..cig).step_by(m) {
                let n = (i0..(i0 + m).min(cig))
                    .filter(|&i| km.class_at(o * cig + i) != KernelClass::Zero)
                    .count();
                histogram[n] += 1;
            }
        }
        return NmFacts {
            m,
            longest_run: m.min(cig),
            histogram,
        };
    }
    let words = km.words();
    // Bit-sliced counters: plane p holds bit p of each tap's count in the run.
    let mut planes = vec![[0u64; 4]; words];
    for (o, &nnz) in out_nnz.iter().enumerate().take(co) {
        if nnz as usize == cig * taps {
            dense(&mut histogram);
            continue;
        }
        for i0 in (0..cig).step_by(m) {
            for p in planes.iter_mut() {
                *p = [0; 4];
            }
            for i in i0..(i0 + m).min(cig) {
                for (p, &mask) in planes.iter_mut().zip(km.mask_at(o * cig + i)) {
                    let mut carry = mask;
                    for plane in p.iter_mut() {
                        let c = *plane & carry;
                        *plane ^= carry;
                        carry = c;
                    }
                }
            }
            for (wi, p) in planes.iter().enumerate() {
                let valid = if (wi + 1) * 64 <= taps {
                    u64::MAX
                } else {
                    (1u64 << (taps - wi * 64)) - 1
                };
                for (k, h) in histogram.iter_mut().enumerate() {
                    let mut sel = valid;
                    for (b, plane) in p.iter().enumerate() {
                        sel &= if (k >> b) & 1 == 1 { *plane } else { !*plane };
                    }
                    *h += sel.count_ones() as u64;
                }
            }
        }
    }
    NmFacts {
        m,
        longest_run: m.min(cig),
        histogram,
    }
}

/// Density per output filter from its non-zero count.
pub(crate) fn channel_density(nnz_per_output: Vec<u32>, per_filter: usize) -> ChannelDensity {
    let mut v: Vec<u32> = nnz_per_output.clone();
    v.sort_unstable();
    let dens = |n: u32| {
        if per_filter == 0 {
            0.0
        } else {
            n as f64 / per_filter as f64
        }
    };
    let (min, max) = (
        v.first().copied().map_or(0.0, dens),
        v.last().copied().map_or(0.0, dens),
    );
    let median = match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => dens(v[n / 2]),
        n => (dens(v[n / 2 - 1]) + dens(v[n / 2])) / 2.0,
    };
    ChannelDensity {
        min,
        median,
        max,
        nnz_per_output,
    }
}

/// Every sparsity fact of a conv weight, for [`crate::ConvStructure::sparsity`].
pub(crate) fn facts<T: Elem>(
    w: &[T],
    d: &Dims,
    km: &KernelMap,
    nnz_per_output: Vec<u32>,
    eps: T,
    approx: bool,
) -> SparsityFacts {
    let dense = nnz_per_output.iter().all(|&n| n as usize == d.cig * d.taps);
    // A weight without zeros has no pruned tile, and a unified tile of two or more weights
    // needs two neighbours of equal magnitude: along a row (`stride` 1: adjacent taps, or
    // adjacent inputs of 1x1 kernels) or, for one-input tiles of 1x1 kernels, down a column.
    let (row_eq, col_eq) = if dense {
        (
            equal_neighbours(w, 1, eps),
            d.taps == 1 && equal_neighbours(w, d.cig, eps),
        )
    } else {
        (true, true)
    };
    let tile_facts = TileShape::STANDARD
        .iter()
        .map(|&s| {
            let all_free = dense && !unification_possible(d, s, row_eq, col_eq);
            tiles(w, d, s, eps, approx, all_free)
        })
        .collect();
    SparsityFacts {
        nm: [4, 8]
            .iter()
            .map(|&m| nm(km, d, m, &nnz_per_output))
            .collect(),
        output_density: channel_density(nnz_per_output, d.cig * d.taps),
        tiles: tile_facts,
    }
}

/// Some `|w[j]| == |w[j + stride]|` (within `eps`).
fn equal_neighbours<T: Elem>(w: &[T], stride: usize, eps: T) -> bool {
    if stride == 0 || w.len() <= stride {
        return false;
    }
    let (a, b) = (&w[..w.len() - stride], &w[stride..]);
    // Chunks without an early exit inside, so the comparison loop vectorises.
    a.chunks(4096).zip(b.chunks(4096)).any(|(x, y)| {
        x.iter()
            .zip(y)
            .fold(false, |acc, (&p, &q)| acc | p.abs().close(q.abs(), eps))
    })
}

/// Whether a dense weight (no zeros) can hold a unified tile of `shape`, given whether any
/// row neighbours and any column neighbours (1x1 kernels) have equal magnitudes.
fn unification_possible(d: &Dims, shape: TileShape, row_eq: bool, col_eq: bool) -> bool {
    let sides = |n: usize, b: usize| {
        let mut v = vec![b.min(n)];
        if n > b && !n.is_multiple_of(b) {
            v.push(n % b);
        }
        v
    };
    let (hs, ws) = (sides(d.cog(), shape.outputs), sides(d.cig, shape.inputs));
    hs.iter().any(|&h| {
        ws.iter().any(|&wd| {
            let row = wd * d.taps;
            (h * row == 1) || (row >= 2 && row_eq) || (row == 1 && h >= 2 && col_eq)
        })
    })
}
