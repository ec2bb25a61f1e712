//! One optimisation step: SGD with momentum on a batch.

use burn::module::ParamGroup;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};

use super::TrainingLoss;
use crate::data::Batch;
use crate::model::Network;

/// SGD with momentum; weight decay on every parameter except BatchNorm's and biases.
pub fn optimizer(momentum: f64, weight_decay: f32) -> ModuleOptimizer {
    let momentum = Some(MomentumConfig::new().with_momentum(momentum));
    let decayed = SgdConfig::new()
        .with_momentum(momentum.clone())
        .with_weight_decay(Some(WeightDecayConfig::new(weight_decay)));
    let plain = SgdConfig::new().with_momentum(momentum);
    decayed.init().with_group(
        ParamGroup::from_any_predicates(vec!["gamma", "beta", "bias"]),
        plain.build(),
        None,
    )
}

/// One SGD step on a batch: forward through the main and auxiliary heads, the loss, backward,
/// update. Returns the updated model and the loss.
pub fn step(
    model: Network,
    optim: &mut ModuleOptimizer,
    batch: Batch,
    loss_fn: &TrainingLoss,
    lr: f64,
) -> (Network, f32) {
    let loss = loss_fn.forward(model.forward(batch.images), batch.labels);
    let loss_value: f32 = loss.clone().into_scalar();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (optim.step(lr, model, grads), loss_value)
}
