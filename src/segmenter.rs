//! A loaded model ready to label frames: preprocessing, network and labelling in one place, so
//! the CLI, the evaluator and the browser run exactly the same computation.

use burn::prelude::*;

use crate::model::Network;
use crate::postprocess::{ids_from_data, labels_from_logits, labels_on_cpu};
use crate::preprocess::{Frame, frame_to_tensor};
use crate::render::LabelMap;
use crate::tta::TestTimeAugmentation;
use crate::weights::{LoadedModel, ModelInfo};

/// A model in inference form, its metadata and the device it runs on.
#[derive(Debug)]
pub struct Segmenter {
    pub model: Network,
    pub info: ModelInfo,
    pub device: Device,
    /// Make labels on the CPU from the low-resolution logits rather than with tensor ops on the
    /// device (see [`labels_on_cpu`]).
    pub labels_on_cpu: bool,
}

impl Segmenter {
    /// Wraps a loaded model in its fastest inference form: training-only auxiliary heads
    /// dropped, BatchNorms folded into the convolutions, labels made on the CPU when the device
    /// is burn's CPU backend.
    pub fn new(loaded: LoadedModel, device: Device) -> Self {
        Self {
            model: loaded.model.without_aux_heads().fold_batch_norms(),
            info: loaded.info,
            labels_on_cpu: labels_on_cpu(&device),
            device,
        }
    }

    /// The network input for a frame, resized to `size = [h, w]` when given (rounded up to
    /// the model's size multiple, if it has one).
    pub fn input(&self, frame: &Frame, size: Option<[usize; 2]>) -> Tensor<4> {
        let requested = size.unwrap_or([frame.height, frame.width]);
        let size = self.info.inference_size(requested);
        // Resizing to the frame's own size is free: the resize returns its input.
        frame_to_tensor(frame, &self.info.normalization, Some(size), &self.device)
    }

    /// The network's logits for `input` (`[1, 3, H, W]`, the inference size) and labels at
    /// `out_size = [h, w]`: the low-resolution ones ([`Network::forward_low_res`], 1/8 of the
    /// input for V1) when labels are made on the CPU, `[1, classes, h, w]` otherwise.
    pub fn logits(&self, input: Tensor<4>, out_size: [usize; 2]) -> Tensor<4> {
        crate::kernels::on_cpu_workers(|| match self.labels_on_cpu {
            true => self.model.forward_low_res(input),
            false => self.model.logits(input, out_size),
        })
    }

    /// Labels at `out_size` from [`Self::logits`], read back synchronously (native; the
    /// browser reads back asynchronously and calls [`Self::labels_from_data`]).
    pub fn labels(&self, logits: Tensor<4>, out_size: [usize; 2]) -> LabelMap {
        let data = match self.labels_on_cpu {
            true => logits.into_data(),
            false => logits.argmax(1).into_data(),
        };
        // On a worker, like the network: the rows' parallel loop then starts at once.
        crate::kernels::on_cpu_workers(|| self.labels_from_data(&data, out_size))
    }

    /// Labels at `out_size = [h, w]` from read-back data: low-resolution logits when labels
    /// are made on the CPU, class ids otherwise.
    pub fn labels_from_data(&self, data: &TensorData, out_size: [usize; 2]) -> LabelMap {
        let [height, width] = out_size;
        let ids = match self.labels_on_cpu {
            true => labels_from_logits(data, out_size),
            false => ids_from_data(data),
        };
        LabelMap { width, height, ids }
    }

    /// Labels a frame: inference at `size` (or the frame's own size), labels at the frame's
    /// size. The browser runs the same steps, timing them separately.
    pub fn segment(&self, frame: &Frame, size: Option<[usize; 2]>) -> LabelMap {
        let out_size = [frame.height, frame.width];
        let logits = self.logits(self.input(frame, size), out_size);
        self.labels(logits, out_size)
    }

    /// Labels a frame averaged over `tta`'s scales (of `size`, or the frame's own size) and
    /// mirrored copies: [`Self::segment`] when it is a single pass.
    pub fn segment_averaged(
        &self,
        frame: &Frame,
        size: Option<[usize; 2]>,
        tta: &TestTimeAugmentation,
    ) -> LabelMap {
        if tta.is_single_pass() {
            return self.segment(frame, size);
        }
        let ids = self.averaged_ids(frame, size, tta).into_data();
        let [height, width] = [frame.height, frame.width];
        LabelMap {
            width,
            height,
            ids: ids_from_data(&ids),
        }
    }

    /// Class ids `[1, H, W]` at the frame's size, on the device, averaged over `tta`: each scale
    /// resizes the full frame (not a copy already shrunk to `size`), so large scales see detail.
    pub fn averaged_ids(
        &self,
        frame: &Frame,
        size: Option<[usize; 2]>,
        tta: &TestTimeAugmentation,
    ) -> Tensor<3, Int> {
        let out_size = [frame.height, frame.width];
        let base_size = size.unwrap_or(out_size);
        let input = frame_to_tensor(frame, &self.info.normalization, None, &self.device);
        let multiple = self.info.size_multiple;
        crate::kernels::on_cpu_workers(|| {
            tta.predict(&self.model, input, base_size, out_size, multiple)
        })
    }
}
