//! The dense convolution computed straight from the input planes on x86-64 CPUs with AVX-512 or
//! AVX2 + FMA, and in the browser with WebAssembly SIMD: no patch matrix (im2col) written out,
//! and the weights packed once per call (at inference once per layer: `weight_cache`).
//!
//! Why: under im2col + `gemm` a 3x3 layer first writes its patch matrix (9x the input, 27 MB
//! for the 7x7 stride-2 stem of a 360x480 frame), and `gemm` then packs both operands again for
//! every tile, where ONNX Runtime's direct kernels run the same layers faster
//! (`docs/kernels.md`).
//!
//! How: a band of output rows reads a band of input rows. That band is copied once per tile,
//! zero padding written out and each row split into its stride phases (phase `(py, px)` holds
//! padded rows `py, py + s, ...` and columns `px, px + s, ...`), into planes `Wq = W' + (kw - 1)
//! / s` wide. Read as one flat run `q = oy * Wq + ox`, the band's outputs then take the input
//! under tap `(ky, kx)` from one flat run of one phase plane, at a fixed offset. `R` output
//! channels times `V` vectors of that run are `R x V` accumulators held in registers and summed
//! over input channels and taps, one vector load per `V` and one broadcast weight per `R` at each
//! step (`super::microkernel`, which Winograd shares), fed without a patch matrix. The
//! `(kw - 1) / s` extra columns per row are computed and dropped when the tile is written out
//! (with bias, residual and ReLU).

use std::ops::Range;

use super::geometry::{Geometry, Operands};
use super::microkernel::{Band, Isa, multiply};
use super::phase_row::{load_phase_pair, load_phase_row};
use super::tiles::{OutputPtr, Scratch, Tile, TileKernel, equal_bands};

/// Whether the direct kernel beats im2col + `gemm` on this layer: on maps of 2048 outputs and
/// more, pointwise layers included. Below, the `(kw - 1) / s` dropped columns per row and the
/// partial last vectors cost more than the patch matrix does (`docs/kernels.md`).
pub(super) fn suits(geometry: &Geometry) -> bool {
    geometry.out_pixels() >= 2048
}

/// The weights `[C_out, C_in, kh, kw]` regrouped as `[C_out / R][C_in * kh * kw][R]` (the last
/// block padded with zeros), so that each step of the kernel reads its `R` weights together.
pub(super) struct PackedWeights {
    isa: Isa,
    values: Vec<f32>,
}

impl PackedWeights {
    pub fn new(isa: Isa, geometry: &Geometry, weight: &[f32]) -> Self {
        let block = isa.channels();
        let patch_len = geometry.patch_len();
        let blocks = geometry.channels_out.div_ceil(block);
        let mut values = vec![0.0; blocks * patch_len * block];
        let pack = |(b, packed): (usize, &mut [f32])| {
            let filters = weight.chunks_exact(patch_len).skip(b * block).take(block);
            for (r, filter) in filters.enumerate() {
                for (i, &w) in filter.iter().enumerate() {
                    packed[i * block + r] = w;
                }
            }
        };
        // In parallel: a 512 -> 512 3x3 layer has 2.4 M weights.
        #[cfg(feature = "native")]
        {
            use rayon::prelude::*;
            values
                .par_chunks_mut(patch_len * block)
                .with_min_len((65536 / (patch_len * block).max(1)).max(1))
                .enumerate()
                .for_each(pack);
        }
        #[cfg(not(feature = "native"))]
        values
            .chunks_mut(patch_len * block)
            .enumerate()
            .for_each(pack);
        Self { isa, values }
    }

    /// Floats held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    fn block(&self, index: usize, patch_len: usize) -> &[f32] {
        let len = patch_len * self.isa.channels();
        &self.values[index * len..][..len]
    }
}

/// Where the band of one tile lies in its buffer.
struct BandLayout {
    /// `Wq`: floats per phase-plane row, `W' + (kw - 1) / sw`.
    width: usize,
    /// Rows per phase plane: the band's output rows and `(kh - 1) / sh` more.
    height: usize,
    /// Floats from one phase plane to the next: its rows, then slack for the reads of the
    /// dropped outputs past the last row.
    plane_stride: usize,
    /// Flat outputs of the band, `rows * Wq`, rounded up to whole vectors.
    outputs: usize,
}

impl BandLayout {
    fn new(geometry: &Geometry, rows: usize, isa: Isa) -> Self {
        let [kernel_h, kernel_w] = geometry.kernel;
        let [stride_h, stride_w] = geometry.stride;
        let width = geometry.out_w + (kernel_w - 1) / stride_w;
        let height = rows + (kernel_h - 1) / stride_h;
        let outputs = (rows * width).next_multiple_of(isa.lanes());
        // The last block reads up to `outputs - 1 + (kh - 1) / sh * Wq + (kw - 1) / sw`.
        let slack = outputs - rows * width + (kernel_w - 1) / stride_w;
        Self {
            width,
            height,
            plane_stride: height * width + slack,
            outputs,
        }
    }

    fn phases(geometry: &Geometry) -> usize {
        geometry.stride[0] * geometry.stride[1]
    }

    /// Floats from one input channel's phase planes to the next.
    fn channel_stride(&self, geometry: &Geometry) -> usize {
        Self::phases(geometry) * self.plane_stride
    }

    /// Offset of tap `(ky, kx)`'s inputs from the band's start, for flat output 0.
    fn tap_offsets(&self, geometry: &Geometry) -> Vec<usize> {
        let [kernel_h, kernel_w] = geometry.kernel;
        let [stride_h, stride_w] = geometry.stride;
        (0..kernel_h)
            .flat_map(|ky| (0..kernel_w).map(move |kx| (ky, kx)))
            .map(|(ky, kx)| {
                let phase = (ky % stride_h) * stride_w + kx % stride_w;
                phase * self.plane_stride + (ky / stride_h) * self.width + kx / stride_w
            })
            .collect()
    }
}

impl TileKernel for PackedWeights {
    /// Output rows per tile: bands of at most about 96 Ki input floats (384 KiB, within L2) once
    /// padded and split, at least 4 rows so that the rows read twice (the halo) stay few, and of
    /// equal height, so that no band is a sliver.
    fn rows_per_tile(&self, geometry: &Geometry) -> usize {
        let layout = BandLayout::new(geometry, 1, Isa::Avx2);
        let per_row = geometry.channels_in * geometry.stride[0] * geometry.stride[1] * layout.width;
        let most = (96 * 1024 / per_row.max(1)).max(4);
        equal_bands(geometry.out_h, most)
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
        let isa = self.isa;
        let block = isa.channels();
        let layout = BandLayout::new(geometry, tile.rows.len(), isa);
        let input = operands.image(geometry, tile.image);
        // SAFETY: on x86-64 this is compiled for AVX2 + FMA, which every x86 ISA `Isa::detect`
        // finds includes; elsewhere it is a plain function.
        unsafe {
            load_band(
                geometry,
                &layout,
                input,
                tile.rows.clone(),
                &mut scratch.input,
            )
        };

        let blocks = tile.channels.len().div_ceil(block);
        scratch
            .products
            .resize(blocks * block * layout.outputs, 0.0);
        let patch_len = geometry.patch_len();
        // SAFETY: the band holds `C_in` channel strides of phase planes whose slack covers every
        // read of a register block starting before `layout.outputs` (see `BandLayout::new`);
        // each block of weights holds `C_in * kh * kw * R` values. The ISA was detected.
        unsafe {
            multiply(
                isa,
                Band {
                    values: &scratch.input,
                    channel_stride: layout.channel_stride(geometry),
                    taps: &layout.tap_offsets(geometry),
                    channels: geometry.channels_in,
                    len: layout.outputs,
                },
                |b| self.block(tile.channels.start / block + b, patch_len),
                &mut scratch.products[..blocks * block * layout.outputs],
            )
        };
        // SAFETY: as for `load_band` above.
        unsafe { write_out(geometry, operands, tile, &layout, &scratch.products, output) };
    }
}

/// Copies the input rows under output rows `rows` into `band`: per input channel, `sh * sw` phase
/// planes of `layout.height` rows of `layout.width`, zero where they fall in the padding.
/// Compiled for AVX2 (the copies, the stride-2 split); the caller checks the CPU has it.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn load_band(
    geometry: &Geometry,
    layout: &BandLayout,
    input: &[f32],
    rows: Range<usize>,
    band: &mut Vec<f32>,
) {
    let Geometry {
        height,
        width,
        stride: [stride_h, stride_w],
        padding: [top, left],
        ..
    } = *geometry;
    let channel_stride = layout.channel_stride(geometry);
    band.resize(geometry.channels_in * channel_stride, 0.0);
    for (plane, channel_band) in input
        .chunks_exact(height * width)
        .zip(band.chunks_exact_mut(channel_stride))
    {
        for py in 0..stride_h {
            for j in 0..layout.height {
                let padded_row = (rows.start + j) * stride_h + py;
                let source = padded_row
                    .checked_sub(top)
                    .filter(|&iy| iy < height)
                    .map(|iy| &plane[iy * width..][..width]);
                let row_at =
                    |px: usize| (py * stride_w + px) * layout.plane_stride + j * layout.width;
                match source {
                    // Both column phases in one pass over the input row.
                    Some(source) if stride_w == 2 => {
                        let (even_plane, odd_plane) = channel_band.split_at_mut(row_at(1));
                        let even = &mut even_plane[row_at(0)..][..layout.width];
                        load_phase_pair(source, left, even, &mut odd_plane[..layout.width]);
                    }
                    _ => {
                        for px in 0..stride_w {
                            let row = &mut channel_band[row_at(px)..][..layout.width];
                            match source {
                                Some(source) => load_phase_row(source, px, stride_w, left, row),
                                None => row.fill(0.0),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The tile's outputs from `products` to their NCHW places, dropping the extra columns, with
/// bias, residual and ReLU applied on the way. Compiled for AVX2; the caller checks the CPU has
/// it.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn write_out(
    geometry: &Geometry,
    operands: &Operands,
    tile: &Tile,
    layout: &BandLayout,
    products: &[f32],
    output: OutputPtr,
) {
    for (local, channel) in tile.channels.clone().enumerate() {
        for (j, oy) in tile.rows.clone().enumerate() {
            let computed = &products[local * layout.outputs + j * layout.width..];
            // SAFETY: row `oy` of this channel belongs to this tile.
            unsafe { output.finish_row(geometry, operands, tile.image, channel, oy, computed) };
        }
    }
}
