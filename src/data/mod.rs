//! Datasets: CamVid list files, Cityscapes folders and custom folders, read one sample at a
//! time with every problem reported by file name.

mod augment;
mod camvid;
mod cityscapes;
mod class_mix;
mod folder;
mod loader;
mod sample;

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::classes::ClassSet;
use crate::image_io::ImageIoError;

pub use augment::{Augmentation, augment};
pub use camvid::camvid;
pub use cityscapes::{cityscapes, train_id_table};
pub use class_mix::class_mix;
pub use folder::folder;
pub use loader::{Batch, batch_tensors, load_parallel};
pub use sample::{LabelPolicy, LabeledImage, load_sample};

/// One image and its label map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub image: PathBuf,
    pub label: PathBuf,
}

/// A split of a dataset: its samples and the classes their labels use.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub samples: Vec<Sample>,
    pub classes: ClassSet,
    /// Applied to every label value on load (Cityscapes label ids -> train ids).
    pub label_mapping: Option<Box<[u8; 256]>>,
}

impl Dataset {
    /// A dataset split, refusing an empty one: `source` (the list file or image folder the
    /// samples came from) is named in the error.
    fn new(
        name: String,
        source: &Path,
        samples: Vec<Sample>,
        classes: ClassSet,
        label_mapping: Option<Box<[u8; 256]>>,
    ) -> Result<Self, DataError> {
        if samples.is_empty() {
            return Err(DataError::Empty(source.display().to_string()));
        }
        Ok(Self {
            name,
            samples,
            classes,
            label_mapping,
        })
    }

    /// Each image's path under `root`, with `/` separators (`train/0001TP_006690.png`): how a
    /// weights file names the images it trained on, since the root differs between machines
    /// and the paths under it do not.
    pub fn image_keys(&self, root: &Path) -> Vec<String> {
        self.samples
            .iter()
            .map(|sample| {
                let relative = sample.image.strip_prefix(root).unwrap_or(&sample.image);
                let parts: Vec<_> = relative.iter().map(|part| part.to_string_lossy()).collect();
                parts.join("/")
            })
            .collect()
    }

    /// How many of this split's images (under `root`) are among `keys` (see [`Self::image_keys`]).
    pub fn images_among(&self, root: &Path, keys: &std::collections::HashSet<String>) -> usize {
        self.image_keys(root)
            .iter()
            .filter(|key| keys.contains(*key))
            .count()
    }

    /// How many of this split's images `other` holds too. A validation split that shares
    /// images with the training split measures memory of them, not generalization.
    pub fn images_shared_with(&self, other: &Dataset) -> usize {
        let theirs: std::collections::HashSet<&Path> =
            other.samples.iter().map(|s| s.image.as_path()).collect();
        self.samples
            .iter()
            .filter(|s| theirs.contains(s.image.as_path()))
            .count()
    }
}

/// Dataset formats `eval` and `train` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    Camvid,
    Cityscapes,
    Folder,
}

impl DatasetKind {
    /// Reads a split of a dataset in this format.
    pub fn open(self, root: &std::path::Path, split: &str) -> Result<Dataset, DataError> {
        match self {
            DatasetKind::Camvid => camvid(root, split),
            DatasetKind::Cityscapes => cityscapes(root, split),
            DatasetKind::Folder => folder(root, split),
        }
    }
}

#[derive(Debug, Error)]
pub enum DataError {
    #[error("{path}: cannot read the list file (check --root, the dataset folder, and --split)")]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {reason}")]
    ListLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: {what} is missing")]
    Missing { path: PathBuf, what: &'static str },
    #[error("no samples in {0}: check --root and --split")]
    Empty(String),
    #[error(transparent)]
    Image(#[from] ImageIoError),
    #[error("{label}: label map is {label_size:?} (WxH) but its image {image} is {image_size:?}")]
    SizeMismatch {
        image: PathBuf,
        label: PathBuf,
        image_size: (u32, u32),
        label_size: (u32, u32),
    },
    #[error(
        "{path}: label value {value} is neither a class id (0..{classes}) nor the ignore id {ignore} \
         (pass --unknown-labels-as-ignore to treat such pixels as unlabelled)"
    )]
    BadLabel {
        path: PathBuf,
        value: u8,
        classes: usize,
        ignore: u8,
    },
}

/// Checks that each folder exists, naming the first one that does not.
fn require_dirs(dirs: &[(&Path, &'static str)]) -> Result<(), DataError> {
    match dirs.iter().find(|(dir, _)| !dir.is_dir()) {
        Some((dir, what)) => Err(DataError::Missing {
            path: dir.to_path_buf(),
            what,
        }),
        None => Ok(()),
    }
}

/// The entries of a folder, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DataError::List {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    Ok(paths)
}
