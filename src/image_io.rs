//! Reading and writing image files (native only; the browser decodes images itself).

use std::path::{Path, PathBuf};

use image::{GrayImage, RgbImage, RgbaImage};
use thiserror::Error;

use crate::preprocess::{Frame, PixelFormat};
use crate::render::{LabelMap, labels_png};

/// File extensions treated as images when a folder is given.
pub const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff", "ppm"];

#[derive(Debug, Error)]
pub enum ImageIoError {
    #[error("{path}: cannot read")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: not a readable image ({reason})")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Decodes any supported image (PNG, JPEG, ...; gray, RGBA and 16-bit included) to 8-bit RGB.
pub fn read_rgb(path: &Path) -> Result<RgbImage, ImageIoError> {
    Ok(decode(path)?.to_rgb8())
}

/// Decodes a single-channel label map (8-bit ids), refusing colour images.
pub fn read_labels(path: &Path) -> Result<GrayImage, ImageIoError> {
    let image = decode(path)?;
    if image.color().channel_count() != 1 {
        return Err(ImageIoError::Decode {
            path: path.to_owned(),
            reason: format!(
                "a label map must be single-channel class ids, this one is {:?}",
                image.color()
            ),
        });
    }
    Ok(image.to_luma8())
}

fn decode(path: &Path) -> Result<image::DynamicImage, ImageIoError> {
    let bytes = std::fs::read(path).map_err(|source| ImageIoError::Read {
        path: path.to_owned(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(ImageIoError::Empty {
            path: path.to_owned(),
        });
    }
    let decode_error = |reason: String| ImageIoError::Decode {
        path: path.to_owned(),
        reason,
    };
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_error(e.to_string()))?
        .decode()
        .map_err(|e| decode_error(e.to_string()))
}

/// Borrows an RGB image as a frame for the segmenter.
pub fn frame(image: &RgbImage) -> Frame<'_> {
    Frame {
        pixels: image.as_raw(),
        width: image.width() as usize,
        height: image.height() as usize,
        format: PixelFormat::Rgb8,
    }
}

/// Writes class ids as an 8-bit grayscale PNG, the label exchange format.
pub fn write_labels(labels: &LabelMap, path: &Path) -> Result<(), ImageIoError> {
    let write_error = |reason: String| ImageIoError::Write {
        path: path.to_owned(),
        reason,
    };
    let bytes = labels_png(labels).map_err(|e| write_error(e.to_string()))?;
    std::fs::write(path, bytes).map_err(|e| write_error(e.to_string()))
}

/// Writes an RGBA buffer as a PNG.
pub fn write_rgba(
    pixels: Vec<u8>,
    width: usize,
    height: usize,
    path: &Path,
) -> Result<(), ImageIoError> {
    let image = RgbaImage::from_raw(width as u32, height as u32, pixels)
        .expect("RGBA buffer size matches the image");
    save(image.save(path), path)
}

fn save(result: image::ImageResult<()>, path: &Path) -> Result<(), ImageIoError> {
    result.map_err(|e| ImageIoError::Write {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Expands folders into the image files they hold (sorted, not recursive); files are kept
/// as given, whatever their extension, so a mistyped file is reported rather than ignored.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, ImageIoError> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = std::fs::read_dir(input).map_err(|source| ImageIoError::Read {
                path: input.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.is_file() && has_image_extension(path))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// Whether a path has one of the [`IMAGE_EXTENSIONS`] (any case).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}
