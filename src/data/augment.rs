use fast_image_resize::{
    FilterType, IntoImageView, IntoImageViewMut, ResizeAlg, ResizeOptions, Resizer,
};
use image::imageops;
use image::{ImageBuffer, Luma, Pixel, Rgb, RgbImage};
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
    let scaled = [
        ((width as f32 * scale).round() as u32).max(1),
        ((height as f32 * scale).round() as u32).max(1),
    ];
    let [crop_h, crop_w] = aug.crop.map(|c| c as u32);
    let origin = [
        rng.random_range(0..=scaled[0].saturating_sub(crop_w)),
        rng.random_range(0..=scaled[1].saturating_sub(crop_h)),
    ];
    let flip = aug.flip && rng.random_bool(0.5);
    let window = Window {
        scaled,
        origin,
        size: [crop_w.min(scaled[0]), crop_h.min(scaled[1])],
    };
    let bilinear = ResizeAlg::Convolution(FilterType::Bilinear);
    let crop = [crop_w, crop_h];
    let mut image = place(
        window.resample(&sample.image, bilinear),
        crop,
        flip,
        Rgb([0; 3]),
    );
    let label = place(
        window.resample(&sample.label, ResizeAlg::Nearest),
        crop,
        flip,
        Luma([ignore]),
    );
    if aug.jitter > 0.0 {
        let mut factor = || rng.random_range(1.0 - aug.jitter..=1.0 + aug.jitter);
        color_jitter(&mut image, factor(), factor(), factor());
    }
    LabeledImage { image, label }
}

/// What a crop keeps of an image rescaled to `scaled` pixels (width, height): `size` pixels
/// from `origin`, both on the rescaled grid.
struct Window {
    scaled: [u32; 2],
    origin: [u32; 2],
    size: [u32; 2],
}

impl Window {
    /// Resamples only the window: the pixels that rescaling the whole image and cropping it
    /// gives (the filter still reads the source around the window's edges), for a fraction of
    /// the work, since a 2x scale rescales nine times the pixels a 320x240 crop keeps.
    fn resample<P: Pixel>(
        &self,
        source: &ImageBuffer<P, Vec<P::Subpixel>>,
        algorithm: ResizeAlg,
    ) -> ImageBuffer<P, Vec<P::Subpixel>>
    where
        ImageBuffer<P, Vec<P::Subpixel>>: IntoImageView + IntoImageViewMut,
    {
        let (width, height) = source.dimensions();
        let ratio = [
            width as f64 / self.scaled[0] as f64,
            height as f64 / self.scaled[1] as f64,
        ];
        let left = self.origin[0] as f64 * ratio[0];
        let top = self.origin[1] as f64 * ratio[1];
        // Rounding can put the far edge a hair past the image, which the resizer refuses.
        let box_width = (self.size[0] as f64 * ratio[0]).min(width as f64 - left);
        let box_height = (self.size[1] as f64 * ratio[1]).min(height as f64 - top);
        let options = ResizeOptions::new()
            .resize_alg(algorithm)
            .crop(left, top, box_width, box_height);
        let mut out = ImageBuffer::new(self.size[0], self.size[1]);
        Resizer::new()
            .resize(source, &mut out, &options)
            .expect("the window lies inside the image and both buffers hold the same pixels");
        out
    }
}

/// `window`, mirrored where `flip`, at the top left of a `crop` (width, height) canvas of
/// `fill`: a scaled image smaller than the crop is padded right and below.
fn place<P: Pixel>(
    mut window: ImageBuffer<P, Vec<P::Subpixel>>,
    crop: [u32; 2],
    flip: bool,
    fill: P,
) -> ImageBuffer<P, Vec<P::Subpixel>> {
    if flip {
        imageops::flip_horizontal_in_place(&mut window);
    }
    if window.dimensions() == (crop[0], crop[1]) {
        return window;
    }
    let mut canvas = ImageBuffer::from_pixel(crop[0], crop[1], fill);
    imageops::replace(&mut canvas, &window, 0, 0);
    canvas
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

#[cfg(test)]
mod tests {
    use image::GrayImage;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// A 97x61 image with texture in every channel, and labels that count columns, so that a
    /// label tells where its pixel came from.
    fn sample() -> LabeledImage {
        let image = RgbImage::from_fn(97, 61, |x, y| {
            Rgb([
                (x * 2 + y) as u8,
                ((x * 7) ^ (y * 13)) as u8,
                (x * y % 251) as u8,
            ])
        });
        let label = GrayImage::from_fn(97, 61, |x, _| Luma([x as u8]));
        LabeledImage { image, label }
    }

    fn full_then_crop<P: Pixel + 'static>(
        source: &ImageBuffer<P, Vec<P::Subpixel>>,
        window: &Window,
        algorithm: ResizeAlg,
    ) -> ImageBuffer<P, Vec<P::Subpixel>>
    where
        ImageBuffer<P, Vec<P::Subpixel>>: IntoImageView + IntoImageViewMut,
    {
        let mut full = ImageBuffer::new(window.scaled[0], window.scaled[1]);
        let options = ResizeOptions::new().resize_alg(algorithm);
        Resizer::new().resize(source, &mut full, &options).unwrap();
        let [x, y] = window.origin;
        let [w, h] = window.size;
        imageops::crop_imm(&full, x, y, w, h).to_image()
    }

    fn max_difference(a: &RgbImage, b: &RgbImage) -> u8 {
        assert_eq!(a.dimensions(), b.dimensions());
        a.iter()
            .zip(b.iter())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap()
    }

    #[test]
    fn a_window_is_the_crop_of_the_whole_rescaled_image() {
        let sample = sample();
        let bilinear = ResizeAlg::Convolution(FilterType::Bilinear);
        let windows = [
            // Downscaled (the filter spans several source pixels), upscaled, and one that
            // reaches the rescaled image's far corner.
            ([48, 30], [5, 3], [40, 20]),
            ([165, 104], [37, 50], [96, 54]),
            ([194, 122], [94, 62], [100, 60]),
        ];
        for (scaled, origin, size) in windows {
            let window = Window {
                scaled,
                origin,
                size,
            };
            let image = window.resample(&sample.image, bilinear);
            let reference = full_then_crop(&sample.image, &window, bilinear);
            assert!(max_difference(&image, &reference) <= 1, "{scaled:?}");
            // Where the old path (the image crate's triangle filter on the whole frame) put it.
            let old = imageops::resize(
                &sample.image,
                scaled[0],
                scaled[1],
                imageops::FilterType::Triangle,
            );
            let old = imageops::crop_imm(&old, origin[0], origin[1], size[0], size[1]).to_image();
            assert!(max_difference(&image, &old) <= 2, "{scaled:?}");
            let label = window.resample(&sample.label, ResizeAlg::Nearest);
            let reference = full_then_crop(&sample.label, &window, ResizeAlg::Nearest);
            assert_eq!(label, reference, "{scaled:?}");
        }
    }

    #[test]
    fn crops_are_padded_with_the_ignore_id_and_flips_mirror_image_and_label_together() {
        let sample = sample();
        let aug = Augmentation {
            crop: [80, 120],
            scale: (1.0, 1.0),
            flip: false,
            jitter: 0.0,
        };
        let plain = augment(&sample, &aug, 255, &mut StdRng::seed_from_u64(3));
        assert_eq!(plain.image.dimensions(), (120, 80));
        // At scale 1 the image is copied: the kept part is the source, the rest void.
        assert_eq!(plain.label.get_pixel(96, 60).0, [96]);
        assert_eq!(plain.label.get_pixel(97, 0).0, [255]);
        assert_eq!(plain.label.get_pixel(0, 61).0, [255]);
        assert_eq!(
            plain.image.get_pixel(50, 40),
            sample.image.get_pixel(50, 40)
        );

        let flipping = Augmentation { flip: true, ..aug };
        let flipped = (0..20)
            .map(|seed| augment(&sample, &flipping, 255, &mut StdRng::seed_from_u64(seed)))
            .find(|out| out.label != plain.label)
            .expect("one of twenty seeds flips");
        // Mirrored within the kept 97 columns, which stay at the left.
        assert_eq!(flipped.label.get_pixel(0, 10).0, [96]);
        assert_eq!(flipped.label.get_pixel(96, 10).0, [0]);
        assert_eq!(flipped.label.get_pixel(100, 10).0, [255]);
        assert_eq!(
            flipped.image.get_pixel(96 - 50, 40),
            sample.image.get_pixel(50, 40)
        );
    }
}
