//! Kernels for burn's flex backend (and, in `gpu_training`, differentiable forms for burn's GPU
//! backends where their backward is missing or slow). CPU kernels: the convolution BiSeNet
//! spends its time in, forward (inference, fused with bias, residual and ReLU; 3x3 stride-1
//! layers as Winograd's F(2x2, 3x3)) and backward (training); depthwise convolutions; BatchNorm in training mode fused with the residual and
//! ReLU after it; the heads' resize and cross-entropy; max and average pooling (inference). They are reached through burn's
//! backend-extension route (`Tensor::try_into_primitive` / `from_primitive`). These are not
//! paper blocks: the model calls [`conv2d`] and [`batch_norm_train`], which pick the fastest
//! path that applies and otherwise run burn's own (WebGPU, other dtypes, unusual geometries).

#[cfg(not(target_arch = "wasm32"))]
mod autodiff;
#[cfg(not(target_arch = "wasm32"))]
mod batch_norm;
mod conv;
#[cfg(not(target_arch = "wasm32"))]
mod conv_backward;
#[cfg(not(target_arch = "wasm32"))]
mod cross_entropy;
mod depthwise;
mod direct_conv;
#[cfg(not(target_arch = "wasm32"))]
mod gpu_training;
mod phase_row;
mod pool;
#[cfg(not(target_arch = "wasm32"))]
mod resize;
mod weight_cache;
mod winograd;

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// `conv(x) (+ residual)`, then ReLU if `apply_relu`: `[N, C_in, H, W]` -> `[N, C_out, H', W']`.
///
/// On flex this is the crate's own convolution: for inference with bias, residual and ReLU
/// fused into each tile (depthwise ones: bias and ReLU, in direct loops); for training (an
/// autodiff device) with its own backward pass.
pub(crate) fn conv2d(
    conv: &Conv2d,
    x: Tensor<4>,
    residual: Option<Tensor<4>>,
    apply_relu: bool,
) -> Tensor<4> {
    if let Some(fused) = conv::try_conv2d(conv, &x, residual.as_ref(), apply_relu) {
        return fused;
    }
    if residual.is_none()
        && let Some(y) = depthwise::try_depthwise_conv2d(conv, &x, apply_relu)
    {
        return y;
    }
    #[cfg(not(target_arch = "wasm32"))]
    let y = autodiff::try_conv2d(conv, &x)
        .or_else(|| gpu_training::try_depthwise_by_taps(conv, &x))
        .unwrap_or_else(|| conv.forward(x));
    #[cfg(target_arch = "wasm32")]
    let y = conv.forward(x);
    let y = match residual {
        Some(residual) => y + residual,
        None => y,
    };
    if apply_relu { relu(y) } else { y }
}

/// `pool(x)`: on flex outside training the crate's row-wise kernel, elsewhere burn's.
pub(crate) fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    pool::try_max_pool2d(pool, &x).unwrap_or_else(|| pool.forward(x))
}

/// `pool(x)`: on flex outside training the crate's row-wise kernel, elsewhere burn's.
pub(crate) fn avg_pool2d(pool: &AvgPool2d, x: Tensor<4>) -> Tensor<4> {
    pool::try_avg_pool2d(pool, &x).unwrap_or_else(|| pool.forward(x))
}

/// `f()` run on one of the CPU kernels' worker threads (rayon's pool) on native builds.
///
/// A parallel loop started from a thread outside the pool hands its work to the pool and
/// sleeps until it is done: a wake-up and a hand-off per layer, which at small sizes cost more
/// than the layers (Xception39 at 64x64: 3.7 ms a frame from the main thread, 2.4 ms from a
/// worker). From a worker, a layer starts at once and the other workers steal what they can.
pub(crate) fn on_cpu_workers<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "native")]
    return rayon::scope(|_| f());
    #[cfg(not(feature = "native"))]
    f()
}

/// `relu(bn(z) + residual)` (ReLU if `apply_relu`) with batch statistics when training on flex,
/// fused forward and backward, updating the running statistics as `BatchNorm::forward` does;
/// `None` elsewhere (inference, other backends).
pub(crate) fn batch_norm_train(
    bn: &burn::nn::BatchNorm,
    z: &Tensor<4>,
    residual: Option<&Tensor<4>>,
    apply_relu: bool,
) -> Option<Tensor<4>> {
    #[cfg(not(target_arch = "wasm32"))]
    return batch_norm::try_batch_norm_train(bn, z, residual, apply_relu);
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (bn, z, residual, apply_relu);
        None
    }
}

/// `-log softmax(logits)[label]` per pixel (`[N, C, H, W]`, `[N, H, W]` -> `[N, H, W]`, 0 where
/// the label is not a class), fused forward and backward, for training on flex; `None`
/// elsewhere.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn pixel_nll(logits: &Tensor<4>, labels: &Tensor<3, Int>) -> Option<Tensor<3>> {
    cross_entropy::try_pixel_nll(logits, labels)
}

/// Bilinear resize with `align_corners = false` to `size` (`[h, w]`) with the crate's kernel on
/// flex (forward, and backward when training), or in a differentiable matrix form when training
/// on a GPU backend; `None` elsewhere.
pub(crate) fn resize_bilinear(x: &Tensor<4>, size: [usize; 2]) -> Option<Tensor<4>> {
    #[cfg(not(target_arch = "wasm32"))]
    return resize::try_resize_bilinear(x, size)
        .or_else(|| gpu_training::try_resize_bilinear_by_matmul(x, size));
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (x, size);
        None
    }
}
