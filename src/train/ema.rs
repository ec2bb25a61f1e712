//! An exponential moving average (EMA) of the weights being trained.
//!
//! Late in a schedule, the held-out drive's mIoU of successive checkpoints swings by several
//! points while the loss barely moves: single points of the trajectory land at random on the
//! sharp or the flat side of the minimum. Their average sits nearer its flat middle, which is
//! what carries over to a drive the network never saw (SWA, Izmailov et al. 2018; SWAD, Cha et
//! al. 2021, for domain shift). The BatchNorm running statistics are averaged with the
//! weights, as timm's `ModelEmaV2` does, so the average is a network that runs as it is.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::model::Network;

/// The averaged network (inference form, no autodiff graph) and its decay.
#[derive(Debug, Clone)]
pub struct WeightEma {
    pub network: Network,
    decay: f64,
}

impl WeightEma {
    /// An average that starts at `network` (its inference form), forgetting a fraction
    /// `1 - decay` of itself at each update: `1 / (1 - decay)` iterations make its window.
    pub fn new(network: Network, decay: f64) -> Self {
        Self { network, decay }
    }

    /// Folds in `current` (the inference form of the network being trained, the same
    /// architecture) after `iteration` steps. Early updates forget faster, `(1 + t) / (10 + t)`
    /// when that is below the decay, so the random initialisation does not linger in the
    /// average for a whole window.
    pub fn update(&mut self, current: &Network, iteration: usize) {
        let t = iteration as f64;
        let decay = self.decay.min((1.0 + t) / (10.0 + t));
        let mut values = FloatValues(Vec::new());
        current.visit(&mut values);
        let mut blend = Blend {
            values: values.0.into_iter(),
            decay,
        };
        self.network = self.network.clone().map(&mut blend);
        debug_assert!(blend.values.next().is_none(), "networks of different size");
    }
}

/// Every float tensor of a module, parameters and running statistics, flattened, in the
/// order the module visits them.
struct FloatValues(Vec<Tensor<1>>);

impl ModuleVisitor for FloatValues {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().reshape([-1]));
    }
}

/// `average ← decay · average + (1 − decay) · current`, tensor by tensor in visiting order
/// (the same for two networks of one architecture).
struct Blend<I> {
    values: I,
    decay: f64,
}

impl<I: Iterator<Item = Tensor<1>>> ModuleMapper for Blend<I> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(current) = self.values.next() else {
            return param;
        };
        let decay = self.decay;
        param.map(|average| {
            let shape = average.shape();
            average.mul_scalar(decay) + current.reshape(shape).mul_scalar(1.0 - decay)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Architecture, BackboneKind, NetworkConfig};

    /// Two randomly initialised V2 networks (the smallest to build) with different weights.
    fn two_networks() -> (Network, Network) {
        let device = Device::flex();
        let config = NetworkConfig::new(Architecture::V2, BackboneKind::Xception39, 3);
        device.seed(1);
        let a = config.init(&device);
        device.seed(2);
        (a, config.init(&device))
    }

    fn values(network: &Network) -> Vec<f32> {
        let mut values = FloatValues(Vec::new());
        network.visit(&mut values);
        values
            .0
            .into_iter()
            .flat_map(|t| t.into_data().try_into_vec::<f32>().unwrap())
            .collect()
    }

    /// `(a, b, average)` values after one update of an average started at `a` by `b`.
    fn blended(decay: f64, iteration: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (a, b) = two_networks();
        let mut ema = WeightEma::new(a.clone(), decay);
        ema.update(&b, iteration);
        (values(&a), values(&b), values(&ema.network))
    }

    /// Every tensor, weights and BatchNorm running statistics alike, becomes
    /// `0.75 a + 0.25 b` at decay 0.75.
    #[test]
    fn an_update_blends_every_tensor() {
        let (a, b, average) = blended(0.75, 1_000);
        assert_eq!(average.len(), a.len());
        for ((a, b), average) in a.iter().zip(&b).zip(&average) {
            assert!((average - (0.75 * a + 0.25 * b)).abs() < 1e-6);
        }
        let differing = a.iter().zip(&b).filter(|(a, b)| a != b).count();
        assert!(differing > 1000, "the two networks must differ");
    }

    /// The first update forgets faster than the decay asks: at step 0 the average keeps 1/10
    /// of itself.
    #[test]
    fn early_updates_forget_the_start() {
        let (a, b, average) = blended(0.999, 0);
        for ((a, b), average) in a.iter().zip(&b).zip(&average) {
            assert!((average - (0.1 * a + 0.9 * b)).abs() < 1e-6);
        }
    }
}
