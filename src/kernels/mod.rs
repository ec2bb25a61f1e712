//! The crate's own kernels for the operations BiSeNet spends its time in, where burn's were the
//! measured bottleneck: for burn's flex CPU backend (native, and the page's wasm build), and a
//! few differentiable forms for training on burn's GPU backends. `docs/kernels.md` has the
//! design of each and the measurements behind it.
//!
//! The model calls the functions below, never a kernel: each takes the fastest path that
//! applies and otherwise runs burn's own op (WebGPU, other dtypes, unusual geometries). Kernels
//! reach flex's storage through burn's backend-extension route (`Tensor::try_into_primitive` /
//! `from_primitive`).
//!
//! - dense convolutions: `conv` picks the path and prepares the weights for it; `tiles` runs
//!   any path tile by tile on all cores; the paths are `im2col` (+ `gemm`), `direct_conv` and
//!   `winograd`, the last two on `microkernel`'s register blocks; `weight_cache` keeps
//!   prepared weights between frames; `conv_backward` and `autodiff` are training's gradients
//!   and their place in burn's autodiff graph;
//! - depthwise convolutions, forward and backward (`depthwise`);
//! - BatchNorm in training mode fused with the residual and ReLU after it (`batch_norm`);
//! - max and average pooling at inference (`pool`);
//! - for training, the heads' bilinear resize (`resize`) and per-pixel cross-entropy
//!   (`cross_entropy`);
//! - for training on GPU backends, depthwise convolution and resize as tensor ops whose
//!   gradients are fast there (`gpu_training`).
//!
//! `geometry`, `flex` and `phase_row` are the helpers they share.

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
mod flex;
mod geometry;
#[cfg(not(target_arch = "wasm32"))]
mod gpu_training;
mod im2col;
mod microkernel;
mod phase_row;
mod pool;
#[cfg(not(target_arch = "wasm32"))]
mod resize;
mod tiles;
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
/// than the layers (`docs/kernels.md`). From a worker, a layer starts at once and the other
/// workers steal what they can.
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
