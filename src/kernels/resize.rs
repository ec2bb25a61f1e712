//! Bilinear resize (`align_corners = false`, PyTorch's convention) of NCHW planes on the CPU,
//! forward and backward, for training on flex.
//!
//! Each BiSeNet head upsamples its logits 8x to the label size, and the loss's gradient flows
//! back through that resize, which burn-flex 0.22's bilinear backward made a large part of a
//! training step (`docs/kernels.md`). Here both directions walk rows: an output row blends two
//! input rows, and its gradient is first gathered into one input-width row, then added to the
//! same two rows.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::flex::{contiguous, made_contiguous};

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

/// Resizes one `in_h x in_w` plane to `rows.len() x columns.len()`, row-major. Every input row
/// is first blended horizontally into `widened` (`in_h x out_w`), once: output rows then blend
/// two widened rows, contiguous and vectorised. (Blending four input pixels per output pixel
/// gathered each input row again for every output row that reads it, eight at 8x.)
fn resize_plane(
    input: &[f32],
    in_w: usize,
    rows: &Axis,
    columns: &Axis,
    output: &mut [f32],
    widened: &mut Vec<f32>,
) {
    let out_w = columns.lo.len();
    widened.resize(input.len() / in_w * out_w, 0.0);
    for (row, wide) in input
        .chunks_exact(in_w)
        .zip(widened.chunks_exact_mut(out_w))
    {
        for (x, out) in wide.iter_mut().enumerate() {
            let (lo, hi, fx) = (columns.lo[x], columns.hi[x], columns.frac[x]);
            *out = row[lo] + fx * (row[hi] - row[lo]);
        }
    }
    for (y, out_row) in output.chunks_exact_mut(out_w).enumerate() {
        let top = &widened[rows.lo[y] * out_w..][..out_w];
        let bottom = &widened[rows.hi[y] * out_w..][..out_w];
        let fy = rows.frac[y];
        for (out, (&t, &b)) in out_row.iter_mut().zip(top.iter().zip(bottom)) {
            *out = t + fy * (b - t);
        }
    }
}

/// The adjoint of one row's horizontal blend: which output columns read input column `j`,
/// as two ranges (output columns are monotonic in their input columns, so each set is a run):
/// those with `lo == j` (weight `1 - frac`) and those with `hi == j` (weight `frac`).
#[derive(Debug, Clone)]
struct ColumnGather {
    from_lo: Vec<std::ops::Range<usize>>,
    from_hi: Vec<std::ops::Range<usize>>,
    lo_weight: Vec<f32>,
    hi_weight: Vec<f32>,
}

impl ColumnGather {
    fn new(columns: &Axis, input: usize) -> Self {
        let runs = |index: &[usize]| {
            let mut runs = vec![0..0; input];
            for (x, &j) in index.iter().enumerate() {
                runs[j] = if runs[j].is_empty() {
                    x..x + 1
                } else {
                    runs[j].start..x + 1
                };
            }
            runs
        };
        Self {
            from_lo: runs(&columns.lo),
            from_hi: runs(&columns.hi),
            lo_weight: columns.frac.iter().map(|f| 1.0 - f).collect(),
            hi_weight: columns.frac.clone(),
        }
    }

    /// `gathered[j]` = the sum of `dy_row`'s gradients that column `j` blended into. Summed in
    /// a register per input column: scattering into `gathered` chained every add behind the
    /// previous store to the same slot (8 in a row at the heads' 8x upsampling).
    fn gather(&self, dy_row: &[f32], gathered: &mut [f32]) {
        for (j, g) in gathered.iter_mut().enumerate() {
            let (lo, hi) = (self.from_lo[j].clone(), self.from_hi[j].clone());
            let from_lo: f32 = dy_row[lo.clone()]
                .iter()
                .zip(&self.lo_weight[lo])
                .map(|(d, w)| d * w)
                .sum();
            let from_hi: f32 = dy_row[hi.clone()]
                .iter()
                .zip(&self.hi_weight[hi])
                .map(|(d, w)| d * w)
                .sum();
            *g = from_lo + from_hi;
        }
    }
}

/// The gradient of [`resize_plane`]: adds each output pixel's gradient to the four input pixels
/// it blended, with the same weights. `dx` (`in_h x in_w`) must start zeroed.
fn resize_plane_backward(
    dy: &[f32],
    in_w: usize,
    rows: &Axis,
    columns: &ColumnGather,
    dx: &mut [f32],
    gathered: &mut Vec<f32>,
) {
    let out_w = columns.lo_weight.len();
    gathered.resize(in_w, 0.0);
    for (y, dy_row) in dy.chunks_exact(out_w).enumerate() {
        columns.gather(dy_row, gathered);
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
        .for_each_init(Vec::new, |widened, (out, plane)| {
            resize_plane(plane, width, &rows, &columns, out, widened)
        });
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
        let rows = Axis::new(height, out_h);
        let columns = ColumnGather::new(&Axis::new(width, out_w), width);
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
