//! Training on a GPU through wgpu takes the same path as on the CPU: from the same weights and
//! batch, the loss, every parameter's gradient and the losses of a few SGD steps agree within
//! float tolerance (the CPU side runs the crate's own convolution, resize and cross-entropy
//! kernels; the wgpu side burn's kernels and the crate's GPU training forms).
//!
//! Needs a build with the wgpu backend and an adapter; Mesa's software Vulkan is enough
//! (`apt-get install mesa-vulkan-drivers`):
//! `cargo test --release --features wgpu --test wgpu_training`.
#![cfg(feature = "wgpu")]

use bisenet::data::Batch;
use bisenet::model::{BackboneKind, BiSeNetConfig, Network, NetworkConfig};
use bisenet::train::{OhemCrossEntropy, optimizer, step};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::DeviceKind;

const STEPS: usize = 3;
const SIZE: [usize; 3] = [4, 96, 128];

/// A smooth image (a product of sines per channel) and labels made of vertical stripes, so
/// every class is present and the loss changes visibly from step to step.
fn batch(device: &Device, [n, h, w]: [usize; 3], classes: usize) -> Batch {
    let images: Vec<f32> = (0..n * 3 * h * w)
        .map(|i| {
            let (x, y, c) = (i % w, (i / w) % h, (i / (w * h)) % 3);
            ((x as f32 * 0.21 + c as f32).sin() * (y as f32 * 0.13 + i as f32 * 1e-5).cos()) * 1.5
        })
        .collect();
    let labels: Vec<i64> = (0..n * h * w)
        .map(|i| ((i % w) * classes / w) as i64)
        .collect();
    Batch {
        images: Tensor::from_data(TensorData::new(images, [n, 3, h, w]), device),
        labels: Tensor::from_data(TensorData::new(labels, [n, h, w]), device),
    }
}

/// `initial`'s weights in a fresh network on `device`'s autodiff form.
fn trainable_copy(initial: &Network, device: &Device) -> Network {
    initial
        .config()
        .init(&device.clone().autodiff())
        .load_record(initial.clone().into_record())
}

/// Every parameter's gradient, by path, as floats.
struct GradientsByName<'a> {
    path: Vec<String>,
    grads: &'a GradientsParams,
    found: Vec<(String, Vec<f32>)>,
}

impl ModuleVisitor for GradientsByName<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let values = grad.into_data().convert::<f32>().iter::<f32>().collect();
            self.found.push((self.path.join("."), values));
        }
    }
}

/// The loss of one forward pass (main and auxiliary heads) and every parameter's gradient.
fn loss_and_gradients(model: &Network, device: &Device) -> (f32, Vec<(String, Vec<f32>)>) {
    let batch = batch(&device.clone().autodiff(), SIZE, model.num_classes());
    let output = model.forward(batch.images);
    let loss_fn = OhemCrossEntropy::default();
    let mut loss = loss_fn.forward(output.logits, batch.labels.clone());
    for aux in output.aux {
        loss = loss + loss_fn.forward(aux, batch.labels.clone());
    }
    let value = loss.clone().into_scalar();
    let grads = GradientsParams::from_grads(loss.backward(), model);
    let mut visitor = GradientsByName {
        path: Vec::new(),
        grads: &grads,
        found: Vec::new(),
    };
    model.visit(&mut visitor);
    (value, visitor.found)
}

/// The losses of `STEPS` SGD steps from `initial` on one batch, on `device`.
fn losses(initial: &Network, device: &Device) -> Vec<f32> {
    let mut model = trainable_copy(initial, device);
    let mut optim = optimizer(0.9, 5e-4);
    let loss_fn = OhemCrossEntropy::default();
    let mut losses = Vec::with_capacity(STEPS);
    for _ in 0..STEPS {
        let batch = batch(&device.clone().autodiff(), SIZE, model.num_classes());
        let loss;
        (model, loss) = step(model, &mut optim, batch, &loss_fn, 1.0, 0.01);
        losses.push(loss);
    }
    losses
}

#[test]
fn training_on_wgpu_matches_the_cpu() {
    let gpu = Device::wgpu(DeviceKind::DefaultDevice);
    let cpu = Device::flex();
    for backbone in [BackboneKind::Xception39, BackboneKind::ResNet18] {
        // Weights are drawn once, on the CPU, and copied: both sides start equal.
        let initial = NetworkConfig::from(BiSeNetConfig::new(backbone, 11)).init(&cpu);

        let (cpu_loss, cpu_grads) = loss_and_gradients(&trainable_copy(&initial, &cpu), &cpu);
        let (gpu_loss, gpu_grads) = loss_and_gradients(&trainable_copy(&initial, &gpu), &gpu);
        assert!(
            (cpu_loss - gpu_loss).abs() <= 1e-4 * cpu_loss,
            "{backbone}: loss {cpu_loss} on flex, {gpu_loss} on wgpu"
        );
        assert!(!cpu_grads.is_empty(), "{backbone}: no gradients");
        let cpu_names: Vec<&String> = cpu_grads.iter().map(|(name, _)| name).collect();
        let gpu_names: Vec<&String> = gpu_grads.iter().map(|(name, _)| name).collect();
        assert_eq!(
            cpu_names, gpu_names,
            "every parameter has a gradient on both"
        );
        for ((name, a), (_, b)) in cpu_grads.iter().zip(&gpu_grads) {
            // BatchNorm's backward subtracts large sums of a small batch, so summation order
            // moves early layers' gradients by a few percent here; a wrong kernel is off by
            // its whole value.
            let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let worst = a
                .iter()
                .zip(b)
                .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                worst <= 0.1 * scale,
                "{backbone}: gradient of {name} differs by {worst} (largest value {scale})"
            );
        }

        let on_cpu = losses(&initial, &cpu);
        let on_gpu = losses(&initial, &gpu);
        println!("{backbone}: flex {on_cpu:?}, wgpu {on_gpu:?}");
        assert!(on_cpu[0] != on_cpu[STEPS - 1], "the loss moves");
        for (a, b) in on_cpu.iter().zip(&on_gpu) {
            assert!(
                (a - b).abs() <= 1e-2 * a.abs(),
                "{backbone}: losses differ: flex {on_cpu:?}, wgpu {on_gpu:?}"
            );
        }
    }
}
