//! Label maps -> pictures: colour masks and overlays, shared by the CLI and the browser.

use crate::classes::ClassSet;
use crate::preprocess::Frame;

/// Class ids of every pixel of an image, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMap {
    pub width: usize,
    pub height: usize,
    pub ids: Vec<u8>,
}

impl LabelMap {
    /// Share of the pixels labelled with each class, in class order.
    pub fn class_shares(&self, num_classes: usize) -> Vec<f64> {
        let mut counts = vec![0usize; num_classes];
        for &id in &self.ids {
            if let Some(count) = counts.get_mut(id as usize) {
                *count += 1;
            }
        }
        let total = self.ids.len().max(1) as f64;
        counts.into_iter().map(|c| c as f64 / total).collect()
    }
}

/// The colour mask as RGBA (opaque).
pub fn colorize(labels: &LabelMap, classes: &ClassSet) -> Vec<u8> {
    labels
        .ids
        .iter()
        .flat_map(|&id| {
            let [r, g, b] = classes.color(id);
            [r, g, b, 255]
        })
        .collect()
}

/// The image with the colour mask blended over it, as RGBA: `alpha` is the mask's opacity,
/// clamped to `[0, 1]`. The frame and the label map must have the same size.
pub fn overlay(frame: &Frame, labels: &LabelMap, classes: &ClassSet, alpha: f32) -> Vec<u8> {
    assert_eq!(
        (frame.width, frame.height),
        (labels.width, labels.height),
        "overlay needs a label map of the image's size"
    );
    let alpha = alpha.clamp(0.0, 1.0);
    frame
        .rgb()
        .zip(&labels.ids)
        .flat_map(|(rgb, &id)| {
            let color = classes.color(id);
            let blend =
                |c: usize| (rgb[c] as f32 * (1.0 - alpha) + color[c] as f32 * alpha).round() as u8;
            [blend(0), blend(1), blend(2), 255]
        })
        .collect()
}

/// The label map as an 8-bit grayscale PNG of class ids: the exchange format of
/// `bisenet segment --output labels` and the browser's "labels" download.
pub fn labels_png(labels: &LabelMap) -> Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, labels.width as u32, labels.height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&labels.ids)?;
    writer.finish()?;
    Ok(bytes)
}
