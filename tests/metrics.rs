//! mIoU from a confusion matrix, on hand-built cases.

use bisenet::eval::ConfusionMatrix;

fn metrics(classes: usize, truth: &[u8], prediction: &[u8]) -> bisenet::eval::Metrics {
    let mut m = ConfusionMatrix::new(classes);
    m.add(truth, prediction);
    m.metrics()
}

#[test]
fn perfect_prediction_scores_one() {
    let truth = [0, 1, 2, 2, 1, 0];
    let m = metrics(3, &truth, &truth);
    assert_eq!(m.miou, 1.0);
    assert_eq!(m.pixel_accuracy, 1.0);
    assert_eq!(m.per_class_iou, vec![Some(1.0); 3]);
    assert_eq!(m.per_class_pixels, vec![2, 2, 2]);
}

#[test]
fn all_wrong_scores_zero() {
    let m = metrics(2, &[0, 0, 1, 1], &[1, 1, 0, 0]);
    assert_eq!(m.miou, 0.0);
    assert_eq!(m.pixel_accuracy, 0.0);
}

#[test]
fn ignored_pixels_count_nowhere() {
    // 255 and 3 (>= classes) are ignore ids: whatever is predicted there does not matter.
    let m = metrics(3, &[0, 1, 255, 3, 2], &[0, 1, 2, 0, 2]);
    assert_eq!(m.miou, 1.0);
    assert_eq!(m.pixel_accuracy, 1.0);
}

#[test]
fn iou_is_tp_over_tp_fp_fn() {
    // class 0: tp 2, fn 1 (a 0 predicted as 1), fp 1 (a 1 predicted as 0) -> 2/4
    // class 1: tp 1, fn 1, fp 1 -> 1/3
    let m = metrics(2, &[0, 0, 0, 1, 1], &[0, 0, 1, 0, 1]);
    assert_eq!(m.per_class_iou, vec![Some(0.5), Some(1.0 / 3.0)]);
    assert!((m.miou - (0.5 + 1.0 / 3.0) / 2.0).abs() < 1e-12);
    assert!((m.pixel_accuracy - 0.6).abs() < 1e-12);
}

#[test]
fn class_absent_from_truth_but_predicted_scores_zero() {
    let m = metrics(3, &[0, 0, 1, 1], &[0, 2, 1, 1]);
    assert_eq!(m.per_class_iou[2], Some(0.0));
    assert_eq!(m.per_class_iou[0], Some(0.5));
}

#[test]
fn class_never_predicted_but_present_scores_zero() {
    let m = metrics(3, &[0, 1, 2, 2], &[0, 1, 1, 1]);
    assert_eq!(m.per_class_iou[2], Some(0.0));
}

#[test]
fn class_absent_everywhere_is_left_out_of_the_mean() {
    let m = metrics(4, &[0, 1, 1], &[0, 1, 1]);
    assert_eq!(m.per_class_iou, vec![Some(1.0), Some(1.0), None, None]);
    assert_eq!(m.miou, 1.0);
}

#[test]
fn one_matrix_over_the_split_not_a_mean_of_images() {
    let mut m = ConfusionMatrix::new(2);
    m.add(&[0; 9], &[0; 9]); // image 1: perfect, class 1 absent
    m.add(&[1], &[0]); // image 2: one wrong pixel
    let metrics = m.metrics();
    // Split-level: class 0 iou 9/10, class 1 iou 0 -> 0.45 (a mean of per-image mIoUs would differ).
    assert!((metrics.miou - 0.45).abs() < 1e-12);
    let mut merged = ConfusionMatrix::new(2);
    let mut part = ConfusionMatrix::new(2);
    part.add(&[1], &[0]);
    merged.add(&[0; 9], &[0; 9]);
    merged.merge(&part);
    assert_eq!(merged, m);
}
