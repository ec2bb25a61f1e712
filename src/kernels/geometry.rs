//! Sizes and operands of one dense convolution, as every kernel here reads them.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;

/// Sizes of one convolution; padding is `[top, left]` (bottom and right follow from the output).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Geometry {
    pub batch: usize,
    pub channels_in: usize,
    pub height: usize,
    pub width: usize,
    pub channels_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub out_h: usize,
    pub out_w: usize,
}

impl Geometry {
    /// The geometry of `conv` applied to an input of `input_dims`; `None` where these kernels
    /// do not apply (dilation, `Same` padding, a zero stride) or the shapes do not fit, which
    /// burn then reports.
    pub fn of(conv: &Conv2d, input_dims: [usize; 4]) -> Option<Self> {
        let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
            return None;
        };
        if conv.dilation != [1, 1] || conv.stride.contains(&0) {
            return None;
        }
        let [batch, channels_in, height, width] = input_dims;
        let [channels_out, weight_channels, kernel_h, kernel_w] = conv.weight.dims();
        if channels_in == 0
            || weight_channels * conv.groups != channels_in
            || height + top + bottom < kernel_h
            || width + left + right < kernel_w
        {
            return None;
        }
        Some(Self {
            batch,
            channels_in,
            height,
            width,
            channels_out,
            kernel: [kernel_h, kernel_w],
            stride: conv.stride,
            padding: [top, left],
            out_h: (height + top + bottom - kernel_h) / conv.stride[0] + 1,
            out_w: (width + left + right - kernel_w) / conv.stride[1] + 1,
        })
    }

    pub fn output_shape(&self) -> [usize; 4] {
        [self.batch, self.channels_out, self.out_h, self.out_w]
    }

    pub fn input_len(&self) -> usize {
        self.channels_in * self.height * self.width
    }

    /// Rows of the patch matrix: one per (input channel, kernel row, kernel column).
    pub fn patch_len(&self) -> usize {
        self.channels_in * self.kernel[0] * self.kernel[1]
    }

    pub fn out_pixels(&self) -> usize {
        self.out_h * self.out_w
    }

    /// A 1x1, stride-1, unpadded convolution reads its input as the patch matrix as it is.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

/// Borrowed inputs of one call, in NCHW (weights `[C_out, C_in, kh, kw]`).
pub(super) struct Operands<'a> {
    pub input: &'a [f32],
    pub weight: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub residual: Option<&'a [f32]>,
    pub apply_relu: bool,
}

impl Operands<'_> {
    /// Image `image` of the input, `[C_in, H, W]`.
    pub fn image(&self, geometry: &Geometry, image: usize) -> &[f32] {
        let len = geometry.input_len();
        &self.input[image * len..][..len]
    }
}
