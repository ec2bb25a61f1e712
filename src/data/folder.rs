use std::path::Path;

use super::{DataError, Dataset, Sample, require_dirs, sorted_entries};
use crate::classes::ClassSet;
use crate::image_io::has_image_extension;

/// A user's own data: `images/` and `labels/` with matching file stems (labels are 8-bit PNGs
/// of class ids) and a `classes.json` (see [`ClassSet::from_json`]). With a split name, the
/// folders are looked up under `ROOT/SPLIT/` first, then directly under `ROOT`.
pub fn folder(root: &Path, split: &str) -> Result<Dataset, DataError> {
    let base = if root.join(split).join("images").is_dir() {
        root.join(split)
    } else {
        root.to_owned()
    };
    let classes_path = [base.join("classes.json"), root.join("classes.json")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::Missing {
            path: root.join("classes.json"),
            what: "classes.json (class names, colours and ignore id)",
        })?;
    let json = std::fs::read_to_string(&classes_path).map_err(|source| DataError::List {
        path: classes_path.clone(),
        source,
    })?;
    let classes = ClassSet::from_json(&json).map_err(|reason| DataError::ListLine {
        path: classes_path.clone(),
        line: 1,
        reason,
    })?;
    let (images_dir, labels_dir) = (base.join("images"), base.join("labels"));
    require_dirs(&[
        (&images_dir, "images folder"),
        (&labels_dir, "labels folder"),
    ])?;
    let mut samples = Vec::new();
    for image in sorted_entries(&images_dir)? {
        if !has_image_extension(&image) {
            continue;
        }
        let stem = image.file_stem().unwrap_or_default().to_string_lossy();
        let label = labels_dir.join(format!("{stem}.png"));
        if !label.is_file() {
            return Err(DataError::Missing {
                path: label,
                what: "label map for an image in images/",
            });
        }
        samples.push(Sample { image, label });
    }
    Dataset::new(
        format!("folder/{split}"),
        &images_dir,
        samples,
        classes,
        None,
    )
}
