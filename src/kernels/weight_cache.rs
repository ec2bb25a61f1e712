//! The weights of recent inference calls as the convolution kernels read them (packed per
//! register block, or Winograd-transformed), so that a model run frame after frame prepares
//! each layer's weights once, as ONNX Runtime prepacks them when a session starts.
//!
//! Why: preparing is a pass over every weight per call, and more for Winograd (`U` is 16/9 the
//! size of the weights), a noticeable part of a frame (`docs/kernels.md`).
//!
//! Keyed by where the weights' values lie. That is sound because each entry keeps a clone of
//! the weight tensor: flex storage is reference-counted and copied on write, so while the entry
//! lives those bytes can neither change nor be freed and reused by another tensor. An entry
//! whose clone is the last one left (its model was dropped, or training replaced the tensor)
//! can never be hit again and is dropped; beyond [`CAPACITY`], the least recently used go.

use std::sync::{Arc, Mutex, PoisonError};

use burn::backend::flex::FlexTensor;

use super::conv::{Path, Prepared};
use super::flex::contiguous;
use super::geometry::Geometry;

/// Most prepared floats kept: 128 MiB, more than ResNet18 BiSeNet's 20 M.
const CAPACITY: usize = 32 << 20;

/// What identifies one layer's prepared weights.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Key {
    address: usize,
    len: usize,
    /// `[C_out, C_in, kh, kw]`.
    shape: [usize; 4],
    path: Path,
}

struct Entry {
    key: Key,
    /// Keeps the bytes at `key.address` alive and unchanged (see the module's documentation).
    weight: FlexTensor,
    prepared: Arc<Prepared>,
}

/// Least recently used first.
static ENTRIES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// `weight` (contiguous, f32, `[C_out, C_in, kh, kw]`) prepared for `path`: from the cache, or
/// prepared now and kept.
pub(super) fn prepared(weight: &FlexTensor, geometry: &Geometry, path: Path) -> Arc<Prepared> {
    let values = contiguous(weight);
    if path == Path::Gemm {
        return Arc::new(Prepared::new(path, geometry, values));
    }
    let [kernel_h, kernel_w] = geometry.kernel;
    let key = Key {
        address: values.as_ptr() as usize,
        len: values.len(),
        shape: [
            geometry.channels_out,
            geometry.channels_in,
            kernel_h,
            kernel_w,
        ],
        path,
    };
    let lock = || ENTRIES.lock().unwrap_or_else(PoisonError::into_inner);
    {
        let mut entries = lock();
        if let Some(index) = entries.iter().position(|entry| entry.key == key) {
            let entry = entries.remove(index);
            let prepared = Arc::clone(&entry.prepared);
            entries.push(entry);
            return prepared;
        }
    }
    // Outside the lock: preparing runs on the worker pool.
    let prepared = Arc::new(Prepared::new(path, geometry, values));
    let mut entries = lock();
    // Another thread may have prepared the same layer meanwhile: keep one entry per layer.
    if let Some(entry) = entries.iter().find(|entry| entry.key == key) {
        return Arc::clone(&entry.prepared);
    }
    entries.retain(|entry| !entry.weight.is_unique());
    entries.push(Entry {
        key,
        weight: weight.clone(),
        prepared: Arc::clone(&prepared),
    });
    let mut held: usize = entries.iter().map(|entry| entry.prepared.len()).sum();
    while held > CAPACITY && entries.len() > 1 {
        held -= entries.remove(0).prepared.len();
    }
    prepared
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::module::Param;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::prelude::*;
    use burn::tensor::Distribution;

    use super::super::conv::try_conv2d;
    use super::*;

    /// A layer wide and deep enough for the direct or Winograd kernel, its input, geometry and
    /// path; `None` (said) on a CPU with neither, where nothing is prepared.
    fn layer(device: &Device) -> Option<(Conv2d, Tensor<4>, Geometry, Path)> {
        let conv = Conv2dConfig::new([16, 16], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        let x = Tensor::random([1, 16, 48, 48], Distribution::Uniform(-1.0, 1.0), device);
        let geometry = Geometry::of(&conv, x.dims()).expect("a supported geometry");
        let path = Path::best(&geometry);
        if path == Path::Gemm {
            eprintln!("skipped: this CPU has no direct kernel, so nothing is prepared");
            return None;
        }
        Some((conv, x, geometry, path))
    }

    fn weight_of(conv: &Conv2d) -> FlexTensor {
        conv.weight
            .val()
            .try_into_primitive::<Flex>()
            .expect("flex")
    }

    #[test]
    fn a_layer_is_prepared_once_and_new_weights_are_never_served_stale() {
        let device = Device::flex();
        let Some((mut conv, x, geometry, path)) = layer(&device) else {
            return;
        };
        let first = prepared(&weight_of(&conv), &geometry, path);
        let again = prepared(&weight_of(&conv), &geometry, path);
        assert!(
            Arc::ptr_eq(&first, &again),
            "the same weights were prepared twice"
        );

        // New weights (as an optimizer step or a loaded model makes them) are new storage.
        let replaced = conv.weight.val().mul_scalar(-2.0);
        conv.weight = Param::from_tensor(replaced);
        let fresh = prepared(&weight_of(&conv), &geometry, path);
        assert!(!Arc::ptr_eq(&first, &fresh));
        let expected = conv.forward(x.clone());
        let fast = try_conv2d(&conv, &x, None, false).expect("the fast path applies");
        let diff: f32 = (expected - fast).abs().max().into_scalar();
        assert!(diff < 1e-3, "off by {diff}");
    }

    #[test]
    fn entries_of_dropped_weights_are_released() {
        let device = Device::flex();
        let Some((conv, _, geometry, path)) = layer(&device) else {
            return;
        };
        let kept = prepared(&weight_of(&conv), &geometry, path);
        drop(conv);
        // The next layer prepared sweeps out the entries of tensors nobody else holds.
        let (other, ..) = layer(&device).expect("as above");
        prepared(&weight_of(&other), &geometry, path);
        assert_eq!(
            Arc::strong_count(&kept),
            1,
            "the cache still holds a dropped layer"
        );
    }
}
