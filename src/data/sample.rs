use image::{GrayImage, RgbImage};

use super::{DataError, Dataset, Sample};
use crate::image_io::{read_labels, read_rgb};

/// What to do with label values that are neither a class nor the ignore id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelPolicy {
    /// Refuse the sample, naming the file and the value (the default: such values usually mean
    /// the wrong label format, e.g. Cityscapes label ids instead of train ids).
    #[default]
    Strict,
    /// Treat them as unlabelled.
    UnknownAsIgnore,
}

/// A decoded image with its label map, checked to match in size and values.
#[derive(Debug, Clone)]
pub struct LabeledImage {
    pub image: RgbImage,
    pub label: GrayImage,
}

/// Reads a sample of `dataset`, checking that both files exist, decode, have the same size,
/// and that the label (after the dataset's id mapping) holds only class ids and the ignore id.
pub fn load_sample(
    sample: &Sample,
    dataset: &Dataset,
    policy: LabelPolicy,
) -> Result<LabeledImage, DataError> {
    let classes = &dataset.classes;
    for (path, what) in [(&sample.image, "image"), (&sample.label, "label map")] {
        if !path.is_file() {
            return Err(DataError::Missing {
                path: path.clone(),
                what,
            });
        }
    }
    let image = read_rgb(&sample.image)?;
    let mut label = read_labels(&sample.label)?;
    if image.dimensions() != label.dimensions() {
        return Err(DataError::SizeMismatch {
            image: sample.image.clone(),
            label: sample.label.clone(),
            image_size: image.dimensions(),
            label_size: label.dimensions(),
        });
    }
    let num_classes = classes.len();
    let ignore = classes.ignore_index;
    if let Some(mapping) = &dataset.label_mapping {
        label
            .iter_mut()
            .for_each(|value| *value = mapping[*value as usize]);
    }
    for value in label.iter_mut() {
        if (*value as usize) < num_classes || *value == ignore {
            continue;
        }
        match policy {
            LabelPolicy::Strict => {
                return Err(DataError::BadLabel {
                    path: sample.label.clone(),
                    value: *value,
                    classes: num_classes,
                    ignore,
                });
            }
            LabelPolicy::UnknownAsIgnore => *value = ignore,
        }
    }
    Ok(LabeledImage { image, label })
}
