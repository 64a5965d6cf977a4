//! The choice among the dense convolution kernels, made once per layer at compile time: the
//! direct depthwise kernel, Winograd F(4x4, 3x3) or F(2x2, 3x3), the channel-vectorised direct
//! kernel for small grouped and strided layers, or im2col + GEMM for everything else.

use crate::kernels::depthwise::Depthwise;
#[cfg(target_arch = "x86_64")]
use crate::kernels::depthwise_cv::DepthwiseCv;
#[cfg(target_arch = "x86_64")]
use crate::kernels::direct::DirectConv;
use crate::kernels::gemm_conv::GemmConv;
#[cfg(target_arch = "x86_64")]
use crate::kernels::par::has_avx512f;
use crate::kernels::phase::PhaseConv;
#[cfg(target_arch = "x86_64")]
use crate::kernels::wide::WideConv;
use crate::kernels::winograd::{Tile, Winograd};
use crate::spec::{ConvGeom, Epilogue};

/// A dense convolution in the form that computes it fastest here (see `Depthwise::suits` and
/// `Winograd::choose`).
pub(crate) enum DenseConv {
    Gemm(GemmConv),
    Winograd(Winograd),
    Depthwise(Depthwise),
    #[cfg(target_arch = "x86_64")]
    DepthwiseCv(DepthwiseCv),
    Phase(PhaseConv),
    #[cfg(target_arch = "x86_64")]
    Direct(DirectConv),
    #[cfg(target_arch = "x86_64")]
    Wide(WideConv),
}

/// A 1x1 conv summed into a k x k one that reads the same input: the SSC pair `Add(Conv_kxk(x),
/// Conv_1x1(x))` ssc-opt writes, computed as one direct conv whose every output also takes the
/// 1x1 taps over all input channels, at the k x k grid's tap `(ty, tx)` (the one at the output
/// pixel's own input position): no intermediate tensor, one pass, one epilogue.
pub(crate) struct Pointwise<'a> {
    /// `[c_out, c_in]`.
    pub weights: &'a [f32],
    /// The k x k kernel's tap (in kernel cells) that reads the pixel the 1x1 conv reads.
    pub tap: [usize; 2],
}

/// Whether the direct kernel beats the others on a layer Winograd does not take, from
/// `bench_direct` (1 thread, ms, im2col + `gemm` -> direct). It needs a deep enough sum per
/// output (`K >= 64`: MobileNet's and SqueezeNet's 3x3 stems, K = 27, ran at half im2col's
/// speed) and 16 output channels per group.
/// - With AVX-512 (16-pixel blocks transposed in registers and stored with their epilogue),
///   every such k x k layer: ResNet's 7x7 stem (2.54 -> 2.29); grouped 3x3 layers of 16-128
///   channels per group at stride 2 from 56x56, 28x28 and 14x14 (0.43 -> 0.31, 0.42 -> 0.30,
///   0.52 -> 0.31) and at stride 1 on 7x7 (0.89 -> 0.61); dense stride-2 3x3 layers (1.23 ->
///   1.09, 1.26 -> 1.11, 1.53 -> 1.35). Also 1x1 layers of at most 14x14 outputs and 256
///   input channels or more (512 -> 512 on 7x7 0.30 -> 0.25, 960 -> 160 0.19 -> 0.14, 384 ->
///   64 on 14x14 0.12 -> 0.09; with 128 inputs, 0.146 -> 0.156, so not those), and at stride 1
///   the mobile architectures' 1x1 layers on 14x14 and 7x7 planes with 64-255 inputs
///   (`bench_mobile_pointwise`, session 4, quiet: 192 -> 64 on 14x14 0.147 -> 0.046, 64 ->
///   384 0.132 -> 0.106, 160 -> 960 on 7x7 0.187 -> 0.158, 192 -> 1152 0.266 -> 0.221; level
///   on 96 -> 576, 80 -> 480 and 112 -> 672 on 14x14, 0.223/0.162/0.302 -> 0.222/0.159/0.298).
///   Not on 28x28 and larger planes, where `gemm` is 5-50% faster, nor on the 1x1 planes of
///   squeeze-and-excitation convs (not measured).
/// - With AVX2 (blocks of 6 pixels through a scatter), k x k layers with 16+ input channels per
///   group (the 7x7 stem went from 2.50 to 2.67) whose group's padded input fits in 256 KiB,
///   as every block of 16 output channels reads it all again: the grouped layers above (0.42 ->
///   0.36, 0.42 -> 0.33, 0.48 -> 0.37; 7x7 0.87 -> 0.62), not the dense stride-2 layers from
///   56x56 and 28x28 (1.22 -> 1.32, 1.25 -> 1.20-1.78).
#[cfg(target_arch = "x86_64")]
fn direct_suits(g: &ConvGeom) -> bool {
    let k = g.cin_g() * g.kh * g.kw;
    if !crate::kernels::par::has_avx2_fma() || k < 64 || g.cout_g() < 16 {
        return false;
    }
    let taps = g.kh * g.kw;
    if has_avx512f() {
        let outs = g.h_out * g.w_out;
        let mobile = g.stride == [1, 1] && outs >= 49;
        taps > 1 || (outs <= 196 && (k >= 256 || mobile))
    } else {
        let padded = (g.h + g.pads[0] + g.pads[2]) * (g.w + g.pads[1] + g.pads[3]);
        taps > 1 && g.cin_g() >= 16 && 4 * g.cin_g() * padded <= 256 * 1024
    }
}

/// Whether the pixel-vectorised kernel (AVX-512 only) beats `gemm` on a 1x1 layer: where few
/// output channels (at most 64, not a multiple of 6) leave a ragged edge on the `gemm` crate's
/// 6-column micro-kernel and the sum is deep enough to hide the epilogue (`c_in >= 64` and at
/// least twice the outputs: 64 -> 64 on 56x56 tied in isolation, 0.26 ms, and gained
/// nothing in five interleaved runs of the SSC ResNet-18). From
/// `bench_wide` (1 thread, ms, `gemm` -> wide): SqueezeNet's squeeze layers 64 -> 16 and 128 ->
/// 16 on 55x55, 128 -> 32 on 27x27 and 512 -> 64 on 13x13: 0.19 -> 0.07, 0.40 -> 0.13, 0.11 ->
/// 0.07, 0.15 -> 0.12. Not with more output channels (128 -> 128 on 28x28: 0.26 -> 0.27) or
/// a multiple of 6 (MobileNetV2's 96 -> 24 and 144 -> 24 on 56x56: 0.14 -> 0.16, 0.21 -> 0.24).
#[cfg(target_arch = "x86_64")]
fn wide_suits(g: &ConvGeom) -> bool {
    has_avx512f()
        && g.kh * g.kw == 1
        && g.pads == [0; 4]
        && g.cout_g() <= 64
        && !g.cout_g().is_multiple_of(6)
        && g.cin_g() >= 64.max(2 * g.cout_g())
}

impl DenseConv {
    /// `weights` is ONNX's `[c_out, c_in/group, kh, kw]`; `winograd` allows Winograd.
    pub(crate) fn new(
        geom: ConvGeom,
        weights: Vec<f32>,
        epi: Epilogue,
        threads: usize,
        winograd: bool,
    ) -> DenseConv {
        #[cfg(target_arch = "x86_64")]
        if DepthwiseCv::suits(&geom) {
            return DenseConv::DepthwiseCv(DepthwiseCv::new(geom, &weights, epi));
        }
        if Depthwise::suits(&geom) {
            DenseConv::Depthwise(Depthwise::new(geom, weights, epi))
        } else if winograd && PhaseConv::suits(&geom) {
            DenseConv::Phase(PhaseConv::new(geom, &weights, epi, threads))
        } else if let Some(tile) = Winograd::choose(&geom).filter(|_| winograd) {
            DenseConv::Winograd(Winograd::new(geom, &weights, epi, tile, threads))
        } else {
            #[cfg(target_arch = "x86_64")]
            if direct_suits(&geom) {
                return DenseConv::Direct(DirectConv::new(geom, &weights, epi, threads));
            } else if wide_suits(&geom) {
                return DenseConv::Wide(WideConv::new(geom, &weights, epi, threads));
            }
            DenseConv::Gemm(GemmConv::new(geom, weights, epi, threads))
        }
    }

    /// Whether an SSC pair whose k x k conv is `geom` runs as one step ([`DenseConv::ssc_pair`]):
    /// through Winograd with the 1x1 product as a per-block tail where Winograd (allowed by
    /// `winograd`) takes the k x k conv and the output has the input's size, else as one direct
    /// conv where the direct kernel suits it.
    /// - Winograd tail, in the SSC ResNet-18 against the two convs apart (`ssc-opt bench
    ///   --kernels`, ms per pair): 56x56 0.73-0.78 -> 0.71-0.74, 28x28 0.67 -> 0.62-0.63,
    ///   14x14 0.77-0.80 -> 0.73-0.76; the whole model 0.2-0.3 ms faster in 5 of 6 alternations.
    /// - Direct, against the two convs apart on the kernels they would take (`bench_pairs`, 1
    ///   thread, ms): 4-group stride-2 layers from 56x56, 28x28 and 14x14 0.47 -> 0.46, 0.50 ->
    ///   0.43, 0.44 -> 0.42, and level on 7x7 (0.83 -> 0.84; one pass over the output instead
    ///   of two).
    pub(crate) fn pair_suits(geom: &ConvGeom, winograd: bool) -> bool {
        if DenseConv::winograd_pair(geom, winograd).is_some() {
            return true;
        }
        #[cfg(target_arch = "x86_64")]
        {
            direct_suits(geom) && !(winograd && Winograd::choose(geom).is_some())
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// The Winograd tile for an SSC pair whose k x k conv Winograd takes, when the output has
    /// the input's size (the 1x1 conv then reads the output pixel's own input pixel).
    fn winograd_pair(geom: &ConvGeom, winograd: bool) -> Option<Tile> {
        let same = geom.h_out == geom.h && geom.w_out == geom.w;
        Winograd::choose(geom).filter(|_| winograd && same)
    }

    /// The SSC pair `geom` (k x k, `weights`) + `pw` as one kernel, when
    /// [`DenseConv::pair_suits`] says so; `None` otherwise.
    pub(crate) fn ssc_pair(
        geom: ConvGeom,
        weights: &[f32],
        pw: Pointwise,
        epi: Epilogue,
        threads: usize,
        winograd: bool,
    ) -> Option<DenseConv> {
        if let Some(tile) = DenseConv::winograd_pair(&geom, winograd) {
            let k = Winograd::new(geom, weights, epi, tile, threads);
            return Some(DenseConv::Winograd(k.with_pointwise(pw.weights.to_vec())));
        }
        if !DenseConv::pair_suits(&geom, winograd) {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        return Some(DenseConv::Direct(DirectConv::with_pointwise(
            geom,
            weights,
            Some(pw),
            epi,
            threads,
        )));
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (weights, pw, epi, threads);
            unreachable!("off x86-64 only Winograd pairs suit, and they returned above")
        }
    }

    /// The kernel's name in step reports.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            DenseConv::Gemm(_) => "gemm",
            DenseConv::Winograd(k) => match k.tile() {
                Tile::F2 => "winograd F(2x2)",
                Tile::F4 => "winograd F(4x4)",
                Tile::F3K4 => "winograd F(3x3, 4x4)",
            },
            DenseConv::Depthwise(_) => "depthwise",
            #[cfg(target_arch = "x86_64")]
            DenseConv::DepthwiseCv(_) => "depthwise channels-last",
            DenseConv::Phase(_) => "winograd F(3x3, 4x4) on 2x2 input phases",
            #[cfg(target_arch = "x86_64")]
            DenseConv::Direct(_) => "direct",
            #[cfg(target_arch = "x86_64")]
            DenseConv::Wide(_) => "wide",
        }
    }

    /// What the step report adds to [`DenseConv::kind`]: the one-value tiles Winograd reads
    /// as box sums, if any.
    pub(crate) fn detail(&self) -> String {
        match self {
            DenseConv::Winograd(k) => k
                .unified()
                .map_or(String::new(), |u| format!(" {}", u.describe())),
            _ => String::new(),
        }
    }

    /// f32 elements of scratch one image needs.
    pub(crate) fn scratch_len(&self) -> usize {
        match self {
            DenseConv::Gemm(k) => k.scratch_len(),
            DenseConv::Winograd(k) => k.scratch_len(),
            DenseConv::Depthwise(k) => k.scratch_len(),
            #[cfg(target_arch = "x86_64")]
            DenseConv::DepthwiseCv(k) => k.scratch_len(),
            #[cfg(target_arch = "x86_64")]
            DenseConv::Direct(k) => k.scratch_len(),
            #[cfg(target_arch = "x86_64")]
            DenseConv::Wide(k) => k.scratch_len(),
            DenseConv::Phase(k) => k.scratch_len(),
        }
    }

    /// One image: `input` is `[c_in, h, w]`; `output` and the residuals are
    /// `[c_out, h_out, w_out]` (a second residual is added after the first).
    pub(crate) fn run(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        residual2: Option<&[f32]>,
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        match self {
            DenseConv::Gemm(k) => k.run(input, residual, residual2, output, scratch),
            DenseConv::Winograd(k) => k.run(input, [residual, residual2], output, scratch),
            DenseConv::Depthwise(k) => k.run(input, [residual, residual2], output, scratch),
            #[cfg(target_arch = "x86_64")]
            DenseConv::DepthwiseCv(k) => k.run(input, [residual, residual2], output, scratch),
            #[cfg(target_arch = "x86_64")]
            DenseConv::Direct(k) => k.run(input, [residual, residual2], output, scratch),
            #[cfg(target_arch = "x86_64")]
            DenseConv::Wide(k) => k.run(input, [residual, residual2], output, scratch),
            DenseConv::Phase(k) => k.run(input, [residual, residual2], output, scratch),
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::spec::Activation;
    use crate::testutil::{conv_geom, interleaved_ms, pattern};

    /// The 1x1 layers `direct_suits` gives the direct kernel on AVX-512 hosts: mobile layers on
    /// 14x14 and 7x7 planes at stride 1, not on larger planes, at stride 2 with few inputs, or on
    /// a squeeze-and-excitation conv's single pixel.
    #[test]
    fn mobile_pointwise_layers_take_the_direct_kernel() {
        if !has_avx512f() || !crate::kernels::par::has_avx2_fma() {
            return;
        }
        let kind = |(ci, co): (usize, usize), hw: usize, s: usize| {
            let g = conv_geom((ci, co, 1), (hw, hw), (1, s, 1), [0; 4]);
            let w = pattern(co * ci, 53, 97, 0.01);
            DenseConv::new(g, w, Epilogue::default(), 1, true).kind()
        };
        assert_eq!(kind((160, 960), 7, 1), "direct");
        assert_eq!(kind((64, 384), 14, 1), "direct");
        assert_eq!(kind((192, 64), 14, 1), "direct");
        assert_eq!(kind((16, 96), 112, 1), "gemm");
        assert_eq!(kind((96, 24), 56, 1), "gemm");
        assert_eq!(kind((128, 256), 28, 2), "gemm");
        assert_eq!(kind((120, 480), 1, 1), "gemm");
        assert_eq!(kind((512, 128), 7, 1), "direct");
    }

    /// The 1x1 kernels on the mobile architectures' pointwise shapes, interleaved in one
    /// process: `cargo test --release -p ssc-jit bench_mobile_pointwise -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn bench_mobile_pointwise() {
        if !has_avx512f() {
            return;
        }
        let shapes = [
            (32, 16, 112),
            (16, 96, 112),
            (96, 24, 56),
            (24, 144, 56),
            (144, 24, 56),
            (144, 32, 28),
            (32, 192, 28),
            (192, 32, 28),
            (192, 64, 14),
            (64, 384, 14),
            (384, 64, 14),
            (384, 96, 14),
            (96, 576, 14),
            (576, 96, 14),
            (576, 160, 7),
            (160, 960, 7),
            (960, 160, 7),
            (960, 320, 7),
            (320, 1280, 7),
            (40, 240, 28),
            (240, 40, 28),
            (80, 480, 14),
            (112, 672, 14),
            (672, 112, 14),
            (192, 1152, 7),
        ];
        for (ci, co, hw) in shapes {
            let g = conv_geom((ci, co, 1), (hw, hw), (1, 1, 1), [0; 4]);
            let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
            let w = pattern(g.c_out * g.c_in, 53, 97, 0.01);
            let epi = Epilogue {
                bias: Some(vec![0.1; g.c_out]),
                residual: false,
                act: Activation::Clip(0.0, 6.0),
            };
            let gc = GemmConv::new(g, w.clone(), epi.clone(), 1);
            let wc = WideConv::new(g, &w, epi.clone(), 1);
            let dc = DirectConv::new(g, &w, epi.clone(), 1);
            let n = gc.scratch_len().max(wc.scratch_len()).max(dc.scratch_len());
            let mut scratch = vec![0.0; n];
            let mut y = vec![0.0; g.c_out * g.h_out * g.w_out];
            let [a, b, c] = interleaved_ms(25, |i| match i {
                0 => gc.run(&x, None, None, &mut y, &mut scratch),
                1 => wc.run(&x, [None, None], &mut y, &mut scratch),
                _ => dc.run(&x, [None, None], &mut y, &mut scratch),
            });
            let gf = |ms: f64| 2.0 * g.macs() as f64 / ms / 1e6;
            eprintln!(
                "{ci:>4}->{co:<4} {hw:>3}x{hw:<3}: gemm {a:.3} ms ({:.0} GF/s)  wide {b:.3} ({:.0})  direct {c:.3} ({:.0})",
                gf(a), gf(b), gf(c)
            );
        }
    }
}
