//! Counting parameters the way PyTorch's `model.parameters()` does.

use burn::prelude::*;

/// Counts trainable parameters: everything but BatchNorm running statistics, which are
/// buffers in PyTorch's terms (burn's own `num_params` counts them too).
struct TrainableCounter {
    path: Vec<String>,
    count: usize,
}

impl burn::module::ModuleVisitor for TrainableCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let is_running_stat = self
            .path
            .last()
            .is_some_and(|name| name.starts_with("running_"));
        if !is_running_stat {
            self.count += param.shape().num_elements();
        }
    }
}

/// Number of trainable parameters of `module` (BatchNorm running statistics excluded).
pub fn count<M: Module>(module: &M) -> usize {
    let mut counter = TrainableCounter {
        path: Vec::new(),
        count: 0,
    };
    module.visit(&mut counter);
    counter.count
}
