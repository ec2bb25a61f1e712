//! A loaded model ready to label frames: preprocessing, network and argmax in one place, so
//! the CLI, the evaluator and the browser run exactly the same computation.

use burn::prelude::*;

use crate::model::BiSeNet;
use crate::preprocess::{Frame, frame_to_tensor};
use crate::render::LabelMap;
use crate::weights::{LoadedModel, ModelInfo};

/// A model in inference form, its metadata and the device it runs on.
#[derive(Debug)]
pub struct Segmenter {
    pub model: BiSeNet,
    pub info: ModelInfo,
    pub device: Device,
}

impl Segmenter {
    /// Wraps a loaded model in its fastest inference form: training-only auxiliary heads
    /// dropped, BatchNorms folded into the convolutions.
    pub fn new(loaded: LoadedModel, device: Device) -> Self {
        Self {
            model: loaded.model.without_aux_heads().fold_batch_norms(),
            info: loaded.info,
            device,
        }
    }

    /// The network input for a frame, resized to `size = [h, w]` when given (rounded up to
    /// the model's size multiple, if it has one).
    pub fn input(&self, frame: &Frame, size: Option<[usize; 2]>) -> Tensor<4> {
        let requested = size.unwrap_or([frame.height, frame.width]);
        let size = self.info.inference_size(requested);
        let resize = (size != [frame.height, frame.width]).then_some(size);
        frame_to_tensor(frame, &self.info.normalization, resize, &self.device)
    }

    /// Labels a frame: inference at `size` (or the frame's own size), labels at the frame's
    /// size, read back synchronously (native). The browser runs the same two steps, `input`
    /// then `model.predict`, separately so it can time them, and reads back asynchronously.
    pub fn segment(&self, frame: &Frame, size: Option<[usize; 2]>) -> LabelMap {
        let input = self.input(frame, size);
        let ids = self
            .model
            .predict(input, [frame.height, frame.width])
            .into_data();
        label_map_from_data(&ids, frame.width, frame.height)
    }
}

/// Converts read-back class ids (any integer dtype) into a label map.
pub fn label_map_from_data(data: &TensorData, width: usize, height: usize) -> LabelMap {
    let ids = data.iter::<i64>().map(|id| id as u8).collect();
    LabelMap { width, height, ids }
}
