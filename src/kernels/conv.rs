//! The dense convolution's forward pass on the CPU (burn's flex backend), for inference (bias,
//! residual and ReLU fused) and the forward half of training: which path runs a layer, and its
//! weights prepared for that path.
//!
//! The paths, fastest first where they apply: Winograd's F(2x2, 3x3) for 3x3 stride-1 layers
//! (`super::winograd`), the direct kernel for maps of 2048 outputs or more
//! (`super::direct_conv`), both on x86-64 with AVX2 or AVX-512 and on WebAssembly SIMD, and
//! otherwise im2col + `gemm` (`super::im2col`). All three run on the same tiles
//! (`super::tiles`). At inference each layer's weights are prepared for its path once
//! (`super::weight_cache`).
//!
//! `try_conv2d` runs only where it applies: a flex tensor outside autodiff, f32, `groups = 1`,
//! no dilation, explicit padding; `super::autodiff` runs the same forward under autodiff.
//! Depthwise convolutions have their own kernel (`super::depthwise`); everything else (WebGPU,
//! other dtypes) goes through burn's own `Conv2d::forward`, which the tests compare this against.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::TensorData;

use super::direct_conv::{self, PackedWeights};
use super::flex::{contiguous, f32_flex};
use super::geometry::{Geometry, Operands};
use super::im2col::Im2col;
use super::microkernel::Isa;
use super::tiles;
use super::weight_cache;
use super::winograd::{self, TransformedWeights};

/// `[N, C_in, H, W]` -> `[N, C_out, H', W']`: `conv(x) (+ residual)`, then ReLU if
/// `apply_relu`; `None` where this path does not apply (the caller then runs burn's).
///
/// `residual` must have the output's shape; adding it inside the convolution saves a pass over
/// the feature map (ResNet's `relu(bn2(conv2(..)) + shortcut)`).
pub(crate) fn try_conv2d(
    conv: &Conv2d,
    x: &Tensor<4>,
    residual: Option<&Tensor<4>>,
    apply_relu: bool,
) -> Option<Tensor<4>> {
    if conv.groups != 1 {
        return None;
    }
    let geometry = Geometry::of(conv, x.dims())?;
    let (input, weight, bias) = flex_operands(conv, x)?;
    let output_shape = geometry.output_shape();
    let residual = match residual {
        Some(residual) if residual.dims() == output_shape => Some(f32_flex(residual)?),
        Some(_) => return None,
        None => None,
    };
    // Inference runs the same weights frame after frame: prepare them once.
    let prepared = weight_cache::prepared(&weight, &geometry, Path::best(&geometry));
    let output = forward_prepared(
        &geometry,
        Operands {
            input: contiguous(&input),
            weight: contiguous(&weight),
            bias: bias.as_ref().map(contiguous),
            residual: residual.as_ref().map(contiguous),
            apply_relu,
        },
        &prepared,
    );
    Some(Tensor::from_primitive::<Flex>(output))
}

/// How a convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Path {
    /// im2col + `gemm`: where neither kernel below applies or pays, and on CPUs with none of
    /// their instruction sets.
    Gemm,
    /// `direct_conv`, compiled for this ISA.
    Direct(Isa),
    /// `winograd`'s F(2x2, 3x3), 3x3 stride-1 only, on the direct kernel's core for this ISA.
    Winograd(Isa),
}

impl Path {
    /// The fastest path for this layer on this CPU.
    pub fn best(geometry: &Geometry) -> Self {
        match Isa::detect() {
            Some(isa) if winograd::suits(geometry) => Self::Winograd(isa),
            Some(isa) if direct_conv::suits(geometry) => Self::Direct(isa),
            _ => Self::Gemm,
        }
    }
}

/// The weights as a path reads them, prepared once per call (or, at inference, once per layer:
/// `weight_cache`).
pub(super) enum Prepared {
    Gemm,
    Direct(PackedWeights),
    Winograd(TransformedWeights),
}

impl Prepared {
    pub fn new(path: Path, geometry: &Geometry, weight: &[f32]) -> Self {
        match path {
            Path::Gemm => Self::Gemm,
            Path::Direct(isa) => Self::Direct(PackedWeights::new(isa, geometry, weight)),
            Path::Winograd(isa) => Self::Winograd(TransformedWeights::new(isa, geometry, weight)),
        }
    }

    /// Floats held.
    pub fn len(&self) -> usize {
        match self {
            Self::Gemm => 0,
            Self::Direct(weights) => weights.len(),
            Self::Winograd(weights) => weights.len(),
        }
    }
}

/// The convolution of `operands` as a new flex tensor `[N, C_out, H', W']` (training's forward,
/// whose weights change every step).
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn forward(geometry: &Geometry, operands: Operands) -> FlexTensor {
    let prepared = Prepared::new(Path::best(geometry), geometry, operands.weight);
    forward_prepared(geometry, operands, &prepared)
}

/// [`forward`] with the weights prepared for its path.
fn forward_prepared(geometry: &Geometry, operands: Operands, prepared: &Prepared) -> FlexTensor {
    let output_shape = geometry.output_shape();
    let len = output_shape.iter().product();
    let mut output = Vec::with_capacity(len);
    let spare = &mut output.spare_capacity_mut()[..len];
    match prepared {
        Prepared::Gemm => tiles::run(geometry, &operands, &Im2col, spare),
        Prepared::Direct(weights) => tiles::run(geometry, &operands, weights, spare),
        Prepared::Winograd(weights) => tiles::run(geometry, &operands, weights, spare),
    }
    // SAFETY: the tiles partition the output, and each tile wrote every element of its own
    // (gemm with `k = patch_len > 0` and `read_dst = false` before its epilogue read it; the
    // direct and Winograd kernels' write-out row by row).
    unsafe { output.set_len(len) };
    FlexTensor::from_data(TensorData::new(output, output_shape))
}

/// The input, weight and bias of `conv(x)` as contiguous flex tensors, if all are plain
/// (non-autodiff) f32 flex tensors.
pub(super) fn flex_operands(
    conv: &Conv2d,
    x: &Tensor<4>,
) -> Option<(FlexTensor, FlexTensor, Option<FlexTensor>)> {
    let bias = match &conv.bias {
        Some(bias) => Some(f32_flex(&bias.val())?),
        None => None,
    };
    Some((f32_flex(x)?, f32_flex(&conv.weight.val())?, bias))
}

#[cfg(test)]
mod tests {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;
    use burn::tensor::activation::relu;

    use super::*;

    /// A convolution with random weights (and bias), and a random input for it.
    struct Case {
        batch: usize,
        channels: [usize; 2],
        size: [usize; 2],
        kernel: usize,
        stride: usize,
        /// top, left, bottom, right
        padding: [usize; 4],
        bias: bool,
    }

    impl Case {
        fn new(channels: [usize; 2], size: [usize; 2], kernel: usize, stride: usize) -> Self {
            let pad = kernel / 2;
            Self {
                batch: 1,
                channels,
                size,
                kernel,
                stride,
                padding: [pad; 4],
                bias: true,
            }
        }

        fn build(&self, device: &Device) -> (Conv2d, Tensor<4>) {
            let [top, left, bottom, right] = self.padding;
            let conv = Conv2dConfig::new(self.channels, [self.kernel, self.kernel])
                .with_stride([self.stride, self.stride])
                .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
                .with_bias(self.bias)
                .init(device);
            let [height, width] = self.size;
            let shape = [self.batch, self.channels[0], height, width];
            let x = Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), device);
            (conv, x)
        }
    }

    /// Every path this CPU runs: im2col + `gemm`, and the direct and (for 3x3 stride 1)
    /// Winograd kernels for each ISA it has.
    fn paths(geometry: &Geometry) -> Vec<Path> {
        let mut paths = vec![Path::Gemm];
        for isa in Isa::supported() {
            paths.push(Path::Direct(isa));
            if geometry.kernel == [3, 3] && geometry.stride == [1, 1] {
                paths.push(Path::Winograd(isa));
            }
        }
        paths
    }

    /// `conv(x) (+ residual)`, ReLU if `apply_relu`, through `path`.
    fn run_path(
        path: Path,
        conv: &Conv2d,
        x: &Tensor<4>,
        residual: Option<&Tensor<4>>,
        apply_relu: bool,
    ) -> Tensor<4> {
        let geometry = Geometry::of(conv, x.dims()).expect("a supported geometry");
        let (input, weight, bias) = flex_operands(conv, x).expect("flex operands");
        let residual = residual.map(|r| f32_flex(r).expect("a flex residual"));
        let operands = Operands {
            input: contiguous(&input),
            weight: contiguous(&weight),
            bias: bias.as_ref().map(contiguous),
            residual: residual.as_ref().map(contiguous),
            apply_relu,
        };
        let prepared = Prepared::new(path, &geometry, operands.weight);
        Tensor::from_primitive::<Flex>(forward_prepared(&geometry, operands, &prepared))
    }

    fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).abs().max().into_scalar()
    }

    /// Every geometry the unfold and the direct kernel's bands distinguish: 1x1 read in place,
    /// strided 1x1 (ResNet's projections), 3x3 and 7x7 with stride 1 and 2, padding wider than
    /// the kernel reaches, lopsided padding, odd sizes, output channels that fill no whole
    /// register block, a batch, and deep small maps split by output channel; on every path.
    #[test]
    fn matches_burns_convolution() {
        let device = Device::flex();
        let mut cases = vec![
            Case::new([8, 16], [9, 11], 1, 1),
            Case::new([8, 16], [9, 11], 1, 2),
            Case::new([5, 12], [13, 17], 3, 1),
            Case::new([5, 12], [13, 17], 3, 2),
            Case::new([3, 16], [30, 41], 7, 2),
            Case::new([256, 256], [6, 7], 3, 1),
            Case::new([64, 192], [3, 5], 3, 2),
            Case {
                padding: [2, 0, 1, 3],
                ..Case::new([4, 6], [10, 12], 3, 1)
            },
            Case {
                padding: [3, 3, 3, 3],
                bias: false,
                ..Case::new([4, 6], [5, 4], 1, 1)
            },
            Case {
                batch: 3,
                ..Case::new([6, 70], [17, 9], 3, 2)
            },
        ];
        // Enough output rows for several bands: tiles must not overlap or leave gaps.
        cases.push(Case::new([32, 8], [140, 9], 3, 1));
        // Wide enough for `direct_conv::suits`, so that `try_conv2d` takes the direct kernel
        // where the CPU has one.
        cases.push(Case::new([3, 10], [100, 90], 3, 2));
        for case in cases {
            let (conv, x) = case.build(&device);
            let expected = conv.forward(x.clone());
            let tolerance = 1e-5 * (case.channels[0] * case.kernel * case.kernel) as f32;
            let fast = try_conv2d(&conv, &x, None, false).expect("the fast path applies");
            let mut results = vec![("try_conv2d".to_string(), fast)];
            let geometry = Geometry::of(&conv, x.dims()).expect("a supported geometry");
            for path in paths(&geometry) {
                results.push((format!("{path:?}"), run_path(path, &conv, &x, None, false)));
            }
            for (path, result) in results {
                let diff = max_abs_diff(expected.clone(), result);
                assert!(
                    diff <= tolerance,
                    "{path}: {:?} {}x{} stride {} padding {:?}: off by {diff}",
                    case.size,
                    case.kernel,
                    case.kernel,
                    case.stride,
                    case.padding
                );
            }
        }
    }

    #[test]
    fn fuses_residual_and_relu() {
        let device = Device::flex();
        for case in [
            Case::new([16, 24], [12, 15], 3, 2),
            Case::new([16, 24], [13, 15], 3, 1),
        ] {
            let (conv, x) = case.build(&device);
            let expected = conv.forward(x.clone());
            let residual =
                Tensor::random(expected.dims(), Distribution::Uniform(-1.0, 1.0), &device);
            let expected = relu(expected + residual.clone());
            let fast = try_conv2d(&conv, &x, Some(&residual), true).expect("the fast path applies");
            assert!(max_abs_diff(expected.clone(), fast) <= 1e-4);
            let geometry = Geometry::of(&conv, x.dims()).expect("a supported geometry");
            for path in paths(&geometry) {
                let result = run_path(path, &conv, &x, Some(&residual), true);
                assert!(max_abs_diff(expected.clone(), result) <= 1e-4, "{path:?}");
            }
        }
    }

    #[test]
    fn leaves_what_it_does_not_handle_to_burn() {
        let device = Device::flex();
        let (conv, x) = Case::new([8, 8], [10, 10], 3, 1).build(&device);
        let grouped = Conv2dConfig::new([8, 8], [3, 3])
            .with_groups(8)
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        assert!(try_conv2d(&grouped, &x, None, false).is_none());
        let same = Conv2dConfig::new([8, 8], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(&device);
        assert!(try_conv2d(&same, &x, None, false).is_none());
        let wrong_residual = Tensor::zeros([1, 8, 5, 5], &device);
        assert!(try_conv2d(&conv, &x, Some(&wrong_residual), false).is_none());
        // Autodiff tensors take `super::autodiff`'s path, which records the backward pass.
        let training = device.clone().autodiff();
        let (conv, x) = Case::new([8, 8], [10, 10], 3, 1).build(&training);
        assert!(try_conv2d(&conv, &x, None, false).is_none());
    }
}
