use std::path::Path;

use super::{DataError, Dataset, Sample};
use crate::classes::ClassSet;

/// CamVid in the SegNet layout: `ROOT/SPLIT.txt` lists `image label` per line, paths relative
/// to `ROOT` (a leading `/SegNet/CamVid/` prefix, as in the original tutorial lists, is
/// stripped). 11 classes, 11 = void.
///
/// `split` is a split name (`val` reads `ROOT/val.txt`) or, when it ends in `.txt`, the path
/// of a list file kept elsewhere, such as the cross-drive splits in this repository's
/// `splits/camvid/`: its entries are still relative to `ROOT`, so one copy of the images
/// serves every split.
pub fn camvid(root: &Path, split: &str) -> Result<Dataset, DataError> {
    let (list, split) = if split.ends_with(".txt") {
        let list = Path::new(split).to_owned();
        let name = list
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned());
        (list, name.unwrap_or_else(|| split.to_owned()))
    } else {
        (root.join(format!("{split}.txt")), split.to_owned())
    };
    let text = std::fs::read_to_string(&list).map_err(|source| DataError::List {
        path: list.clone(),
        source,
    })?;
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(image), Some(label), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(DataError::ListLine {
                path: list.clone(),
                line: index + 1,
                reason: format!("expected `image label`, found `{line}`"),
            });
        };
        let resolve = |p: &str| root.join(p.trim_start_matches("/SegNet/CamVid/"));
        samples.push(Sample {
            image: resolve(image),
            label: resolve(label),
        });
    }
    Dataset::new(
        format!("camvid/{split}"),
        &list,
        samples,
        ClassSet::camvid(),
        None,
    )
}
