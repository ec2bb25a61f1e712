use serde::Serialize;

/// A confusion matrix accumulated over a whole split: `counts[truth][prediction]`, ignored
/// pixels excluded. mIoU is computed once from the totals, not averaged over images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfusionMatrix {
    num_classes: usize,
    counts: Vec<u64>,
}

/// Metrics derived from a confusion matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Mean IoU over the classes present in the ground truth or the predictions.
    pub miou: f64,
    pub pixel_accuracy: f64,
    /// IoU per class; `None` for a class absent from both ground truth and predictions, which
    /// is left out of the mean.
    pub per_class_iou: Vec<Option<f64>>,
    /// Ground-truth pixels of each class: how rare each class is, and so how much its IoU
    /// can be trusted.
    pub per_class_pixels: Vec<u64>,
}

impl ConfusionMatrix {
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            counts: vec![0; num_classes * num_classes],
        }
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Adds one image: ground truth and prediction of the same length. Pixels whose truth is
    /// not a class id (the ignore id) are skipped; a prediction outside the classes is a bug
    /// upstream and counted nowhere.
    pub fn add(&mut self, truth: &[u8], prediction: &[u8]) {
        assert_eq!(
            truth.len(),
            prediction.len(),
            "truth and prediction differ in size"
        );
        let n = self.num_classes;
        for (&t, &p) in truth.iter().zip(prediction) {
            let (t, p) = (t as usize, p as usize);
            if t < n && p < n {
                self.counts[t * n + p] += 1;
            }
        }
    }

    /// Adds another matrix's counts (e.g. from a parallel worker).
    pub fn merge(&mut self, other: &ConfusionMatrix) {
        assert_eq!(self.num_classes, other.num_classes);
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// `counts[truth][prediction]` as rows.
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.counts
            .chunks(self.num_classes)
            .map(<[u64]>::to_vec)
            .collect()
    }

    pub fn metrics(&self) -> Metrics {
        let n = self.num_classes;
        let at = |t: usize, p: usize| self.counts[t * n + p];
        let per_class_pixels: Vec<u64> = (0..n).map(|c| (0..n).map(|p| at(c, p)).sum()).collect();
        let per_class_iou: Vec<Option<f64>> = (0..n)
            .map(|c| {
                let tp = at(c, c);
                let fn_ = per_class_pixels[c] - tp;
                let fp = (0..n).map(|t| at(t, c)).sum::<u64>() - tp;
                let union = tp + fp + fn_;
                (union > 0).then(|| tp as f64 / union as f64)
            })
            .collect();
        let present: Vec<f64> = per_class_iou.iter().flatten().copied().collect();
        let miou = if present.is_empty() {
            0.0
        } else {
            present.iter().sum::<f64>() / present.len() as f64
        };
        let total: u64 = self.counts.iter().sum();
        let correct: u64 = (0..n).map(|c| at(c, c)).sum();
        Metrics {
            miou,
            pixel_accuracy: if total == 0 {
                0.0
            } else {
                correct as f64 / total as f64
            },
            per_class_iou,
            per_class_pixels,
        }
    }
}
