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
