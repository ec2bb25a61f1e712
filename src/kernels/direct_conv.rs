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
//! step: the register-blocked core of a matrix multiply, fed without a patch matrix. The
//! `(kw - 1) / s` extra columns per row are computed and dropped when the tile is written out
//! (with bias, residual and ReLU).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::ops::Range;

use super::geometry::{Geometry, Operands};
use super::phase_row::{load_phase_pair, load_phase_row};
use super::tiles::{OutputPtr, Scratch, Tile, TileKernel};

/// The vector instructions the direct kernel is compiled for: x86-64's, or WebAssembly's
/// 128-bit SIMD in the browser (elsewhere `conv` keeps to im2col + `gemm`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Isa {
    /// 16 lanes; 8 output channels x 3 vectors = 24 of the 32 registers accumulate (the
    /// fastest of the shapes tried).
    Avx512,
    /// 8 lanes; 6 output channels x 2 vectors = 12 of the 16 registers accumulate (with 4 x 3,
    /// LLVM spilled the accumulators).
    Avx2,
    /// 4 lanes, no fused multiply-add; 4 output channels x 3 vectors = 12 accumulators, within
    /// the 16 vector registers the browsers' compilers have on x86-64 and ARM alike.
    Simd128,
}

impl Isa {
    /// The best this CPU has, or `None` (then `conv` keeps to im2col + `gemm`).
    pub fn detect() -> Option<Self> {
        Self::supported().into_iter().next()
    }

    /// Every ISA this CPU runs, best first.
    pub fn supported() -> Vec<Self> {
        [Self::Avx512, Self::Avx2, Self::Simd128]
            .into_iter()
            .filter(|isa| isa.runs_here())
            .collect()
    }

    fn runs_here(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Self::Simd128 => true,
            _ => false,
        }
    }

    /// Output channels per register block.
    pub const fn channels(self) -> usize {
        match self {
            Self::Avx512 => 8,
            Self::Avx2 => 6,
            Self::Simd128 => 4,
        }
    }

    /// Floats per vector register.
    pub const fn lanes(self) -> usize {
        match self {
            Self::Avx512 => 16,
            Self::Avx2 => 8,
            Self::Simd128 => 4,
        }
    }

    /// Vectors of outputs per register block (fewer at the end of a band).
    const fn vectors(self) -> usize {
        match self {
            Self::Avx512 => 3,
            Self::Avx2 => 2,
            Self::Simd128 => 3,
        }
    }
}

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
        geometry
            .out_h
            .div_ceil(geometry.out_h.div_ceil(most).max(1))
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

/// What [`multiply`] reads: `channels` runs of `len` floats, `channel_stride` apart, each read
/// under every tap at its offset.
pub(super) struct Band<'a> {
    pub values: &'a [f32],
    pub channel_stride: usize,
    pub taps: &'a [usize],
    pub channels: usize,
    /// Outputs per row of products: whole vectors.
    pub len: usize,
}

/// `products[b][r][..len] = sum over channels c and taps t of weights(b)[c][t][r] *
/// band[c * channel_stride + taps[t]..][..len]`, block of `R` output channels `b` after block:
/// the register-blocked core that the direct and the Winograd kernels share. One block's
/// weights stay in L1/L2 while the band, sized for L2, streams past them.
///
/// # Safety
/// `isa` must be supported by this CPU; `band.values` must be readable `channel_stride *
/// (channels - 1) + max(taps) + len` floats on (slack included), each `weights(b)` hold
/// `channels * taps.len() * R` values, and `products` be whole blocks of `R` rows of `len`.
pub(super) unsafe fn multiply<'w>(
    isa: Isa,
    band: Band,
    weights: impl Fn(usize) -> &'w [f32],
    products: &mut [f32],
) {
    let block_len = isa.channels() * band.len;
    for (b, products) in products.chunks_exact_mut(block_len).enumerate() {
        let weights = weights(b);
        for (first, vectors) in register_blocks(band.len / isa.lanes(), isa) {
            // SAFETY: the caller's contract, and `first + vectors * lanes <= len`.
            unsafe {
                accumulate(
                    isa,
                    vectors,
                    band.values.as_ptr().add(first),
                    band.channel_stride,
                    band.taps,
                    weights,
                    band.channels,
                    products.as_mut_ptr().add(first),
                    band.len,
                );
            }
        }
    }
}

/// `(first output, vectors)` of each register block over `total` vectors: full blocks, except
/// that a remainder of one vector after full blocks is evened out (`3 + 1` as `2 + 2`), since a
/// one-vector block reloads every weight for a single vector of outputs.
fn register_blocks(total: usize, isa: Isa) -> impl Iterator<Item = (usize, usize)> {
    let full = isa.vectors();
    let mut done = 0;
    std::iter::from_fn(move || {
        let left = total - done;
        let vectors = match left {
            0 => return None,
            _ if left == full + 1 && full > 2 => full - 1,
            _ => left.min(full),
        };
        let block = (done * isa.lanes(), vectors);
        done += vectors;
        Some(block)
    })
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

/// `wide[r][0..n] = sum over channels c and taps t of weights[c][t][r] *
/// band[c * channel_stride + taps[t] ..][..n]` for the `R` channels of one block, where
/// `n = vectors * isa.lanes()`.
///
/// # Safety
/// `isa` must be supported by this CPU; `band` must be readable `channel_stride * (channels - 1)
/// + max(taps) + n` floats on, `weights` hold `channels * taps.len() * R` values, and `wide` be
/// writable for `R` rows `wide_stride` apart of `n` floats.
#[allow(clippy::too_many_arguments)]
unsafe fn accumulate(
    isa: Isa,
    vectors: usize,
    band: *const f32,
    channel_stride: usize,
    taps: &[usize],
    weights: &[f32],
    channels: usize,
    wide: *mut f32,
    wide_stride: usize,
) {
    debug_assert_eq!(weights.len(), channels * taps.len() * isa.channels());
    // Called through a pointer, never inlined: inside the tile's loops LLVM's register
    // allocator shuffled and spilled the accumulators.
    let block: RegisterBlock = match (isa, vectors) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 3) => accumulate_avx512::<3>,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 2) => accumulate_avx512::<2>,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 1) => accumulate_avx512::<1>,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 2) => accumulate_avx2::<2>,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 1) => accumulate_avx2::<1>,
        #[cfg(target_arch = "wasm32")]
        (Isa::Simd128, 3) => accumulate_simd128::<3>,
        #[cfg(target_arch = "wasm32")]
        (Isa::Simd128, 2) => accumulate_simd128::<2>,
        #[cfg(target_arch = "wasm32")]
        (Isa::Simd128, 1) => accumulate_simd128::<1>,
        _ => unreachable!("{vectors} vectors for {isa:?}, which Isa::detect does not find here"),
    };
    // SAFETY: forwarded from the caller.
    unsafe {
        block(
            band,
            channel_stride,
            taps,
            weights.as_ptr(),
            channels,
            wide,
            wide_stride,
        )
    }
}

/// A register block's signature: `band, channel_stride, taps, weights, channels, wide,
/// wide_stride` as in [`accumulate`].
type RegisterBlock = unsafe fn(*const f32, usize, &[usize], *const f32, usize, *mut f32, usize);

/// One register block: `R` channels x `V` vectors of accumulators.
#[cfg(any(target_arch = "x86_64", target_arch = "wasm32"))]
macro_rules! register_block {
    ($name:ident, $features:literal, $vector:ty, $lanes:expr, $r:expr,
     $zero:ident, $load:ident, $splat:ident, $fma:ident, $store:ident) => {
        #[target_feature(enable = $features)]
        unsafe fn $name<const V: usize>(
            band: *const f32,
            channel_stride: usize,
            taps: &[usize],
            weights: *const f32,
            channels: usize,
            wide: *mut f32,
            wide_stride: usize,
        ) {
            // SAFETY: the bounds are the caller's contract (see `accumulate`).
            unsafe {
                let mut sums: [[$vector; V]; $r] = [[$zero(); V]; $r];
                let mut w = weights;
                for c in 0..channels {
                    let plane = band.add(c * channel_stride);
                    for &tap in taps {
                        let at = plane.add(tap);
                        let mut x: [$vector; V] = [$zero(); V];
                        for v in 0..V {
                            x[v] = $load(at.add(v * $lanes));
                        }
                        for r in 0..$r {
                            let weight = $splat(&*w.add(r));
                            for v in 0..V {
                                sums[r][v] = $fma(weight, x[v], sums[r][v]);
                            }
                        }
                        w = w.add($r);
                    }
                }
                for r in 0..$r {
                    for v in 0..V {
                        $store(wide.add(r * wide_stride + v * $lanes), sums[r][v]);
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
register_block!(
    accumulate_avx512,
    "avx512f",
    __m512,
    16,
    8,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_set1_ps_ref,
    _mm512_fmadd_ps,
    _mm512_storeu_ps
);

#[cfg(target_arch = "x86_64")]
register_block!(
    accumulate_avx2,
    "avx2,fma",
    __m256,
    8,
    6,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_broadcast_ss,
    _mm256_fmadd_ps,
    _mm256_storeu_ps
);

/// `_mm512_set1_ps` from memory, so that it compiles to a broadcast load.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn _mm512_set1_ps_ref(value: &f32) -> __m512 {
    _mm512_set1_ps(*value)
}

#[cfg(target_arch = "wasm32")]
register_block!(
    accumulate_simd128,
    "simd128",
    v128,
    4,
    4,
    f32x4_zero,
    v128_load_f32,
    f32x4_splat_ref,
    f32x4_mul_add,
    v128_store_f32
);

/// WebAssembly's 128-bit SIMD in the shapes `register_block!` takes.
#[cfg(target_arch = "wasm32")]
mod simd128 {
    pub use std::arch::wasm32::v128;
    use std::arch::wasm32::*;

    #[inline(always)]
    pub fn f32x4_zero() -> v128 {
        f32x4_splat(0.0)
    }

    /// # Safety
    /// `at` must be readable for 4 floats (any alignment).
    #[inline(always)]
    pub unsafe fn v128_load_f32(at: *const f32) -> v128 {
        // SAFETY: the caller's contract; `v128_load` takes unaligned addresses.
        unsafe { v128_load(at.cast()) }
    }

    #[inline(always)]
    pub fn f32x4_splat_ref(value: &f32) -> v128 {
        f32x4_splat(*value)
    }

    /// `a * b + c`, rounded twice: baseline wasm SIMD has no fused multiply-add.
    #[inline(always)]
    pub fn f32x4_mul_add(a: v128, b: v128, c: v128) -> v128 {
        f32x4_add(f32x4_mul(a, b), c)
    }

    /// # Safety
    /// `at` must be writable for 4 floats (any alignment).
    #[inline(always)]
    pub unsafe fn v128_store_f32(at: *mut f32, value: v128) {
        // SAFETY: the caller's contract; `v128_store` takes unaligned addresses.
        unsafe { v128_store(at.cast(), value) }
    }
}
#[cfg(target_arch = "wasm32")]
use simd128::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_blocks_cover_every_vector_once_without_lone_tails() {
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Simd128] {
            for total in 0..40 {
                let blocks: Vec<_> = register_blocks(total, isa).collect();
                let mut next = 0;
                for &(first, vectors) in &blocks {
                    assert_eq!(first, next * isa.lanes(), "{isa:?} {total}: {blocks:?}");
                    assert!((1..=isa.vectors()).contains(&vectors));
                    next += vectors;
                }
                assert_eq!(next, total, "{isa:?}: {blocks:?}");
                if isa.vectors() > 2 && total > 1 {
                    assert!(blocks.iter().all(|&(_, v)| v > 1), "{total}: {blocks:?}");
                }
            }
        }
    }
}
