//! Splitting an input row into its stride phases, and which output columns read inside it,
//! shared by the convolution kernels (the patch matrix, the direct dense kernel, the depthwise
//! one and the backward passes).
//!
//! With stride `s`, output column `ox` under kernel column `kx` reads padded column
//! `ox * s + kx`: phase `kx % s` of the padded row at offset `ox + kx / s`. Once a row is split
//! into its phases, every tap reads one contiguous run (no strided gathers in the hot loop).

use std::ops::Range;

/// Writes padded columns `phase, phase + stride, ...` of `source` (padded on the left by
/// `left` zeros, and on the right by as many as `row` needs) to `row`.
#[inline(always)]
pub(super) fn load_phase_row(
    source: &[f32],
    phase: usize,
    stride: usize,
    left: usize,
    row: &mut [f32],
) {
    // Padded column `i * stride + phase` is input column `i * stride + phase - left`.
    let first = left.saturating_sub(phase).div_ceil(stride).min(row.len());
    row[..first].fill(0.0);
    let start = first * stride + phase - left;
    let inside = &mut row[first..];
    let available = source.len().saturating_sub(start).div_ceil(stride);
    let count = inside.len().min(available);
    let source = source.get(start..).unwrap_or(&[]);
    match stride {
        1 => inside[..count].copy_from_slice(&source[..count]),
        // Pairwise, so that it compiles to shuffles rather than one load per value.
        2 => {
            let pairs = source.chunks_exact(2);
            let last = pairs.remainder().first();
            let mut written = 0;
            for (out, pair) in inside[..count].iter_mut().zip(pairs) {
                *out = pair[0];
                written += 1;
            }
            if written < count {
                inside[written] = *last.expect("an odd tail");
            }
        }
        _ => {
            let values = source.iter().step_by(stride);
            inside[..count]
                .iter_mut()
                .zip(values)
                .for_each(|(out, &x)| *out = x);
        }
    }
    inside[count..].fill(0.0);
}

/// Both phases of stride 2 at once, reading each input pair once: `even` gets padded columns
/// `0, 2, 4, ...` and `odd` columns `1, 3, 5, ...` of `source` padded on the left by `left`
/// zeros (the same as [`load_phase_row`] with phases 0 and 1, in half the reads).
#[inline(always)]
pub(super) fn load_phase_pair(source: &[f32], left: usize, even: &mut [f32], odd: &mut [f32]) {
    // Input pair `(2m, 2m + 1)` is padded pair `(2m + left, 2m + 1 + left)`: with `left = 2k`
    // that is `even[m + k], odd[m + k]`; with `left = 2k + 1`, `odd[m + k], even[m + k + 1]`.
    let k = left / 2;
    if left.is_multiple_of(2) {
        split_pairs(source, even, k, odd, k);
    } else {
        split_pairs(source, odd, k, even, k + 1);
    }
}

/// `first[first_at + m] = source[2m]` and `second[second_at + m] = source[2m + 1]` wherever
/// both fit, zero everywhere else.
#[inline(always)]
fn split_pairs(
    source: &[f32],
    first: &mut [f32],
    first_at: usize,
    second: &mut [f32],
    second_at: usize,
) {
    let first_at = first_at.min(first.len());
    let second_at = second_at.min(second.len());
    let firsts = source.len().div_ceil(2).min(first.len() - first_at);
    let seconds = (source.len() / 2).min(second.len() - second_at);
    first[..first_at].fill(0.0);
    second[..second_at].fill(0.0);
    let both = firsts.min(seconds);
    let (first_run, second_run) = (&mut first[first_at..], &mut second[second_at..]);
    for ((pair, a), b) in source
        .chunks_exact(2)
        .zip(&mut first_run[..both])
        .zip(&mut second_run[..both])
    {
        *a = pair[0];
        *b = pair[1];
    }
    for m in both..firsts {
        first_run[m] = source[2 * m];
    }
    for m in both..seconds {
        second_run[m] = source[2 * m + 1];
    }
    first_run[firsts..].fill(0.0);
    second_run[seconds..].fill(0.0);
}

/// The output columns `ox` whose input column `ox * stride + kx - pad` lies inside a row of
/// `width` (an empty range at `0..0` when none does).
pub(super) fn inside_columns(
    kx: usize,
    pad: usize,
    stride: usize,
    width: usize,
    out_w: usize,
) -> Range<usize> {
    // ox * stride + kx >= pad  and  ox * stride + kx < width + pad
    let first = pad.saturating_sub(kx).div_ceil(stride);
    let end = (width + pad).saturating_sub(kx).div_ceil(stride).min(out_w);
    if first >= end { 0..0 } else { first..end }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both stride-2 phases at once, as each phase alone: every padding parity, rows of either
    /// length parity, phase rows shorter and longer than the input's.
    #[test]
    fn phase_pairs_match_the_single_phases() {
        for width in [0usize, 1, 2, 5, 8, 11] {
            let source: Vec<f32> = (1..=width).map(|v| v as f32).collect();
            for left in 0..=5 {
                for len in [0, 1, 3, width.div_ceil(2) + 3] {
                    let mut expected = [vec![f32::NAN; len], vec![f32::NAN; len]];
                    for (phase, row) in expected.iter_mut().enumerate() {
                        load_phase_row(&source, phase, 2, left, row);
                    }
                    let (mut even, mut odd) = (vec![f32::NAN; len], vec![f32::NAN; len]);
                    load_phase_pair(&source, left, &mut even, &mut odd);
                    assert_eq!(
                        [even, odd],
                        expected,
                        "width {width}, left {left}, len {len}"
                    );
                }
            }
        }
    }

    /// Every phase of every stride, with padding short of, equal to and beyond the stride,
    /// into rows shorter and longer than the phase: against indexing the padded row directly.
    #[test]
    fn phase_rows_match_the_padded_row() {
        for width in [1usize, 2, 5, 8, 11] {
            let source: Vec<f32> = (1..=width).map(|v| v as f32).collect();
            for stride in 1..=4 {
                for left in 0..=5 {
                    for phase in 0..stride {
                        for len in [0, 1, 3, width.div_ceil(stride) + 3] {
                            let mut row = vec![f32::NAN; len];
                            load_phase_row(&source, phase, stride, left, &mut row);
                            let expected: Vec<f32> = (0..len)
                                .map(|i| {
                                    let column = (i * stride + phase).wrapping_sub(left);
                                    source.get(column).copied().unwrap_or(0.0)
                                })
                                .collect();
                            assert_eq!(
                                row, expected,
                                "width {width}, stride {stride}, left {left}, phase {phase}, len {len}"
                            );
                        }
                    }
                }
            }
        }
    }
}
