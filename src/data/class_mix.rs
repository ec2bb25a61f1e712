use rand::Rng;
use rand::seq::SliceRandom;

use super::LabeledImage;

/// ClassMix (Olsson et al., WACV 2021), used here as a supervised augmentation: the pixels of
/// a random half of the classes in `source` are pasted, with their labels, over `target`.
///
/// Why: a small dataset shows each thin or rare object (a pole, a pedestrian) against the few
/// backgrounds of its own drive; pasting whole class regions between crops puts them in front
/// of other scenes, so the network has to recognise the object rather than its usual context.
/// Both crops must have one size (they are crops of one batch).
pub fn class_mix(
    target: &LabeledImage,
    source: &LabeledImage,
    ignore: u8,
    rng: &mut impl Rng,
) -> LabeledImage {
    assert_eq!(
        target.image.dimensions(),
        source.image.dimensions(),
        "ClassMix needs crops of one size"
    );
    let mut present = [false; 256];
    for &id in source.label.as_raw() {
        present[id as usize] = true;
    }
    present[ignore as usize] = false;
    let mut classes: Vec<u8> = (0..=u8::MAX).filter(|&id| present[id as usize]).collect();
    classes.shuffle(rng);
    let mut pasted = [false; 256];
    for &id in &classes[..classes.len().div_ceil(2)] {
        pasted[id as usize] = true;
    }

    let mut mixed = target.clone();
    let pixels = mixed
        .image
        .pixels_mut()
        .zip(mixed.label.pixels_mut())
        .zip(source.image.pixels().zip(source.label.pixels()));
    for ((image, label), (source_image, source_label)) in pixels {
        if pasted[source_label.0[0] as usize] {
            *image = *source_image;
            *label = *source_label;
        }
    }
    mixed
}

#[cfg(test)]
mod tests {
    use image::{GrayImage, Luma, Rgb, RgbImage};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const VOID: u8 = 11;

    /// A 4x2 crop whose left half is class `left`, right half class `right`, in one colour each.
    fn crop(left: u8, right: u8) -> LabeledImage {
        let label = GrayImage::from_fn(4, 2, |x, _| Luma([if x < 2 { left } else { right }]));
        let image = RgbImage::from_fn(4, 2, |x, _| {
            let id = label.get_pixel(x, 0).0[0];
            Rgb([id * 10, id * 10 + 1, id * 10 + 2])
        });
        LabeledImage { image, label }
    }

    #[test]
    fn pastes_half_of_the_source_classes_with_their_pixels() {
        let (target, source) = (crop(0, 1), crop(2, 3));
        let mut seen = [false; 2];
        for seed in 0..32 {
            let mixed = class_mix(&target, &source, VOID, &mut StdRng::seed_from_u64(seed));
            let labels = mixed.label.as_raw();
            // One of the source's two classes replaced its half, the other half kept the target.
            let left_pasted = labels[0] == 2;
            let right_pasted = labels[3] == 3;
            assert!(left_pasted != right_pasted, "seed {seed}: {labels:?}");
            seen[usize::from(right_pasted)] = true;
            for (x, y, label) in mixed.label.enumerate_pixels() {
                let id = label.0[0];
                assert_eq!(
                    mixed.image.get_pixel(x, y).0[0],
                    id * 10,
                    "image follows label"
                );
            }
        }
        assert_eq!(seen, [true, true], "either class may be the one pasted");
    }

    #[test]
    fn void_pixels_of_the_source_are_never_pasted() {
        let (target, source) = (crop(0, 1), crop(VOID, 3));
        for seed in 0..8 {
            let mixed = class_mix(&target, &source, VOID, &mut StdRng::seed_from_u64(seed));
            // The source's only class is always the pasted half; its void half never is.
            assert_eq!(mixed.label.as_raw(), &[0, 0, 3, 3, 0, 0, 3, 3]);
        }
    }
}
