//! The dense convolution's forward pass on the CPU (burn's flex backend), written for BiSeNet's
//! layers: inference (with bias, residual and ReLU fused) and the forward half of training.
//!
//! burn-flex 0.22 runs a convolution as tiles of 512 pixels: the whole input is first copied to
//! NHWC on one thread, each tile is unfolded (im2col) into a freshly zeroed buffer, multiplied
//! with gemm, and scattered back to NCHW one value at a time. A profile of ResNet18 BiSeNet at
//! 360x480 spent more time in that bookkeeping than in gemm's multiply kernels. Here the patch
//! matrix is unfolded straight from the NCHW rows, gemm writes straight into the NCHW output,
//! bias, residual and ReLU are applied to each tile while it is still in cache, and the tiles
//! (bands of output rows, split by output channel when there are few) run on all cores. On
//! x86-64 CPUs with AVX2 or AVX-512, and in the browser with WebAssembly SIMD, 3x3 stride-1
//! layers run as Winograd's F(2x2, 3x3) (`super::winograd`), and other layers on maps of 2048
//! outputs or more skip the patch matrix altogether (`super::direct_conv`); the tiles and the
//! epilogue are the same. At inference each layer's weights are prepared for its kernel once
//! (`super::weight_cache`).
//!
//! `try_conv2d` runs only where it applies: a flex tensor outside autodiff, f32, `groups = 1`,
//! no dilation, explicit padding; `super::autodiff` runs the same forward under autodiff.
//! Depthwise convolutions have their own kernel (`super::depthwise`); everything else (WebGPU,
//! other dtypes) goes through burn's own `Conv2d::forward`, which the tests compare this against.

use std::mem::MaybeUninit;
use std::ops::Range;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};

use super::direct_conv::{self, Isa, PackedWeights};
use super::phase_row::{inside_columns, load_phase_row};
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
    run(
        geometry,
        operands,
        prepared,
        &mut output.spare_capacity_mut()[..len],
    );
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

/// The tensor's flex primitive, if it is a plain (non-autodiff) f32 flex tensor.
fn f32_flex<const D: usize>(tensor: &Tensor<D>) -> Option<FlexTensor> {
    if tensor.dtype() != DType::F32 {
        return None;
    }
    let primitive = tensor.clone().try_into_primitive::<Flex>().ok()?;
    Some(made_contiguous(primitive))
}

/// The same tensor with a contiguous row-major layout.
pub(super) fn made_contiguous(tensor: FlexTensor) -> FlexTensor {
    if tensor.is_contiguous() {
        tensor
    } else {
        tensor.to_contiguous()
    }
}

/// The elements of a contiguous f32 flex tensor, in row-major order.
pub(super) fn contiguous(tensor: &FlexTensor) -> &[f32] {
    let (start, end) = tensor
        .layout()
        .contiguous_offsets()
        .expect("a contiguous tensor (see made_contiguous)");
    &tensor.storage::<f32>()[start..end]
}

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

    /// Output rows per tile: a patch matrix of about 128 Ki floats (512 KiB, within L2),
    /// and at least 64 pixels so that gemm's micro-kernel (64 pixels wide) has full tiles.
    fn rows_per_tile(&self) -> usize {
        let pixels = (128 * 1024 / self.patch_len()).max(64);
        pixels.div_ceil(self.out_w).clamp(1, self.out_h)
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

/// One unit of work: a band of output rows of one image, for a range of output channels.
#[derive(Clone, Debug)]
pub(super) struct Tile {
    pub image: usize,
    pub rows: Range<usize>,
    pub channels: Range<usize>,
}

/// Splits the output into tiles: bands of `rows_per_tile` rows, and when there are fewer bands
/// than cores (the small, deep maps at 1/16 and 1/32), output channels in blocks of at least 64
/// too, starting at multiples of `channel_align`.
fn tiles(
    geometry: &Geometry,
    rows_per_tile: usize,
    channel_align: usize,
    threads: usize,
) -> Vec<Tile> {
    let batch = geometry.batch;
    let bands = batch * geometry.out_h.div_ceil(rows_per_tile);
    let wanted_blocks = (2 * threads).div_ceil(bands);
    let blocks = wanted_blocks.min(geometry.channels_out / 64).max(1);
    let block_len = geometry
        .channels_out
        .div_ceil(blocks)
        .next_multiple_of(channel_align);
    let mut tiles = Vec::new();
    for image in 0..batch {
        for start in (0..geometry.out_h).step_by(rows_per_tile) {
            let rows = start..(start + rows_per_tile).min(geometry.out_h);
            for first in (0..geometry.channels_out).step_by(block_len) {
                let channels = first..(first + block_len).min(geometry.channels_out);
                tiles.push(Tile {
                    image,
                    rows: rows.clone(),
                    channels,
                });
            }
        }
    }
    tiles
}

/// The output buffer, shared by tiles that write disjoint parts of it.
#[derive(Clone, Copy)]
pub(super) struct OutputPtr(pub *mut f32);
// SAFETY: every tile writes only its own (channel range x row band) of one image, and the
// tiles of one call partition the output, so no two threads touch the same element.
unsafe impl Send for OutputPtr {}
unsafe impl Sync for OutputPtr {}

/// Computes the convolution into `output` (`[N, C_out, H' * W']`) through the path `prepared`
/// is for, writing every element.
fn run(
    geometry: &Geometry,
    operands: Operands,
    prepared: &Prepared,
    output: &mut [MaybeUninit<f32>],
) {
    assert_eq!(
        output.len(),
        geometry.batch * geometry.channels_out * geometry.out_pixels()
    );
    let output = OutputPtr(output.as_mut_ptr().cast());
    let (rows_per_tile, channel_align) = match prepared {
        Prepared::Gemm => (geometry.rows_per_tile(), 1),
        Prepared::Direct(weights) => (direct_conv::rows_per_tile(geometry), weights.channels()),
        Prepared::Winograd(weights) => (winograd::rows_per_tile(geometry), weights.channels()),
    };
    let work = |patches: &mut Vec<f32>, tile: Tile| match prepared {
        Prepared::Gemm => run_tile(geometry, &operands, &tile, patches, output),
        Prepared::Direct(weights) => {
            direct_conv::run_tile(geometry, &operands, weights, &tile, output)
        }
        Prepared::Winograd(weights) => {
            winograd::run_tile(geometry, &operands, weights, &tile, output)
        }
    };
    #[cfg(feature = "native")]
    {
        use rayon::prelude::*;
        let threads = rayon::current_num_threads();
        tiles(geometry, rows_per_tile, channel_align, threads)
            .into_par_iter()
            .for_each_init(Vec::new, work);
    }
    #[cfg(not(feature = "native"))]
    {
        let mut patches = Vec::new();
        for tile in tiles(geometry, rows_per_tile, channel_align, 1) {
            work(&mut patches, tile);
        }
    }
}

/// Computes one tile: unfold its patches, multiply by the weights, then bias, residual, ReLU.
fn run_tile(
    geometry: &Geometry,
    operands: &Operands,
    tile: &Tile,
    patches: &mut Vec<f32>,
    output: OutputPtr,
) {
    let pixels = geometry.out_pixels();
    let patch_len = geometry.patch_len();
    let input_len = geometry.input_len();
    let input = &operands.input[tile.image * input_len..][..input_len];
    let first_pixel = tile.rows.start * geometry.out_w;
    let tile_pixels = tile.rows.len() * geometry.out_w;

    // The patch matrix `[patch_len, tile_pixels]` and the distance between its rows.
    let (patch_matrix, patch_row_stride) = if geometry.is_pointwise() {
        (&input[first_pixel..], pixels)
    } else {
        patches.resize(patch_len * tile_pixels, 0.0);
        unfold(geometry, input, tile.rows.clone(), patches);
        (&patches[..], tile_pixels)
    };

    let image_offset = tile.image * geometry.channels_out * pixels;
    let weight =
        &operands.weight[tile.channels.start * patch_len..][..tile.channels.len() * patch_len];
    // SAFETY: the destination is the (tile.channels x tile pixels) block of this image in the
    // `[N, C_out, H' * W']` output, rows `pixels` apart: in bounds (asserted in `run`), and
    // written by this tile alone. The weight and patch slices hold `m x k` and `k x n` values
    // with the strides given.
    unsafe {
        let destination = output
            .0
            .add(image_offset + tile.channels.start * pixels + first_pixel);
        gemm::gemm(
            tile.channels.len(),
            tile_pixels,
            patch_len,
            destination,
            1,
            pixels as isize,
            false,
            weight.as_ptr(),
            1,
            patch_len as isize,
            patch_matrix.as_ptr(),
            1,
            patch_row_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }

    for channel in tile.channels.clone() {
        let offset = image_offset + channel * pixels + first_pixel;
        // SAFETY: this row segment lies in the tile's own block (see above), which gemm has
        // just written in full.
        let row = unsafe { std::slice::from_raw_parts_mut(output.0.add(offset), tile_pixels) };
        if let Some(bias) = operands.bias {
            let bias = bias[channel];
            row.iter_mut().for_each(|value| *value += bias);
        }
        if let Some(residual) = operands.residual {
            let residual = &residual[offset..][..tile_pixels];
            row.iter_mut()
                .zip(residual)
                .for_each(|(value, r)| *value += r);
        }
        if operands.apply_relu {
            row.iter_mut().for_each(|value| *value = value.max(0.0));
        }
    }
}

/// Writes the patch matrix of output rows `rows` into `patches` (`[C_in * kh * kw, pixels]`,
/// row-major): row `(c, ky, kx)` holds input channel `c` at offset `(ky, kx)` under every output
/// pixel of the band, zero where that falls in the padding.
///
/// Every piece is a run copy: with stride `s`, the input row is first split into its `s` phases
/// (columns `p, p + s, p + 2s, ...`), and kernel column `kx` then reads one phase contiguously.
/// (Gathering every kernel column with a stride instead was the hottest loop of the 7x7
/// stride-2 stem.)
pub(super) fn unfold(geometry: &Geometry, input: &[f32], rows: Range<usize>, patches: &mut [f32]) {
    let Geometry {
        height,
        width,
        kernel: [kernel_h, kernel_w],
        stride: [stride_h, stride_w],
        padding: [pad_top, pad_left],
        out_w,
        ..
    } = *geometry;
    let tile_pixels = rows.len() * out_w;
    let phase_len = width.div_ceil(stride_w);
    let mut phases = vec![0.0f32; stride_w * phase_len];
    // Where kernel column `kx` reads: the output columns whose input column lies inside the
    // row, and the run of the phase plane under them (output column `ox` reads input column
    // `ox * s + kx - pad`, which is phase `(kx - pad) mod s`).
    let columns: Vec<(Range<usize>, Range<usize>)> = (0..kernel_w)
        .map(|kx| {
            let inside = inside_columns(kx, pad_left, stride_w, width, out_w);
            if inside.is_empty() {
                return (0..0, 0..0);
            }
            let first_input = inside.start * stride_w + kx - pad_left;
            let start = first_input % stride_w * phase_len + first_input / stride_w;
            (inside.clone(), start..start + inside.len())
        })
        .collect();

    for (channel, plane) in input.chunks_exact(height * width).enumerate() {
        for ky in 0..kernel_h {
            let first_row = (channel * kernel_h + ky) * kernel_w;
            for (band_row, oy) in rows.clone().enumerate() {
                let out_at = |kx: usize| (first_row + kx) * tile_pixels + band_row * out_w;
                let iy = (oy * stride_h + ky).wrapping_sub(pad_top);
                if iy >= height {
                    for kx in 0..kernel_w {
                        patches[out_at(kx)..][..out_w].fill(0.0);
                    }
                    continue;
                }
                let in_row = &plane[iy * width..][..width];
                let source_row = if stride_w == 1 {
                    in_row
                } else {
                    for (phase, phase_row) in phases.chunks_exact_mut(phase_len).enumerate() {
                        load_phase_row(in_row, phase, stride_w, 0, phase_row);
                    }
                    &phases[..]
                };
                for (kx, (inside, source)) in columns.iter().enumerate() {
                    let out_row = &mut patches[out_at(kx)..][..out_w];
                    out_row[..inside.start].fill(0.0);
                    out_row[inside.end..].fill(0.0);
                    out_row[inside.clone()].copy_from_slice(&source_row[source.clone()]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
