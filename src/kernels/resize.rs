//! Bilinear resize (`align_corners = false`, PyTorch's convention) of NCHW planes on the CPU,
//! forward and backward, for training on flex.
//!
//! Each BiSeNet head upsamples its logits 8x to the label size, and the loss's gradient flows
//! back through that resize: burn-flex 0.22's bilinear backward was a sixth of an Xception39
//! training step. Here both directions walk rows: an output row blends two input rows, and its
//! gradient is first gathered into one input-width row, then added to the same two rows.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::conv::{contiguous, made_contiguous};

/// Where output coordinate `o` reads along one axis: input indices `lo`, `hi` and the weight
/// `frac` of `hi` (PyTorch: `src = (o + 0.5) * in / out - 0.5`, clamped at 0).
#[derive(Debug, Clone)]
struct Axis {
    lo: Vec<usize>,
    hi: Vec<usize>,
    frac: Vec<f32>,
}

impl Axis {
    fn new(input: usize, output: usize) -> Self {
        let scale = input as f32 / output as f32;
        let mut axis = Self {
            lo: Vec::with_capacity(output),
            hi: Vec::with_capacity(output),
            frac: Vec::with_capacity(output),
        };
        for o in 0..output {
            let source = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
            let lo = (source as usize).min(input - 1);
            axis.lo.push(lo);
            axis.hi.push((lo + 1).min(input - 1));
            axis.frac.push(source - lo as f32);
        }
        axis
    }
}

/// Resizes one `in_h x in_w` plane to `rows.len() x columns.len()`, row-major.
fn resize_plane(input: &[f32], in_w: usize, rows: &Axis, columns: &Axis, output: &mut [f32]) {
    let out_w = columns.lo.len();
    for (y, out_row) in output.chunks_exact_mut(out_w).enumerate() {
        let top = &input[rows.lo[y] * in_w..][..in_w];
        let bottom = &input[rows.hi[y] * in_w..][..in_w];
        let fy = rows.frac[y];
        for (x, out) in out_row.iter_mut().enumerate() {
            let (lo, hi, fx) = (columns.lo[x], columns.hi[x], columns.frac[x]);
            let t = top[lo] + fx * (top[hi] - top[lo]);
            let b = bottom[lo] + fx * (bottom[hi] - bottom[lo]);
            *out = t + fy * (b - t);
        }
    }
}

/// The gradient of [`resize_plane`]: adds each output pixel's gradient to the four input pixels
/// it blended, with the same weights. `dx` (`in_h x in_w`) must start zeroed.
fn resize_plane_backward(
    dy: &[f32],
    in_w: usize,
    rows: &Axis,
    columns: &Axis,
    dx: &mut [f32],
    gathered: &mut Vec<f32>,
) {
    let out_w = columns.lo.len();
    gathered.resize(in_w, 0.0);
    for (y, dy_row) in dy.chunks_exact(out_w).enumerate() {
        gathered.fill(0.0);
        for (x, &g) in dy_row.iter().enumerate() {
            let fx = columns.frac[x];
            gathered[columns.lo[x]] += g - fx * g;
            gathered[columns.hi[x]] += fx * g;
        }
        let fy = rows.frac[y];
        let top = &mut dx[rows.lo[y] * in_w..][..in_w];
        top.iter_mut()
            .zip(gathered.iter())
            .for_each(|(d, g)| *d += g - fy * g);
        let bottom = &mut dx[rows.hi[y] * in_w..][..in_w];
        bottom
            .iter_mut()
            .zip(gathered.iter())
            .for_each(|(d, g)| *d += fy * g);
    }
}

/// Bilinear resize of a flex tensor (plain or autodiff) to `size`; `None` for other backends
/// and dtypes (the caller then uses burn's `interpolate`).
pub(super) fn try_resize_bilinear(x: &Tensor<4>, size: [usize; 2]) -> Option<Tensor<4>> {
    if x.dtype() != DType::F32 {
        return None;
    }
    if let Ok(plain) = x.clone().try_into_primitive::<Flex>() {
        let output = resize(&made_contiguous(plain), size);
        return Some(Tensor::from_primitive::<Flex>(output));
    }
    let tracked = x.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let input = made_contiguous(tracked.primitive().clone());
    let output = resize(&input, size);
    let output = match ResizeBackward
        .prepare::<NoCheckpointing>([tracked.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(input.shape().dims::<4>(), output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(output))
}

/// `[N, C, H, W]` -> `[N, C, size[0], size[1]]`.
fn resize(input: &FlexTensor, size: [usize; 2]) -> FlexTensor {
    let [batch, channels, height, width] = input.shape().dims::<4>();
    let (rows, columns) = (Axis::new(height, size[0]), Axis::new(width, size[1]));
    let mut output = vec![0.0f32; batch * channels * size[0] * size[1]];
    output
        .par_chunks_mut(size[0] * size[1])
        .zip(contiguous(input).par_chunks(height * width))
        .for_each(|(out, plane)| resize_plane(plane, width, &rows, &columns, out));
    FlexTensor::from_data(TensorData::new(output, [batch, channels, size[0], size[1]]))
}

/// The backward step of a resize; its state is the input's shape.
#[derive(Debug)]
struct ResizeBackward;

impl Backward<Flex, 1> for ResizeBackward {
    type State = [usize; 4];

    fn backward(self, ops: Ops<[usize; 4], 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = made_contiguous(grads.consume::<Flex>(&ops.node));
        let [Some(node)] = &ops.parents else { return };
        let [_, _, height, width] = ops.state;
        let [_, _, out_h, out_w] = dy.shape().dims::<4>();
        let (rows, columns) = (Axis::new(height, out_h), Axis::new(width, out_w));
        let mut dx = vec![0.0f32; ops.state.iter().product()];
        dx.par_chunks_mut(height * width)
            .zip(contiguous(&dy).par_chunks(out_h * out_w))
            .for_each_init(Vec::new, |gathered, (dx, dy)| {
                resize_plane_backward(dy, width, &rows, &columns, dx, gathered)
            });
        let dx = FlexTensor::from_data(TensorData::new(dx, ops.state));
        grads.register::<Flex>(node.id, dx);
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

    use super::*;

    fn burns(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
        let options = InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size(size);
        interpolate(x, options)
    }

    fn assert_close(what: &str, ours: Tensor<4>, burns: Tensor<4>) {
        assert_eq!(ours.dims(), burns.dims(), "{what}");
        let diff: f32 = (ours - burns).abs().max().into_scalar();
        assert!(diff <= 1e-4, "{what}: off by {diff}");
    }

    /// Upsampling 8x (the heads), odd factors, downsampling, and one axis left alone: values
    /// and input gradients equal burn's `interpolate` with `align_corners = false`.
    #[test]
    fn matches_burns_bilinear_resize_and_its_gradient() {
        let device = Device::flex().autodiff();
        for (input, size) in [
            ([2, 3, 6, 5], [48, 40]),
            ([1, 2, 7, 9], [23, 31]),
            ([1, 2, 13, 17], [5, 6]),
            ([2, 1, 4, 4], [4, 11]),
        ] {
            let x = Tensor::<4>::random(input, Distribution::Uniform(-1.0, 1.0), &device)
                .require_grad();
            let r = Tensor::<4>::random(
                [input[0], input[1], size[0], size[1]],
                Distribution::Uniform(-1.0, 1.0),
                &device,
            );
            let ours = try_resize_bilinear(&x, size).expect("applies to flex");
            let theirs = burns(x.clone(), size);
            let what = format!("{input:?} -> {size:?}");
            assert_close(
                &format!("values, {what}"),
                ours.clone().inner(),
                theirs.clone().inner(),
            );
            let ours_grads = (ours * r.clone()).sum().backward();
            let their_grads = (theirs * r).sum().backward();
            assert_close(
                &format!("gradient, {what}"),
                x.grad(&ours_grads).unwrap().inner(),
                x.grad(&their_grads).unwrap().inner(),
            );
            // Plain (inference) tensors take the same forward.
            let plain = x.clone().inner();
            assert_close(
                &format!("plain, {what}"),
                try_resize_bilinear(&plain, size).unwrap(),
                burns(plain, size),
            );
        }
    }
}
