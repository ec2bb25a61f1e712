//! The tile runner every dense-convolution path shares (im2col + `gemm`, direct, Winograd):
//! the output split into tiles, the tiles run on all cores with one set of buffers per worker,
//! and each tile's rows finished (bias, residual, ReLU) while they are still in cache.
//!
//! A path only says how tall its tiles are, where their channel ranges may start, and how one
//! tile is computed ([`TileKernel`]).

use std::mem::MaybeUninit;
use std::ops::Range;

use super::geometry::{Geometry, Operands};

/// One unit of work: a band of output rows of one image, for a range of output channels.
#[derive(Clone, Debug)]
pub(super) struct Tile {
    pub image: usize,
    pub rows: Range<usize>,
    pub channels: Range<usize>,
}

/// How one convolution path computes a tile (implemented by its prepared weights).
pub(super) trait TileKernel: Sync {
    /// Output rows per tile.
    fn rows_per_tile(&self, geometry: &Geometry) -> usize;

    /// Tiles split by output channel start on a multiple of this many.
    fn channel_align(&self) -> usize;

    /// Computes `tile` into `output`, writing every element of the tile, with this worker's
    /// buffers.
    fn run_tile(
        &self,
        geometry: &Geometry,
        operands: &Operands,
        tile: &Tile,
        scratch: &mut Scratch,
        output: OutputPtr,
    );
}

/// The height of the fewest equal bands that split `total` rows with none taller than `most`
/// (the last may be shorter): equal heights leave no band a sliver.
pub(super) fn equal_bands(total: usize, most: usize) -> usize {
    total.div_ceil(total.div_ceil(most).max(1))
}

/// A worker's buffers, kept from call to call: each layer reuses the last one's instead of
/// allocating (and zeroing) its own. What a buffer held before is never read.
#[derive(Default)]
pub(super) struct Scratch {
    /// The tile's input as its kernel reads it: the patch matrix, the padded band of phase
    /// planes, or the Winograd-transformed blocks.
    pub input: Vec<f32>,
    /// The products before the epilogue (the direct kernel's wide rows, Winograd's `M`).
    pub products: Vec<f32>,
    /// Rows in flight through the Winograd transforms.
    pub rows: Vec<f32>,
}

std::thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// The output buffer, shared by tiles that write disjoint parts of it.
#[derive(Clone, Copy)]
pub(super) struct OutputPtr(pub *mut f32);
// SAFETY: every tile writes only its own (channel range x row band) of one image, and the
// tiles of one call partition the output, so no two threads touch the same element.
unsafe impl Send for OutputPtr {}
unsafe impl Sync for OutputPtr {}

impl OutputPtr {
    /// Writes output row `oy` of `channel` in `image` as `computed + bias (+ residual)`, then
    /// ReLU if `operands.apply_relu`.
    ///
    /// # Safety
    /// The row must belong to the caller's tile (the tiles of a call partition the output), and
    /// the pointer be the call's whole `[N, C_out, H', W']` output.
    #[inline(always)]
    pub unsafe fn finish_row(
        self,
        geometry: &Geometry,
        operands: &Operands,
        image: usize,
        channel: usize,
        oy: usize,
        computed: &[f32],
    ) {
        let out_w = geometry.out_w;
        let offset = ((image * geometry.channels_out + channel) * geometry.out_h + oy) * out_w;
        // SAFETY: the caller's contract; the row lies in the output buffer.
        let row = unsafe { std::slice::from_raw_parts_mut(self.0.add(offset), out_w) };
        let bias = operands.bias.map_or(0.0, |b| b[channel]);
        let residual = operands.residual.map(|r| &r[offset..][..out_w]);
        finish(row, &computed[..out_w], bias, residual, operands.apply_relu);
    }
}

/// `row = computed + bias (+ residual)`, then ReLU if `apply_relu`.
#[inline(always)]
fn finish(row: &mut [f32], computed: &[f32], bias: f32, residual: Option<&[f32]>, relu: bool) {
    match residual {
        Some(residual) => {
            for ((y, &v), &r) in row.iter_mut().zip(computed).zip(residual) {
                *y = activate(v + bias + r, relu);
            }
        }
        None => {
            for (y, &v) in row.iter_mut().zip(computed) {
                *y = activate(v + bias, relu);
            }
        }
    }
}

/// [`finish`] on a row its kernel wrote in place (im2col's `gemm` writes the output itself).
#[inline(always)]
pub(super) fn finish_in_place(row: &mut [f32], bias: f32, residual: Option<&[f32]>, relu: bool) {
    match residual {
        Some(residual) => {
            for (y, &r) in row.iter_mut().zip(residual) {
                *y = activate(*y + bias + r, relu);
            }
        }
        None => {
            for y in row.iter_mut() {
                *y = activate(*y + bias, relu);
            }
        }
    }
}

#[inline(always)]
fn activate(value: f32, relu: bool) -> f32 {
    if relu { value.max(0.0) } else { value }
}

/// Computes the convolution into `output` (`[N, C_out, H' * W']`) tile by tile through
/// `kernel`, writing every element.
pub(super) fn run(
    geometry: &Geometry,
    operands: &Operands,
    kernel: &impl TileKernel,
    output: &mut [MaybeUninit<f32>],
) {
    assert_eq!(
        output.len(),
        geometry.batch * geometry.channels_out * geometry.out_pixels()
    );
    let output = OutputPtr(output.as_mut_ptr().cast());
    let rows_per_tile = kernel.rows_per_tile(geometry);
    let channel_align = kernel.channel_align();
    let work = |tile: Tile| {
        assert_eq!(
            tile.channels.start % channel_align,
            0,
            "tiles start on a block"
        );
        SCRATCH
            .with_borrow_mut(|scratch| kernel.run_tile(geometry, operands, &tile, scratch, output))
    };
    #[cfg(feature = "native")]
    {
        use rayon::prelude::*;
        let threads = rayon::current_num_threads();
        tiles(geometry, rows_per_tile, channel_align, threads)
            .into_par_iter()
            .for_each(work);
    }
    #[cfg(not(feature = "native"))]
    tiles(geometry, rows_per_tile, channel_align, 1)
        .into_iter()
        .for_each(work);
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
