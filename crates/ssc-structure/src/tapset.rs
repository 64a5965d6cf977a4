//! A set of kernel taps as a bitset, so per-kernel masks, their union and their intersection
//! cost a word or two each.

use std::fmt::Write as _;

use serde::{Serialize, Serializer};

/// A subset of the taps of one kernel. Taps are numbered in row-major order over the kernel's
/// spatial axes (the order of the weight's trailing dimensions), so for a 3x3 kernel tap
/// `3 * y + x` is row `y`, column `x`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TapSet {
    universe: usize,
    words: Vec<u64>,
}

/// Serialized as the ascending list of tap indices.
impl Serialize for TapSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

pub(crate) fn words_for(universe: usize) -> usize {
    universe.div_ceil(64).max(1)
}

impl TapSet {
    /// No taps of a kernel with `universe` taps.
    pub fn empty(universe: usize) -> TapSet {
        TapSet {
            universe,
            words: vec![0; words_for(universe)],
        }
    }

    /// Every tap of a kernel with `universe` taps.
    pub fn full(universe: usize) -> TapSet {
        let mut s = TapSet::empty(universe);
        for t in 0..universe {
            s.insert(t);
        }
        s
    }

    /// The given taps. Panics if a tap is `>= universe` (a caller bug).
    pub fn from_taps(universe: usize, taps: impl IntoIterator<Item = usize>) -> TapSet {
        let mut s = TapSet::empty(universe);
        for t in taps {
            s.insert(t);
        }
        s
    }

    pub(crate) fn from_words(universe: usize, words: &[u64]) -> TapSet {
        TapSet {
            universe,
            words: words.to_vec(),
        }
    }

    fn insert(&mut self, t: usize) {
        assert!(
            t < self.universe,
            "tap {t} outside a kernel of {}",
            self.universe
        );
        self.words[t >> 6] |= 1 << (t & 63);
    }

    /// The number of taps in the kernel (not in the set).
    pub fn universe(&self) -> usize {
        self.universe
    }

    /// The packed bits, tap `t` at bit `t % 64` of word `t / 64`.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The number of taps in the set.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether tap `t` is in the set.
    pub fn contains(&self, t: usize) -> bool {
        t < self.universe && self.words[t >> 6] & (1 << (t & 63)) != 0
    }

    /// No tap at all.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Every tap of the kernel.
    pub fn is_full(&self) -> bool {
        self.count() == self.universe
    }

    /// The taps in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.universe).filter(|&t| self.contains(t))
    }

    pub(crate) fn union_words(&mut self, other: &[u64]) {
        for (a, b) in self.words.iter_mut().zip(other) {
            *a |= b;
        }
    }

    pub(crate) fn intersect_words(&mut self, other: &[u64]) {
        for (a, b) in self.words.iter_mut().zip(other) {
            *a &= b;
        }
    }

    /// A picture of the set over `kernel_shape` (whose product must be the universe): `#` for a
    /// tap in the set, `.` otherwise, the last axis left to right, rows of the second-to-last
    /// axis separated by `/`, and higher axes by `|`. A 3x3 `+` is `.#./###/.#.`.
    pub fn pattern(&self, kernel_shape: &[usize]) -> String {
        let mut out = String::with_capacity(self.universe * 2);
        let last = kernel_shape.last().copied().unwrap_or(1).max(1);
        let plane = if kernel_shape.len() >= 2 {
            last * kernel_shape[kernel_shape.len() - 2].max(1)
        } else {
            usize::MAX
        };
        for t in 0..self.universe {
            if t > 0 {
                if t % plane == 0 {
                    out.push('|');
                } else if t % last == 0 {
                    out.push('/');
                }
            }
            out.push(if self.contains(t) { '#' } else { '.' });
        }
        out
    }

    /// Per spatial axis, the half-open index range `[begin, end)` covering every tap of the set
    /// (the bounding box of the taps), or `None` for the empty set.
    pub fn bounding_box(&self, kernel_shape: &[usize]) -> Option<Vec<AxisExtent>> {
        if self.is_empty() {
            return None;
        }
        let mut lo = kernel_shape.to_vec();
        let mut hi = vec![0usize; kernel_shape.len()];
        for t in self.iter() {
            let mut rest = t;
            for d in (0..kernel_shape.len()).rev() {
                let k = kernel_shape[d].max(1);
                let idx = rest % k;
                rest /= k;
                lo[d] = lo[d].min(idx);
                hi[d] = hi[d].max(idx + 1);
            }
        }
        Some(
            lo.into_iter()
                .zip(hi)
                .map(|(begin, end)| AxisExtent { begin, end })
                .collect(),
        )
    }

    /// The index of the centre tap when every axis is odd (the only kernels with a centre).
    pub fn centre(kernel_shape: &[usize]) -> Option<usize> {
        if kernel_shape.iter().any(|&k| k % 2 == 0) {
            return None;
        }
        Some(kernel_shape.iter().fold(0, |acc, &k| acc * k + k / 2))
    }
}

/// The taps an axis actually uses: indices `begin..end` of a kernel axis of size `k`, so the
/// kernel can shrink to `end - begin` taps with `begin` trimmed from the start and `k - end`
/// from the end (adjusting the conv's pads by the same amounts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AxisExtent {
    /// First used index.
    pub begin: usize,
    /// One past the last used index.
    pub end: usize,
}

impl AxisExtent {
    /// Taps kept on this axis.
    pub fn len(&self) -> usize {
        self.end - self.begin
    }

    /// No tap kept (never the case for a reported extent).
    pub fn is_empty(&self) -> bool {
        self.end == self.begin
    }
}

/// `3x3` from `[3, 3]`, `1` from `[]`.
pub(crate) fn shape_str(shape: &[usize]) -> String {
    let mut s = String::new();
    for (n, d) in shape.iter().enumerate() {
        if n > 0 {
            s.push('x');
        }
        let _ = write!(s, "{d}");
    }
    if s.is_empty() {
        s.push('1');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_pattern_and_box() {
        let plus = TapSet::from_taps(9, [1, 3, 4, 5, 7]);
        assert_eq!(plus.pattern(&[3, 3]), ".#./###/.#.");
        assert_eq!(plus.count(), 5);
        assert_eq!(
            plus.bounding_box(&[3, 3]).unwrap(),
            vec![AxisExtent { begin: 0, end: 3 }; 2]
        );
        let centre = TapSet::from_taps(25, [TapSet::centre(&[5, 5]).unwrap()]);
        assert_eq!(centre.iter().collect::<Vec<_>>(), vec![12]);
        assert_eq!(
            centre.bounding_box(&[5, 5]).unwrap(),
            vec![AxisExtent { begin: 2, end: 3 }; 2]
        );
        assert!(TapSet::empty(9).bounding_box(&[3, 3]).is_none());
        assert_eq!(TapSet::centre(&[3, 2]), None);
        assert_eq!(TapSet::centre(&[3, 3, 3]), Some(13));
    }

    #[test]
    fn wide_kernels_and_3d_patterns() {
        let s = TapSet::from_taps(130, [0, 64, 129]);
        assert_eq!(s.words().len(), 3);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 64, 129]);
        assert!(!s.contains(130));
        let full = TapSet::full(8);
        assert!(full.is_full());
        assert_eq!(full.pattern(&[2, 2, 2]), "##/##|##/##");
        assert_eq!(TapSet::from_taps(3, [1]).pattern(&[3]), ".#.");
        assert_eq!(shape_str(&[64, 3, 3]), "64x3x3");
    }
}
