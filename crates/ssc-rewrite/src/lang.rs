//! The e-graph language: the ONNX ops the rules reason about, opaque stand-ins for everything
//! else, and symbolic weight operations that become initializers only after extraction.
//!
//! Tensors never live in the e-graph. A weight is a [`SscNode::Weight`] leaf naming an entry of
//! the analysis' weight table; a derived weight (a block pick, a centre tap, a crop, a channel
//! gather) is a node over weight e-classes, so an alternative that loses the extraction costs a
//! few index vectors, never a tensor copy. `materialize` evaluates the chosen ones.

use std::fmt;
use std::sync::Arc;

use egg::{Id, Language};

/// Channel index lists (gather indices), shared so that cloning a node is cheap.
pub type Indices = Arc<[u32]>;

/// The attributes of a Conv, normalised (no `auto_pad`, every list explicit) so that two convs
/// with the same meaning hash the same. Interned as a leaf e-class ([`SscNode::ConvAttrs`]) that
/// is the first child of a [`SscNode::Conv`], so searchers can read it through a [`egg::Subst`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConvAttrs {
    /// The `group` attribute.
    pub group: usize,
    /// Kernel spatial shape (from the weight).
    pub kernel: Vec<usize>,
    /// One stride per spatial axis.
    pub strides: Vec<usize>,
    /// One dilation per spatial axis.
    pub dilations: Vec<usize>,
    /// Padding at the start of each spatial axis.
    pub pads_begin: Vec<usize>,
    /// Padding at the end of each spatial axis.
    pub pads_end: Vec<usize>,
}

impl ConvAttrs {
    /// The output spatial size for input spatial size `input`, or `None` if the conv is empty.
    pub fn output_spatial(&self, input: &[usize]) -> Option<Vec<usize>> {
        if input.len() != self.kernel.len() {
            return None;
        }
        (0..input.len())
            .map(|d| {
                let padded = input[d] + self.pads_begin[d] + self.pads_end[d];
                let span = self.dilations[d] * (self.kernel[d] - 1) + 1;
                (padded >= span).then(|| (padded - span) / self.strides[d] + 1)
            })
            .collect()
    }

    /// The same conv with its kernel cropped to `begin..end` per axis. The pads shrink by the
    /// cropped taps times the dilation, which keeps every output position reading the same
    /// input positions (see `rules/kernel.rs`); `None` when a pad would go negative.
    pub fn cropped(&self, begin: &[usize], end: &[usize]) -> Option<ConvAttrs> {
        let mut out = self.clone();
        for d in 0..self.kernel.len() {
            let (b, e, k, dil) = (begin[d], end[d], self.kernel[d], self.dilations[d]);
            if b >= e || e > k {
                return None;
            }
            out.pads_begin[d] = self.pads_begin[d].checked_sub(b * dil)?;
            out.pads_end[d] = self.pads_end[d].checked_sub((k - e) * dil)?;
            out.kernel[d] = e - b;
            if out.kernel[d] == 1 {
                // A single tap has no spacing; a canonical dilation keeps 1x1 convs hashing alike.
                out.dilations[d] = 1;
            }
        }
        Some(out)
    }

    /// The same conv over only the taps `taps[d]` of each axis `d`, each list an arithmetic
    /// progression `c0, c0 + s, ..` (one tap, or equal steps): the kernel shrinks to the list's
    /// length and the dilation grows by the step, so the picked taps read exactly the input
    /// positions they read before. The pads shrink by the skipped leading and trailing taps
    /// times the dilation, as in [`cropped`](Self::cropped), which keeps the output length;
    /// `None` when a list is empty, unsorted, not a progression, out of range, or a pad would
    /// go negative.
    pub fn picked(&self, taps: &[Vec<usize>]) -> Option<ConvAttrs> {
        if taps.len() != self.kernel.len() {
            return None;
        }
        let mut out = self.clone();
        for (d, t) in taps.iter().enumerate() {
            let (&first, &last) = (t.first()?, t.last()?);
            let (k, dil) = (self.kernel[d], self.dilations[d]);
            let step = t.get(1).map_or(1, |&s| s.saturating_sub(first));
            let progression = step > 0 && t.iter().enumerate().all(|(j, &c)| c == first + j * step);
            if !progression || last >= k {
                return None;
            }
            out.pads_begin[d] = self.pads_begin[d].checked_sub(first * dil)?;
            out.pads_end[d] = self.pads_end[d].checked_sub((k - 1 - last) * dil)?;
            out.kernel[d] = t.len();
            // A single tap has no spacing; a canonical dilation keeps 1x1 convs hashing alike.
            out.dilations[d] = if t.len() == 1 { 1 } else { dil * step };
        }
        Some(out)
    }

    /// `3x3`, `1x1`.
    pub fn kernel_str(&self) -> String {
        let k: Vec<String> = self.kernel.iter().map(|k| k.to_string()).collect();
        k.join("x")
    }
}

/// A symbolic operation on a weight tensor; evaluated by `materialize` after extraction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WeightOp {
    /// Dense `W[Co, Ci, k..]` to grouped `W'[G bo, bi, k..]`, keeping the diagonal blocks after
    /// permutation: `W'[j, l] = W[out_perm[j], in_perm[(j / bo) * bi + l]]` with
    /// `bo = out_perm.len() / G`, `bi = in_perm.len() / G` (the [`ssc_structure::BlockDiagonal`]
    /// convention, where `bo = Co/G` and `bi = Ci/G`). An index [`ssc_structure::PAD`] is a
    /// zero slot (the [`ssc_structure::PaddedBlocks`] layout of unequal blocks): the entry is 0.
    Blocks {
        /// The number of diagonal blocks.
        groups: usize,
        /// Gather indices over outputs.
        out_perm: Indices,
        /// Gather indices over inputs.
        in_perm: Indices,
    },
    /// Zeroes every entry inside the diagonal blocks (same convention as `Blocks`, pads
    /// included: a pad slot zeroes nothing), keeping the shape: what remains is the off-block
    /// part.
    MaskBlocks {
        /// The number of diagonal blocks.
        groups: usize,
        /// Gather indices over outputs.
        out_perm: Indices,
        /// Gather indices over inputs.
        in_perm: Indices,
    },
    /// Keeps taps `begin..end` of each spatial axis.
    Crop {
        /// First kept tap per axis.
        begin: Vec<usize>,
        /// One past the last kept tap per axis.
        end: Vec<usize>,
    },
    /// Keeps the taps `taps[d]` of each spatial axis `d` (their cartesian product, in list
    /// order): `W'[o, i, j..] = W[o, i, taps[0][j0], taps[1][j1], ..]`. With
    /// [`ConvAttrs::picked`] it turns a kernel with skipped taps into a smaller dilated one.
    Taps {
        /// The kept tap indices per axis.
        taps: Vec<Vec<usize>>,
    },
    /// Zeroes one spatial tap (given per spatial axis) of every kernel, keeping the shape: the
    /// row branch of `plus-taps-split` drops the centre tap the column branch already sums
    /// (only when the pads allow no dilated split of the row, see [`WeightOp::Taps`]).
    ZeroTap {
        /// The tap's index on each spatial axis.
        tap: Vec<usize>,
    },
    /// Gathers along axis 0 (output channels of a weight, entries of a bias).
    Gather0 {
        /// The gather indices.
        idx: Indices,
    },
    /// Gathers along axis 1 (input channels of a weight).
    Gather1 {
        /// The gather indices.
        idx: Indices,
    },
    /// Each kernel `W[o, i, :]` to its mean times `scale`, keeping a single tap: `[Co, Ci, 1..]`.
    /// On a constant kernel the mean is its value, so this is `a[o, i] * scale`.
    KernelMean {
        /// The factor folded in (the pool's `k^2`, undoing its division).
        scale: u32,
    },
    /// A vector `v[C]` broadcast to `[batch, C, spatial..]` (a bias as `[1, C, 1, 1]`, or a
    /// constant plane of channels).
    Channel {
        /// The leading dimension.
        batch: usize,
        /// The trailing dimensions.
        spatial: Vec<usize>,
    },
}

/// A small constant a rule generates (signs, 0/1 channel selectors, zeros), stored by value.
/// Only for tensors whose size is about a channel count, never an activation-sized one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Literal {
    /// The shape.
    pub dims: Vec<usize>,
    /// The f32 values' bit patterns (so the node can hash), row-major.
    pub bits: Arc<[u32]>,
}

impl Literal {
    /// A literal of shape `dims` holding `values`.
    pub fn new(dims: Vec<usize>, values: &[f32]) -> Literal {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        Literal {
            dims,
            bits: values.iter().map(|v| v.to_bits()).collect(),
        }
    }

    /// The values.
    pub fn values(&self) -> Vec<f32> {
        self.bits.iter().map(|&b| f32::from_bits(b)).collect()
    }
}

/// One e-node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SscNode {
    /// A value the rewriter reads but does not model: a graph input, or an initializer that is
    /// not a Conv weight (index into the analysis' value table).
    Input(u32),
    /// Output `value` (index into the value table) of an op the rewriter does not model. Its
    /// children are the op's inputs, so the e-graph mirrors the real dataflow; the op itself is
    /// never rebuilt.
    Opaque {
        /// Index into the value table.
        value: u32,
        /// The op's present inputs, in slot order.
        args: Vec<Id>,
    },
    /// A constant Conv weight or bias (index into the weight table).
    Weight(u32),
    /// The empty bias slot.
    NoBias,
    /// Conv attributes, interned.
    ConvAttrs(Box<ConvAttrs>),
    /// `Conv(attrs, x, w, b)`.
    Conv([Id; 4]),
    /// Elementwise `Add(a, b)` of equal shapes.
    Add([Id; 2]),
    /// `Gather(x, idx, axis = 1)`: a channel permutation or selection of an NCHW activation.
    Gather {
        /// Channel indices.
        idx: Indices,
        /// `[x]`.
        arg: [Id; 1],
    },
    /// A symbolic weight operation over a weight e-class.
    WeightOp {
        /// What to do.
        op: WeightOp,
        /// `[w]`.
        arg: [Id; 1],
    },
    /// A small generated constant.
    Literal(Box<Literal>),
    /// `AveragePool(attrs, x)` with `count_include_pad = 1`, `ceil_mode = 0`: the attrs' kernel,
    /// strides and pads (dilations are always 1, group is ignored).
    AvgPool([Id; 2]),
    /// `Mul(x, c)`, `c` broadcast over `x` (`x` first).
    Mul([Id; 2]),
    /// `Concat(a, b, axis = 1)`.
    Concat([Id; 2]),
}

/// What a node is, ignoring children: the [`Language::Discriminant`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// [`SscNode::Input`] with its index.
    Input(u32),
    /// [`SscNode::Opaque`] with its value index and arity.
    Opaque(u32, usize),
    /// [`SscNode::Weight`] with its index.
    Weight(u32),
    /// [`SscNode::NoBias`].
    NoBias,
    /// [`SscNode::ConvAttrs`].
    ConvAttrs(Box<ConvAttrs>),
    /// [`SscNode::Conv`].
    Conv,
    /// [`SscNode::Add`].
    Add,
    /// [`SscNode::Gather`] with its indices.
    Gather(Indices),
    /// [`SscNode::WeightOp`] with its operation.
    WeightOp(WeightOp),
    /// [`SscNode::Literal`] with its value.
    Literal(Box<Literal>),
    /// [`SscNode::AvgPool`].
    AvgPool,
    /// [`SscNode::Mul`].
    Mul,
    /// [`SscNode::Concat`].
    Concat,
}

impl Language for SscNode {
    type Discriminant = NodeKind;

    fn discriminant(&self) -> NodeKind {
        match self {
            SscNode::Input(v) => NodeKind::Input(*v),
            SscNode::Opaque { value, args } => NodeKind::Opaque(*value, args.len()),
            SscNode::Weight(w) => NodeKind::Weight(*w),
            SscNode::NoBias => NodeKind::NoBias,
            SscNode::ConvAttrs(a) => NodeKind::ConvAttrs(a.clone()),
            SscNode::Conv(_) => NodeKind::Conv,
            SscNode::Add(_) => NodeKind::Add,
            SscNode::Gather { idx, .. } => NodeKind::Gather(idx.clone()),
            SscNode::WeightOp { op, .. } => NodeKind::WeightOp(op.clone()),
            SscNode::Literal(l) => NodeKind::Literal(l.clone()),
            SscNode::AvgPool(_) => NodeKind::AvgPool,
            SscNode::Mul(_) => NodeKind::Mul,
            SscNode::Concat(_) => NodeKind::Concat,
        }
    }

    fn matches(&self, other: &Self) -> bool {
        self.discriminant() == other.discriminant()
    }

    fn children(&self) -> &[Id] {
        match self {
            SscNode::Input(_)
            | SscNode::Weight(_)
            | SscNode::NoBias
            | SscNode::ConvAttrs(_)
            | SscNode::Literal(_) => &[],
            SscNode::Opaque { args, .. } => args,
            SscNode::Conv(c) => c,
            SscNode::Add(c) | SscNode::AvgPool(c) | SscNode::Mul(c) | SscNode::Concat(c) => c,
            SscNode::Gather { arg, .. } | SscNode::WeightOp { arg, .. } => arg,
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            SscNode::Input(_)
            | SscNode::Weight(_)
            | SscNode::NoBias
            | SscNode::ConvAttrs(_)
            | SscNode::Literal(_) => &mut [],
            SscNode::Opaque { args, .. } => args,
            SscNode::Conv(c) => c,
            SscNode::Add(c) | SscNode::AvgPool(c) | SscNode::Mul(c) | SscNode::Concat(c) => c,
            SscNode::Gather { arg, .. } | SscNode::WeightOp { arg, .. } => arg,
        }
    }
}

impl fmt::Display for SscNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SscNode::Input(v) => write!(f, "input{v}"),
            SscNode::Opaque { value, .. } => write!(f, "opaque{value}"),
            SscNode::Weight(w) => write!(f, "w{w}"),
            SscNode::NoBias => write!(f, "nobias"),
            SscNode::ConvAttrs(a) => write!(f, "attrs(g={} k={})", a.group, a.kernel_str()),
            SscNode::Conv(_) => write!(f, "Conv"),
            SscNode::Add(_) => write!(f, "Add"),
            SscNode::Gather { idx, .. } => write!(f, "Gather[{}]", idx.len()),
            SscNode::WeightOp { op, .. } => match op {
                WeightOp::Blocks { groups, .. } => write!(f, "blocks(G={groups})"),
                WeightOp::MaskBlocks { groups, .. } => write!(f, "offblocks(G={groups})"),
                WeightOp::Crop { begin, end } => write!(f, "crop({begin:?}..{end:?})"),
                WeightOp::Taps { taps } => write!(f, "taps({taps:?})"),
                WeightOp::ZeroTap { tap } => write!(f, "zerotap({tap:?})"),
                WeightOp::Gather0 { idx } => write!(f, "gather0[{}]", idx.len()),
                WeightOp::Gather1 { idx } => write!(f, "gather1[{}]", idx.len()),
                WeightOp::KernelMean { scale } => write!(f, "kernelmean(x{scale})"),
                WeightOp::Channel { batch, spatial } => {
                    write!(f, "channel({batch}, {spatial:?})")
                }
            },
            SscNode::Literal(l) => write!(f, "literal{:?}", l.dims),
            SscNode::AvgPool(_) => write!(f, "AveragePool"),
            SscNode::Mul(_) => write!(f, "Mul"),
            SscNode::Concat(_) => write!(f, "Concat"),
        }
    }
}

/// The language name used in egg type parameters.
pub type SscLang = SscNode;
