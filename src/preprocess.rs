//! Image -> network input: one implementation for the CLI and the browser.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::upsample::resize_bilinear;

/// Per-channel normalisation applied to RGB scaled to `[0, 1]`: `(x - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// ImageNet statistics, the convention of every BiSeNet implementation.
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
}

impl Default for Normalization {
    fn default() -> Self {
        Self::IMAGENET
    }
}

/// Memory layout of an 8-bit interleaved image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Rgb8,
    /// Canvas `ImageData` in the browser; alpha is ignored.
    Rgba8,
}

impl PixelFormat {
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Rgb8 => 3,
            PixelFormat::Rgba8 => 4,
        }
    }
}

/// A borrowed 8-bit image, row-major, channels interleaved.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub pixels: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub format: PixelFormat,
}

impl<'a> Frame<'a> {
    /// Wraps a pixel buffer, checking that its length matches the size and format.
    pub fn new(
        pixels: &'a [u8],
        width: usize,
        height: usize,
        format: PixelFormat,
    ) -> Result<Self, String> {
        if width == 0 || height == 0 {
            return Err(format!("empty image ({width}x{height})"));
        }
        let expected = width * height * format.channels();
        if pixels.len() != expected {
            return Err(format!(
                "pixel buffer holds {} bytes, but a {width}x{height} {format:?} image needs {expected}",
                pixels.len()
            ));
        }
        Ok(Self {
            pixels,
            width,
            height,
            format,
        })
    }

    /// The RGB value of every pixel, row-major.
    pub fn rgb(&self) -> impl Iterator<Item = [u8; 3]> + '_ {
        self.pixels
            .chunks_exact(self.format.channels())
            .map(|p| [p[0], p[1], p[2]])
    }
}

/// Normalised planar floats, `[3 * H * W]` in CHW order.
pub fn normalize_chw(frame: &Frame, norm: &Normalization) -> Vec<f32> {
    let plane = frame.width * frame.height;
    let mut out = vec![0.0f32; 3 * plane];
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * norm.std[c]));
    let offset: [f32; 3] = std::array::from_fn(|c| norm.mean[c] / norm.std[c]);
    for (i, rgb) in frame.rgb().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = rgb[c] as f32 * scale[c] - offset[c];
        }
    }
    out
}

/// `size = [h, w]` rounded up to a multiple of `multiple` (unchanged for `None` or 1).
pub fn round_up_to_multiple(size: [usize; 2], multiple: Option<usize>) -> [usize; 2] {
    match multiple {
        Some(m) if m > 1 => size.map(|side| side.div_ceil(m) * m),
        _ => size,
    }
}

/// The network input for one frame: `[1, 3, H, W]`, normalised, resized (bilinear) to
/// `size = [h, w]` when given.
pub fn frame_to_tensor(
    frame: &Frame,
    norm: &Normalization,
    size: Option<[usize; 2]>,
    device: &Device,
) -> Tensor<4> {
    let data = TensorData::new(
        normalize_chw(frame, norm),
        [1, 3, frame.height, frame.width],
    );
    let x = Tensor::<4>::from_data(data, device);
    match size {
        Some(size) => resize_bilinear(x, size),
        None => x,
    }
}
