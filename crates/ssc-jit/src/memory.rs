//! The activation memory plan: every intermediate f32 tensor gets a fixed offset in one arena,
//! and tensors whose lifetimes do not overlap share memory, so a run allocates nothing.

/// One buffer to place: its length in f32 elements and the half-open range of plan steps
/// `[first, last]` during which it must stay intact (written at `first`, last read at `last`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interval {
    pub len: usize,
    pub first: usize,
    pub last: usize,
}

/// Offsets chosen for each interval plus the arena length they need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    pub offsets: Vec<usize>,
    pub arena_len: usize,
}

/// Buffers are aligned to 16 f32 (64 bytes, one cache line) so kernels may use aligned loads
/// and two buffers never share a cache line between threads.
const ALIGN: usize = 16;

fn round_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Greedy by size (largest first, ties by first use then index, so the result is
/// deterministic): each buffer goes to the lowest aligned offset that does not overlap any
/// already-placed buffer whose lifetime intersects its own. This is the classic offset
/// assignment of TFLite's and ORT's arena planners; it is within a few percent of the lower
/// bound (the largest set of simultaneously live bytes) on CNNs.
pub(crate) fn place(intervals: &[Interval]) -> Placement {
    let mut order: Vec<usize> = (0..intervals.len()).collect();
    order.sort_by(|&a, &b| {
        let (ia, ib) = (intervals[a], intervals[b]);
        ib.len
            .cmp(&ia.len)
            .then(ia.first.cmp(&ib.first))
            .then(a.cmp(&b))
    });
    let mut offsets = vec![0usize; intervals.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut arena_len = 0usize;
    for &i in &order {
        let me = intervals[i];
        let len = round_up(me.len.max(1));
        // Occupied ranges of live-overlapping buffers, sorted by offset.
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| {
                let o = intervals[j];
                o.first <= me.last && me.first <= o.last
            })
            .map(|&j| (offsets[j], offsets[j] + round_up(intervals[j].len.max(1))))
            .collect();
        busy.sort_unstable();
        let mut at = 0usize;
        for (s, e) in busy {
            if at + len <= s {
                break;
            }
            at = at.max(e);
        }
        offsets[i] = at;
        arena_len = arena_len.max(at + len);
        placed.push(i);
    }
    Placement { offsets, arena_len }
}

/// The largest total length of buffers live at one step: a lower bound for any placement.
pub(crate) fn live_lower_bound(intervals: &[Interval]) -> usize {
    let steps = intervals.iter().map(|i| i.last + 1).max().unwrap_or(0);
    (0..steps)
        .map(|s| {
            intervals
                .iter()
                .filter(|i| i.first <= s && s <= i.last)
                .map(|i| round_up(i.len.max(1)))
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlap(a: (usize, usize), b: (usize, usize)) -> bool {
        a.0 < b.1 && b.0 < a.1
    }

    #[test]
    fn live_buffers_never_overlap_and_dead_ones_are_reused() {
        // A chain a -> b -> c -> d where each tensor dies after its consumer: two slots suffice.
        let iv = [
            Interval {
                len: 100,
                first: 0,
                last: 1,
            },
            Interval {
                len: 100,
                first: 1,
                last: 2,
            },
            Interval {
                len: 100,
                first: 2,
                last: 3,
            },
            Interval {
                len: 100,
                first: 3,
                last: 4,
            },
        ];
        let p = place(&iv);
        assert_eq!(p.arena_len, 2 * round_up(100));
        for i in 0..iv.len() {
            for j in 0..i {
                let live = iv[i].first <= iv[j].last && iv[j].first <= iv[i].last;
                let ri = (p.offsets[i], p.offsets[i] + iv[i].len);
                let rj = (p.offsets[j], p.offsets[j] + iv[j].len);
                assert!(!(live && overlap(ri, rj)), "{i} and {j} overlap while live");
            }
        }
    }

    #[test]
    fn random_plans_are_valid_and_near_the_bound() {
        let mut s = 0x9e3779b97f4a7c15u64;
        let mut next = |m: usize| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % m as u64) as usize
        };
        for _ in 0..50 {
            let n = 1 + next(40);
            let iv: Vec<Interval> = (0..n)
                .map(|_| {
                    let first = next(30);
                    Interval {
                        len: 1 + next(5000),
                        first,
                        last: first + next(6),
                    }
                })
                .collect();
            let p = place(&iv);
            for i in 0..n {
                for j in 0..i {
                    let live = iv[i].first <= iv[j].last && iv[j].first <= iv[i].last;
                    let ri = (p.offsets[i], p.offsets[i] + iv[i].len);
                    let rj = (p.offsets[j], p.offsets[j] + iv[j].len);
                    assert!(!(live && overlap(ri, rj)));
                }
                assert_eq!(p.offsets[i] % ALIGN, 0);
            }
            let lb = live_lower_bound(&iv);
            assert!(p.arena_len >= lb);
            assert!(p.arena_len <= 2 * lb, "{} vs bound {lb}", p.arena_len);
        }
    }
}
