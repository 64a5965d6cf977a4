//! Dense convolution as GEMM: im2col (skipped for 1x1 stride-1 convs) feeding the `gemm`
//! crate, with the bias and residual preloaded into the destination and the activation applied
//! per channel block while it is still in cache.

use crate::kernels::par::{for_ranges, SendPtr};
use crate::spec::{ConvGeom, Epilogue};

/// A dense (possibly grouped) convolution with its weights in GEMM layout.
pub(crate) struct GemmConv {
    geom: ConvGeom,
    /// `[c_out, K]` with `K = c_in/group * kh * kw`: ONNX's layout is already this.
    weights: Vec<f32>,
    epi: Epilogue,
    /// 1x1, stride 1, no padding: the input is already the column matrix.
    direct: bool,
}

impl GemmConv {
    pub(crate) fn new(geom: ConvGeom, weights: Vec<f32>, epi: Epilogue) -> GemmConv {
        let direct = geom.kh == 1
            && geom.kw == 1
            && geom.stride == [1, 1]
            && geom.pads == [0; 4]
            && geom.h_out == geom.h
            && geom.w_out == geom.w;
        GemmConv {
            geom,
            weights,
            epi,
            direct,
        }
    }

    fn k(&self) -> usize {
        self.geom.cin_g() * self.geom.kh * self.geom.kw
    }

    /// f32 elements of scratch one image needs (the column matrix of one group).
    pub(crate) fn scratch_len(&self) -> usize {
        if self.direct {
            0
        } else {
            self.k() * self.geom.h_out * self.geom.w_out
        }
    }

    /// One image: `input` is `[c_in, h, w]`, `output` and `residual` are `[c_out, h_out, w_out]`.
    pub(crate) fn run(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = &self.geom;
        let p = g.h_out * g.w_out;
        let k = self.k();
        let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
        preload(output, residual, self.epi.bias.as_deref(), p);
        let read_dst = residual.is_some() || self.epi.bias.is_some();
        let threads = rayon::current_num_threads();
        for grp in 0..g.group {
            let x = &input[grp * cin_g * g.h * g.w..(grp + 1) * cin_g * g.h * g.w];
            let col: &[f32] = if self.direct {
                x
            } else {
                im2col(g, x, &mut scratch[..k * p]);
                &scratch[..k * p]
            };
            let w = &self.weights[grp * cout_g * k..(grp + 1) * cout_g * k];
            let dst = &mut output[grp * cout_g * p..(grp + 1) * cout_g * p];
            // SAFETY: `dst` is cout_g x p row-major, `w` is cout_g x k and `col` is k x p, all
            // in bounds by construction; gemm reads `dst` only when `read_dst`.
            unsafe {
                gemm::gemm(
                    cout_g,
                    p,
                    k,
                    dst.as_mut_ptr(),
                    1,
                    p as isize,
                    read_dst,
                    w.as_ptr(),
                    1,
                    k as isize,
                    col.as_ptr(),
                    1,
                    p as isize,
                    1.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    if threads > 1 {
                        gemm::Parallelism::Rayon(threads)
                    } else {
                        gemm::Parallelism::None
                    },
                );
            }
        }
        activate(output, self.epi.act);
    }
}

/// Writes `bias[c] (+ residual)` into every element of channel `c`, or leaves the output to be
/// overwritten when there is neither.
pub(crate) fn preload(out: &mut [f32], residual: Option<&[f32]>, bias: Option<&[f32]>, p: usize) {
    if residual.is_none() && bias.is_none() {
        return;
    }
    let c = out.len() / p.max(1);
    let ptr = SendPtr(out.as_mut_ptr());
    for_ranges(c, 8, move |b, e| {
        // SAFETY: each task writes channels [b, e) only; ranges are disjoint.
        let out = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(b * p), (e - b) * p) };
        for (i, ch) in out.chunks_exact_mut(p).enumerate() {
            let bv = bias.map_or(0.0, |bs| bs[b + i]);
            match residual {
                Some(r) => {
                    let r = &r[(b + i) * p..(b + i + 1) * p];
                    for (o, &rv) in ch.iter_mut().zip(r) {
                        *o = rv + bv;
                    }
                }
                None => ch.fill(bv),
            }
        }
    });
}

/// Applies the activation in place, in parallel.
pub(crate) fn activate(out: &mut [f32], act: crate::spec::Activation) {
    if act == crate::spec::Activation::None {
        return;
    }
    let n = out.len();
    let ptr = SendPtr(out.as_mut_ptr());
    for_ranges(n, 1 << 14, move |b, e| {
        // SAFETY: disjoint element ranges of `out`.
        let s = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(b), e - b) };
        for v in s {
            *v = act.apply(*v);
        }
    });
}

/// The column matrix `[cin_g*kh*kw, h_out*w_out]` of one group's input `[cin_g, h, w]`;
/// out-of-image taps read 0. Rows are filled in parallel.
fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    let p = g.h_out * g.w_out;
    let rows = g.cin_g() * g.kh * g.kw;
    let ptr = SendPtr(col.as_mut_ptr());
    let g = *g;
    for_ranges(rows, 4, move |b, e| {
        for r in b..e {
            // SAFETY: each task fills rows [b, e) of `col`; ranges are disjoint.
            let row = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(r * p), p) };
            let ci = r / (g.kh * g.kw);
            let ky = (r / g.kw) % g.kh;
            let kx = r % g.kw;
            let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
            fill_row(&g, plane, ky, kx, row);
        }
    });
}

/// One im2col row: for every output pixel, the input pixel tap `(ky, kx)` reads.
fn fill_row(g: &ConvGeom, plane: &[f32], ky: usize, kx: usize, row: &mut [f32]) {
    let (sh, sw) = (g.stride[0], g.stride[1]);
    let off_y = (ky * g.dilation[0]) as isize - g.pads[0] as isize;
    let off_x = (kx * g.dilation[1]) as isize - g.pads[1] as isize;
    // Output columns whose input column is inside the image: x_lo..x_hi.
    let x_lo = if off_x >= 0 {
        0
    } else {
        ((-off_x) as usize).div_ceil(sw)
    };
    let x_hi = if (g.w as isize) <= off_x {
        0
    } else {
        ((g.w as isize - off_x) as usize).div_ceil(sw).min(g.w_out)
    };
    for (y, out) in row.chunks_exact_mut(g.w_out).enumerate() {
        let iy = (y * sh) as isize + off_y;
        if iy < 0 || iy >= g.h as isize || x_lo >= x_hi {
            out.fill(0.0);
            continue;
        }
        let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
        out[..x_lo].fill(0.0);
        out[x_hi..].fill(0.0);
        let start = (x_lo * sw) as isize + off_x;
        if sw == 1 {
            let s = start as usize;
            out[x_lo..x_hi].copy_from_slice(&src[s..s + (x_hi - x_lo)]);
        } else {
            for (j, o) in out[x_lo..x_hi].iter_mut().enumerate() {
                *o = src[start as usize + j * sw];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Activation;

    #[test]
    #[ignore]
    fn bench_gemm_conv_parts() {
        let g = ConvGeom {
            c_in: 64,
            c_out: 64,
            group: 1,
            h: 56,
            w: 56,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            dilation: [1, 1],
            pads: [1; 4],
            h_out: 56,
            w_out: 56,
        };
        let k = 64 * 9;
        let p = 56 * 56;
        let x: Vec<f32> = (0..64 * p).map(|i| (i % 13) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..64 * k).map(|i| (i % 7) as f32 * 0.01).collect();
        let mut col = vec![0.0; k * p];
        let mut y = vec![0.0; 64 * p];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| {
            let n = 20;
            let t = std::time::Instant::now();
            for _ in 0..n {
                im2col(&g, &x, &mut col);
            }
            eprintln!("im2col {:?}", t.elapsed() / n);
            let t = std::time::Instant::now();
            for _ in 0..n {
                unsafe {
                    gemm::gemm(
                        64,
                        p,
                        k,
                        y.as_mut_ptr(),
                        1,
                        p as isize,
                        false,
                        w.as_ptr(),
                        1,
                        k as isize,
                        col.as_ptr(),
                        1,
                        p as isize,
                        1.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
            let d = t.elapsed() / n;
            eprintln!(
                "gemm {:?} = {:.1} GFLOP/s",
                d,
                2.0 * (64 * p * k) as f64 / d.as_secs_f64() / 1e9
            );
            let t = std::time::Instant::now();
            for _ in 0..n {
                unsafe {
                    gemm::gemm(
                        p,
                        64,
                        k,
                        y.as_mut_ptr(),
                        p as isize,
                        1,
                        false,
                        col.as_ptr(),
                        p as isize,
                        1,
                        w.as_ptr(),
                        k as isize,
                        1,
                        1.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
            let d = t.elapsed() / n;
            eprintln!(
                "gemm (transposed view) {:?} = {:.1} GFLOP/s",
                d,
                2.0 * (64 * p * k) as f64 / d.as_secs_f64() / 1e9
            );
            let b = vec![0.5f32; 64];
            let t = std::time::Instant::now();
            for _ in 0..n {
                preload(&mut y, None, Some(&b), p);
                activate(&mut y, Activation::Relu);
            }
            eprintln!("preload+act {:?}", t.elapsed() / n);
        });
    }
}
