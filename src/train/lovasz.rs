//! Lovász-softmax (Berman, Rannen Triki and Blaschko, CVPR 2018): a loss that optimizes each
//! class's IoU directly. Cross-entropy counts pixels, so a class of a few thin poles barely
//! moves it; the IoU of that class weighs as much in mIoU as the road's, and so it does here.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use rayon::prelude::*;

/// `logits: [N, C, H, W]`, `labels: [N, H, W]` (ids `>= C` ignored) -> `[1]`: the mean, over
/// the classes present in `labels`, of the Lovász extension of the class's Jaccard loss
/// (1 − IoU) at the soft errors `|1[label = c] − p_c|`.
///
/// The extension sums each class's errors sorted in decreasing order, each weighted by how much
/// the Jaccard loss grows when that pixel joins the mistakes. The order is piecewise constant in
/// the logits, so it is taken on read-back values and the loss is a weighted sum of the errors:
/// the gradient flows through the errors alone, as in the authors' implementation. On hard
/// predictions (errors 0 or 1) the loss is exactly the mean of 1 − IoU.
pub fn lovasz_softmax(logits: Tensor<4>, labels: Tensor<3, Int>) -> Tensor<1> {
    let [batch, classes, height, width] = logits.dims();
    let pixels = batch * height * width;
    let device = logits.device();
    let label_ids: Vec<i64> = labels.into_data().iter::<i64>().collect();
    let foreground: Vec<f32> = (0..classes as i64)
        .flat_map(|class| label_ids.iter().map(move |&id| f32::from(id == class)))
        .collect();
    let foreground =
        Tensor::<2>::from_data(TensorData::new(foreground, [classes, pixels]), &device);
    let probabilities = softmax(logits, 1)
        .swap_dims(0, 1)
        .reshape([classes, pixels]); // [C, N*H*W], pixels in the labels' order
    let errors = (foreground - probabilities).abs(); // [C, N*H*W]

    let error_values: Vec<f32> = errors.clone().detach().into_data().iter::<f32>().collect();
    let labelled: Vec<usize> = (0..pixels)
        .filter(|&pixel| (0..classes as i64).contains(&label_ids[pixel]))
        .collect();
    let mut class_pixels = vec![0usize; classes];
    for &pixel in &labelled {
        class_pixels[label_ids[pixel] as usize] += 1;
    }
    let mut weights = vec![0.0f32; classes * pixels];
    weights
        .par_chunks_mut(pixels)
        .zip(error_values.par_chunks(pixels))
        .enumerate()
        .filter(|(class, _)| class_pixels[*class] > 0)
        .for_each(|(class, (weights, errors))| {
            let in_class = class_pixels[class];
            jaccard_increments(
                errors,
                &label_ids,
                &labelled,
                class as i64,
                in_class,
                weights,
            )
        });
    let present = class_pixels.iter().filter(|&&count| count > 0).count();
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [classes, pixels]), &device);
    (errors * weights).sum().div_scalar(present.max(1) as f32)
}

/// Fills `weights` (one per pixel, 0 for unlabelled ones) with the increments of the Jaccard
/// loss of `class` as its pixels join the mistakes in decreasing order of `errors`: the
/// gradient of the Lovász extension. Only the `labelled` pixels take part, `in_class` (at
/// least 1) of them labelled `class`.
fn jaccard_increments(
    errors: &[f32],
    labels: &[i64],
    labelled: &[usize],
    class: i64,
    in_class: usize,
    weights: &mut [f32],
) {
    // Errors lie in [0, 1], where the bit patterns of non-negative floats sort as the values do:
    // the pixel index packed below the pattern sorts the pairs in one integer sort.
    let mut order: Vec<u64> = labelled
        .iter()
        .map(|&pixel| {
            let error = if errors[pixel] > 0.0 {
                errors[pixel]
            } else {
                0.0
            };
            (u64::from(error.to_bits()) << 32) | pixel as u64
        })
        .collect();
    order.sort_unstable_by(|a, b| b.cmp(a));

    let total = in_class as f64;
    let (mut missed, mut false_alarms) = (0.0f64, 0.0f64);
    let mut previous = 0.0f64;
    for key in order {
        let pixel = (key & u64::from(u32::MAX)) as usize;
        if labels[pixel] == class {
            missed += 1.0;
        } else {
            false_alarms += 1.0;
        }
        // Jaccard loss with the first pixels of the order counted as mistakes.
        let jaccard = 1.0 - (total - missed) / (total + false_alarms);
        weights[pixel] = (jaccard - previous) as f32;
        previous = jaccard;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// On hard predictions (every error 0 or 1) Lovász-softmax is exactly the mean, over the
    /// classes present in the labels, of 1 − IoU; void pixels and absent classes do not count.
    #[test]
    fn lovasz_softmax_is_one_minus_iou_on_hard_predictions() {
        let device = Device::flex();
        // 3 classes, 2 images of 2x3 pixels; 9 is void. Class 2 is predicted but never labelled.
        let labels = [0, 0, 1, 1, 9, 0, 1, 1, 0, 9, 0, 0];
        let predicted = [0, 1, 1, 2, 2, 0, 1, 0, 0, 1, 2, 0];
        let mut logits = vec![0.0f32; 2 * 3 * 6];
        for (pixel, &class) in predicted.iter().enumerate() {
            let (image, offset) = (pixel / 6, pixel % 6);
            logits[(image * 3 + class) * 6 + offset] = 40.0;
        }
        let logits = Tensor::<1>::from_floats(logits.as_slice(), &device).reshape([2, 3, 2, 3]);
        let labels = Tensor::<1, Int>::from_ints(labels, &device).reshape([2, 2, 3]);
        let loss: f32 = lovasz_softmax(logits, labels).into_scalar();
        // Over the 10 labelled pixels: class 0 is labelled at 6, predicted at 4 of them and at 1
        // other (IoU 4/7); class 1 is labelled at 4, predicted at 2 of them and at 1 other
        // (IoU 2/5).
        let expected = ((1.0 - 4.0 / 7.0) + (1.0 - 2.0 / 5.0)) / 2.0;
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    /// Lovász-softmax's gradient lowers it, and never reaches a void pixel.
    #[test]
    fn lovasz_softmax_gradient_descends_and_ignores_void() {
        let device = Device::flex().autodiff();
        let logits = Tensor::<4>::random([2, 4, 6, 5], Distribution::Normal(0.0, 1.0), &device);
        let labels =
            Tensor::<4, Int>::random([2, 1, 6, 5], Distribution::Uniform(0.0, 4.0), &device)
                .reshape([2, 6, 5])
                .slice_assign([0..1, 0..1, 0..5], Tensor::full([1, 1, 5], 255, &device));
        let loss_at =
            |logits: Tensor<4>| -> f32 { lovasz_softmax(logits, labels.clone()).into_scalar() };
        let logits = logits.require_grad();
        let loss = lovasz_softmax(logits.clone(), labels.clone());
        let gradients = loss.backward();
        let gradient = logits.grad(&gradients).expect("a gradient for the logits");
        let void_row: f32 = gradient
            .clone()
            .slice([0..1, 0..4, 0..1, 0..5])
            .abs()
            .sum()
            .into_scalar();
        assert_eq!(void_row, 0.0, "void pixels get no gradient");
        let before = loss_at(logits.clone().detach());
        let after = loss_at(logits.detach() - Tensor::from_inner(gradient).mul_scalar(20.0));
        assert!(
            after < before - 1e-3,
            "a gradient step lowers the loss: {before} -> {after}"
        );
    }
}
