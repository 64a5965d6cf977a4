//! Resize / Upsample over the last two dims (NCHW feature maps): the separable per-dim taps of
//! `ssc_exec::resize_taps` (every mode and coordinate transformation the reference knows),
//! fixed at compile time. Nearest rows are gathers (and copies of the previous output row when
//! two output rows read the same input row); linear and cubic rows sum their weighted taps.

use super::par::par_units;

/// One output row's (or column's) taps: `(input index, weight)`; `None` takes the
/// extrapolation value (`tf_crop_and_resize` outside the region).
pub(crate) type Taps = Option<Vec<(usize, f32)>>;

/// A resize of planes of `in_h x in_w` to `out_h x out_w`; output plane `p` reads input plane
/// `plane_src[p]`.
pub(crate) struct Resize {
    plane_src: Vec<usize>,
    in_h: usize,
    in_w: usize,
    out_h: usize,
    out_w: usize,
    ys: Vec<Taps>,
    /// Per output row: it equals the previous output row (same taps).
    same_as_prev: Vec<bool>,
    xs: Cols,
    extrap: f32,
}

/// Column taps: one input column per output column (nearest, or linear on exact points), or
/// the general form.
enum Cols {
    Gather(Vec<usize>),
    Taps(Vec<Taps>),
}

impl Resize {
    /// `ys` and `xs` hold the taps of every output row and column.
    pub(crate) fn new(
        plane_src: Vec<usize>,
        (in_h, in_w): (usize, usize),
        ys: Vec<Taps>,
        xs: Vec<Taps>,
        extrap: f32,
    ) -> Option<Resize> {
        let ok = |t: &Taps, n: usize| t.as_ref().is_none_or(|v| v.iter().all(|&(i, _)| i < n));
        if !ys.iter().all(|t| ok(t, in_h)) || !xs.iter().all(|t| ok(t, in_w)) {
            return None;
        }
        let same_as_prev = (0..ys.len())
            .map(|r| r > 0 && ys[r].is_some() && ys[r] == ys[r - 1])
            .collect();
        let gather: Option<Vec<usize>> = xs
            .iter()
            .map(|t| match t.as_deref() {
                Some(&[(i, 1.0)]) => Some(i),
                _ => None,
            })
            .collect();
        Some(Resize {
            plane_src,
            in_h,
            in_w,
            out_h: ys.len(),
            out_w: xs.len(),
            ys,
            same_as_prev,
            xs: match gather {
                Some(g) => Cols::Gather(g),
                None => Cols::Taps(xs),
            },
            extrap,
        })
    }

    pub(crate) fn out_len(&self) -> usize {
        self.plane_src.len() * self.out_h * self.out_w
    }

    /// One output row from input row `src`, scaled by `w` and added when `acc`.
    #[inline(always)]
    fn row(&self, src: &[f32], dst: &mut [f32], w: f32, acc: bool) {
        match &self.xs {
            Cols::Gather(ix) => {
                if acc {
                    for (o, &i) in dst.iter_mut().zip(ix) {
                        *o += w * src[i];
                    }
                } else {
                    for (o, &i) in dst.iter_mut().zip(ix) {
                        *o = src[i];
                    }
                }
            }
            Cols::Taps(ts) => {
                for (o, t) in dst.iter_mut().zip(ts) {
                    let v = match t {
                        Some(t) => t.iter().map(|&(i, wi)| wi * src[i]).sum::<f32>(),
                        None => self.extrap,
                    };
                    if acc {
                        *o += w * v;
                    } else {
                        *o = v;
                    }
                }
            }
        }
    }

    pub(crate) fn run(&self, x: &[f32], out: &mut [f32]) {
        let (ih, iw, oh, ow) = (self.in_h, self.in_w, self.out_h, self.out_w);
        debug_assert_eq!(out.len(), self.out_len());
        par_units(out, ow, 8, |first, part| {
            for k in 0..part.len() / ow {
                let r = first + k;
                let (p, oy) = (r / oh, r % oh);
                let (done, rest) = part.split_at_mut(k * ow);
                let dst = &mut rest[..ow];
                // Same taps as the row before it (in this part and this plane): copy it.
                if k > 0 && self.same_as_prev[oy] {
                    dst.copy_from_slice(&done[(k - 1) * ow..]);
                    continue;
                }
                let p = self.plane_src[p];
                let plane = &x[p * ih * iw..(p + 1) * ih * iw];
                let src = |iy: usize| &plane[iy * iw..(iy + 1) * iw];
                match self.ys[oy].as_deref() {
                    None => dst.fill(self.extrap),
                    Some(&[(iy, 1.0)]) => self.row(src(iy), dst, 1.0, false),
                    Some(taps) => {
                        dst.fill(0.0);
                        for &(iy, w) in taps {
                            self.row(src(iy), dst, w, true);
                        }
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct evaluation of the separable taps, in f64.
    fn naive(k: &Resize, ys: &[Taps], xs: &[Taps], x: &[f32]) -> Vec<f64> {
        let mut out = Vec::new();
        for &p in &k.plane_src {
            for ty in ys {
                for tx in xs {
                    out.push(match (ty, tx) {
                        (Some(ty), Some(tx)) => ty
                            .iter()
                            .flat_map(|&(iy, wy)| {
                                tx.iter().map(move |&(ix, wx)| {
                                    f64::from(wy)
                                        * f64::from(wx)
                                        * f64::from(x[(p * k.in_h + iy) * k.in_w + ix])
                                })
                            })
                            .sum(),
                        _ => f64::from(k.extrap),
                    });
                }
            }
        }
        out
    }

    #[test]
    fn rows_gathers_and_copies_match_the_taps() {
        // Nearest 2x (row copies), linear with two taps, a missing row and column, odd sizes,
        // with and without threads (parts that start mid-plane).
        let near = |n: usize, f: usize| -> Vec<Taps> {
            (0..n * f).map(|o| Some(vec![(o / f, 1.0)])).collect()
        };
        let lin = |n_in: usize, n_out: usize| -> Vec<Taps> {
            (0..n_out)
                .map(|o| {
                    let c = (o as f32 + 0.5) * n_in as f32 / n_out as f32 - 0.5;
                    let c = c.clamp(0.0, (n_in - 1) as f32);
                    let i0 = c.floor() as usize;
                    let f = c - i0 as f32;
                    Some(vec![(i0, 1.0 - f), ((i0 + 1).min(n_in - 1), f)])
                })
                .collect()
        };
        let mut holes = lin(5, 9);
        holes[0] = None;
        holes[8] = None;
        type Case = (usize, usize, usize, Vec<Taps>, Vec<Taps>);
        let cases: Vec<Case> = vec![
            (3, 5, 7, near(5, 2), near(7, 2)),
            (2, 5, 7, lin(5, 11), lin(7, 3)),
            (4, 5, 5, holes.clone(), near(5, 3)),
            (1, 5, 5, near(5, 1), holes),
            (5, 3, 1, near(3, 3), near(1, 4)),
        ];
        for (planes, ih, iw, ys, xs) in cases {
            // Planes read in reverse (a shifted leading dim).
            let src: Vec<usize> = (0..planes).rev().collect();
            let k = Resize::new(src, (ih, iw), ys.clone(), xs.clone(), -2.5).unwrap();
            let x: Vec<f32> = (0..planes * ih * iw)
                .map(|i| ((i * 37) % 23) as f32 - 11.0)
                .collect();
            let want = naive(&k, &ys, &xs, &x);
            for threads in [1, 2] {
                let mut got = vec![f32::NAN; k.out_len()];
                crate::testutil::in_pool(threads, || k.run(&x, &mut got));
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (f64::from(*g) - w).abs() <= 1e-5 * w.abs().max(1.0),
                        "{g} vs {w}"
                    );
                }
            }
        }
        // Taps past the input are refused.
        assert!(
            Resize::new(vec![0], (2, 2), vec![Some(vec![(2, 1.0)])], vec![None], 0.0).is_none()
        );
    }
}
