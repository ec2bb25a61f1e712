//! BatchNorm in training mode on the CPU, fused with what follows it in BiSeNet's blocks (a
//! residual add, ReLU), forward and backward, registered in burn's autodiff graph like the
//! convolution (`super::autodiff`).
//!
//! burn 0.22's `batch_norm_train` is composed of tensor operations: the input is copied to
//! `[C, N * H * W]` twice (for the mean and the variance), normalised in four elementwise
//! passes, and the residual and ReLU are more passes and graph nodes; the backward does the
//! same in reverse. flex runs those elementwise passes on one thread (the other cores idle
//! through them; `docs/kernels.md`). Here the forward is one pass for the statistics (per
//! channel, in parallel) and one that writes the output; the backward one pass for the two
//! per-channel sums and one that writes the gradients.
//!
//! With `M = N * H * W` values per channel, `x^ = (z - mean) / sqrt(var + eps)` (biased
//! variance, as burn and PyTorch normalise) and `y = relu(gamma * x^ + beta + r)`:
//! `g = dy * [y > 0]`, `dbeta = sum g`, `dgamma = sum g * x^`, `dr = g` and
//! `dz = gamma / sqrt(var + eps) * (g - dbeta / M - x^ * dgamma / M)`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};

use super::flex::{contiguous, made_contiguous};

/// `relu(bn(z) + residual)` (ReLU if `apply_relu`, the residual if given) with batch
/// statistics, updating `bn`'s running mean and variance as burn's `BatchNorm::forward` does in
/// training; `None` where this does not apply (not training, not f32 on
/// `Device::flex().autodiff()`), and the caller runs burn's.
pub(crate) fn try_batch_norm_train(
    bn: &BatchNorm,
    z: &Tensor<4>,
    residual: Option<&Tensor<4>>,
    apply_relu: bool,
) -> Option<Tensor<4>> {
    if !bn.training.is_enabled() {
        return None;
    }
    let tracked = |tensor: Tensor<4>| tensor.try_into_primitive::<Autodiff<Flex>>().ok();
    let tracked_1d = |tensor: Tensor<1>| tensor.try_into_primitive::<Autodiff<Flex>>().ok();
    let z_ad = tracked(z.clone())?;
    let gamma_ad = tracked_1d(bn.gamma.val())?;
    let beta_ad = tracked_1d(bn.beta.val())?;
    let residual_ad = match residual {
        Some(r) if r.dims() == z.dims() => Some(tracked(r.clone())?),
        Some(_) => return None,
        None => None,
    };
    let primitives = [&z_ad, &gamma_ad, &beta_ad].into_iter().chain(&residual_ad);
    if primitives
        .into_iter()
        .any(|t| t.primitive().dtype() != DType::F32)
    {
        return None;
    }

    let shape = z.dims();
    let z_flex = made_contiguous(z_ad.primitive().clone());
    let gamma_flex = made_contiguous(gamma_ad.primitive().clone());
    let beta_flex = made_contiguous(beta_ad.primitive().clone());
    let residual_flex = residual_ad
        .as_ref()
        .map(|r| made_contiguous(r.primitive().clone()));
    let layout = Layout::of(shape);
    let statistics = Statistics::of(&layout, contiguous(&z_flex), bn.epsilon);
    let y = normalize(
        &layout,
        &statistics,
        contiguous(&z_flex),
        contiguous(&gamma_flex),
        contiguous(&beta_flex),
        residual_flex.as_ref().map(contiguous),
        apply_relu,
    );
    let y = flex(y, shape);
    update_running_statistics(bn, &statistics, &z.device());

    let state = BatchNormState {
        z: z_flex,
        y: y.clone(),
        gamma: gamma_flex,
        statistics,
        layout,
        apply_relu,
    };
    let nodes = [z_ad.node(), gamma_ad.node(), beta_ad.node()];
    let output = match residual_ad {
        Some(residual_ad) => {
            let [z, gamma, beta] = nodes;
            match BatchNormBackward::<4>
                .prepare::<NoCheckpointing>([z, gamma, beta, residual_ad.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish(state, y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            }
        }
        None => match BatchNormBackward::<3>
            .prepare::<NoCheckpointing>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        },
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(output))
}

/// `running = (1 - momentum) * running + momentum * batch`, for the mean and the (biased)
/// variance, in the order and form of burn's `BatchNorm::forward_train`.
fn update_running_statistics(bn: &BatchNorm, statistics: &Statistics, device: &Device) {
    let channels = statistics.mean.len();
    let batch = |values: &[f32]| {
        Tensor::<1>::from_data(TensorData::new(values.to_vec(), [channels]), device)
    };
    for (running, value) in [
        (&bn.running_mean, batch(&statistics.mean)),
        (&bn.running_var, batch(&statistics.variance)),
    ] {
        let updated = running
            .value_sync()
            .to_device(device)
            .mul_scalar(1.0 - bn.momentum)
            .add(value.mul_scalar(bn.momentum));
        running.update(updated.detach());
        // Merged at once, as `model::conv_bn_relu::batch_norm_forward` does for burn's
        // BatchNorm: otherwise updates left by different threads are averaged later.
        running.value_sync();
    }
}

/// `[N, C, H, W]` as `C` channels of `N` planes of `H * W` values.
#[derive(Debug, Clone, Copy)]
struct Layout {
    shape: [usize; 4],
    images: usize,
    channels: usize,
    plane: usize,
}

impl Layout {
    fn of(shape: [usize; 4]) -> Self {
        let [images, channels, height, width] = shape;
        Self {
            shape,
            images,
            channels,
            plane: height * width,
        }
    }

    /// Values per channel, `M`.
    fn count(&self) -> usize {
        self.images * self.plane
    }

    /// The planes of `channel`, one per image.
    fn planes<'a>(&self, values: &'a [f32], channel: usize) -> impl Iterator<Item = &'a [f32]> {
        let (channels, plane) = (self.channels, self.plane);
        (0..self.images).map(move |image| &values[(image * channels + channel) * plane..][..plane])
    }
}

/// The batch statistics of each channel.
#[derive(Debug, Clone)]
struct Statistics {
    mean: Vec<f32>,
    variance: Vec<f32>,
    /// `1 / sqrt(variance + eps)`.
    inv_std: Vec<f32>,
}

impl Statistics {
    /// Mean, then the variance around it (two passes: exact where `E[z^2] - E[z]^2` cancels),
    /// summed in f64; channels in parallel.
    fn of(layout: &Layout, z: &[f32], epsilon: f64) -> Self {
        let count = layout.count() as f64;
        let channel_statistics = |channel: usize| {
            let sum: f64 = layout.planes(z, channel).map(sum_f64).sum();
            let mean = sum / count;
            let squares: f64 = layout
                .planes(z, channel)
                .map(|plane| centered_squares_f64(plane, mean))
                .sum();
            let variance = squares / count;
            (
                mean as f32,
                variance as f32,
                (1.0 / (variance + epsilon).sqrt()) as f32,
            )
        };
        let per_channel: Vec<(f32, f32, f32)> = map_channels(layout.channels, channel_statistics);
        let mut statistics = Self {
            mean: Vec::with_capacity(layout.channels),
            variance: Vec::with_capacity(layout.channels),
            inv_std: Vec::with_capacity(layout.channels),
        };
        for (mean, variance, inv_std) in per_channel {
            statistics.mean.push(mean);
            statistics.variance.push(variance);
            statistics.inv_std.push(inv_std);
        }
        statistics
    }
}

/// `relu(gamma * (z - mean) * inv_std + beta + residual)` over every plane, in parallel.
fn normalize(
    layout: &Layout,
    statistics: &Statistics,
    z: &[f32],
    gamma: &[f32],
    beta: &[f32],
    residual: Option<&[f32]>,
    apply_relu: bool,
) -> Vec<f32> {
    let mut y = vec![0.0f32; z.len()];
    for_each_plane(layout, &mut y, |index, y_plane| {
        let channel = index % layout.channels;
        let scale = gamma[channel] * statistics.inv_std[channel];
        let shift = beta[channel] - statistics.mean[channel] * scale;
        let z_plane = &z[index * layout.plane..][..layout.plane];
        match residual {
            Some(residual) => {
                let r_plane = &residual[index * layout.plane..][..layout.plane];
                for ((y, &z), &r) in y_plane.iter_mut().zip(z_plane).zip(r_plane) {
                    *y = z * scale + shift + r;
                }
            }
            None => {
                for (y, &z) in y_plane.iter_mut().zip(z_plane) {
                    *y = z * scale + shift;
                }
            }
        }
        if apply_relu {
            y_plane.iter_mut().for_each(|y| *y = y.max(0.0));
        }
    });
    y
}

/// What the backward pass needs.
#[derive(Debug, Clone)]
struct BatchNormState {
    /// The normalised input.
    z: FlexTensor,
    /// The output, whose sign is ReLU's mask.
    y: FlexTensor,
    gamma: FlexTensor,
    statistics: Statistics,
    layout: Layout,
    apply_relu: bool,
}

/// The backward step with `N` tracked inputs: `z`, `gamma`, `beta` and, when `N = 4`, the
/// residual.
#[derive(Debug)]
struct BatchNormBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for BatchNormBackward<N> {
    type State = BatchNormState;

    fn backward(self, ops: Ops<BatchNormState, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = made_contiguous(grads.consume::<Flex>(&ops.node));
        let BatchNormState {
            z,
            y,
            gamma,
            statistics,
            layout,
            apply_relu,
        } = ops.state;
        let (z, y, gamma) = (contiguous(&z), contiguous(&y), contiguous(&gamma));
        // g = dy, masked where ReLU cut the output.
        let g: Vec<f32> = if apply_relu {
            contiguous(&dy)
                .iter()
                .zip(y)
                .map(|(&dy, &y)| if y > 0.0 { dy } else { 0.0 })
                .collect()
        } else {
            contiguous(&dy).to_vec()
        };

        // Per channel: dbeta = sum g, dgamma = sum g * x^.
        let sums = map_channels(layout.channels, |channel| {
            let (mean, inv_std) = (statistics.mean[channel], statistics.inv_std[channel]);
            layout
                .planes(&g, channel)
                .zip(layout.planes(z, channel))
                .fold((0.0f64, 0.0f64), |(sum_g, sum_gx), (g, z)| {
                    let (plane_g, plane_gx) = g_sums(g, z, mean, inv_std);
                    (sum_g + plane_g, sum_gx + plane_gx)
                })
        });
        let d_beta: Vec<f32> = sums.iter().map(|&(sum_g, _)| sum_g as f32).collect();
        let d_gamma: Vec<f32> = sums.iter().map(|&(_, sum_gx)| sum_gx as f32).collect();

        let [z_node, gamma_node, beta_node] = [0, 1, 2].map(|i| ops.parents[i].as_ref());
        if let Some(node) = z_node {
            let count = layout.count() as f32;
            let mut dz = vec![0.0f32; z.len()];
            for_each_plane(&layout, &mut dz, |index, dz_plane| {
                let channel = index % layout.channels;
                let (mean, inv_std) = (statistics.mean[channel], statistics.inv_std[channel]);
                let scale = gamma[channel] * inv_std;
                let mean_g = d_beta[channel] / count;
                let mean_gx = d_gamma[channel] / count;
                let g_plane = &g[index * layout.plane..][..layout.plane];
                let z_plane = &z[index * layout.plane..][..layout.plane];
                for ((dz, &g), &z) in dz_plane.iter_mut().zip(g_plane).zip(z_plane) {
                    let x_hat = (z - mean) * inv_std;
                    *dz = scale * (g - mean_g - x_hat * mean_gx);
                }
            });
            grads.register::<Flex>(node.id, flex(dz, layout.shape));
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, flex(d_gamma, [layout.channels]));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, flex(d_beta, [layout.channels]));
        }
        if let Some(Some(node)) = ops.parents.get(3) {
            grads.register::<Flex>(node.id, flex(g, layout.shape));
        }
    }
}

/// `(sum g, sum g * x^)` over one plane, in f64.
fn g_sums(g: &[f32], z: &[f32], mean: f32, inv_std: f32) -> (f64, f64) {
    let mut lanes_g = [0.0f32; 8];
    let mut lanes_gx = [0.0f32; 8];
    let (chunks_g, chunks_z) = (g.chunks_exact(8), z.chunks_exact(8));
    let (tail_g, tail_z) = (chunks_g.remainder(), chunks_z.remainder());
    for (cg, cz) in chunks_g.zip(chunks_z) {
        for lane in 0..8 {
            lanes_g[lane] += cg[lane];
            lanes_gx[lane] += cg[lane] * (cz[lane] - mean) * inv_std;
        }
    }
    let mut sum_g: f64 = lanes_g.iter().map(|&v| v as f64).sum();
    let mut sum_gx: f64 = lanes_gx.iter().map(|&v| v as f64).sum();
    for (&g, &z) in tail_g.iter().zip(tail_z) {
        sum_g += g as f64;
        sum_gx += (g * (z - mean) * inv_std) as f64;
    }
    (sum_g, sum_gx)
}

/// The sum of a plane: eight f32 lanes (so that it vectorises), added up in f64.
fn sum_f64(values: &[f32]) -> f64 {
    let mut lanes = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    for chunk in chunks {
        for lane in 0..8 {
            lanes[lane] += chunk[lane];
        }
    }
    lanes.iter().map(|&v| v as f64).sum::<f64>() + tail
}

/// `sum (z - mean)^2` over a plane, as [`sum_f64`].
fn centered_squares_f64(values: &[f32], mean: f64) -> f64 {
    let mean = mean as f32;
    let mut lanes = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| ((v - mean) as f64).powi(2))
        .sum();
    for chunk in chunks {
        for lane in 0..8 {
            let d = chunk[lane] - mean;
            lanes[lane] += d * d;
        }
    }
    lanes.iter().map(|&v| v as f64).sum::<f64>() + tail
}

/// `f(channel)` for every channel, in parallel.
fn map_channels<T: Send>(channels: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    use rayon::prelude::*;
    (0..channels).into_par_iter().map(f).collect()
}

/// `f(plane index, plane)` over the planes of `values` (`[N * C]` planes of the layout), in
/// parallel.
fn for_each_plane(layout: &Layout, values: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync) {
    use rayon::prelude::*;
    values
        .par_chunks_mut(layout.plane)
        .enumerate()
        .for_each(|(index, plane)| f(index, plane));
}

fn flex<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Distribution;
    use burn::tensor::activation::relu;

    use super::*;

    /// A BatchNorm of `channels` with these `gamma` and `beta`, fresh running statistics.
    fn batch_norm(gamma: &Tensor<1>, beta: &Tensor<1>, device: &Device) -> BatchNorm {
        let [channels] = gamma.dims();
        let mut bn = BatchNormConfig::new(channels).init(device);
        bn.gamma = Param::from_tensor(gamma.clone().detach().require_grad());
        bn.beta = Param::from_tensor(beta.clone().detach().require_grad());
        bn
    }

    fn assert_close<const D: usize>(what: &str, ours: Tensor<D>, burns: Tensor<D>) {
        assert_eq!(ours.dims(), burns.dims(), "{what}");
        let scale = burns.clone().abs().max().into_scalar::<f32>().max(1.0);
        let diff: f32 = (ours - burns).abs().max().into_scalar();
        assert!(
            diff <= 1e-4 * scale,
            "{what}: max difference {diff} (scale {scale})"
        );
    }

    /// Output, every gradient and the running statistics equal burn's `BatchNorm` (then the
    /// residual add and ReLU as separate operations), with and without the residual and ReLU,
    /// for odd sizes, a batch and one image, and an input far from zero mean.
    #[test]
    fn matches_burns_batch_norm_and_its_gradients() {
        let device = Device::flex().autodiff();
        for (shape, with_residual, apply_relu) in [
            ([2, 5, 7, 9], false, false),
            ([2, 5, 7, 9], false, true),
            ([3, 4, 6, 5], true, true),
            ([1, 3, 10, 11], true, false),
        ] {
            let uniform = Distribution::Uniform(-1.0, 1.0);
            let z = Tensor::<4>::random(shape, uniform, &device) * 3.0 + 2.0;
            let residual = Tensor::<4>::random(shape, uniform, &device);
            let upstream = Tensor::<4>::random(shape, uniform, &device);
            let gamma = Tensor::<1>::random([shape[1]], Distribution::Uniform(0.5, 1.5), &device);
            let beta = Tensor::<1>::random([shape[1]], uniform, &device);

            let run = |ours: bool| {
                let bn = batch_norm(&gamma, &beta, &device);
                let z = z.clone().detach().require_grad();
                let residual = residual.clone().detach().require_grad();
                let r = with_residual.then_some(&residual);
                let y = if ours {
                    try_batch_norm_train(&bn, &z, r, apply_relu).expect("applies on flex autodiff")
                } else {
                    let y = bn.forward(z.clone());
                    let y = if with_residual {
                        y + residual.clone()
                    } else {
                        y
                    };
                    if apply_relu { relu(y) } else { y }
                };
                let grads = (y.clone() * upstream.clone()).sum().backward();
                let grad = |t: &Tensor<4>| t.grad(&grads).map(Tensor::<4>::from_inner);
                let d_residual = with_residual.then(|| grad(&residual).expect("residual grad"));
                (
                    y.inner(),
                    grad(&z).expect("z grad"),
                    d_residual,
                    Tensor::<1>::from_inner(bn.gamma.val().grad(&grads).expect("gamma grad")),
                    Tensor::<1>::from_inner(bn.beta.val().grad(&grads).expect("beta grad")),
                    bn.running_mean.value_sync().inner(),
                    bn.running_var.value_sync().inner(),
                )
            };
            let (ours, burns) = (run(true), run(false));
            let case = format!("{shape:?} residual {with_residual} relu {apply_relu}");
            assert_close(&format!("{case}: output"), ours.0, burns.0);
            assert_close(&format!("{case}: dz"), ours.1, burns.1);
            if let (Some(ours), Some(burns)) = (ours.2, burns.2) {
                assert_close(&format!("{case}: d residual"), ours, burns);
            }
            assert_close(&format!("{case}: dgamma"), ours.3, burns.3);
            assert_close(&format!("{case}: dbeta"), ours.4, burns.4);
            assert_close(&format!("{case}: running mean"), ours.5, burns.5);
            assert_close(&format!("{case}: running var"), ours.6, burns.6);
        }
    }

    #[test]
    fn leaves_inference_to_burn() {
        let device = Device::flex();
        let bn = BatchNormConfig::new(3).init(&device);
        let z = Tensor::<4>::zeros([1, 3, 4, 4], &device);
        assert!(try_batch_norm_train(&bn, &z, None, true).is_none());
    }
}
