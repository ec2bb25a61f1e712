use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, RgbImage};
use rand::Rng;

use super::LabeledImage;

/// Training augmentation, as in the paper and the PyTorch reference: random scale, random crop
/// (padded with the ignore id where the scaled image is smaller), horizontal flip and colour
/// jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augmentation {
    /// `[height, width]` of the crops.
    pub crop: [usize; 2],
    /// Range of the random scale factor.
    pub scale: (f32, f32),
    /// Flip horizontally with probability 1/2.
    pub flip: bool,
    /// Brightness, contrast and saturation are each scaled by a factor in `1 ± jitter`.
    pub jitter: f32,
}

impl Augmentation {
    /// The paper's recipe at a given crop: scales 0.5-2.0 (the PyTorch reference uses
    /// 0.25-2.0 for Cityscapes' larger frames), flips, jitter 0.4.
    pub fn paper(crop: [usize; 2]) -> Self {
        Self {
            crop,
            scale: (0.5, 2.0),
            flip: true,
            jitter: 0.4,
        }
    }
}

/// Applies a random augmentation to a labelled image.
pub fn augment(
    sample: &LabeledImage,
    aug: &Augmentation,
    ignore: u8,
    rng: &mut impl Rng,
) -> LabeledImage {
    let (width, height) = sample.image.dimensions();
    let scale = rng.random_range(aug.scale.0..=aug.scale.1);
    let scaled_w = ((width as f32 * scale).round() as u32).max(1);
    let scaled_h = ((height as f32 * scale).round() as u32).max(1);
    let image = imageops::resize(&sample.image, scaled_w, scaled_h, FilterType::Triangle);
    let label = imageops::resize(&sample.label, scaled_w, scaled_h, FilterType::Nearest);

    let [crop_h, crop_w] = aug.crop.map(|c| c as u32);
    let x0 = rng.random_range(0..=scaled_w.saturating_sub(crop_w));
    let y0 = rng.random_range(0..=scaled_h.saturating_sub(crop_h));
    let flip = aug.flip && rng.random_bool(0.5);
    let mut out_image = RgbImage::new(crop_w, crop_h);
    let mut out_label = GrayImage::from_pixel(crop_w, crop_h, Luma([ignore]));
    for y in 0..crop_h.min(scaled_h) {
        for x in 0..crop_w.min(scaled_w) {
            let dst_x = if flip {
                crop_w.min(scaled_w) - 1 - x
            } else {
                x
            };
            out_image.put_pixel(dst_x, y, *image.get_pixel(x0 + x, y0 + y));
            out_label.put_pixel(dst_x, y, *label.get_pixel(x0 + x, y0 + y));
        }
    }
    if aug.jitter > 0.0 {
        let mut factor = || rng.random_range(1.0 - aug.jitter..=1.0 + aug.jitter);
        color_jitter(&mut out_image, factor(), factor(), factor());
    }
    LabeledImage {
        image: out_image,
        label: out_label,
    }
}

/// Scales brightness, then contrast (around the mean gray), then saturation (around each
/// pixel's gray), like torchvision's `ColorJitter` with a fixed order.
fn color_jitter(image: &mut RgbImage, brightness: f32, contrast: f32, saturation: f32) {
    let gray = |p: [f32; 3]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    let pixels = image.pixels().count().max(1) as f32;
    let mean_gray = image
        .pixels()
        .map(|p| gray(p.0.map(|v| v as f32)) * brightness)
        .sum::<f32>()
        / pixels;
    for pixel in image.pixels_mut() {
        let bright = pixel.0.map(|v| v as f32 * brightness);
        let contrasted = bright.map(|v| (v - mean_gray) * contrast + mean_gray);
        let g = gray(contrasted);
        pixel.0 = contrasted.map(|v| ((v - g) * saturation + g).round().clamp(0.0, 255.0) as u8);
    }
}
