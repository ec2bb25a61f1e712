//! The register-blocked core that the direct and the Winograd kernels share: `R` output channels
//! times `V` vectors of outputs held in registers and summed over input channels and taps, one
//! vector load per `V` and one broadcast weight per `R` at each step. It is the inner loop of a
//! matrix multiply, fed from a band of the input rather than a packed patch matrix. Compiled
//! for AVX-512, AVX2 + FMA and WebAssembly SIMD; which runs is picked at run time (`Isa`).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The vector instructions the register blocks are compiled for: x86-64's, or WebAssembly's
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
/// band[c * channel_stride + taps[t]..][..len]`, block of `R` output channels `b` after block.
/// One block's weights stay in L1/L2 while the band, sized for L2, streams past them.
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
