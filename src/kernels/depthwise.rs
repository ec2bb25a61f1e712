//! Gradients of the depthwise convolution (`groups = C_in`, `C_out = m * C_in` for a channel
//! multiplier `m`) on the CPU, computed directly on the NCHW planes.
//!
//! burn 0.22 has no depthwise backward: its generic one slices the tensors per group and runs
//! a full convolution for each, hundreds of tiny calls per layer. A depthwise 3x3 filter has 9
//! weights per channel, so the direct loops here are a handful of row-wise multiply-adds: the
//! input gradient scatters each output-gradient row back along the rows it was read from, and
//! each weight's gradient is a dot product of an output-gradient row with the input row under it.

use super::conv::Geometry;
use super::conv_backward::for_each_tap_row;

/// Gradients `(dx, dW)` of a depthwise convolution: `x: [N, C, H, W]`,
/// `weight: [C * m, 1, kh, kw]`, `dy: [N, C * m, H', W']`, all row-major. `dx` is `None` when
/// not wanted.
pub(super) fn depthwise_backward(
    geometry: &Geometry,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    want_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let plane = geometry.height * geometry.width;
    let out_plane = geometry.out_pixels();
    let channels = geometry.channels_in;
    let multiplier = geometry.channels_out / channels;
    let taps = geometry.kernel[0] * geometry.kernel[1];

    // dx: one input plane per task, gathering its `m` output channels.
    let input_gradient = |index: usize, dx_plane: &mut [f32]| {
        let (image, channel) = (index / channels, index % channels);
        for j in 0..multiplier {
            let out_channel = channel * multiplier + j;
            let dy_plane =
                &dy[(image * geometry.channels_out + out_channel) * out_plane..][..out_plane];
            scatter_plane(
                geometry,
                &weight[out_channel * taps..][..taps],
                dy_plane,
                dx_plane,
            );
        }
    };
    // dW: one output channel per task, summed over the batch.
    let weight_gradient = |out_channel: usize, dw: &mut [f32]| {
        let channel = out_channel / multiplier;
        for image in 0..geometry.batch {
            let x_plane = &x[(image * channels + channel) * plane..][..plane];
            let dy_plane =
                &dy[(image * geometry.channels_out + out_channel) * out_plane..][..out_plane];
            correlate_plane(geometry, x_plane, dy_plane, dw);
        }
    };

    let mut dx = want_dx.then(|| vec![0.0f32; geometry.batch * channels * plane]);
    let mut dw = vec![0.0f32; geometry.channels_out * taps];
    #[cfg(feature = "native")]
    {
        use rayon::prelude::*;
        if let Some(dx) = dx.as_mut() {
            dx.par_chunks_mut(plane)
                .enumerate()
                .for_each(|(index, dx_plane)| input_gradient(index, dx_plane));
        }
        dw.par_chunks_mut(taps)
            .enumerate()
            .for_each(|(out_channel, dw)| weight_gradient(out_channel, dw));
    }
    #[cfg(not(feature = "native"))]
    {
        if let Some(dx) = dx.as_mut() {
            for (index, dx_plane) in dx.chunks_mut(plane).enumerate() {
                input_gradient(index, dx_plane);
            }
        }
        for (out_channel, dw) in dw.chunks_mut(taps).enumerate() {
            weight_gradient(out_channel, dw);
        }
    }
    (dx, dw)
}

/// `dx_plane += sum over taps of w[tap] * dy_plane`, each output pixel added back to the input
/// pixel the tap read.
fn scatter_plane(geometry: &Geometry, weights: &[f32], dy_plane: &[f32], dx_plane: &mut [f32]) {
    let (width, out_w, stride) = (geometry.width, geometry.out_w, geometry.stride[1]);
    for_each_tap_row(
        geometry,
        0..geometry.out_h,
        |tap, oy, iy, inside, first_input| {
            let w = weights[tap];
            let source = &dy_plane[oy * out_w..][inside];
            let row = &mut dx_plane[iy * width..][..width];
            if stride == 1 {
                let target = &mut row[first_input..][..source.len()];
                target.iter_mut().zip(source).for_each(|(t, g)| *t += w * g);
            } else {
                let target = row[first_input..].iter_mut().step_by(stride);
                target.zip(source).for_each(|(t, g)| *t += w * g);
            }
        },
    );
}

/// `dw[tap] += sum over pixels of dy * x under the tap`.
fn correlate_plane(geometry: &Geometry, x_plane: &[f32], dy_plane: &[f32], dw: &mut [f32]) {
    let (width, out_w, stride) = (geometry.width, geometry.out_w, geometry.stride[1]);
    for_each_tap_row(
        geometry,
        0..geometry.out_h,
        |tap, oy, iy, inside, first_input| {
            let gradient = &dy_plane[oy * out_w..][inside];
            let row = &x_plane[iy * width..][..width];
            dw[tap] += if stride == 1 {
                dot(gradient, &row[first_input..][..gradient.len()])
            } else {
                let inputs = row[first_input..].iter().step_by(stride);
                gradient.iter().zip(inputs).map(|(g, x)| g * x).sum()
            };
        },
    );
}

/// A dot product in 8 independent lanes, so that it vectorises (a plain sum of products is a
/// serial chain of float additions the compiler may not reorder).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (chunks_a, chunks_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for lane in 0..8 {
            lanes[lane] += ca[lane] * cb[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}
