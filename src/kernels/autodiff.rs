//! The training convolution: this crate's forward and backward kernels registered as one
//! operation of burn's autodiff graph over flex (`Autodiff<Flex>`), the way burn-autodiff's
//! own `conv2d` registers the backend's (burn-autodiff 0.22.1, `src/ops/module.rs`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata};
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};

use super::conv::forward;
use super::conv_backward::{conv2d_backward, input_gradient_by_winograd};
use super::depthwise::{depthwise_backward, depthwise_forward};
use super::flex::{contiguous, made_contiguous};
use super::geometry::{Geometry, Operands};

/// Which kernels a convolution runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `groups = 1`: im2col + gemm.
    Dense,
    /// `groups = C_in`, one input channel per group (any channel multiplier): direct loops.
    Depthwise,
}

/// What the backward pass needs: the forward's inputs (contiguous) and sizes.
#[derive(Debug, Clone)]
struct ConvState {
    x: FlexTensor,
    weight: FlexTensor,
    geometry: Geometry,
    kind: Kind,
}

/// The backward step of a convolution with `N` tracked inputs: `x`, `weight` and, when
/// `N = 3`, `bias`.
#[derive(Debug)]
struct ConvBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for ConvBackward<N> {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = made_contiguous(grads.consume::<Flex>(&ops.node));
        let dy_values = contiguous(&dy);
        let ConvState {
            x,
            weight,
            geometry,
            kind,
        } = ops.state;
        let want_dx = ops.parents[0].is_some();
        // A 3x3 stride-1 layer's input gradient is itself such a convolution, which Winograd
        // computes in fewer multiply-adds than `col2im(W^T . dY)`.
        let winograd_dx = match kind {
            Kind::Dense if want_dx => {
                input_gradient_by_winograd(&geometry, contiguous(&weight), dy_values)
            }
            _ => None,
        };
        let backward = match kind {
            Kind::Dense => conv2d_backward,
            Kind::Depthwise => depthwise_backward,
        };
        let (dx, dw) = backward(
            &geometry,
            contiguous(&x),
            contiguous(&weight),
            dy_values,
            want_dx && winograd_dx.is_none(),
        );
        if let Some(node) = &ops.parents[0] {
            let dx = winograd_dx.or_else(|| dx.map(|dx| flex(dx, x.shape().dims::<4>())));
            if let Some(dx) = dx {
                grads.register::<Flex>(node.id, dx);
            }
        }
        if let Some(node) = &ops.parents[1] {
            grads.register::<Flex>(node.id, flex(dw, weight.shape().dims::<4>()));
        }
        if let Some(Some(node)) = ops.parents.get(2) {
            let channels = geometry.channels_out;
            let mut db = vec![0.0f32; channels];
            for (index, plane) in dy_values.chunks_exact(geometry.out_pixels()).enumerate() {
                db[index % channels] += plane.iter().sum::<f32>();
            }
            grads.register::<Flex>(node.id, flex(db, [channels]));
        }
    }
}

fn flex<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `conv(x)` as a tracked operation of the autodiff graph with this crate's kernels, for f32
/// tensors on `Device::flex().autodiff()`; `None` where they do not apply (another backend,
/// gradient checkpointing, grouped but not depthwise, dilation, `Same` padding), and the caller
/// then runs burn's.
pub(super) fn try_conv2d(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let [_, channels_in, _, _] = x.dims();
    let kind = match conv.groups {
        1 => Kind::Dense,
        groups if groups == channels_in && conv.weight.dims()[1] == 1 => Kind::Depthwise,
        _ => return None,
    };
    let geometry = Geometry::of(conv, x.dims())?;
    let tracked = |tensor: Tensor<4>| tensor.try_into_primitive::<Autodiff<Flex>>().ok();
    let x_ad = tracked(x.clone())?;
    let weight_ad = tracked(conv.weight.val())?;
    let bias_ad = match &conv.bias {
        Some(bias) => Some(bias.val().try_into_primitive::<Autodiff<Flex>>().ok()?),
        None => None,
    };
    let inputs = [Some(&x_ad), Some(&weight_ad), bias_ad.as_ref()];
    if inputs
        .iter()
        .flatten()
        .any(|t| t.primitive().dtype() != DType::F32)
    {
        return None;
    }

    let x_flex = made_contiguous(x_ad.primitive().clone());
    let weight_flex = made_contiguous(weight_ad.primitive().clone());
    let bias_flex = bias_ad
        .as_ref()
        .map(|b| made_contiguous(b.primitive().clone()));
    let output = match kind {
        Kind::Dense => forward(
            &geometry,
            Operands {
                input: contiguous(&x_flex),
                weight: contiguous(&weight_flex),
                bias: bias_flex.as_ref().map(contiguous),
                residual: None,
                apply_relu: false,
            },
        ),
        Kind::Depthwise => depthwise_forward(
            &geometry,
            contiguous(&x_flex),
            contiguous(&weight_flex),
            bias_flex.as_ref().map(contiguous),
            false,
        ),
    };
    let state = ConvState {
        x: x_flex,
        weight: weight_flex,
        geometry,
        kind,
    };
    let output = match bias_ad {
        Some(bias_ad) => match ConvBackward::<3>
            .prepare::<NoCheckpointing>([x_ad.node(), weight_ad.node(), bias_ad.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        },
        None => match ConvBackward::<2>
            .prepare::<NoCheckpointing>([x_ad.node(), weight_ad.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        },
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(output))
}

#[cfg(test)]
mod tests {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    use super::*;

    /// A convolution to differentiate: channels `[in, out]`, groups, kernel, stride, padding
    /// `[top, left, bottom, right]`, bias, batch and input size.
    struct Case {
        channels: [usize; 2],
        groups: usize,
        kernel: usize,
        stride: usize,
        padding: [usize; 4],
        bias: bool,
        batch: usize,
        size: [usize; 2],
    }

    impl Case {
        fn new(channels: [usize; 2], kernel: usize, stride: usize, size: [usize; 2]) -> Self {
            Self {
                channels,
                groups: 1,
                kernel,
                stride,
                padding: [kernel / 2; 4],
                bias: false,
                batch: 2,
                size,
            }
        }

        fn depthwise(channels: usize, multiplier: usize, stride: usize, size: [usize; 2]) -> Self {
            Self {
                groups: channels,
                ..Self::new([channels, channels * multiplier], 3, stride, size)
            }
        }
    }

    /// A random convolution, input and output weighting `r` for `case`.
    fn build(case: &Case) -> (Conv2d, Tensor<4>, Tensor<4>) {
        let device = Device::flex().autodiff();
        let [top, left, bottom, right] = case.padding;
        let conv = Conv2dConfig::new(case.channels, [case.kernel, case.kernel])
            .with_stride([case.stride, case.stride])
            .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
            .with_groups(case.groups)
            .with_bias(case.bias)
            .init(&device);
        let [height, width] = case.size;
        let uniform = Distribution::Uniform(-1.0, 1.0);
        let x = Tensor::<4>::random(
            [case.batch, case.channels[0], height, width],
            uniform,
            &device,
        )
        .require_grad();
        let r = Tensor::<4>::random(conv.forward(x.clone()).dims(), uniform, &device);
        (conv, x, r)
    }

    /// Input, weight and bias gradients of `sum(conv(x) * r)` through `run` (burn's
    /// convolution or ours).
    fn gradients(
        (conv, x, r): &(Conv2d, Tensor<4>, Tensor<4>),
        run: impl Fn(&Conv2d, Tensor<4>) -> Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>, Option<Tensor<1>>) {
        let grads = (run(conv, x.clone()) * r.clone()).sum().backward();
        (
            x.grad(&grads).expect("x has a gradient").inner(),
            conv.weight
                .val()
                .grad(&grads)
                .expect("weight has a gradient")
                .inner(),
            conv.bias
                .as_ref()
                .map(|b| b.val().grad(&grads).expect("bias has a gradient").inner()),
        )
    }

    fn assert_close<const D: usize>(what: &str, ours: Tensor<D>, burns: Tensor<D>) {
        assert_eq!(ours.dims(), burns.dims(), "{what}");
        let scale: f32 = burns.clone().abs().max().into_scalar();
        let diff: f32 = (ours - burns).abs().max().into_scalar();
        assert!(
            diff <= 1e-4 * scale.max(1.0),
            "{what}: off by {diff} (largest value {scale})"
        );
    }

    /// Every geometry BiSeNet trains: 1x1, 3x3 stride 1 and 2, the 7x7 stride-2 stem, depthwise
    /// 3x3 stride 1 and 2 with and without a channel multiplier (V2 expands 6x), odd sizes,
    /// lopsided and over-wide padding, with and without bias, batches of 1 and 2.
    #[test]
    fn gradients_match_burns_backward() {
        let cases = [
            Case::new([8, 12], 1, 1, [9, 11]),
            Case::new([8, 12], 1, 2, [9, 11]),
            Case {
                bias: true,
                ..Case::new([5, 7], 3, 1, [13, 17])
            },
            Case::new([5, 7], 3, 2, [13, 17]),
            Case::new([3, 8], 7, 2, [23, 30]),
            Case {
                padding: [2, 0, 1, 3],
                batch: 1,
                ..Case::new([4, 6], 3, 1, [10, 12])
            },
            Case {
                padding: [3, 3, 3, 3],
                ..Case::new([4, 6], 1, 1, [5, 4])
            },
            // Enough output rows for several backward tiles.
            Case::new([4, 3], 3, 1, [150, 9]),
            // Enough channels for Winograd, forward and input gradient: even and odd sizes,
            // lopsided padding (the input gradient's padding is `2 - pad`).
            Case {
                bias: true,
                ..Case::new([16, 24], 3, 1, [13, 17])
            },
            Case {
                padding: [2, 0, 1, 2],
                ..Case::new([24, 16], 3, 1, [10, 12])
            },
            Case::depthwise(6, 1, 1, [11, 13]),
            Case::depthwise(6, 1, 2, [11, 13]),
            Case {
                bias: true,
                ..Case::depthwise(4, 6, 1, [9, 10])
            },
            Case::depthwise(4, 6, 2, [9, 10]),
        ];
        for case in &cases {
            let label = format!(
                "{:?} groups {} {}x{} stride {} padding {:?} size {:?}",
                case.channels,
                case.groups,
                case.kernel,
                case.kernel,
                case.stride,
                case.padding,
                case.size
            );
            let operands = build(case);
            let ours = gradients(&operands, |conv, x| {
                try_conv2d(conv, &x).expect("the crate's kernels apply")
            });
            let burns = gradients(&operands, |conv, x| conv.forward(x));
            assert_close(&format!("dx, {label}"), ours.0, burns.0);
            assert_close(&format!("dW, {label}"), ours.1, burns.1);
            match (ours.2, burns.2) {
                (Some(ours), Some(burns)) => assert_close(&format!("db, {label}"), ours, burns),
                (None, None) => {}
                _ => panic!("bias gradient on one side only, {label}"),
            }
        }
    }

    #[test]
    fn forward_matches_burns() {
        let device = Device::flex().autodiff();
        for case in [
            Case::new([5, 7], 3, 2, [13, 17]),
            Case::depthwise(4, 2, 2, [9, 10]),
        ] {
            let conv = Conv2dConfig::new(case.channels, [3, 3])
                .with_stride([case.stride, case.stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_groups(case.groups)
                .init(&device);
            let x = Tensor::<4>::random(
                [case.batch, case.channels[0], case.size[0], case.size[1]],
                Distribution::Uniform(-1.0, 1.0),
                &device,
            );
            let ours = try_conv2d(&conv, &x).expect("applies");
            assert_close("forward", ours, conv.forward(x));
        }
    }

    #[test]
    fn leaves_other_convolutions_to_burn() {
        let device = Device::flex().autodiff();
        let grouped = Conv2dConfig::new([8, 8], [3, 3])
            .with_groups(2)
            .init(&device);
        let x = Tensor::<4>::zeros([1, 8, 6, 6], &device);
        assert!(try_conv2d(&grouped, &x).is_none());
        let dilated = Conv2dConfig::new([8, 8], [3, 3])
            .with_dilation([2, 2])
            .init(&device);
        assert!(try_conv2d(&dilated, &x).is_none());
        // Not an autodiff tensor: inference has its own path.
        let plain = Conv2dConfig::new([8, 8], [3, 3]).init(&Device::flex());
        assert!(try_conv2d(&plain, &Tensor::zeros([1, 8, 6, 6], &Device::flex())).is_none());
    }
}
