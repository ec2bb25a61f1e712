//! Gradients of the dense (`groups = 1`) convolution on the CPU.
//!
//! With `X_n = im2col(x_n)` (`[C_in * kh * kw, H' * W']`, as `im2col::unfold` writes it) the
//! forward pass is `Y_n = W . X_n`. So
//! - the weight gradient is `dW = sum_n dY_n . X_n^T`: one gemm per tile of output rows,
//!   accumulated in place (burn 0.22's generic backward runs it as a convolution whose "kernel"
//!   is the whole output gradient, a memory-bound loop per input channel);
//! - the input gradient is `dx_n = col2im(W^T . dY_n)`: the same tiles, multiplied the other
//!   way and folded back onto the input rows (burn's runs a transposed convolution);
//! - the bias gradient is the sum of `dY` over images and pixels.
//!
//! Both gradients share one unfolded tile. Images run in parallel, each with its own
//! weight-gradient accumulator (folded tiles overlap in the input, so an image is one worker's),
//! summed in image order at the end, so that the result does not depend on the scheduling.

use std::ops::Range;

use burn::backend::flex::FlexTensor;

use super::conv::{Path, forward};
use super::geometry::{Geometry, Operands};
use super::im2col::unfold;
use super::phase_row::inside_columns;

/// Output rows per tile of the backward pass: the patch matrix of about 256 Ki floats (1 MiB),
/// and at least 256 pixels, so that the weight-gradient gemm (whose inner dimension is the tile's
/// pixels) does enough work per read and write of the accumulator.
fn rows_per_tile(geometry: &Geometry) -> usize {
    let pixels = (256 * 1024 / geometry.patch_len()).max(256);
    pixels.div_ceil(geometry.out_w).clamp(1, geometry.out_h)
}

/// Gradients of a dense convolution: `(dx, dW)` for `x: [N, C_in, H, W]`,
/// `weight: [C_out, C_in, kh, kw]` and the output gradient `dy: [N, C_out, H', W']`, all
/// row-major. `dx` is `None` when not wanted (the network's input needs none).
pub(super) fn conv2d_backward(
    geometry: &Geometry,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    want_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let input_len = geometry.input_len();
    let output_len = geometry.channels_out * geometry.out_pixels();
    let weight_len = geometry.channels_out * geometry.patch_len();
    let mut dx = want_dx.then(|| vec![0.0f32; geometry.batch * input_len]);

    let per_image =
        |image: usize, dx_image: Option<&mut [f32]>, dw: &mut [f32], patches: &mut Vec<f32>| {
            image_backward(
                geometry,
                &x[image * input_len..][..input_len],
                weight,
                &dy[image * output_len..][..output_len],
                dx_image,
                dw,
                patches,
            );
        };

    #[cfg(feature = "native")]
    let dw = {
        use rayon::prelude::*;
        let dx_images: Vec<Option<&mut [f32]>> = match dx.as_mut() {
            Some(dx) => dx.chunks_mut(input_len).map(Some).collect(),
            None => (0..geometry.batch).map(|_| None).collect(),
        };
        // One weight gradient per image, summed in image order. Accumulating in whatever
        // groups rayon's workers happen to take would add the same floats in another order
        // from one run to the next, so the same step would not give the same weights twice
        // (nor a resumed run the steps of an uninterrupted one).
        let per_image_dw: Vec<Vec<f32>> = dx_images
            .into_par_iter()
            .enumerate()
            .map_init(Vec::new, |patches, (image, dx_image)| {
                let mut dw = vec![0.0f32; weight_len];
                per_image(image, dx_image, &mut dw, patches);
                dw
            })
            .collect();
        let mut dw = vec![0.0f32; weight_len];
        for image_dw in &per_image_dw {
            dw.iter_mut().zip(image_dw).for_each(|(a, b)| *a += b);
        }
        dw
    };
    #[cfg(not(feature = "native"))]
    let dw = {
        let (mut dw, mut patches) = (vec![0.0f32; weight_len], Vec::new());
        for image in 0..geometry.batch {
            let dx_image = dx
                .as_mut()
                .map(|dx| &mut dx[image * input_len..][..input_len]);
            per_image(image, dx_image, &mut dw, &mut patches);
        }
        dw
    };
    (dx, dw)
}

/// `dx` of a 3x3 stride-1 convolution as the forward convolution it is: `dy` convolved with the
/// weights flipped and transposed (`W'[c][k][ky][kx] = W[k][c][2 - ky][2 - kx]`), padded by
/// `2 - pad` on each side, through Winograd's F(2x2, 3x3). `None` where that does not apply
/// (another geometry, padding beyond the kernel's reach, too few channels): the caller then
/// folds `W^T . dY` back as usual.
pub(super) fn input_gradient_by_winograd(
    geometry: &Geometry,
    weight: &[f32],
    dy: &[f32],
) -> Option<FlexTensor> {
    let [top, left] = geometry.padding;
    let bottom = (geometry.out_h + 2).checked_sub(geometry.height + top)?;
    let right = (geometry.out_w + 2).checked_sub(geometry.width + left)?;
    if geometry.kernel != [3, 3]
        || geometry.stride != [1, 1]
        || [top, left, bottom, right].iter().any(|&p| p > 2)
    {
        return None;
    }
    let transposed = Geometry {
        batch: geometry.batch,
        channels_in: geometry.channels_out,
        height: geometry.out_h,
        width: geometry.out_w,
        channels_out: geometry.channels_in,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [2 - top, 2 - left],
        out_h: geometry.height,
        out_w: geometry.width,
    };
    if !matches!(Path::best(&transposed), Path::Winograd(_)) {
        return None;
    }
    let (channels_out, channels_in) = (geometry.channels_out, geometry.channels_in);
    let mut flipped = vec![0.0f32; weight.len()];
    for (k, filters) in weight.chunks_exact(channels_in * 9).enumerate() {
        for (c, filter) in filters.chunks_exact(9).enumerate() {
            let target = &mut flipped[(c * channels_out + k) * 9..][..9];
            for (t, &w) in target.iter_mut().zip(filter.iter().rev()) {
                *t = w;
            }
        }
    }
    Some(forward(
        &transposed,
        Operands {
            input: dy,
            weight: &flipped,
            bias: None,
            residual: None,
            apply_relu: false,
        },
    ))
}

/// One image's share: adds `dY_n . X_n^T` to `dw` and writes `col2im(W^T . dY_n)` to `dx`
/// (zeroed by the caller), a band of output rows at a time.
fn image_backward(
    geometry: &Geometry,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    mut dx: Option<&mut [f32]>,
    dw: &mut [f32],
    patches: &mut Vec<f32>,
) {
    let pixels = geometry.out_pixels();
    let patch_len = geometry.patch_len();
    let channels_out = geometry.channels_out;
    let rows_per_tile = rows_per_tile(geometry);
    for start in (0..geometry.out_h).step_by(rows_per_tile) {
        let rows = start..(start + rows_per_tile).min(geometry.out_h);
        let first_pixel = rows.start * geometry.out_w;
        let tile_pixels = rows.len() * geometry.out_w;
        let dy_tile = &dy[first_pixel..];

        // dW += dY_tile [C_out, tile] . patches^T [tile, K]
        let (patch_matrix, patch_row_stride) = if geometry.is_pointwise() {
            (&x[first_pixel..], pixels)
        } else {
            patches.resize(patch_len * tile_pixels, 0.0);
            unfold(geometry, x, rows.clone(), patches);
            (&patches[..], tile_pixels)
        };
        // SAFETY: dw is `[C_out, K]`; dY's tile rows are `pixels` apart with `tile_pixels`
        // values each; the patch matrix holds K rows of `tile_pixels` values,
        // `patch_row_stride` apart. All in bounds, and dw is this worker's own.
        unsafe {
            gemm::gemm(
                channels_out,
                patch_len,
                tile_pixels,
                dw.as_mut_ptr(),
                1,
                patch_len as isize,
                true,
                dy_tile.as_ptr(),
                1,
                pixels as isize,
                patch_matrix.as_ptr(),
                patch_row_stride as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }

        let Some(dx) = dx.as_deref_mut() else {
            continue;
        };
        // dcols [K, tile] = W^T [K, C_out] . dY_tile [C_out, tile]; pointwise: straight into dx.
        let (destination, destination_stride) = if geometry.is_pointwise() {
            (&mut dx[first_pixel..], pixels)
        } else {
            (&mut patches[..], tile_pixels)
        };
        // SAFETY: W^T reads the `[C_out, K]` weights transposed; the destination holds K rows
        // of `tile_pixels` values, `destination_stride` apart (dx's own rows when pointwise,
        // whose pixels this tile alone covers).
        unsafe {
            gemm::gemm(
                patch_len,
                tile_pixels,
                channels_out,
                destination.as_mut_ptr(),
                1,
                destination_stride as isize,
                false,
                weight.as_ptr(),
                patch_len as isize,
                1,
                dy_tile.as_ptr(),
                1,
                pixels as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        if !geometry.is_pointwise() {
            fold(geometry, patches, rows, dx);
        }
    }
}

/// Adds the column matrix of output rows `rows` (`[C_in * kh * kw, pixels]`, the layout
/// `unfold` writes) back onto the input it was read from: the transpose of `unfold`, where
/// every input pixel receives the sum of the columns that read it.
pub(super) fn fold(geometry: &Geometry, columns: &[f32], rows: Range<usize>, dx: &mut [f32]) {
    let Geometry { width, out_w, .. } = *geometry;
    let stride = geometry.stride[1];
    let taps = geometry.kernel[0] * geometry.kernel[1];
    let tile_pixels = rows.len() * out_w;
    let first_row = rows.start;
    for (channel, plane) in dx.chunks_exact_mut(geometry.height * width).enumerate() {
        for_each_tap_row(
            geometry,
            rows.clone(),
            |tap, oy, iy, inside, first_input| {
                let row = channel * taps + tap;
                let column = &columns[row * tile_pixels + (oy - first_row) * out_w..][..out_w];
                let values = &column[inside];
                let in_row = &mut plane[iy * width..][..width];
                if stride == 1 {
                    let target = &mut in_row[first_input..][..values.len()];
                    target.iter_mut().zip(values).for_each(|(t, v)| *t += v);
                } else {
                    let target = in_row[first_input..].iter_mut().step_by(stride);
                    target.zip(values).for_each(|(t, v)| *t += v);
                }
            },
        );
    }
}

/// Every kernel tap `(ky, kx)` over output rows `rows`, where the input it reads lies inside
/// the plane: calls `f(tap, oy, iy, output columns, first input column)`, with
/// `tap = ky * kw + kx`, `iy` the input row, and the input column of output column `ox` at
/// `first input column + (ox - columns.start) * stride`.
pub(super) fn for_each_tap_row(
    geometry: &Geometry,
    rows: Range<usize>,
    mut f: impl FnMut(usize, usize, usize, Range<usize>, usize),
) {
    let Geometry {
        height,
        width,
        kernel: [kernel_h, kernel_w],
        stride: [stride_h, stride_w],
        padding: [pad_top, pad_left],
        out_w,
        ..
    } = *geometry;
    let columns: Vec<_> = (0..kernel_w)
        .map(|kx| inside_columns(kx, pad_left, stride_w, width, out_w))
        .collect();
    for oy in rows {
        for ky in 0..kernel_h {
            let iy = (oy * stride_h + ky).wrapping_sub(pad_top);
            if iy >= height {
                continue;
            }
            for (kx, inside) in columns.iter().enumerate() {
                if inside.is_empty() {
                    continue;
                }
                let first_input = inside.start * stride_w + kx - pad_left;
                f(ky * kernel_w + kx, oy, iy, inside.clone(), first_input);
            }
        }
    }
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;

    /// The gradients of one batch are the same bits whether one worker takes every image or
    /// four share them, as they would not be if each worker summed its own images first.
    #[test]
    fn gradients_do_not_depend_on_the_scheduling() {
        let geometry = Geometry {
            batch: 8,
            channels_in: 6,
            height: 12,
            width: 10,
            channels_out: 5,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            out_h: 12,
            out_w: 10,
        };
        // Values of many magnitudes, so that float sums in another order round differently.
        let values = |len: usize, salt: u64| -> Vec<f32> {
            (0..len as u64)
                .map(|i| {
                    let hash = (i ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                    (hash as f32 / (1u64 << 24) as f32 - 0.5) * 10f32.powi((i % 7) as i32 - 3)
                })
                .collect()
        };
        let x = values(geometry.batch * geometry.input_len(), 1);
        let weight = values(geometry.channels_out * geometry.patch_len(), 2);
        let dy = values(
            geometry.batch * geometry.channels_out * geometry.out_pixels(),
            3,
        );
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| conv2d_backward(&geometry, &x, &weight, &dy, true))
        };
        let (one, four) = (on(1), on(4));
        assert!(one.1.iter().any(|&g| g != 0.0));
        assert_eq!(one.1, four.1, "weight gradient");
        assert_eq!(one.0, four.0, "input gradient");
    }
}
