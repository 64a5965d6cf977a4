//! The zero-padded, phase-split input layout the sparse-weight kernels read: every (input
//! channel, tap) of a convolution becomes one constant offset into it, for any stride,
//! dilation and padding, so a kernel walks its non-zero weights as `(offset, weight)` pairs over
//! contiguous runs of output positions.
//!
//! For stride `(sh, sw)` the padded image is split into phase planes
//! `P[py][px][i][j] = pad[i*sh + py][j*sw + px]` (only the phases some tap reads). All planes
//! share one row pitch `wq = w_out + ox_max` and `hq = h_out + oy_max + 1` rows, where tap
//! `(ky, kx)` reads phase `(ky*dh % sh, kx*dw % sw)` at row/column shift
//! `(oy, ox) = (ky*dh / sh, kx*dw / sw)`. Output position `(y, x)` is the flat index
//! `p = y*wq + x` (columns `x >= w_out` are computed and never stored), and tap `(ky, kx)` of
//! input channel `ic` is the input at `p + offset(ic, ky, kx)`. The extra row per plane, and
//! slack after the last plane (the caller's), keep reads of a tile that runs past the last
//! output row inside the buffer.
//!
//! *Aligned layout.* [`Planes::aligned`] rounds the pitch up to a multiple of `align` floats
//! and stores, per phase, one copy of the plane for every column shift `ox` some tap reads,
//! shifted left by `ox`: tap `(ky, kx)` then reads its copy at `p + oy*wq`, so for tiles that
//! start at multiples of `align` every vector load is aligned (`kx` times the copying, for
//! loads that never straddle a cache line).
//!
//! *Strided fill.* For column strides 2 and 3 (and any stride whose staged row fits
//! `ROW_TMP`), each image row is copied once into a zero-padded stack row and every phase `px`
//! takes `row[j*sw + px]` over all `wq` columns: a fixed-stride deinterleave that LLVM
//! vectorises (`shufps`), instead of one bounds-checked float at a time. Short rows are copied
//! inline (`copy_row`): a `memmove` call per 7..14-float row cost more than the copy.

use crate::kernels::copy_row;
use crate::kernels::par::simd;
use crate::spec::ConvGeom;

/// Floats of the stack row a strided fill stages one zero-padded input row in.
const ROW_TMP: usize = 512;

/// The padded phase-plane layout of one convolution's input (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Planes {
    pub geom: ConvGeom,
    pub sh: usize,
    pub sw: usize,
    /// Row pitch and rows of every plane.
    pub wq: usize,
    pub hq: usize,
    /// The stored planes as `(py, px)`, in order: the phase some tap reads, and in the aligned
    /// layout the column shift folded in (`px + ox*sw`: column `j` holds the padded input's
    /// column `j*sw + px`).
    pub phases: Vec<(usize, usize)>,
    /// Plane slot of phase `py*sw + px` with column shift `ox` (always 0 unaligned), at
    /// `(py*sw + px) * shifts + ox` (`usize::MAX` where unused).
    slot: Vec<usize>,
    shifts: usize,
    aligned: bool,
}

impl Planes {
    /// The layout for `g` (whose dimensions the caller has checked).
    pub(crate) fn new(g: &ConvGeom) -> Planes {
        Planes::build(g, None)
    }

    fn build(g: &ConvGeom, align: Option<usize>) -> Planes {
        let [sh, sw] = g.stride;
        let [dh, dw] = g.dilation;
        let oy_max = (g.kh - 1) * dh / sh;
        let ox_max = (g.kw - 1) * dw / sw;
        let (wq, shifts) = match align {
            None => (g.w_out + ox_max, 1),
            Some(a) => (g.w_out.next_multiple_of(a), ox_max + 1),
        };
        let hq = g.h_out + oy_max + 1;
        let mut used = vec![false; sh * sw * shifts];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let (ry, rx) = (ky * dh, kx * dw);
                let ox = if align.is_some() { rx / sw } else { 0 };
                used[((ry % sh) * sw + rx % sw) * shifts + ox] = true;
            }
        }
        let mut slot = vec![usize::MAX; sh * sw * shifts];
        let mut phases = Vec::new();
        for (k, _) in used.iter().enumerate().filter(|(_, &u)| u) {
            slot[k] = phases.len();
            let (ph, ox) = (k / shifts, k % shifts);
            phases.push((ph / sw, ph % sw + ox * sw));
        }
        Planes {
            geom: *g,
            sh,
            sw,
            wq,
            hq,
            phases,
            slot,
            shifts,
            aligned: align.is_some(),
        }
    }

    /// Floats of one phase plane.
    pub(crate) fn plane(&self) -> usize {
        self.wq * self.hq
    }

    /// Floats of one input channel's planes.
    pub(crate) fn chan_len(&self) -> usize {
        self.phases.len() * self.plane()
    }

    /// The offset, in floats from the start of channel 0's planes, at which tap `(ky, kx)` of
    /// the `ic`-th stored channel reads for output position 0.
    pub(crate) fn offset(&self, ic: usize, ky: usize, kx: usize) -> usize {
        let [dh, dw] = self.geom.dilation;
        let (ry, rx) = (ky * dh, kx * dw);
        let (oy, ox) = (ry / self.sh, rx / self.sw);
        let ph = (ry % self.sh) * self.sw + rx % self.sw;
        let (s, col) = if self.aligned {
            (self.slot[ph * self.shifts + ox], 0)
        } else {
            (self.slot[ph * self.shifts], ox)
        };
        (ic * self.phases.len() + s) * self.plane() + oy * self.wq + col
    }

    /// Fills the planes of input channels `lo..hi` (`planes` starts at channel `lo`) in `parts`
    /// parallel pieces.
    pub(crate) fn fill_split(
        &self,
        lo: usize,
        hi: usize,
        parts: usize,
        input: &[f32],
        planes: &mut [f32],
    ) {
        let chan_len = self.chan_len();
        if parts <= 1 || hi - lo <= 1 {
            let hw = self.geom.h * self.geom.w;
            simd(
                #[inline(always)]
                || {
                    for (k, dst) in planes.chunks_exact_mut(chan_len).enumerate() {
                        let ic = lo + k;
                        self.fill_channel(&input[ic * hw..(ic + 1) * hw], dst, true);
                    }
                },
            );
            return;
        }
        let left = parts / 2;
        let mid = lo + (hi - lo) * left / parts;
        let mid = mid.clamp(lo + 1, hi - 1);
        let (a, b) = planes.split_at_mut((mid - lo) * chan_len);
        rayon::join(
            || self.fill_split(lo, mid, left, input, a),
            || self.fill_split(mid, hi, parts - left, input, b),
        );
    }

    /// Writes the phase planes of one input channel `src` (`h*w`) into `dst`; with `!borders`
    /// only the image part (the zero borders are already in place from an earlier fill).
    #[inline(always)]
    pub(crate) fn fill_channel(&self, src: &[f32], dst: &mut [f32], borders: bool) {
        let (sw, wq) = (self.sw, self.wq);
        // Strided: deinterleave whole zero-padded rows staged in a stack buffer.
        if sw > 1 && self.staged_len() <= ROW_TMP {
            match sw {
                2 => self.fill_rows::<2>(src, dst, borders, 2),
                3 => self.fill_rows::<3>(src, dst, borders, 3),
                _ => self.fill_rows::<0>(src, dst, borders, sw),
            }
            return;
        }
        let g = &self.geom;
        let (pt, pl) = (g.pads[0], g.pads[1]);
        let sh = self.sh;
        for (&(py, px), pdst) in self.phases.iter().zip(dst.chunks_exact_mut(wq * self.hq)) {
            // Columns j whose source column j*sw + px - pl lies in 0..w.
            let j_lo = (pl.saturating_sub(px)).div_ceil(sw).min(wq);
            let j_hi = ((g.w + pl).saturating_sub(px)).div_ceil(sw).clamp(j_lo, wq);
            for (i, row) in pdst.chunks_exact_mut(wq).enumerate() {
                let r = i * sh + py;
                if r < pt || r - pt >= g.h || j_lo == j_hi {
                    if borders {
                        row.fill(0.0);
                    }
                    continue;
                }
                let srow = &src[(r - pt) * g.w..(r - pt + 1) * g.w];
                if borders {
                    row[..j_lo].fill(0.0);
                    row[j_hi..].fill(0.0);
                }
                let c0 = j_lo * sw + px - pl;
                let (d, s) = (&mut row[j_lo..j_hi], &srow[c0..]);
                if sw == 1 {
                    copy_row(d, s);
                } else {
                    for (d, s) in d.iter_mut().zip(s.iter().step_by(sw)) {
                        *d = *s;
                    }
                }
            }
        }
    }

    /// Floats of the staged row of a strided fill: room for every plane's `wq` columns at
    /// stride `sw` from its `px`.
    fn staged_len(&self) -> usize {
        let px_max = self.phases.iter().map(|&(_, px)| px).max().unwrap_or(0);
        (px_max / self.sw + 1 + self.wq) * self.sw
    }

    /// Column stride `s > 1` (`S` is `s` when instantiated for it, else 0): each image row is
    /// copied once into a zero-padded stack row `tmp[c] = pad[row][c]`, then every phase `px` of
    /// its `py` takes `tmp[j*s + px]` for all `wq` columns (borders included), which vectorises
    /// as a deinterleave.
    #[inline(always)]
    fn fill_rows<const S: usize>(&self, src: &[f32], dst: &mut [f32], borders: bool, s: usize) {
        let g = &self.geom;
        let (pt, pl) = (g.pads[0], g.pads[1]);
        let (sh, wq, hq) = (self.sh, self.wq, self.hq);
        let plane = wq * hq;
        let mut tmp = [0f32; ROW_TMP];
        // Padded columns: the image occupies [pl, pl + w) of the first `tlen` floats; columns
        // the planes read beyond the padded width stay zero. Every plane reads below
        // `px + wq * s <= tlen`, so `tmp[px..tlen]` has at least `wq` whole chunks.
        let tlen = self.staged_len();
        let img = g.w.min(tlen.saturating_sub(pl));
        for py in 0..sh {
            if !self.phases.iter().any(|&(y, _)| y == py) {
                continue;
            }
            for i in 0..hq {
                let r = i * sh + py;
                let inside = r >= pt && r - pt < g.h && img > 0;
                if !inside && !borders {
                    continue;
                }
                if inside {
                    let y = r - pt;
                    copy_row(&mut tmp[pl..pl + img], &src[y * g.w..]);
                }
                for (k, &(yy, px)) in self.phases.iter().enumerate() {
                    if yy != py {
                        continue;
                    }
                    let row = &mut dst[k * plane + i * wq..k * plane + (i + 1) * wq];
                    if !inside {
                        row.fill(0.0);
                    } else if S == 0 {
                        for (d, c) in row.iter_mut().zip(tmp[px..tlen].iter().step_by(s)) {
                            *d = *c;
                        }
                    } else {
                        for (d, c) in row.iter_mut().zip(tmp[px..tlen].chunks_exact(S)) {
                            *d = c[0];
                        }
                    }
                }
            }
        }
    }
}
