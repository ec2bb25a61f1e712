//! Resizing helpers. Every resize targets an explicit size rather than a scale factor, which is
//! what lets the network take any input size: with odd sizes, `ceil(H/32) * 2 != ceil(H/16)`,
//! and the PyTorch reference's `Upsample(scale_factor=2)` then fails to add the two maps.

use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

/// Nearest-neighbour resize to `[h, w]` (PyTorch's `nn.Upsample()` default mode).
pub fn resize_nearest(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    resize(x, size, InterpolateMode::Nearest)
}

/// Bilinear resize to `[h, w]` with `align_corners = false`, as BiSeNet's heads use
/// (burn's own default is `align_corners = true`).
pub fn resize_bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    if spatial_size(&x) != size
        && let Some(resized) = crate::kernels::resize_bilinear(&x, size)
    {
        return resized;
    }
    resize(x, size, InterpolateMode::Bilinear)
}

fn resize(x: Tensor<4>, size: [usize; 2], mode: InterpolateMode) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if [h, w] == size {
        return x;
    }
    let options = InterpolateOptions::new(mode)
        .with_align_corners(false)
        .with_output_size(size);
    interpolate(x, options)
}

/// Spatial size `[h, w]` of an `[N, C, H, W]` tensor.
pub fn spatial_size(x: &Tensor<4>) -> [usize; 2] {
    let [_, _, h, w] = x.dims();
    [h, w]
}
