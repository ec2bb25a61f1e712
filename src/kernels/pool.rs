//! Max and average pooling for inference on the CPU (burn's flex backend), computed row by row.
//!
//! burn-flex 0.22 pools one output element at a time, with index arithmetic (divisions) and a
//! bounds test per tap: slow on the max-pool after ResNet18's stem (`docs/kernels.md`). Here
//! each output row first combines its `kh` input rows into one padded row (a vectorised pass),
//! then takes every window of that row; planes run in parallel.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::PaddingConfig2d;
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};

use super::flex::{contiguous, made_contiguous};

/// `[N, C, H, W]` -> `[N, C, H', W']` through `pool`; `None` where this path does not apply
/// (not a plain f32 flex tensor, dilation, `ceil_mode`, `Same` padding), and the caller runs
/// burn's.
pub(crate) fn try_max_pool2d(pool: &MaxPool2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    if pool.dilation != [1, 1] || pool.ceil_mode {
        return None;
    }
    let window = Window::new(pool.kernel_size, pool.stride, &pool.padding, x.dims())?;
    run(&window, Reduce::Max, x)
}

/// `[N, C, H, W]` -> `[N, C, H', W']` through `pool`; `None` where this path does not apply, as
/// for [`try_max_pool2d`].
pub(crate) fn try_avg_pool2d(pool: &AvgPool2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    if pool.ceil_mode {
        return None;
    }
    let window = Window::new(pool.kernel_size, pool.stride, &pool.padding, x.dims())?;
    let reduce = Reduce::Mean {
        count_include_pad: pool.count_include_pad,
    };
    run(&window, reduce, x)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Reduce {
    Max,
    /// The sum over the window divided by its size: with the padding counted (PyTorch's
    /// default), or only the inputs inside the image.
    Mean {
        count_include_pad: bool,
    },
}

impl Reduce {
    /// The value padding contributes: none to a max, zero to a sum.
    fn identity(self) -> f32 {
        match self {
            Self::Max => f32::NEG_INFINITY,
            Self::Mean { .. } => 0.0,
        }
    }

    #[inline(always)]
    fn combine(self, a: f32, b: f32) -> f32 {
        match self {
            Self::Max => a.max(b),
            Self::Mean { .. } => a + b,
        }
    }
}

/// The sizes of one pooling call; padding is `[top, left]`.
#[derive(Clone, Copy, Debug)]
struct Window {
    height: usize,
    width: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    out_h: usize,
    out_w: usize,
}

impl Window {
    fn new(
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: &PaddingConfig2d,
        [_, _, height, width]: [usize; 4],
    ) -> Option<Self> {
        let PaddingConfig2d::Explicit(top, left, bottom, right) = *padding else {
            return None;
        };
        // PyTorch and burn require padding of at most half the kernel, so that every window
        // holds at least one input.
        if stride.contains(&0)
            || kernel.contains(&0)
            || 2 * top.max(bottom) > kernel[0]
            || 2 * left.max(right) > kernel[1]
            || height + top + bottom < kernel[0]
            || width + left + right < kernel[1]
        {
            return None;
        }
        Some(Self {
            height,
            width,
            kernel,
            stride,
            padding: [top, left],
            out_h: (height + top + bottom - kernel[0]) / stride[0] + 1,
            out_w: (width + left + right - kernel[1]) / stride[1] + 1,
        })
    }

    /// Floats in a padded row: every column a window of the output row reads.
    fn padded_width(&self) -> usize {
        (self.out_w - 1) * self.stride[1] + self.kernel[1]
    }
}

fn run(window: &Window, reduce: Reduce, x: &Tensor<4>) -> Option<Tensor<4>> {
    if x.dtype() != DType::F32 {
        return None;
    }
    let [batch, channels, _, _] = x.dims();
    let x = made_contiguous(x.clone().try_into_primitive::<Flex>().ok()?);
    let input = contiguous(&x);
    let (plane, out_plane) = (window.height * window.width, window.out_h * window.out_w);
    let mut output = vec![0.0f32; batch * channels * out_plane];
    let task = |row: &mut Vec<f32>, (index, out): (usize, &mut [f32])| {
        pool_plane(window, reduce, &input[index * plane..][..plane], out, row);
    };
    #[cfg(feature = "native")]
    {
        use rayon::prelude::*;
        // At least ~16 Ki outputs per task: the deep maps are small.
        let planes_per_task = (16384 / out_plane.max(1)).max(1);
        output
            .par_chunks_mut(out_plane)
            .with_min_len(planes_per_task)
            .enumerate()
            .for_each_init(Vec::new, task);
    }
    #[cfg(not(feature = "native"))]
    {
        let mut row = Vec::new();
        output
            .chunks_mut(out_plane)
            .enumerate()
            .for_each(|item| task(&mut row, item));
    }
    let shape = [batch, channels, window.out_h, window.out_w];
    let output = FlexTensor::from_data(TensorData::new(output, shape));
    Some(Tensor::from_primitive::<Flex>(output))
}

/// One plane: for each output row, its input rows combined into `row` (padded with the
/// identity), then each window of `row`.
fn pool_plane(
    window: &Window,
    reduce: Reduce,
    input: &[f32],
    output: &mut [f32],
    row: &mut Vec<f32>,
) {
    let Window {
        height,
        width,
        kernel: [kernel_h, kernel_w],
        stride: [stride_h, stride_w],
        padding: [top, left],
        out_w,
        ..
    } = *window;
    let padded_width = window.padded_width();
    for (oy, out_row) in output.chunks_exact_mut(out_w).enumerate() {
        row.clear();
        row.resize(padded_width, reduce.identity());
        // Input rows `oy * sh - top ..` under the window, clipped to the image.
        let first = (oy * stride_h).saturating_sub(top);
        let end = (oy * stride_h + kernel_h).saturating_sub(top).min(height);
        // Padded column `j` is input column `j - left`.
        let columns = width.min(padded_width - left);
        let inside = &mut row[left..left + columns];
        for iy in first..end {
            let input_row = &input[iy * width..][..columns];
            for (r, &v) in inside.iter_mut().zip(input_row) {
                *r = reduce.combine(*r, v);
            }
        }
        let rows_inside = end - first;
        for (ox, out) in out_row.iter_mut().enumerate() {
            let taps = &row[ox * stride_w..][..kernel_w];
            let value = taps
                .iter()
                .fold(reduce.identity(), |a, &b| reduce.combine(a, b));
            *out = match reduce {
                Reduce::Max => value,
                Reduce::Mean { count_include_pad } => {
                    let count = if count_include_pad {
                        kernel_h * kernel_w
                    } else {
                        let x0 = (ox * stride_w).max(left);
                        let x1 = (ox * stride_w + kernel_w).min(left + width);
                        rows_inside * (x1 - x0)
                    };
                    value / count as f32
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
    use burn::tensor::Distribution;

    use super::*;

    fn padding([top, left, bottom, right]: [usize; 4]) -> PaddingConfig2d {
        PaddingConfig2d::Explicit(top, left, bottom, right)
    }

    /// Kernel, stride, padding (top, left, bottom, right), input `[N, C, H, W]`.
    type Case = ([usize; 2], [usize; 2], [usize; 4], [usize; 4]);

    const CASES: [Case; 6] = [
        ([3, 3], [2, 2], [1, 1, 1, 1], [1, 4, 18, 24]),
        ([3, 3], [2, 2], [1, 1, 1, 1], [2, 3, 17, 23]),
        ([3, 3], [1, 1], [1, 1, 1, 1], [1, 2, 5, 7]),
        ([2, 2], [2, 2], [0, 0, 0, 0], [1, 3, 9, 8]),
        ([3, 2], [2, 1], [1, 0, 0, 1], [1, 2, 7, 6]),
        ([3, 3], [3, 3], [0, 0, 0, 0], [1, 1, 3, 3]),
    ];

    fn assert_close(ours: Tensor<4>, burns: Tensor<4>, what: &str) {
        assert_eq!(ours.dims(), burns.dims(), "{what}");
        let diff: f32 = (ours - burns).abs().max().into_scalar();
        assert!(diff <= 1e-6, "{what}: off by {diff}");
    }

    #[test]
    fn max_pool_matches_burns() {
        let device = Device::flex();
        for (kernel, stride, pad, shape) in CASES {
            // All negative, so that a padding read as zero would win the max.
            let x = Tensor::<4>::random(shape, Distribution::Uniform(-2.0, -1.0), &device);
            let pool = MaxPool2dConfig::new(kernel)
                .with_strides(stride)
                .with_padding(padding(pad))
                .init();
            let ours = try_max_pool2d(&pool, &x).expect("the fast path applies");
            assert_close(
                ours,
                pool.forward(x),
                &format!("max {kernel:?} {stride:?} {pad:?}"),
            );
        }
    }

    #[test]
    fn avg_pool_matches_burns_with_and_without_the_padding_counted() {
        let device = Device::flex();
        for count_include_pad in [true, false] {
            for (kernel, stride, pad, shape) in CASES {
                let x = Tensor::<4>::random(shape, Distribution::Uniform(1.0, 2.0), &device);
                let pool = AvgPool2dConfig::new(kernel)
                    .with_strides(stride)
                    .with_padding(padding(pad))
                    .with_count_include_pad(count_include_pad)
                    .init();
                let ours = try_avg_pool2d(&pool, &x).expect("the fast path applies");
                let what = format!("avg {kernel:?} {stride:?} {pad:?} {count_include_pad}");
                assert_close(ours, pool.forward(x), &what);
            }
        }
    }

    #[test]
    fn leaves_what_it_does_not_handle_to_burn() {
        let device = Device::flex();
        let x = Tensor::<4>::zeros([1, 2, 8, 8], &device);
        let ceil = MaxPool2dConfig::new([3, 3]).with_ceil_mode(true).init();
        assert!(try_max_pool2d(&ceil, &x).is_none());
        let same = MaxPool2dConfig::new([3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init();
        assert!(try_max_pool2d(&same, &x).is_none());
        let training = Tensor::<4>::zeros([1, 2, 8, 8], &device.clone().autodiff());
        assert!(try_max_pool2d(&MaxPool2dConfig::new([3, 3]).init(), &training).is_none());
    }
}
