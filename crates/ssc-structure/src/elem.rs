//! The element types the analysis runs on, with the zero and equality rules in one place.
//!
//! f16 and bf16 weights are widened to f32 (exactly: both are subsets of f32); f64 weights are
//! analysed as f64 so that two distinct doubles never collapse into one f32.

/// A weight element. Zero means `|x| <= eps` and equal means `a == b || |a - b| <= eps`, so with
/// `eps = 0` `-0.0` is zero and equal to `0.0`, and NaN is never zero and never equal.
pub(crate) trait Elem: Copy + PartialEq + PartialOrd + Send + Sync + 'static {
    fn from_f32(v: f32) -> Self;
    fn to_f64(self) -> f64;
    fn abs(self) -> Self;
    fn is_nan(self) -> bool;
    fn neg(self) -> Self;
    fn sub(self, other: Self) -> Self;
    /// Bits that agree for values that compare equal (both zeros map to 0).
    fn eq_bits(self) -> u64;
    /// [`Elem::eq_bits`] of `|self|`, for hashing up to sign.
    fn abs_bits(self) -> u64;

    #[inline(always)]
    fn is_zero(self, eps: Self) -> bool {
        self.abs() <= eps
    }

    #[inline(always)]
    fn close(self, other: Self, eps: Self) -> bool {
        self == other || self.sub(other).abs() <= eps
    }
}

impl Elem for f32 {
    #[inline(always)]
    fn from_f32(v: f32) -> f32 {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn abs(self) -> f32 {
        f32::abs(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn neg(self) -> f32 {
        -self
    }
    #[inline(always)]
    fn sub(self, other: f32) -> f32 {
        self - other
    }
    #[inline(always)]
    fn eq_bits(self) -> u64 {
        if self == 0.0 {
            0
        } else {
            self.to_bits() as u64
        }
    }
    #[inline(always)]
    fn abs_bits(self) -> u64 {
        (self.to_bits() & 0x7fff_ffff) as u64
    }
}

impl Elem for f64 {
    #[inline(always)]
    fn from_f32(v: f32) -> f64 {
        v as f64
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn abs(self) -> f64 {
        f64::abs(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline(always)]
    fn neg(self) -> f64 {
        -self
    }
    #[inline(always)]
    fn sub(self, other: f64) -> f64 {
        self - other
    }
    #[inline(always)]
    fn eq_bits(self) -> u64 {
        if self == 0.0 {
            0
        } else {
            self.to_bits()
        }
    }
    #[inline(always)]
    fn abs_bits(self) -> u64 {
        self.to_bits() & 0x7fff_ffff_ffff_ffff
    }
}

/// Position keys for channel hashes. A channel's hash is `sum_j f(x_j) * key(j)` (wrapping):
/// a sum keeps the per-element dependency chain to one add, where a sequential mixer would stall
/// on a multiply per element, and random odd keys make it position-sensitive. Collisions only
/// cost a comparison: every class found through a hash is verified element by element.
pub(crate) fn position_keys(n: usize, salt: u64) -> Vec<u64> {
    (0..n as u64).map(|j| splitmix64(j ^ salt) | 1).collect()
}

/// A strong 64-bit finaliser (SplitMix64), used to derive keys and to scramble a kernel's hash
/// before it enters a channel hash, so that sums over two levels do not interact linearly.
#[inline(always)]
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_equality_rules() {
        assert!((-0.0f32).is_zero(0.0));
        assert!(!f32::NAN.is_zero(0.0));
        assert!(!f32::NAN.is_zero(1.0));
        assert!(!f32::MIN_POSITIVE.is_zero(0.0));
        assert!(1e-4f32.is_zero(1e-3));
        assert!((-0.0f32).close(0.0, 0.0));
        assert_eq!((-0.0f32).eq_bits(), 0.0f32.eq_bits());
        assert_eq!((-1.5f32).abs_bits(), 1.5f32.abs_bits());
        assert!(!f32::NAN.close(f32::NAN, 0.0));
        assert!(f32::INFINITY.close(f32::INFINITY, 0.0));
        assert!(!1.0f32.close(1.0 + f32::EPSILON, 0.0));
        assert!(1.0f32.close(1.001, 0.01));
        assert!((-0.0f64).is_zero(0.0));
        assert_eq!((-0.0f64).eq_bits(), 0);
    }
}
