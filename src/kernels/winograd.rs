//! The 3x3, stride-1 convolution as Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2016), wherever the direct kernel runs:
//! x86-64 with AVX-512 or AVX2 + FMA, and WebAssembly SIMD in the browser.
//!
//! Why: 3x3 stride-1 layers are most of ResNet18's multiply-adds (and V2's Detail Branch and
//! heads), and a direct kernel cannot do them in fewer than 9 per output and input channel;
//! ONNX Runtime's run near this CPU's peak. F(2x2, 3x3) computes each 2x2 block of outputs from
//! a 4x4 block of inputs with 16 multiply-adds per channel pair instead of 36 (2.25x fewer),
//! for a few additions per value on the way in and out. Its transforms' coefficients are 0, ±1
//! and ±1/2, exact in binary, so the result stays within float rounding of the direct one
//! (the larger F(4x4, 3x3) loses digits, and is not used).
//!
//! How, per tile (a band of output rows of one image, for a range of output channels):
//! - each 4x4 input block `d` (overlapping by 2) becomes `V = Bᵀ d B`, stored as 16 planes
//!   `[16][C_in][blocks]`: element `e` of every block of the band, channel by channel;
//! - the weights become `U = G g Gᵀ`, packed per register block of output channels like the
//!   direct kernel's (once per call in training; at inference once per layer, `weight_cache`);
//! - for each of the 16 elements, `M_e = U_e · V_e` is a 1x1 convolution over the band's blocks,
//!   which the direct kernel's register-blocked core computes as it is;
//! - each 2x2 output block is `Aᵀ M A`, written out with bias, residual and ReLU.

use std::ops::Range;

use super::geometry::{Geometry, Operands};
use super::microkernel::{self, Band, Isa};
use super::phase_row::load_phase_pair;
use super::tiles::{OutputPtr, Scratch, Tile, TileKernel, equal_bands};

/// The 16 elements of a transformed 4x4 block.
const ELEMENTS: usize = 16;

/// Whether F(2x2, 3x3) applies and pays on this layer: a 3x3, stride-1 convolution with enough
/// channels on both sides that the products, not the transforms, dominate, and at least 16 output
/// blocks per image (one AVX-512 vector; a tile holds one image's blocks, and fewer would leave
/// most of each vector padding). Not the batch's blocks: an image's result must not depend on what
/// it is batched with, and the paths round differently. (ResNet18's deep 12x15 maps, 48 blocks,
/// gain too, with the weights prepared once per layer: `weight_cache`.)
pub(super) fn suits(geometry: &Geometry) -> bool {
    geometry.kernel == [3, 3]
        && geometry.stride == [1, 1]
        && geometry.channels_in >= 16
        && geometry.channels_out >= 16
        && geometry.out_h.div_ceil(2) * geometry.out_w.div_ceil(2) >= 16
}

/// The weights `[C_out, C_in, 3, 3]` transformed to `U = G g Gᵀ` and packed as
/// `[C_out / R][16][C_in][R]` (the last block padded with zeros): the `R` weights one step of
/// the register block reads lie together, and a block's 16 elements follow each other.
pub(super) struct TransformedWeights {
    isa: Isa,
    channels_in: usize,
    values: Vec<f32>,
}

impl TransformedWeights {
    pub fn new(isa: Isa, geometry: &Geometry, weight: &[f32]) -> Self {
        let block = isa.channels();
        let channels_in = geometry.channels_in;
        let blocks = geometry.channels_out.div_ceil(block);
        let block_len = ELEMENTS * channels_in * block;
        let mut values = vec![0.0; blocks * block_len];
        let transform = |(b, packed): (usize, &mut [f32])| {
            let filters = weight
                .chunks_exact(channels_in * 9)
                .skip(b * block)
                .take(block);
            for (r, filter) in filters.enumerate() {
                for (c, g) in filter.chunks_exact(9).enumerate() {
                    for (e, u) in transform_filter(g).into_iter().enumerate() {
                        packed[(e * channels_in + c) * block + r] = u;
                    }
                }
            }
        };
        #[cfg(feature = "native")]
        {
            use rayon::prelude::*;
            values
                .par_chunks_mut(block_len)
                .enumerate()
                .for_each(transform);
        }
        #[cfg(not(feature = "native"))]
        values.chunks_mut(block_len).enumerate().for_each(transform);
        Self {
            isa,
            channels_in,
            values,
        }
    }

    /// Floats held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Element `e` of output-channel block `index`: `[C_in][R]`.
    fn element(&self, index: usize, e: usize) -> &[f32] {
        let len = self.channels_in * self.isa.channels();
        &self.values[(index * ELEMENTS + e) * len..][..len]
    }
}

/// `G g Gᵀ` of one 3x3 filter `g` (row-major), row-major 4x4, with
/// `G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]]`.
#[inline(always)]
fn transform_filter(g: &[f32]) -> [f32; ELEMENTS] {
    let g: &[f32; 9] = g.try_into().expect("a 3x3 filter");
    // `G` applied to three values: a column of `g`, then a row of `G g`.
    #[inline(always)]
    fn apply_g(a: f32, b: f32, c: f32) -> [f32; 4] {
        [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]
    }
    let [c0, c1, c2] = [
        apply_g(g[0], g[3], g[6]),
        apply_g(g[1], g[4], g[7]),
        apply_g(g[2], g[5], g[8]),
    ];
    let [r0, r1, r2, r3] = [
        apply_g(c0[0], c1[0], c2[0]),
        apply_g(c0[1], c1[1], c2[1]),
        apply_g(c0[2], c1[2], c2[2]),
        apply_g(c0[3], c1[3], c2[3]),
    ];
    [
        r0[0], r0[1], r0[2], r0[3], r1[0], r1[1], r1[2], r1[3], r2[0], r2[1], r2[2], r2[3], r3[0],
        r3[1], r3[2], r3[3],
    ]
}

/// Where the 2x2 blocks of one tile lie.
struct Blocks {
    /// Block rows of the tile (block row `i` covers output rows `2i, 2i + 1`).
    rows: Range<usize>,
    /// Blocks per block row.
    per_row: usize,
    /// Floats per element plane row: the tile's blocks, rounded up to whole vectors.
    stride: usize,
    /// Blocks per block row rounded up to whole [`Chunk`]s: what the transforms compute, the
    /// excess spilling into the next block row (computed after it) or the plane's slack.
    per_row_chunks: usize,
}

impl Blocks {
    fn new(geometry: &Geometry, rows: &Range<usize>, isa: Isa) -> Self {
        let rows = rows.start / 2..rows.end.div_ceil(2);
        let per_row = geometry.out_w.div_ceil(2);
        let stride = (rows.len() * per_row).next_multiple_of(isa.lanes());
        Self {
            rows,
            per_row,
            stride,
            per_row_chunks: per_row.next_multiple_of(CHUNK),
        }
    }

    /// Floats of one element's plane, `[C_in or C_out][stride]`, and slack for the last block
    /// row's spill.
    fn plane(&self, channels: usize) -> usize {
        channels * self.stride + CHUNK
    }
}

/// Blocks per step of the transforms: one AVX2 vector, two of wasm SIMD. Every row is computed
/// in whole steps, so that no step is a scalar remainder (a block row of ResNet18's 23x30
/// maps is 15 blocks).
const CHUNK: usize = 8;

/// One step's worth of blocks: fixed-size arrays, which LLVM turns into vector instructions.
type Chunk = [f32; CHUNK];

#[inline(always)]
fn load(values: &[f32], at: usize) -> Chunk {
    values[at..at + CHUNK].try_into().expect("a whole chunk")
}

#[inline(always)]
fn add(a: Chunk, b: Chunk) -> Chunk {
    let mut sum = a;
    for (s, b) in sum.iter_mut().zip(b) {
        *s += b;
    }
    sum
}

#[inline(always)]
fn sub(a: Chunk, b: Chunk) -> Chunk {
    let mut difference = a;
    for (d, b) in difference.iter_mut().zip(b) {
        *d -= b;
    }
    difference
}

/// `Bᵀ x` for `Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]`.
#[inline(always)]
fn b_transposed([x0, x1, x2, x3]: [Chunk; 4]) -> [Chunk; 4] {
    [sub(x0, x2), add(x1, x2), sub(x2, x1), sub(x1, x3)]
}

/// `Aᵀ x` for `Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]`.
#[inline(always)]
fn a_transposed([x0, x1, x2, x3]: [Chunk; 4]) -> [Chunk; 2] {
    [add(add(x0, x1), x2), sub(sub(x1, x2), x3)]
}

impl TileKernel for TransformedWeights {
    /// Output rows per tile: bands of 2x2 blocks whose element planes `V_e` (`C_in x blocks`
    /// floats) stay within 128 KiB, so that one sits in L2 while every output block reads it; of
    /// equal height, and even, so that each tile starts on a block.
    fn rows_per_tile(&self, geometry: &Geometry) -> usize {
        let block_rows = geometry.out_h.div_ceil(2);
        let per_block_row = geometry.channels_in * geometry.out_w.div_ceil(2);
        let most = (32 * 1024 / per_block_row.max(1)).max(1);
        2 * equal_bands(block_rows, most)
    }

    fn channel_align(&self) -> usize {
        self.isa.channels()
    }

    fn run_tile(
        &self,
        geometry: &Geometry,
        operands: &Operands,
        tile: &Tile,
        scratch: &mut Scratch,
        output: OutputPtr,
    ) {
        assert_eq!(tile.rows.start % 2, 0, "tiles start on a block row");
        let isa = self.isa;
        let block = isa.channels();
        let blocks = Blocks::new(geometry, &tile.rows, isa);
        let input = operands.image(geometry, tile.image);
        // SAFETY: on x86-64 this is compiled for AVX2 + FMA, which every x86 ISA `Isa::detect`
        // finds includes; elsewhere it is a plain function.
        unsafe { transform_input(geometry, &blocks, input, scratch) };

        let channels_in = geometry.channels_in;
        let channel_blocks = tile.channels.len().div_ceil(block);
        let plane = blocks.plane(channels_in);
        let product_plane = blocks.plane(channel_blocks * block);
        scratch.products.resize(ELEMENTS * product_plane, 0.0);
        // Element by element, each a 1x1 convolution: `V_e` stays in L2 while every output
        // block multiplies it.
        for e in 0..ELEMENTS {
            // SAFETY: `V_e` holds `C_in` rows of `stride` floats, `stride` a whole number of
            // vectors; each element of a block of weights holds `C_in * R` values; `M_e` is
            // `channel_blocks` blocks of `R` rows of `stride`. The ISA was detected.
            unsafe {
                microkernel::multiply(
                    isa,
                    Band {
                        values: &scratch.input[e * plane..][..channels_in * blocks.stride],
                        channel_stride: blocks.stride,
                        taps: &[0],
                        channels: channels_in,
                        len: blocks.stride,
                    },
                    |b| self.element(tile.channels.start / block + b, e),
                    &mut scratch.products[e * product_plane..]
                        [..channel_blocks * block * blocks.stride],
                )
            };
        }
        // SAFETY: as for `transform_input` above.
        unsafe { transform_output(geometry, operands, tile, &blocks, scratch, output) };
    }
}

/// Writes `V = Bᵀ d B` of every 4x4 input block `d` of the tile into `scratch.input`
/// (`[16][C_in][stride]`, each plane followed by `CHUNK` floats of slack).
///
/// Block `(i, j)` reads padded rows `2i..2i + 4` and columns `2j..2j + 4`: split into even and
/// odd columns (`load_phase_pair`), its columns are `E[j], O[j], E[j + 1], O[j + 1]`, so the
/// whole transform is elementwise over a block row, computed `CHUNK` blocks at a time. Compiled
/// for AVX2.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn transform_input(
    geometry: &Geometry,
    blocks: &Blocks,
    input: &[f32],
    scratch: &mut Scratch,
) {
    let Geometry {
        height,
        width,
        channels_in,
        padding: [top, left],
        ..
    } = *geometry;
    let per_row = blocks.per_row;
    let stride = blocks.stride;
    let plane = blocks.plane(channels_in);
    scratch.input.resize(ELEMENTS * plane, 0.0);
    // Even and odd columns of the band's padded rows, each split once (block rows overlap by two
    // rows), long enough for the last chunk's `j + 1`.
    let half = blocks.per_row_chunks + 1;
    let band_rows = 2 * blocks.rows.len() + 2;
    scratch.rows.resize(2 * band_rows * half, 0.0);
    let split = &mut scratch.rows[..2 * band_rows * half];
    for (c, channel) in input.chunks_exact(height * width).enumerate() {
        for (r, halves) in split.chunks_exact_mut(2 * half).enumerate() {
            let source = (2 * blocks.rows.start + r)
                .checked_sub(top)
                .filter(|&y| y < height)
                .map(|y| &channel[y * width..][..width]);
            let (even, odd) = halves.split_at_mut(half);
            match source {
                Some(source) => load_phase_pair(source, left, even, odd),
                None => halves.fill(0.0),
            }
        }
        // Block rows in order, and channels in order: a chunk past a block row's end lands on
        // the next block row (or channel) and is overwritten when that is computed.
        for local in 0..blocks.rows.len() {
            let offset = c * stride + local * per_row;
            for j in (0..per_row).step_by(CHUNK) {
                // `d[dy][dx]` for every block of the chunk.
                let d: [[Chunk; 4]; 4] = std::array::from_fn(|dy| {
                    let row = &split[(2 * local + dy) * 2 * half..][..2 * half];
                    let (even, odd) = row.split_at(half);
                    [
                        load(even, j),
                        load(odd, j),
                        load(even, j + 1),
                        load(odd, j + 1),
                    ]
                });
                // `Bᵀ d`, column by column, then `(Bᵀ d) B`, row by row.
                let columns: [[Chunk; 4]; 4] = std::array::from_fn(|dx| {
                    b_transposed([d[0][dx], d[1][dx], d[2][dx], d[3][dx]])
                });
                let rows: [[Chunk; 4]; 4] =
                    std::array::from_fn(|a| std::array::from_fn(|dx| columns[dx][a]));
                for (a, row) in rows.into_iter().enumerate() {
                    for (b, v) in b_transposed(row).into_iter().enumerate() {
                        let at = (4 * a + b) * plane + offset + j;
                        scratch.input[at..at + CHUNK].copy_from_slice(&v);
                    }
                }
            }
        }
    }
}

/// Writes `Aᵀ M A` of every 2x2 output block of the tile to its NCHW place, with bias, residual
/// and ReLU, dropping the row and column past an odd output size. Compiled for AVX2.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn transform_output(
    geometry: &Geometry,
    operands: &Operands,
    tile: &Tile,
    blocks: &Blocks,
    scratch: &mut Scratch,
    output: OutputPtr,
) {
    let per_row = blocks.per_row;
    let product_plane = scratch.products.len() / ELEMENTS;
    // The two output rows of a block row, as computed: whole chunks of blocks.
    let row_len = 2 * blocks.per_row_chunks;
    scratch.rows.resize(2 * row_len, 0.0);
    let (top_row, bottom_row) = scratch.rows[..2 * row_len].split_at_mut(row_len);
    for (local, channel) in tile.channels.clone().enumerate() {
        for (block_row, i) in blocks.rows.clone().enumerate() {
            let products = &scratch.products[local * blocks.stride + block_row * per_row..];
            for j in (0..per_row).step_by(CHUNK) {
                let m: [[Chunk; 4]; 4] = std::array::from_fn(|a| {
                    std::array::from_fn(|b| load(products, (4 * a + b) * product_plane + j))
                });
                // `Aᵀ M`, column by column, then `(Aᵀ M) A`, row by row.
                let columns: [[Chunk; 2]; 4] =
                    std::array::from_fn(|b| a_transposed([m[0][b], m[1][b], m[2][b], m[3][b]]));
                for (dy, out) in [&mut *top_row, &mut *bottom_row].into_iter().enumerate() {
                    let [even, odd] = a_transposed([
                        columns[0][dy],
                        columns[1][dy],
                        columns[2][dy],
                        columns[3][dy],
                    ]);
                    let pairs = out[2 * j..][..2 * CHUNK].chunks_exact_mut(2);
                    for (pair, (e, o)) in pairs.zip(even.into_iter().zip(odd)) {
                        pair[0] = e;
                        pair[1] = o;
                    }
                }
            }
            for (dy, computed) in [&*top_row, &*bottom_row].into_iter().enumerate() {
                let oy = 2 * i + dy;
                if oy >= tile.rows.end {
                    continue;
                }
                // SAFETY: row `oy` of this channel belongs to this tile.
                unsafe { output.finish_row(geometry, operands, tile.image, channel, oy, computed) };
            }
        }
    }
}
