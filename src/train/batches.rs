//! The batches of a run: which samples, decoded, augmented and mixed. Every random choice
//! depends only on (seed, iteration, index), so a resumed run replays them exactly.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::{TrainConfig, TrainError};
use crate::data::{
    Augmentation, Dataset, LabelPolicy, LabeledImage, Sample, augment, class_mix, load_parallel,
};

/// Decodes and augments the images of batch `iteration`, in parallel, then applies ClassMix
/// between its crops.
pub(super) fn prepare_batch(
    train_set: &Dataset,
    config: &TrainConfig,
    augmentation: &Augmentation,
    iteration: usize,
) -> Result<Vec<LabeledImage>, TrainError> {
    let samples = batch_samples(train_set, config, iteration);
    let ignore = train_set.classes.ignore_index;
    let crops = load_parallel(&samples, train_set, LabelPolicy::Strict)
        .into_par_iter()
        .enumerate()
        .map(|(index, loaded)| {
            let mut rng = sample_rng(config.seed, iteration, index);
            Ok(augment(&loaded?, augmentation, ignore, &mut rng))
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    if config.class_mix == 0.0 {
        return Ok(crops);
    }
    Ok((0..crops.len())
        .into_par_iter()
        .map(|index| {
            // A stream of its own, so that the crops above stay those of a run without mixing.
            let mut rng = sample_rng(config.seed ^ CLASS_MIX_STREAM, iteration, index);
            if !rng.random_bool(f64::from(config.class_mix)) {
                return crops[index].clone();
            }
            // Any other crop of the batch, as it was before mixing.
            let other = (index + rng.random_range(1..crops.len())) % crops.len();
            class_mix(&crops[index], &crops[other], ignore, &mut rng)
        })
        .collect())
}

/// Seeds ClassMix's random choices apart from the augmentation's.
const CLASS_MIX_STREAM: u64 = 0xC1A5_5312_0000_0000;

/// The samples of batch `iteration`: epochs walk a per-epoch shuffle seeded by the run seed.
fn batch_samples(dataset: &Dataset, config: &TrainConfig, iteration: usize) -> Vec<Sample> {
    let n = dataset.samples.len();
    (0..config.batch_size)
        .map(|k| {
            let position = iteration * config.batch_size + k;
            let (epoch, index) = (position / n, position % n);
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut StdRng::seed_from_u64(
                config.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ));
            dataset.samples[order[index]].clone()
        })
        .collect()
}

/// The augmentation RNG of one sample of one iteration.
fn sample_rng(seed: u64, iteration: usize, index: usize) -> StdRng {
    StdRng::seed_from_u64(
        seed.wrapping_add((iteration as u64) << 16)
            .wrapping_add(index as u64)
            .wrapping_mul(0xD134_2543_DE82_EF95),
    )
}
