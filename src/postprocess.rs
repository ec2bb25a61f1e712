//! Logits -> labels on the CPU: bilinear upsampling fused with the argmax over classes.
//!
//! The network's main head predicts at 1/8 of the input size (at about the input size for V2
//! with pixel-shuffle heads); labels are
//! `argmax_c(resize_bilinear(logits))` at full size. Done as tensor ops, that materialises
//! `classes x H x W` floats and then scans them again: on the CPU backend that resize and argmax
//! cost about a quarter of the whole frame. Fused, each output row interpolates the two
//! low-resolution rows it needs once, then every pixel blends two columns per class and keeps
//! the best: the same numbers (up to float rounding), one pass, no large buffer.

use burn::tensor::{Device, TensorData};

/// Whether labels are best made on the CPU from the low-resolution logits ([`labels_from_logits`])
/// rather than with tensor ops on `device`: yes on burn's CPU backend, where the device *is* the
/// CPU; a GPU resizes and reduces full-size logits quicker than it reads them back.
pub fn labels_on_cpu(device: &Device) -> bool {
    *device == Device::flex()
}

/// Read-back class ids (any integer dtype, as `argmax` returns them) as bytes.
pub fn ids_from_data(data: &TensorData) -> Vec<u8> {
    data.iter::<i64>().map(|id| id as u8).collect()
}

/// Source coordinates of a bilinear resize along one axis with `align_corners = false` (PyTorch's
/// convention): for each output index, the two input indices and the weight of the second.
fn taps(input: usize, output: usize) -> Vec<(usize, usize, f32)> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|out| {
            let src = ((out as f32 + 0.5) * scale - 0.5).max(0.0);
            let lo = (src as usize).min(input - 1);
            let hi = (lo + 1).min(input - 1);
            (lo, hi, src - lo as f32)
        })
        .collect()
}

/// Labels of one output row `y` into `row` (`out_w` long).
fn label_row(
    logits: &[f32],
    classes: usize,
    [h, w]: [usize; 2],
    (y0, y1, ly): (usize, usize, f32),
    x_taps: &[(usize, usize, f32)],
    row: &mut [u8],
) {
    let plane = h * w;
    // [classes, w]: this output row, interpolated vertically at the input's resolution.
    let mut blended = vec![0.0f32; classes * w];
    for c in 0..classes {
        let top = &logits[c * plane + y0 * w..][..w];
        let bottom = &logits[c * plane + y1 * w..][..w];
        for ((out, &t), &b) in blended[c * w..][..w].iter_mut().zip(top).zip(bottom) {
            *out = t + (b - t) * ly;
        }
    }
    for (label, &(x0, x1, lx)) in row.iter_mut().zip(x_taps) {
        let mut best = f32::NEG_INFINITY;
        let mut best_class = 0;
        for c in 0..classes {
            let left = blended[c * w + x0];
            let value = left + (blended[c * w + x1] - left) * lx;
            // Strictly greater: ties go to the lowest class id, as with `argmax`.
            if value > best {
                best = value;
                best_class = c;
            }
        }
        *label = best_class as u8;
    }
}

/// Class ids at `out = [h, w]` of one image's read-back low-resolution logits
/// `[1, classes, h', w']` (what [`crate::model::Network::forward_low_res`] returns).
pub fn labels_from_logits(logits: &TensorData, out: [usize; 2]) -> Vec<u8> {
    let [1, classes, h, w] = logits.shape()[..] else {
        panic!(
            "expected logits [1, classes, h, w], got {:?}",
            logits.shape()
        );
    };
    let values = logits.as_slice::<f32>().expect("logits are f32");
    upsample_argmax(values, classes, [h, w], out)
}

/// Class ids at `out = [out_h, out_w]` of low-resolution logits `[classes, h, w]` (row-major,
/// one image): `argmax_c(resize_bilinear(logits, out))` without the full-size logits.
pub fn upsample_argmax(
    logits: &[f32],
    classes: usize,
    size: [usize; 2],
    out: [usize; 2],
) -> Vec<u8> {
    let [h, w] = size;
    let [out_h, out_w] = out;
    assert_eq!(
        logits.len(),
        classes * h * w,
        "logits are not [{classes}, {h}, {w}]"
    );
    let y_taps = taps(h, out_h);
    let x_taps = taps(w, out_w);
    let mut labels = vec![0u8; out_h * out_w];
    let label = |(row, &y): (&mut [u8], &(usize, usize, f32))| {
        label_row(logits, classes, size, y, &x_taps, row)
    };
    // Rows are independent: spread them over the cores natively (the browser has one thread).
    #[cfg(feature = "native")]
    {
        use rayon::prelude::*;
        labels.par_chunks_mut(out_w).zip(&y_taps).for_each(label);
    }
    #[cfg(not(feature = "native"))]
    labels.chunks_mut(out_w).zip(&y_taps).for_each(label);
    labels
}
