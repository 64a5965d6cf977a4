//! The choice among the dense convolution kernels, made once per layer at compile time: the
//! direct depthwise kernel, Winograd F(4x4, 3x3) or F(2x2, 3x3), or im2col + GEMM for everything
//! else.

use crate::kernels::depthwise::Depthwise;
use crate::kernels::gemm_conv::GemmConv;
use crate::kernels::winograd::{Tile, Winograd};
use crate::spec::{ConvGeom, Epilogue};

/// A dense convolution in the form that computes it fastest here (see `Depthwise::suits` and
/// `Winograd::choose`).
pub(crate) enum DenseConv {
    Gemm(GemmConv),
    Winograd(Winograd),
    Depthwise(Depthwise),
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
        if Depthwise::suits(&geom) {
            DenseConv::Depthwise(Depthwise::new(geom, weights, epi))
        } else if let Some(tile) = Winograd::choose(&geom).filter(|_| winograd) {
            DenseConv::Winograd(Winograd::new(geom, &weights, epi, tile, threads))
        } else {
            DenseConv::Gemm(GemmConv::new(geom, weights, epi, threads))
        }
    }

    /// The kernel's name in step reports.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            DenseConv::Gemm(_) => "gemm",
            DenseConv::Winograd(k) => match k.tile() {
                Tile::F2 => "winograd F(2x2)",
                Tile::F4 => "winograd F(4x4)",
            },
            DenseConv::Depthwise(_) => "depthwise",
        }
    }

    /// f32 elements of scratch one image needs.
    pub(crate) fn scratch_len(&self) -> usize {
        match self {
            DenseConv::Gemm(k) => k.scratch_len(),
            DenseConv::Winograd(k) => k.scratch_len(),
            DenseConv::Depthwise(k) => k.scratch_len(),
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
        }
    }
}
