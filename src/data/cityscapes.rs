use std::path::Path;

use super::{DataError, Dataset, Sample, require_dirs, sorted_entries};
use crate::classes::ClassSet;

/// Official Cityscapes `labelIds` -> train ids (19 classes; everything else 255 = ignore),
/// from `cityscapesscripts/helpers/labels.py`.
const LABEL_TO_TRAIN_ID: [(u8, u8); 19] = [
    (7, 0),   // road
    (8, 1),   // sidewalk
    (11, 2),  // building
    (12, 3),  // wall
    (13, 4),  // fence
    (17, 5),  // pole
    (19, 6),  // traffic light
    (20, 7),  // traffic sign
    (21, 8),  // vegetation
    (22, 9),  // terrain
    (23, 10), // sky
    (24, 11), // person
    (25, 12), // rider
    (26, 13), // car
    (27, 14), // truck
    (28, 15), // bus
    (31, 16), // train
    (32, 17), // motorcycle
    (33, 18), // bicycle
];

/// The lookup table from label ids to train ids.
pub fn train_id_table() -> [u8; 256] {
    let mut table = [255u8; 256];
    for (label_id, train_id) in LABEL_TO_TRAIN_ID {
        table[label_id as usize] = train_id;
    }
    table
}

/// Cityscapes: `ROOT/leftImg8bit/SPLIT/CITY/*_leftImg8bit.png` with
/// `ROOT/gtFine/SPLIT/CITY/*_gtFine_labelIds.png`, mapped to the 19 train ids on load.
pub fn cityscapes(root: &Path, split: &str) -> Result<Dataset, DataError> {
    let images_dir = root.join("leftImg8bit").join(split);
    let labels_dir = root.join("gtFine").join(split);
    require_dirs(&[
        (&images_dir, "leftImg8bit folder"),
        (&labels_dir, "gtFine folder"),
    ])?;
    let mut samples = Vec::new();
    for city in sorted_entries(&images_dir)? {
        if !city.is_dir() {
            continue;
        }
        let city_name = city.file_name().unwrap_or_default();
        for image in sorted_entries(&city)? {
            let name = image
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let Some(stem) = name.strip_suffix("_leftImg8bit.png") else {
                continue;
            };
            let label = labels_dir
                .join(city_name)
                .join(format!("{stem}_gtFine_labelIds.png"));
            samples.push(Sample { image, label });
        }
    }
    Dataset::new(
        format!("cityscapes/{split}"),
        &images_dir,
        samples,
        ClassSet::cityscapes(),
        Some(Box::new(train_id_table())),
    )
}
