//! Training paths for burn's GPU backends (CubeCL: wgpu, CUDA), written as tensor ops whose
//! gradients are fast there: burn's own depthwise weight gradient is a grouped convolution with
//! the whole output gradient as its kernel (one long serial sum per weight), and burn's CubeCL
//! backends have no bilinear-interpolate backward at all (`docs/kernels.md`).

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::Slice;
use burn::tensor::ops::PadMode;

/// Whether `x` is being trained on a device other than flex (which has its own kernels).
fn on_gpu_autodiff(x: &Tensor<4>) -> bool {
    let device = x.device();
    device.is_autodiff() && device.without_autodiff() != Device::flex()
}

/// A depthwise convolution (`groups == C_in`, any channel multiplier `m`) as a sum over its
/// kernel taps of strided views of the padded input times per-channel weights:
/// `[N, C, H, W]` -> `[N, C * m, H', W']`. Every op is elementwise or a slice, so the weight
/// gradient becomes a parallel reduction. `None` where it does not apply.
pub fn try_depthwise_by_taps(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    if on_gpu_autodiff(x) {
        depthwise_by_taps(conv, x)
    } else {
        None
    }
}

fn depthwise_by_taps(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let [n, channels, height, width] = x.dims();
    let [channels_out, per_group, kernel_h, kernel_w] = conv.weight.dims();
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return None;
    };
    if conv.groups != channels || per_group != 1 || conv.dilation != [1, 1] {
        return None;
    }
    let multiplier = channels_out / channels;
    let [stride_h, stride_w] = conv.stride;
    let out_h = (height + top + bottom - kernel_h) / stride_h + 1;
    let out_w = (width + left + right - kernel_w) / stride_w + 1;
    let padded = x
        .clone()
        .pad([(top, bottom), (left, right)], PadMode::Constant(0.0))
        .unsqueeze_dim::<5>(2); // [N, C, 1, H + pad, W + pad]
    // [C * m, 1, kh, kw] -> [1, C, m, kh * kw]
    let weight = conv
        .weight
        .val()
        .reshape([1, channels, multiplier, kernel_h * kernel_w]);
    let mut sum: Option<Tensor<5>> = None;
    for ky in 0..kernel_h {
        for kx in 0..kernel_w {
            let view = padded.clone().slice([
                Slice::full(),
                Slice::full(),
                Slice::full(),
                Slice::new(
                    ky as isize,
                    Some((ky + (out_h - 1) * stride_h + 1) as isize),
                    stride_h as isize,
                ),
                Slice::new(
                    kx as isize,
                    Some((kx + (out_w - 1) * stride_w + 1) as isize),
                    stride_w as isize,
                ),
            ]); // [N, C, 1, H', W']
            let tap = ky * kernel_w + kx;
            let w: Tensor<5> = weight
                .clone()
                .slice([0..1, 0..channels, 0..multiplier, tap..tap + 1])
                .unsqueeze_dim(4); // [1, C, m, 1, 1]
            let term = view * w;
            sum = Some(match sum {
                Some(sum) => sum + term,
                None => term,
            });
        }
    }
    let y = sum?.reshape([n, channels_out, out_h, out_w]);
    Some(match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, channels_out, 1, 1]),
        None => y,
    })
}

/// Bilinear resize (`align_corners = false`) as two matrix products, `Ry . x . Rw^T`, when
/// training on a GPU backend: `[N, C, H, W]` -> `[N, C, h, w]`. Each row of `Ry` (`Rw`) holds
/// the two interpolation weights of one output row (column). `None` elsewhere.
pub fn try_resize_bilinear_by_matmul(
    x: &Tensor<4>,
    [out_h, out_w]: [usize; 2],
) -> Option<Tensor<4>> {
    if !on_gpu_autodiff(x) {
        return None;
    }
    Some(resize_bilinear_by_matmul(x.clone(), [out_h, out_w]))
}

fn resize_bilinear_by_matmul(x: Tensor<4>, [out_h, out_w]: [usize; 2]) -> Tensor<4> {
    let [_, _, in_h, in_w] = x.dims();
    let device = x.device();
    let rows: Tensor<4> = interpolation_matrix(out_h, in_h, &device).unsqueeze(); // [1, 1, h, H]
    let cols: Tensor<4> = interpolation_matrix(out_w, in_w, &device)
        .transpose()
        .unsqueeze(); // [1, 1, W, w]
    rows.matmul(x.matmul(cols))
}

/// `[out, in]` weights of 1-D linear interpolation with PyTorch's `align_corners = false`
/// sampling: output `i` reads input position `(i + 0.5) * in / out - 0.5`, clamped at 0.
fn interpolation_matrix(out: usize, input: usize, device: &Device) -> Tensor<2> {
    let scale = input as f32 / out as f32;
    let mut weights = vec![0.0f32; out * input];
    for i in 0..out {
        let source = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
        let lower = (source as usize).min(input - 1);
        let upper = (lower + 1).min(input - 1);
        let t = source - lower as f32;
        weights[i * input + lower] += 1.0 - t;
        weights[i * input + upper] += t;
    }
    Tensor::from_data(TensorData::new(weights, [out, input]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

    fn max_difference(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// The matrix form equals burn's own bilinear interpolation, up- and downsampling.
    #[test]
    fn matmul_resize_matches_interpolate() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 7, 10], Distribution::Default, &device);
        for size in [[56, 80], [5, 4], [7, 23]] {
            let options = InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(false)
                .with_output_size(size);
            let expected = interpolate(x.clone(), options);
            let got = resize_bilinear_by_matmul(x.clone(), size);
            let diff = max_difference(got, expected);
            assert!(diff < 1e-5, "{size:?}: max difference {diff}");
        }
    }

    /// The tap form equals burn's convolution, with and without a channel multiplier, stride 1
    /// and 2, odd sizes. (Run here on flex's autodiff device by calling the inner form.)
    #[test]
    fn depthwise_by_taps_matches_conv2d() {
        let device = Device::flex();
        for (multiplier, stride, size) in [
            (1, 1, [9, 11]),
            (1, 2, [9, 11]),
            (6, 2, [8, 7]),
            (6, 1, [5, 6]),
        ] {
            let channels = 4;
            let conv = Conv2dConfig::new([channels, channels * multiplier], [3, 3])
                .with_groups(channels)
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(true)
                .init(&device);
            let x = Tensor::<4>::random(
                [2, channels, size[0], size[1]],
                Distribution::Default,
                &device,
            );
            let expected = conv.forward(x.clone());
            let got = depthwise_by_taps(&conv, &x).expect("applies");
            let diff = max_difference(got, expected);
            assert!(
                diff < 1e-5,
                "multiplier {multiplier}, stride {stride}: max difference {diff}"
            );
        }
    }
}
