//! The dense convolution as im2col + `gemm`, tile by tile: the path for layers where the direct
//! and Winograd kernels do not pay, and for CPUs with none of their instruction sets. The
//! unfold also serves the backward pass (`super::conv_backward`).
//!
//! Each tile's patch matrix is unfolded straight from the NCHW rows, and `gemm` writes straight
//! into the NCHW output (burn-flex copies the input to NHWC, unfolds into a zeroed buffer and
//! scatters the result back one value at a time).

use std::ops::Range;

use super::geometry::{Geometry, Operands};
use super::phase_row::{inside_columns, load_phase_row};
use super::tiles::{OutputPtr, Scratch, Tile, TileKernel, finish_in_place};

/// The im2col + `gemm` path (its weights are read as they are).
pub(super) struct Im2col;

impl TileKernel for Im2col {
    /// A patch matrix of about 128 Ki floats (512 KiB, within L2), and at least 64 pixels so
    /// that gemm's micro-kernel (64 pixels wide) has full tiles.
    fn rows_per_tile(&self, geometry: &Geometry) -> usize {
        let pixels = (128 * 1024 / geometry.patch_len()).max(64);
        pixels.div_ceil(geometry.out_w).clamp(1, geometry.out_h)
    }

    fn channel_align(&self) -> usize {
        1
    }

    /// Unfolds the tile's patches, multiplies them by the weights, then adds bias and residual
    /// and applies ReLU.
    fn run_tile(
        &self,
        geometry: &Geometry,
        operands: &Operands,
        tile: &Tile,
        scratch: &mut Scratch,
        output: OutputPtr,
    ) {
        let patches = &mut scratch.input;
        let pixels = geometry.out_pixels();
        let patch_len = geometry.patch_len();
        let input = operands.image(geometry, tile.image);
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
        // SAFETY: the destination is the (tile.channels x tile pixels) block of this image in
        // the `[N, C_out, H' * W']` output, rows `pixels` apart: in bounds (asserted in
        // `tiles::run`), and written by this tile alone. The weight and patch slices hold
        // `m x k` and `k x n` values with the strides given.
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
            let bias = operands.bias.map_or(0.0, |b| b[channel]);
            let residual = operands.residual.map(|r| &r[offset..][..tile_pixels]);
            finish_in_place(row, bias, residual, operands.apply_relu);
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
