//! Plain descriptions of the kernels the plan asks for, shared by the planner and the kernel
//! generators so neither depends on the other's internals.

/// The activation applied at the end of a fused epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Activation {
    #[default]
    None,
    Relu,
    /// `min(max(x, lo), hi)` (ONNX Clip with constant bounds; Relu6 is `Clip(0, 6)`).
    Clip(f32, f32),
    /// `x if x >= 0 else alpha * x`.
    LeakyRelu(f32),
    /// `x * min(max(x / 6 + 1/2, 0), 1)` (ONNX HardSwish; MobileNetV3).
    HardSwish,
    /// `x * sigmoid(x)` (an ONNX `Mul(x, Sigmoid(x))`; EfficientNet's SiLU).
    Silu,
}

impl Activation {
    /// Applies the activation to one value (the scalar definition every kernel must match).
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Clip(lo, hi) => x.max(lo).min(hi),
            Activation::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
            Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Activation::Silu => x * ssc_exec::mlas::logistic(x),
        }
    }
}

/// What happens to a convolution's accumulator before it is stored:
/// `y = act(acc + bias[c] + residual[c, y, x])`, in that order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Epilogue {
    /// One value per output channel.
    pub bias: Option<Vec<f32>>,
    /// Whether a residual tensor of the output's shape is added (before the activation).
    pub residual: bool,
    pub act: Activation,
}

/// The geometry of one 2-D convolution on one image (NCHW, batch handled by the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeom {
    pub c_in: usize,
    pub c_out: usize,
    pub group: usize,
    /// Input height and width.
    pub h: usize,
    pub w: usize,
    /// Kernel height and width.
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Top, left, bottom, right.
    pub pads: [usize; 4],
    /// Output height and width.
    pub h_out: usize,
    pub w_out: usize,
}

impl ConvGeom {
    /// Input channels per group.
    pub fn cin_g(&self) -> usize {
        self.c_in / self.group
    }
    /// Output channels per group.
    pub fn cout_g(&self) -> usize {
        self.c_out / self.group
    }
    /// Dense multiply-accumulates for one image.
    pub fn macs(&self) -> usize {
        self.c_out * self.h_out * self.w_out * self.cin_g() * self.kh * self.kw
    }
}
