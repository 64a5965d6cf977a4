//! Per-kernel facts: the F/P/Z class (plus "partial" tap subsets) and the exact tap mask of every
//! (output, input) kernel, stored compactly enough to keep for a whole model.

use serde::Serialize;

use crate::TapSet;

/// The class of one kernel (the `k x k` slice of one (output, input) pair).
///
/// PAPERS.md's SSC "F" is "not Z and not P"; here it is split into [`KernelClass::Full`] (every
/// tap non-zero) and [`KernelClass::Partial`] (any other subset), because a rule that replaces a
/// kernel by a smaller one must tell them apart. [`KernelClass::is_spatial`] is the SSC "F".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum KernelClass {
    /// Z: every tap is zero.
    Zero = 0,
    /// P: only the centre tap is non-zero. Only kernels whose every axis is odd have a centre;
    /// a 1x1 kernel's single tap is its centre, so every non-zero 1x1 kernel is P.
    Point = 1,
    /// F: every tap is non-zero.
    Full = 2,
    /// Some other non-empty subset of the taps (see [`KernelMap::taps`] for which).
    Partial = 3,
}

impl KernelClass {
    fn from_bits(b: u8) -> KernelClass {
        match b & 3 {
            0 => KernelClass::Zero,
            1 => KernelClass::Point,
            2 => KernelClass::Full,
            _ => KernelClass::Partial,
        }
    }

    /// The SSC "F" kernels: non-zero and not a point kernel.
    pub fn is_spatial(self) -> bool {
        matches!(self, KernelClass::Full | KernelClass::Partial)
    }
}

/// How many kernels fall in each class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KernelCounts {
    /// Z kernels.
    pub zero: u64,
    /// P kernels.
    pub point: u64,
    /// F kernels (every tap non-zero).
    pub full: u64,
    /// Other non-empty tap subsets.
    pub partial: u64,
}

impl KernelCounts {
    /// All kernels, `Co * Ci/group`.
    pub fn total(&self) -> u64 {
        self.zero + self.point + self.full + self.partial
    }

    /// The fraction of kernels in `class` (0 for an empty weight).
    pub fn fraction(&self, class: KernelClass) -> f64 {
        let n = match class {
            KernelClass::Zero => self.zero,
            KernelClass::Point => self.point,
            KernelClass::Full => self.full,
            KernelClass::Partial => self.partial,
        };
        if self.total() == 0 {
            0.0
        } else {
            n as f64 / self.total() as f64
        }
    }

    pub(crate) fn add(&mut self, class: KernelClass) {
        match class {
            KernelClass::Zero => self.zero += 1,
            KernelClass::Point => self.point += 1,
            KernelClass::Full => self.full += 1,
            KernelClass::Partial => self.partial += 1,
        }
    }
}

/// The class and tap mask of every kernel, indexed by output channel `o` and input channel
/// *within o's group* `i` (the weight's own `[o, i]` indexing). Classes take 2 bits per kernel;
/// masks are kept only for kernels with more than one tap (a 1-tap kernel's mask is its class).
#[derive(Clone, Debug, Default)]
pub struct KernelMap {
    outputs: usize,
    inputs_per_group: usize,
    taps: usize,
    classes: Vec<u8>,
    words: usize,
    masks: Vec<u64>,
}

impl KernelMap {
    pub(crate) fn new(outputs: usize, inputs_per_group: usize, taps: usize, words: usize) -> Self {
        let n = outputs * inputs_per_group;
        KernelMap {
            outputs,
            inputs_per_group,
            taps,
            classes: vec![0; n.div_ceil(4)],
            words,
            masks: if taps > 1 {
                Vec::with_capacity(n * words)
            } else {
                Vec::new()
            },
        }
    }

    #[inline(always)]
    pub(crate) fn set_class(&mut self, k: usize, c: KernelClass) {
        self.classes[k >> 2] |= (c as u8) << ((k & 3) * 2);
    }

    /// Masks arrive in kernel order (output-major), one call per kernel.
    #[inline(always)]
    pub(crate) fn push_mask(&mut self, m: &[u64]) {
        if self.taps > 1 {
            self.masks.extend_from_slice(m);
        }
    }

    #[inline(always)]
    pub(crate) fn class_at(&self, k: usize) -> KernelClass {
        KernelClass::from_bits(self.classes[k >> 2] >> ((k & 3) * 2))
    }

    /// Mask words per kernel (kernels of one tap keep no mask).
    pub(crate) fn words(&self) -> usize {
        self.words
    }

    /// The tap mask of kernel `k` (output-major); only for kernels of more than one tap.
    #[inline(always)]
    pub(crate) fn mask_at(&self, k: usize) -> &[u64] {
        &self.masks[k * self.words..(k + 1) * self.words]
    }

    /// `len` bytes of the 2-bit class map from byte `start` (4 kernels a byte, low bits first).
    pub(crate) fn class_bytes(&self, start: usize, len: usize) -> &[u8] {
        &self.classes[start..start + len]
    }

    /// Output channels.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Input channels per group (the weight's second dimension).
    pub fn inputs_per_group(&self) -> usize {
        self.inputs_per_group
    }

    /// The class of kernel `W[o, i]`. Panics when out of range.
    pub fn class(&self, o: usize, i: usize) -> KernelClass {
        assert!(
            o < self.outputs && i < self.inputs_per_group,
            "kernel ({o}, {i}) out of range"
        );
        self.class_at(o * self.inputs_per_group + i)
    }

    /// The non-zero taps of kernel `W[o, i]`. Panics when out of range.
    pub fn taps(&self, o: usize, i: usize) -> TapSet {
        let c = self.class(o, i);
        if self.taps == 1 {
            return TapSet::from_taps(1, (c != KernelClass::Zero).then_some(0));
        }
        let k = o * self.inputs_per_group + i;
        TapSet::from_words(self.taps, &self.masks[k * self.words..(k + 1) * self.words])
    }
}
