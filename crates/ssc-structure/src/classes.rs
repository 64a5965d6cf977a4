//! Equality classes of channels (identical input columns, output filters equal up to sign):
//! bucket by hash, then verify element by element, so a hash collision can never merge two
//! different channels.

use std::collections::HashMap;

use serde::Serialize;

use crate::elem::Elem;
use crate::scan::{inputs_equal, outputs_match, Dims, Scan};

/// One member of a [`FilterClass`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SignedChannel {
    /// The output channel.
    pub channel: u32,
    /// The member's filter is the representative's, negated.
    pub negated: bool,
}

/// Output filters that are all equal to the representative's up to sign: each member's output
/// is the representative's output times `-1` when `negated` (before bias).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FilterClass {
    /// The smallest channel of the class.
    pub representative: u32,
    /// Every member in ascending order, the representative first (never negated).
    pub members: Vec<SignedChannel>,
}

/// How to find the classes a channel could join before comparing it element by element.
pub(crate) enum Prefilter<'a> {
    /// Exact mode: equal channels have equal hashes.
    Hash(&'a [u64]),
    /// Approximate mode: channels of `n` elements all within `eps` of each other (up to sign)
    /// have `|w|` at a fixed pivot element within `eps` of each other (`pivot`, the window
    /// searched) and sums of `|w|` within `n * eps` (`sig`, a second filter).
    Signature {
        pivot: Vec<f64>,
        sig: &'a [f64],
        n: usize,
        eps: f64,
    },
}

/// Splits the `active` channels into classes. Channels are visited in ascending order and each
/// joins the first class (in creation order) whose representative it matches, so the result is
/// deterministic and every class is listed by ascending representative. Only channels of the
/// same `group` can match; `matches(rep, j)` decides, returning whether `j` is the negation of
/// `rep`.
pub(crate) fn partition(
    active: &[bool],
    group: impl Fn(usize) -> usize,
    pre: Prefilter<'_>,
    mut matches: impl FnMut(usize, usize) -> Option<bool>,
) -> Vec<Vec<SignedChannel>> {
    let mut classes: Vec<Vec<SignedChannel>> = Vec::new();
    // Exact: (group, hash) -> classes. Approximate: group -> (pivot, class) sorted by pivot, so
    // the candidates are a window found by binary search.
    let mut by_hash: HashMap<(usize, u64), Vec<usize>> = HashMap::new();
    let mut by_sig: HashMap<usize, Vec<(f64, usize)>> = HashMap::new();
    let mut candidates: Vec<usize> = Vec::new();
    for (j, _) in active.iter().enumerate().filter(|(_, &a)| a) {
        candidates.clear();
        match &pre {
            Prefilter::Hash(h) => {
                candidates.extend_from_slice(by_hash.get(&(group(j), h[j])).map_or(&[][..], |v| v));
            }
            Prefilter::Signature { pivot, sig, n, eps } => {
                let reps = by_sig.entry(group(j)).or_default();
                // The slack covers the rounding of `|a - b| <= eps` done in the weight's type.
                let (p, slack) = (pivot[j], eps * 1.001 + 1e-6 * pivot[j]);
                let lo = reps.partition_point(|&(x, _)| x < p - slack);
                for &(x, c) in &reps[lo..] {
                    if x > p + slack {
                        break;
                    }
                    let r = classes[c][0].channel as usize;
                    if signature_close(sig[r], sig[j], *n, *eps) {
                        candidates.push(c);
                    }
                }
                // Creation order decides between several matching classes.
                candidates.sort_unstable();
            }
        }
        let found = candidates.iter().find_map(|&c| {
            let r = classes[c][0].channel as usize;
            matches(r, j).map(|neg| (c, neg))
        });
        let member = |negated| SignedChannel {
            channel: j as u32,
            negated,
        };
        match found {
            Some((c, neg)) => classes[c].push(member(neg)),
            None => {
                let c = classes.len();
                classes.push(vec![member(false)]);
                match &pre {
                    Prefilter::Hash(h) => by_hash.entry((group(j), h[j])).or_default().push(c),
                    Prefilter::Signature { pivot, .. } => {
                        let reps = by_sig.entry(group(j)).or_default();
                        let at = reps.partition_point(|&(x, _)| x < pivot[j]);
                        reps.insert(at, (pivot[j], c));
                    }
                }
            }
        }
    }
    classes
}

/// Classes with more than one member, as filter classes.
pub(crate) fn filter_classes(all: &[Vec<SignedChannel>]) -> Vec<FilterClass> {
    all.iter()
        .filter(|c| c.len() > 1)
        .map(|c| FilterClass {
            representative: c[0].channel,
            members: c.clone(),
        })
        .collect()
}

/// Classes with more than one member, as plain channel lists.
pub(crate) fn plain_classes(all: &[Vec<SignedChannel>]) -> Vec<Vec<u32>> {
    all.iter()
        .filter(|c| c.len() > 1)
        .map(|c| c.iter().map(|m| m.channel).collect())
        .collect()
}

/// The pre-filter for approximate mode: channels whose elements are all within `eps` of each
/// other (up to sign) have sums of `|w|` within `n * eps`; the slack covers rounding.
pub(crate) fn signature_close(a: f64, b: f64, n: usize, eps: f64) -> bool {
    (a - b).abs() <= n as f64 * eps * 1.001 + 1e-6 * a.abs().max(b.abs())
}

/// Classes of the non-zero input channels (identical columns) and of the non-zero output
/// filters (equal up to sign), each including singletons.
pub(crate) struct ChannelClasses {
    pub inputs: Vec<Vec<SignedChannel>>,
    pub outputs: Vec<Vec<SignedChannel>>,
}

pub(crate) fn channel_classes<T: Elem>(
    w: &[T],
    d: &Dims,
    s: &Scan,
    eps: T,
    approx: bool,
) -> ChannelClasses {
    let (cig, cog) = (d.cig, d.cog());
    let same_in = |r: usize, j: usize| inputs_equal(w, d, r, j, eps).then_some(false);
    let same_out = |r: usize, j: usize| outputs_match(w, d, r, j, eps);
    let (in_pre, out_pre) = if approx {
        let e = eps.to_f64();
        // The middle element: for a conv, the centre tap of a middle channel, usually among
        // the largest weights and so the most discriminating.
        let (ip, op) = ((cog / 2, d.taps / 2), (cig / 2, d.taps / 2));
        let in_pivot = (0..d.ci())
            .map(|i| {
                let g = i / cig;
                w[d.at(g * cog + ip.0, i % cig, ip.1)].abs().to_f64()
            })
            .collect();
        let out_pivot = (0..d.co)
            .map(|o| w[d.at(o, op.0, op.1)].abs().to_f64())
            .collect();
        (
            Prefilter::Signature {
                pivot: in_pivot,
                sig: &s.in_sig,
                n: cog * d.taps,
                eps: e,
            },
            Prefilter::Signature {
                pivot: out_pivot,
                sig: &s.out_sig,
                n: cig * d.taps,
                eps: e,
            },
        )
    } else {
        (Prefilter::Hash(&s.in_hash), Prefilter::Hash(&s.out_hash))
    };
    ChannelClasses {
        inputs: partition(&s.in_nz, |i| i / cig, in_pre, same_in),
        outputs: partition(&s.out_nz, |o| o / cog, out_pre, same_out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins_and_order_is_stable() {
        let vals = [3, 1, 3, -3, 0, 1];
        let active = [true, true, true, true, false, true];
        let hashes: Vec<u64> = vals.iter().map(|v: &i32| v.unsigned_abs() as u64).collect();
        let classes = partition(
            &active,
            |_| 0,
            Prefilter::Hash(&hashes),
            |r, j| {
                if vals[r] == vals[j] {
                    Some(false)
                } else if vals[r] == -vals[j] {
                    Some(true)
                } else {
                    None
                }
            },
        );
        let chans: Vec<Vec<(u32, bool)>> = classes
            .iter()
            .map(|c| c.iter().map(|m| (m.channel, m.negated)).collect())
            .collect();
        assert_eq!(
            chans,
            vec![
                vec![(0, false), (2, false), (3, true)],
                vec![(1, false), (5, false)]
            ]
        );
        assert_eq!(plain_classes(&classes), vec![vec![0, 2, 3], vec![1, 5]]);
    }

    #[test]
    fn approximate_classes_follow_creation_order() {
        // 1 is too far from 0 and starts a class; 2 is within eps of both representatives and
        // joins the older class even though it is nearer the newer one.
        let vals = [1.0f64, 1.15, 1.08, 5.0];
        let classes = partition(
            &[true; 4],
            |_| 0,
            Prefilter::Signature {
                pivot: vals.to_vec(),
                sig: &vals,
                n: 1,
                eps: 0.1,
            },
            |r, j| ((vals[r] - vals[j]).abs() <= 0.1).then_some(false),
        );
        let chans: Vec<Vec<u32>> = classes
            .iter()
            .map(|c| c.iter().map(|m| m.channel).collect())
            .collect();
        assert_eq!(chans, vec![vec![0, 2], vec![1], vec![3]]);
    }

    #[test]
    fn signature_filter_is_loose_enough() {
        assert!(signature_close(10.0, 10.009, 10, 0.001));
        assert!(!signature_close(10.0, 10.1, 10, 0.001));
    }
}
