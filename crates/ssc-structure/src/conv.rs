//! Conv weights: the facts the rewrite rules ask of a `W[o, i, k...]`, gathered in one pass.

use std::fmt;

use serde::Serialize;
use ssc_ir::Tensor;

use crate::classes::{channel_classes, filter_classes, plain_classes, FilterClass};
use crate::connectivity::{Connectivity, PaddedBlocks};
use crate::decode::{check_channels, with_values};
use crate::elem::Elem;
use crate::kernels::{KernelClass, KernelCounts, KernelMap};
use crate::report::{conn_str, pct, unified_str, ChannelSummary};
use crate::scan::{Dims, Layout, Scan};
use crate::sparsity::{self, SparsityFacts};
use crate::tapset::{shape_str, AxisExtent, TapSet};
use crate::unionfind::UnionFind;
use crate::{AnalysisOptions, StructureError};

/// Which taps the weight uses, over all kernels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TapSupport {
    /// The kernel's spatial shape (the weight's trailing dimensions).
    pub kernel_shape: Vec<usize>,
    /// Taps non-zero in at least one kernel.
    pub union: TapSet,
    /// Taps non-zero in every non-zero kernel (empty when all kernels are zero).
    pub shared: TapSet,
    /// Every non-zero kernel has exactly the taps of `union` (e.g. all are the same `+`).
    pub uniform: bool,
    /// The bounding box of `union` per spatial axis; `None` when the weight is all zero.
    pub extent: Option<Vec<AxisExtent>>,
    /// The bounding box is smaller than the kernel on some axis: a zero ring (or band) lets the
    /// kernel shrink to [`TapSupport::shrunk_shape`].
    pub shrinkable: bool,
}

impl TapSupport {
    /// The kernel shape after cutting away the zero border.
    pub fn shrunk_shape(&self) -> Option<Vec<usize>> {
        Some(self.extent.as_ref()?.iter().map(AxisExtent::len).collect())
    }

    /// Every tap inside the bounding box is used: the shrunk kernel is dense in taps.
    pub fn box_full(&self) -> bool {
        self.shrunk_shape()
            .is_some_and(|s| s.iter().product::<usize>() == self.union.count())
    }
}

/// The SSC decomposition `Y = unpermute(GroupConv_k(permute(X))) + Conv_1x1(X, W_P)` (PAPERS.md
/// section 1): spatial kernels (F and partial) form the grouped part; the point kernels that
/// join channels of different spatial components form the pointwise remainder.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SscSplit {
    /// Components of the graph of spatial kernels only. Its blocks (when equal-sized) are the
    /// groups of the `k x k` grouped conv; channels without a spatial kernel are isolated.
    pub spatial: Connectivity,
    /// Point kernels outside the spatial blocks: the 1x1 remainder `W_P[o, i]` is their centre
    /// tap (and zero elsewhere).
    pub pointwise_kernels: u64,
    /// `pointwise_kernels` over all kernels.
    pub pointwise_density: f64,
    /// Point kernels inside a spatial block, computed by the grouped conv instead.
    pub absorbed_point_kernels: u64,
    /// When `spatial` has no unpadded equal blocks (`group = 1` only): its components, or
    /// those left after setting aside hub input columns, laid out as padded equal blocks. A hub
    /// is an input whose spatial kernels reach more than 1.5x the median number of outputs
    /// (e.g. the carrier column of channel removal, which sums removed channels' full kernels
    /// into every block; at most `Ci/4` of them); its kernels go to a branch of their own. Of
    /// the layouts with and without hubs, the one with fewer spatial MACs (`G bo bi` slots plus
    /// `Co` per hub). Present only when at least two blocks result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub padded: Option<PaddedBlocks>,
}

/// Equal-valued (unified, MSWU) and pruned structure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unified {
    /// Non-zero kernels with more than one tap whose taps are all equal (`W[o, i, :] = a`).
    pub constant_kernels: u64,
    /// Every kernel is constant (zero kernels included), there is more than one tap, and some
    /// kernel is non-zero: the conv is a `k x k` sum-pool followed by a 1x1 conv with `a`.
    pub all_kernels_constant: bool,
    /// `a[o * Ci/group + i]` when `all_kernels_constant` (in approximate mode the kernel mean).
    #[serde(skip)]
    pub kernel_values: Option<Vec<f64>>,
    /// Classes of two or more non-zero input channels with identical columns `W[:, i, taps]`,
    /// each ascending, ordered by smallest member. Only channels of one group can match.
    pub input_classes: Vec<Vec<u32>>,
    /// The number of classes of non-zero inputs, singletons included: the input count of the
    /// conv after summing each class.
    pub distinct_inputs: usize,
    /// Classes of two or more non-zero output filters equal up to sign.
    pub output_classes: Vec<FilterClass>,
    /// The number of classes of non-zero outputs, singletons included.
    pub distinct_outputs: usize,
    /// Output filters that are entirely zero (the output is the bias).
    pub zero_outputs: Vec<u32>,
    /// Input channels that no output reads (full index space).
    pub zero_inputs: Vec<u32>,
}

/// Everything the analysis found in one Conv weight `W[Co, Ci/group, k...]`.
///
/// Channels are numbered in the full index space: output `o` in `0..Co`, input `i` in `0..Ci`,
/// where kernel `W[o, il]` of a grouped conv connects `o` to input `(o / (Co/group)) * Ci/group
/// + il`.
#[derive(Clone, Debug, Serialize)]
pub struct ConvStructure {
    /// `[Co, Ci/group, k...]`.
    pub weight_shape: Vec<usize>,
    /// The conv's `group` attribute.
    pub group: usize,
    /// The spatial part of `weight_shape`.
    pub kernel_shape: Vec<usize>,
    /// The tolerance used; 0 means exact.
    pub epsilon: f32,
    /// Facts hold only up to `epsilon`; a rewrite built on them is approximate.
    pub approximate: bool,
    /// Weights in the tensor.
    pub numel: u64,
    /// Non-zero weights: MACs per output pixel (over all output channels, ignoring padding).
    pub nnz: u64,
    /// `1 - nnz / numel`, the fraction of zero weights.
    pub zero_fraction: f64,
    /// How many kernels are Z, P, F and partial.
    pub kernels: KernelCounts,
    /// Per-kernel classes and tap masks (large; not serialized).
    #[serde(skip)]
    pub kernel_map: KernelMap,
    /// Which taps the kernels use.
    pub taps: TapSupport,
    /// Components of the graph of all non-zero kernels.
    pub connectivity: Connectivity,
    /// Present when the weight mixes spatial and point kernels and some point kernels fall
    /// outside the spatial blocks.
    pub ssc: Option<SscSplit>,
    /// Unified (equal-valued) and pruned structure.
    pub unified: Unified,
    /// Tiles, N:M runs and per-output density: the facts sparse kernels are chosen by.
    pub sparsity: SparsityFacts,
}

impl ConvStructure {
    /// Output channels, `Co`.
    pub fn outputs(&self) -> usize {
        self.weight_shape[0]
    }

    /// Input channels of the conv (all groups).
    pub fn inputs(&self) -> usize {
        self.weight_shape[1] * self.group
    }

    /// Taps in one kernel (`kh * kw` in 2-D).
    pub fn taps_per_kernel(&self) -> usize {
        self.kernel_shape.iter().product()
    }

    /// MACs per output pixel of the dense conv.
    pub fn dense_macs_per_pixel(&self) -> u64 {
        self.numel
    }

    /// MACs per output pixel when only non-zero weights are multiplied.
    pub fn nnz_macs_per_pixel(&self) -> u64 {
        self.nnz
    }
}

/// Analyses a Conv weight `W[Co, Ci/group, k...]` (1-D, 2-D or 3-D kernels, any group).
///
/// ```
/// use ssc_ir::Tensor;
/// use ssc_structure::{analyze_conv_weight, AnalysisOptions, KernelClass};
///
/// // Two outputs, two inputs, 3x3: the diagonal kernels are full, the others point kernels.
/// let full = [1.0f32, 2., 3., 4., 5., 6., 7., 8., 9.];
/// let point = [0., 0., 0., 0., 2., 0., 0., 0., 0.];
/// let w: Vec<f32> = [full, point, point, full].concat();
/// let s = analyze_conv_weight(&Tensor::from_f32(vec![2, 2, 3, 3], &w), 1, &AnalysisOptions::default())?;
/// assert_eq!(s.kernel_map.class(0, 1), KernelClass::Point);
/// let ssc = s.ssc.as_ref().unwrap();
/// assert_eq!(ssc.spatial.depthwise_multiplier, Some(1));
/// assert_eq!(ssc.pointwise_kernels, 2);
/// assert_eq!(s.to_string(), "Conv 2x2x3x3 g=1: F 50% P 50% Z 0%; dense; ssc depthwise m=1 + pointwise 50%; taps 3x3 mixed");
/// # Ok::<(), ssc_structure::StructureError>(())
/// ```
pub fn analyze_conv_weight(
    w: &Tensor,
    group: usize,
    opts: &AnalysisOptions,
) -> Result<ConvStructure, StructureError> {
    opts.validate()?;
    if w.dims.len() < 3 {
        return Err(StructureError::ConvRank(w.dims.clone()));
    }
    let (co, cig) = (w.dims[0], w.dims[1]);
    let kernel_shape = w.dims[2..].to_vec();
    if kernel_shape.contains(&0) {
        return Err(StructureError::EmptyKernel(kernel_shape));
    }
    if group == 0 || co % group != 0 {
        return Err(StructureError::Group { group, outputs: co });
    }
    check_channels(co)?;
    check_channels(cig.saturating_mul(group))?;
    let d = Dims {
        co,
        cig,
        groups: group,
        taps: kernel_shape.iter().product(),
        centre: TapSet::centre(&kernel_shape),
        layout: Layout::Oik,
    };
    let head = Head {
        weight_shape: w.dims.clone(),
        group,
        kernel_shape,
        epsilon: opts.epsilon,
    };
    // Both closures want `head`; only one runs.
    let head = std::cell::Cell::new(Some(head));
    with_values(
        w,
        |v| build(v, &d, head.take().unwrap()),
        |v| build(v, &d, head.take().unwrap()),
    )
}

struct Head {
    weight_shape: Vec<usize>,
    group: usize,
    kernel_shape: Vec<usize>,
    epsilon: f32,
}

fn build<T: Elem>(w: &[T], d: &Dims, head: Head) -> ConvStructure {
    let approx = head.epsilon > 0.0;
    let eps = T::from_f32(head.epsilon);
    let mut s = if approx {
        Scan::run::<T, true>(w, d, eps)
    } else {
        Scan::run::<T, false>(w, d, eps)
    };
    let connectivity = Connectivity::build(&mut s.uf_all, d.co, d.ci(), &s.out_nz, &s.in_nz);
    let ssc = ssc_split(&mut s, d);
    let nonzero_kernels = s.counts.total() - s.counts.zero;
    let extent = s.union.bounding_box(&head.kernel_shape);
    let taps = TapSupport {
        shrinkable: extent
            .as_ref()
            .is_some_and(|e| e.iter().zip(&head.kernel_shape).any(|(x, &k)| x.len() < k)),
        extent,
        uniform: nonzero_kernels > 0 && s.shared == s.union,
        union: s.union.clone(),
        shared: s.shared.clone(),
        kernel_shape: head.kernel_shape.clone(),
    };
    let classes = channel_classes(w, d, &s, eps, approx);
    let all_kernels_constant = d.taps > 1 && s.all_constant && nonzero_kernels > 0;
    let kernel_values = all_kernels_constant.then(|| constant_values(w, d, &s.kernels, approx));
    let unified = Unified {
        constant_kernels: if d.taps > 1 { s.constant_nonzero } else { 0 },
        all_kernels_constant,
        kernel_values,
        input_classes: plain_classes(&classes.inputs),
        distinct_inputs: classes.inputs.len(),
        output_classes: filter_classes(&classes.outputs),
        distinct_outputs: classes.outputs.len(),
        zero_outputs: connectivity.isolated_outputs.clone(),
        zero_inputs: connectivity.isolated_inputs.clone(),
    };
    let numel = w.len() as u64;
    let sparsity = sparsity::facts(
        w,
        d,
        &s.kernels,
        std::mem::take(&mut s.out_nnz),
        eps,
        approx,
    );
    ConvStructure {
        weight_shape: head.weight_shape,
        group: head.group,
        kernel_shape: head.kernel_shape,
        epsilon: head.epsilon,
        approximate: approx,
        numel,
        nnz: s.nnz,
        zero_fraction: if numel == 0 {
            0.0
        } else {
            1.0 - s.nnz as f64 / numel as f64
        },
        kernels: s.counts,
        kernel_map: s.kernels,
        taps,
        connectivity,
        ssc,
        unified,
        sparsity,
    }
}

fn ssc_split(s: &mut Scan, d: &Dims) -> Option<SscSplit> {
    let c = s.counts;
    if !d.has_ssc() || c.point == 0 || c.full + c.partial == 0 {
        return None;
    }
    let spatial = Connectivity::build(&mut s.uf_sp, d.co, d.ci(), &s.out_sp, &s.in_sp);
    let mut comp_out = vec![u32::MAX; d.co];
    let mut comp_in = vec![u32::MAX; d.ci()];
    for (n, comp) in spatial.components.iter().enumerate() {
        for &o in &comp.outputs {
            comp_out[o as usize] = n as u32;
        }
        for &i in &comp.inputs {
            comp_in[i as usize] = n as u32;
        }
    }
    let (cig, cog) = (d.cig, d.cog());
    let mut absorbed = 0u64;
    for (o, &co) in comp_out.iter().enumerate() {
        let base = (o / cog) * cig;
        for il in 0..cig {
            if s.kernels.class_at(o * cig + il) == KernelClass::Point
                && co != u32::MAX
                && co == comp_in[base + il]
            {
                absorbed += 1;
            }
        }
    }
    let pointwise = c.point - absorbed;
    let equal = spatial.blocks.as_ref().is_some_and(|b| !b.padded);
    let padded = (!equal && d.groups == 1)
        .then(|| padded_blocks(s, d, &spatial))
        .flatten();
    if pointwise == 0 && padded.as_ref().is_none_or(|p| p.hubs.is_empty()) {
        // Every point kernel sits inside a spatial block (and no hub column joins the blocks
        // into one): the plain connectivity says it all.
        return None;
    }
    Some(SscSplit {
        spatial,
        padded,
        pointwise_kernels: pointwise,
        pointwise_density: pointwise as f64 / c.total() as f64,
        absorbed_point_kernels: absorbed,
    })
}

/// The padded-block layout of [`SscSplit::padded`] (`group = 1`): hub input columns set aside,
/// the remaining spatial kernels' components padded to equal blocks.
fn padded_blocks(s: &Scan, d: &Dims, spatial: &Connectivity) -> Option<PaddedBlocks> {
    let (co, ci) = (d.co, d.ci());
    let spatial_at = |o: usize, i: usize| s.kernels.class_at(o * ci + i).is_spatial();
    let degree: Vec<usize> = (0..ci)
        .map(|i| (0..co).filter(|&o| spatial_at(o, i)).count())
        .collect();
    let mut live: Vec<usize> = degree.iter().copied().filter(|&n| n > 0).collect();
    if live.is_empty() {
        return None;
    }
    live.sort_unstable();
    let median = live[live.len() / 2];
    // degree > 1.5 x median, in integers.
    let hubs: Vec<u32> = (0..ci)
        .filter(|&i| 2 * degree[i] > 3 * median)
        .map(|i| i as u32)
        .collect();
    let plain = PaddedBlocks::new(spatial, Vec::new());
    // Hubs are few by definition; many means there is no block structure to find.
    if hubs.is_empty() || hubs.len() * 4 > ci {
        return plain;
    }
    let mut uf = UnionFind::new(co + ci);
    let (mut out_edge, mut in_edge) = (vec![false; co], vec![false; ci]);
    let mut is_hub = vec![false; ci];
    for &h in &hubs {
        is_hub[h as usize] = true;
    }
    for (o, edge) in out_edge.iter_mut().enumerate() {
        for i in (0..ci).filter(|&i| !is_hub[i] && spatial_at(o, i)) {
            uf.union(o as u32, (co + i) as u32);
            *edge = true;
            in_edge[i] = true;
        }
    }
    let conn = Connectivity::build(&mut uf, co, ci, &out_edge, &in_edge);
    // A large block's columns can look like hubs too: keep whichever layout computes fewer
    // spatial MACs (slots plus the hubs' own conv), the plain one on a tie.
    let slots = |p: &PaddedBlocks| p.groups * p.block_outputs * p.block_inputs + p.hubs.len() * co;
    match (plain, PaddedBlocks::new(&conn, hubs)) {
        (Some(a), Some(b)) => Some(if slots(&b) < slots(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn constant_values<T: Elem>(w: &[T], d: &Dims, km: &KernelMap, approx: bool) -> Vec<f64> {
    (0..d.co * d.cig)
        .map(|k| {
            let ker = &w[k * d.taps..(k + 1) * d.taps];
            if km.class_at(k) == KernelClass::Zero {
                0.0
            } else if approx {
                ker.iter().map(|x| x.to_f64()).sum::<f64>() / d.taps as f64
            } else {
                ker[0].to_f64()
            }
        })
        .collect()
}

/// One line: shape and group, kernel classes, connectivity, SSC split, taps, unified facts.
impl fmt::Display for ConvStructure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conv {} g={}", shape_str(&self.weight_shape), self.group)?;
        if self.approximate {
            write!(f, " eps={}", self.epsilon)?;
        }
        let k = &self.kernels;
        if self.taps_per_kernel() > 1 {
            write!(
                f,
                ": F {} P {} Z {}",
                pct(k.fraction(KernelClass::Full)),
                pct(k.fraction(KernelClass::Point)),
                pct(k.fraction(KernelClass::Zero))
            )?;
            if k.partial > 0 {
                write!(
                    f,
                    " S {} (zeros {})",
                    pct(k.fraction(KernelClass::Partial)),
                    pct(self.zero_fraction)
                )?;
            }
        } else {
            write!(f, ": Z {}", pct(self.zero_fraction))?;
        }
        write!(f, "; {}", conn_str(&self.connectivity, "dense"))?;
        if let Some(ssc) = &self.ssc {
            write!(
                f,
                "; ssc {} + pointwise {}",
                conn_str(&ssc.spatial, "G=1"),
                pct(ssc.pointwise_density)
            )?;
            if let Some(p) = &ssc.padded {
                write!(
                    f,
                    " (padded G={} of {}x{}",
                    p.groups, p.block_outputs, p.block_inputs
                )?;
                match p.hubs.len() {
                    0 => write!(f, ")")?,
                    n => write!(f, ", {n} hub{})", if n == 1 { "" } else { "s" })?,
                }
            }
        }
        let t = &self.taps;
        if self.taps_per_kernel() > 1 && !t.union.is_empty() {
            write!(f, "; taps {}", shape_str(&self.kernel_shape))?;
            if t.shrinkable {
                write!(f, "->{}", shape_str(&t.shrunk_shape().unwrap_or_default()))?;
            }
            if t.uniform && t.box_full() {
                write!(f, " full")?;
            } else if t.uniform {
                write!(f, " uniform {}", t.union.pattern(&self.kernel_shape))?;
            } else {
                write!(f, " mixed")?;
            }
        }
        let nonzero = self.kernels.total() - self.kernels.zero;
        let u = &self.unified;
        let mut extra = unified_str(&ChannelSummary {
            input_classes: &u.input_classes,
            distinct_inputs: u.distinct_inputs,
            output_classes: &u.output_classes,
            distinct_outputs: u.distinct_outputs,
            zero_outputs: u.zero_outputs.len(),
            zero_inputs: u.zero_inputs.len(),
            names: ("out", "in"),
        });
        if self.unified.all_kernels_constant {
            extra.insert(0, "const kernels".to_string());
        } else if self.unified.constant_kernels > 0 && nonzero > 0 {
            extra.insert(
                0,
                format!(
                    "const kernels {}",
                    pct(self.unified.constant_kernels as f64 / nonzero as f64)
                ),
            );
        }
        if !extra.is_empty() {
            write!(f, "; {}", extra.join(", "))?;
        }
        Ok(())
    }
}
