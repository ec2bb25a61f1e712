//! The depthwise convolution (`groups = C_in`, `C_out = m * C_in` for a channel multiplier `m`)
//! on the CPU, forward and backward, computed directly on the NCHW planes.
//!
//! A depthwise 3x3 filter has 9 weights per channel, so each pass is a handful of row-wise
//! multiply-adds per output row: the forward adds each input row under a tap, scaled, into the
//! output row; the input gradient scatters each output-gradient row back along the rows it was
//! read from; each weight's gradient is a dot product of an output-gradient row with the input
//! row under it. burn-flex 0.22 has a direct forward only for `m = 1` and no depthwise
//! backward: its generic paths slice the tensors per group and run a full convolution for each
//! (slow for BiSeNet V2's 6x expansions: `docs/kernels.md`), and even its direct forward
//! allocates and dispatches more than Xception39's small 1/16 and 1/32 maps are worth.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::TensorData;

use super::conv::flex_operands;
#[cfg(not(target_arch = "wasm32"))]
use super::conv_backward::for_each_tap_row;
use super::flex::contiguous;
use super::geometry::Geometry;
use super::phase_row::{load_phase_pair, load_phase_row};

/// `[N, C, H, W]` -> `[N, C * m, H', W']`: a depthwise convolution plus bias, then ReLU if
/// `apply_relu`, for inference on flex; `None` where it does not apply (not depthwise, not a
/// plain f32 flex tensor, dilation, `Same` padding), and the caller runs burn's.
pub(crate) fn try_depthwise_conv2d(
    conv: &Conv2d,
    x: &Tensor<4>,
    apply_relu: bool,
) -> Option<Tensor<4>> {
    let [_, channels_in, _, _] = x.dims();
    if conv.groups != channels_in || conv.weight.dims()[1] != 1 {
        return None;
    }
    let geometry = Geometry::of(conv, x.dims())?;
    let (input, weight, bias) = flex_operands(conv, x)?;
    let output = depthwise_forward(
        &geometry,
        contiguous(&input),
        contiguous(&weight),
        bias.as_ref().map(contiguous),
        apply_relu,
    );
    Some(Tensor::from_primitive::<Flex>(output))
}

/// The depthwise convolution of `x` (`[N, C, H, W]`) with `weight` (`[C * m, 1, kh, kw]`) plus
/// `bias` (`[C * m]`), then ReLU if `apply_relu`, as a new flex tensor `[N, C * m, H', W']`.
pub(super) fn depthwise_forward(
    geometry: &Geometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    apply_relu: bool,
) -> FlexTensor {
    let plane = geometry.height * geometry.width;
    let channels = geometry.channels_in;
    let multiplier = geometry.channels_out / channels;
    let taps = geometry.kernel[0] * geometry.kernel[1];
    let out_plane = geometry.out_pixels();

    // One input plane per task, padded once, then its `m` output planes (adjacent in NCHW).
    let task = |padded: &mut PaddedPlane, index: usize, y_planes: &mut [f32]| {
        let (image, channel) = (index / channels, index % channels);
        padded.load(
            geometry,
            &x[(image * channels + channel) * plane..][..plane],
        );
        for (j, y_plane) in y_planes.chunks_mut(out_plane).enumerate() {
            let out_channel = channel * multiplier + j;
            let filter = Filter {
                weights: &weight[out_channel * taps..][..taps],
                bias: bias.map_or(0.0, |b| b[out_channel]),
                apply_relu,
            };
            padded.convolve(geometry, &filter, y_plane);
        }
    };

    let shape = geometry.output_shape();
    let mut y = vec![0.0f32; shape.iter().product()];
    let per_task = multiplier * out_plane;
    #[cfg(feature = "native")]
    {
        use rayon::prelude::*;
        // At least ~64 Ki multiply-adds per task: the 1/32 maps have planes of a few hundred
        // pixels, and a task per plane would cost more to hand out than to compute.
        let planes_per_task = (65536 / (per_task * taps).max(1)).max(1);
        y.par_chunks_mut(per_task)
            .with_min_len(planes_per_task)
            .enumerate()
            .for_each_init(PaddedPlane::default, |padded, (index, y_planes)| {
                task(padded, index, y_planes)
            });
    }
    #[cfg(not(feature = "native"))]
    {
        let mut padded = PaddedPlane::default();
        for (index, y_planes) in y.chunks_mut(per_task).enumerate() {
            task(&mut padded, index, y_planes);
        }
    }
    FlexTensor::from_data(TensorData::new(y, shape))
}

/// Output rows are computed `LANES` pixels wide at a time (one AVX2 register, two SSE or wasm
/// SIMD ones); the padded rows are long enough that no chunk needs a bounds check.
const LANES: usize = 8;

/// One output channel's filter (`[kh * kw]`), bias and activation.
struct Filter<'a> {
    weights: &'a [f32],
    bias: f32,
    apply_relu: bool,
}

/// An input plane with its zero padding written out and each row split into `stride` phases
/// (phase `p` holds padded columns `p, p + stride, ...`), so that for every tap an output row
/// reads one run of adjacent values: no bounds checks, no gathers. Rows are long enough for a
/// whole number of `LANES`; the extra outputs are computed and dropped.
#[derive(Default)]
struct PaddedPlane {
    values: Vec<f32>,
    /// Floats per phase row.
    phase_len: usize,
    /// One output row being summed, `LANES`-aligned in length.
    sums: Vec<f32>,
}

impl PaddedPlane {
    fn load(&mut self, geometry: &Geometry, x_plane: &[f32]) {
        let Geometry {
            height,
            width,
            kernel: [kernel_h, kernel_w],
            stride: [stride_h, stride_w],
            padding: [top, left],
            out_h,
            out_w,
            ..
        } = *geometry;
        let rows = (out_h - 1) * stride_h + kernel_h;
        self.phase_len = out_w.div_ceil(LANES) * LANES + (kernel_w - 1) / stride_w;
        let row_len = stride_w * self.phase_len;
        self.values.clear();
        self.values.resize(rows * row_len, 0.0);
        for iy in 0..height.min(rows.saturating_sub(top)) {
            let padded_row = &mut self.values[(iy + top) * row_len..][..row_len];
            let input_row = &x_plane[iy * width..][..width];
            if stride_w == 2 {
                let (even, odd) = padded_row.split_at_mut(self.phase_len);
                load_phase_pair(input_row, left, even, odd);
                continue;
            }
            for (phase, phase_row) in padded_row.chunks_exact_mut(self.phase_len).enumerate() {
                load_phase_row(input_row, phase, stride_w, left, phase_row);
            }
        }
    }

    /// One output plane of `filter`, with the widest vector instructions this CPU has (the
    /// default x86-64 target has only SSE2, and a multiply-add without FMA rounds twice).
    fn convolve(&mut self, geometry: &Geometry, filter: &Filter, y_plane: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the features the function is compiled for were detected above.
            return unsafe { self.convolve_avx2(geometry, filter, y_plane) };
        }
        self.convolve_with::<false>(geometry, filter, y_plane);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn convolve_avx2(&mut self, geometry: &Geometry, filter: &Filter, y_plane: &mut [f32]) {
        self.convolve_with::<true>(geometry, filter, y_plane);
    }

    /// Each output row: the bias, then every tap's run of inputs, scaled, added in (a long
    /// vectorised loop over a row that stays in L1), then ReLU.
    #[inline(always)]
    fn convolve_with<const FMA: bool>(
        &mut self,
        geometry: &Geometry,
        filter: &Filter,
        y_plane: &mut [f32],
    ) {
        let Geometry {
            kernel: [kernel_h, kernel_w],
            stride: [stride_h, stride_w],
            out_w,
            ..
        } = *geometry;
        let phase_len = self.phase_len;
        let row_len = stride_w * phase_len;
        let sums_len = out_w.div_ceil(LANES) * LANES;
        self.sums.resize(sums_len, 0.0);
        for (oy, y_row) in y_plane.chunks_exact_mut(out_w).enumerate() {
            if geometry.kernel == [3, 3] {
                // Every 3x3 layer of BiSeNet: all nine taps in one pass over the row.
                let inputs: [&[f32]; 9] = std::array::from_fn(|tap| {
                    let (ky, kx) = (tap / 3, tap % 3);
                    let row = (oy * stride_h + ky) * row_len;
                    let start = row + (kx % stride_w) * phase_len + kx / stride_w;
                    &self.values[start..start + sums_len]
                });
                let w: [f32; 9] = filter.weights.try_into().expect("nine weights");
                for (i, y) in y_row.iter_mut().enumerate() {
                    let mut sum = filter.bias;
                    for tap in 0..9 {
                        let x = inputs[tap][i];
                        sum = if FMA {
                            w[tap].mul_add(x, sum)
                        } else {
                            sum + w[tap] * x
                        };
                    }
                    *y = if filter.apply_relu { sum.max(0.0) } else { sum };
                }
                continue;
            }
            self.sums.fill(filter.bias);
            for ky in 0..kernel_h {
                let row = &self.values[(oy * stride_h + ky) * row_len..][..row_len];
                for kx in 0..kernel_w {
                    let w = filter.weights[ky * kernel_w + kx];
                    let start = (kx % stride_w) * phase_len + kx / stride_w;
                    let inputs = &row[start..start + sums_len];
                    for (sum, &x) in self.sums.iter_mut().zip(inputs) {
                        *sum = if FMA {
                            w.mul_add(x, *sum)
                        } else {
                            *sum + w * x
                        };
                    }
                }
            }
            if filter.apply_relu {
                self.sums.iter_mut().for_each(|s| *s = s.max(0.0));
            }
            y_row.copy_from_slice(&self.sums[..out_w]);
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// Gradients `(dx, dW)` of a depthwise convolution: `x: [N, C, H, W]`,
/// `weight: [C * m, 1, kh, kw]`, `dy: [N, C * m, H', W']`, all row-major. `dx` is `None` when
/// not wanted.
pub(super) fn depthwise_backward(
    geometry: &Geometry,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    want_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let plane = geometry.height * geometry.width;
    let out_plane = geometry.out_pixels();
    let channels = geometry.channels_in;
    let multiplier = geometry.channels_out / channels;
    let taps = geometry.kernel[0] * geometry.kernel[1];

    // dx: one input plane per task, gathering its `m` output channels.
    let input_gradient = |index: usize, dx_plane: &mut [f32]| {
        let (image, channel) = (index / channels, index % channels);
        for j in 0..multiplier {
            let out_channel = channel * multiplier + j;
            let dy_plane =
                &dy[(image * geometry.channels_out + out_channel) * out_plane..][..out_plane];
            scatter_plane(
                geometry,
                &weight[out_channel * taps..][..taps],
                dy_plane,
                dx_plane,
            );
        }
    };
    // dW: one output channel per task, summed over the batch.
    let weight_gradient = |out_channel: usize, dw: &mut [f32]| {
        let channel = out_channel / multiplier;
        for image in 0..geometry.batch {
            let x_plane = &x[(image * channels + channel) * plane..][..plane];
            let dy_plane =
                &dy[(image * geometry.channels_out + out_channel) * out_plane..][..out_plane];
            correlate_plane(geometry, x_plane, dy_plane, dw);
        }
    };

    let mut dx = want_dx.then(|| vec![0.0f32; geometry.batch * channels * plane]);
    let mut dw = vec![0.0f32; geometry.channels_out * taps];
    #[cfg(feature = "native")]
    {
        use rayon::prelude::*;
        if let Some(dx) = dx.as_mut() {
            dx.par_chunks_mut(plane)
                .enumerate()
                .for_each(|(index, dx_plane)| input_gradient(index, dx_plane));
        }
        dw.par_chunks_mut(taps)
            .enumerate()
            .for_each(|(out_channel, dw)| weight_gradient(out_channel, dw));
    }
    #[cfg(not(feature = "native"))]
    {
        if let Some(dx) = dx.as_mut() {
            for (index, dx_plane) in dx.chunks_mut(plane).enumerate() {
                input_gradient(index, dx_plane);
            }
        }
        for (out_channel, dw) in dw.chunks_mut(taps).enumerate() {
            weight_gradient(out_channel, dw);
        }
    }
    (dx, dw)
}

#[cfg(not(target_arch = "wasm32"))]
/// `dx_plane += sum over taps of w[tap] * dy_plane`, each output pixel added back to the input
/// pixel the tap read.
fn scatter_plane(geometry: &Geometry, weights: &[f32], dy_plane: &[f32], dx_plane: &mut [f32]) {
    let (width, out_w, stride) = (geometry.width, geometry.out_w, geometry.stride[1]);
    for_each_tap_row(
        geometry,
        0..geometry.out_h,
        |tap, oy, iy, inside, first_input| {
            let w = weights[tap];
            let source = &dy_plane[oy * out_w..][inside];
            let row = &mut dx_plane[iy * width..][..width];
            if stride == 1 {
                let target = &mut row[first_input..][..source.len()];
                target.iter_mut().zip(source).for_each(|(t, g)| *t += w * g);
            } else {
                let target = row[first_input..].iter_mut().step_by(stride);
                target.zip(source).for_each(|(t, g)| *t += w * g);
            }
        },
    );
}

#[cfg(not(target_arch = "wasm32"))]
/// `dw[tap] += sum over pixels of dy * x under the tap`.
fn correlate_plane(geometry: &Geometry, x_plane: &[f32], dy_plane: &[f32], dw: &mut [f32]) {
    let (width, out_w, stride) = (geometry.width, geometry.out_w, geometry.stride[1]);
    for_each_tap_row(
        geometry,
        0..geometry.out_h,
        |tap, oy, iy, inside, first_input| {
            let gradient = &dy_plane[oy * out_w..][inside];
            let row = &x_plane[iy * width..][..width];
            dw[tap] += if stride == 1 {
                dot(gradient, &row[first_input..][..gradient.len()])
            } else {
                let inputs = row[first_input..].iter().step_by(stride);
                gradient.iter().zip(inputs).map(|(g, x)| g * x).sum()
            };
        },
    );
}

#[cfg(not(target_arch = "wasm32"))]
/// A dot product in 8 independent lanes, so that it vectorises (a plain sum of products is a
/// serial chain of float additions the compiler may not reorder).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (chunks_a, chunks_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for lane in 0..8 {
            lanes[lane] += ca[lane] * cb[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;
    use burn::tensor::activation::relu;

    use super::*;

    /// A depthwise convolution of `channels` with a channel `multiplier`, and an input for it.
    fn build(
        [batch, channels, multiplier]: [usize; 3],
        size: [usize; 2],
        [kernel, stride]: [usize; 2],
        padding: [usize; 4],
        bias: bool,
    ) -> (Conv2d, Tensor<4>) {
        let device = Device::flex();
        let [top, left, bottom, right] = padding;
        let conv = Conv2dConfig::new([channels, channels * multiplier], [kernel, kernel])
            .with_groups(channels)
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
            .with_bias(bias)
            .init(&device);
        let x = Tensor::random(
            [batch, channels, size[0], size[1]],
            Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        (conv, x)
    }

    /// Xception39's (`m = 1`) and BiSeNet V2's (`m = 6`) 3x3 geometries: stride 1 and 2, odd
    /// sizes, a batch, lopsided and no padding, with and without bias and ReLU, planes small
    /// enough that a task takes several; and other kernel sizes (the general path).
    #[test]
    fn matches_burns_depthwise_convolution() {
        let cases = [
            ([1, 8, 1], [13, 17], [3, 1], [1; 4], true),
            ([1, 8, 1], [13, 17], [3, 2], [1; 4], true),
            ([2, 4, 6], [9, 10], [3, 1], [1; 4], true),
            ([2, 4, 6], [9, 10], [3, 2], [1; 4], false),
            ([1, 5, 2], [7, 12], [3, 1], [2, 0, 1, 3], true),
            ([1, 3, 1], [6, 5], [3, 1], [0; 4], false),
            ([1, 300, 1], [3, 4], [3, 2], [1; 4], true),
            ([1, 4, 2], [11, 9], [5, 2], [2, 1, 2, 3], true),
            ([2, 3, 1], [6, 7], [1, 1], [0; 4], true),
        ];
        for (channels, size, [kernel, stride], padding, bias) in cases {
            let (conv, x) = build(channels, size, [kernel, stride], padding, bias);
            for apply_relu in [false, true] {
                let ours = try_depthwise_conv2d(&conv, &x, apply_relu).expect("a depthwise case");
                let burns = conv.forward(x.clone());
                let burns = if apply_relu { relu(burns) } else { burns };
                assert_eq!(ours.dims(), burns.dims());
                let diff: f32 = (ours - burns).abs().max().into_scalar();
                assert!(
                    diff < 1e-5,
                    "{channels:?} {size:?} {kernel}x{kernel} stride {stride} padding {padding:?}: {diff}"
                );
            }
        }
    }

    #[test]
    fn leaves_grouped_convolutions_to_burn() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([8, 8], [3, 3])
            .with_groups(4)
            .init(&device);
        let x = Tensor::<4>::zeros([1, 8, 5, 5], &device);
        assert!(try_depthwise_conv2d(&conv, &x, false).is_none());
    }
}
