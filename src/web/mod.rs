//! The browser API (wasm32): load a weights file on WebGPU or the CPU, segment RGBA frames,
//! render the result. Pre- and post-processing are the library's own, as natively. The WebGPU
//! path that keeps a frame on the GPU from capture to canvas is in `gpu_path.rs`.

mod gpu_input;
mod gpu_path;
mod gpu_view;

use std::cell::RefCell;
use std::rc::Rc;

use burn::backend::wgpu::WgpuSetup;
use burn::prelude::*;
use wasm_bindgen::prelude::*;

use gpu_view::GpuView;

use crate::postprocess::ids_from_data;
use crate::preprocess::{Frame, PixelFormat};
use crate::render::{LabelMap, colorize, labels_png, overlay};
use crate::segmenter::Segmenter;
use crate::tta::TestTimeAugmentation;
use crate::weights;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// burn's WebGPU device and the wgpu handles it runs on (shared with the canvas view).
#[derive(Clone)]
struct WebGpu {
    device: Device,
    setup: WgpuSetup,
}

thread_local! {
    /// burn's wgpu runtime can be initialised once per page: keep the device.
    static WEBGPU: RefCell<Option<WebGpu>> = const { RefCell::new(None) };
}

async fn webgpu() -> Result<WebGpu, JsError> {
    if let Some(gpu) = WEBGPU.with(|d| d.borrow().clone()) {
        return Ok(gpu);
    }
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .map_err(|e| JsError::new(&format!("WebGPU could not start: {e}")))?;
    let gpu = WebGpu { device, setup };
    WEBGPU.with(|d| *d.borrow_mut() = Some(gpu.clone()));
    Ok(gpu)
}

fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Checks a downloaded weights file without building the model: returns its metadata as
/// JSON, or an error naming what is wrong (truncated, not a weights file, ...).
#[wasm_bindgen(js_name = checkWeights)]
pub fn check_weights(bytes: &[u8]) -> Result<String, JsError> {
    let info = weights::read_info(bytes).map_err(js_error)?;
    serde_json::to_string(&info).map_err(js_error)
}

/// A frame uploaded to the model's device, ready for [`Model::run`].
#[wasm_bindgen]
pub struct Input {
    tensor: Tensor<4>,
    width: usize,
    height: usize,
}

/// A model loaded on one backend.
#[wasm_bindgen]
pub struct Model {
    segmenter: Rc<Segmenter>,
    backend: String,
    /// The canvas view of the GPU path (WebGPU only, once a canvas is attached).
    view: RefCell<Option<GpuView>>,
    /// The labels the GPU path drew last (`[1, 1, height, width]`, on the GPU), for the
    /// read-backs a user asks for: the class under the pointer, shares, a download.
    drawn: RefCell<Option<Tensor<4, Int>>>,
}

#[wasm_bindgen]
impl Model {
    /// Loads a weights file on `backend`: `"webgpu"` or `"cpu"`.
    pub async fn load(bytes: Vec<u8>, backend: String) -> Result<Model, JsError> {
        let device = match backend.as_str() {
            "webgpu" => webgpu().await?.device,
            "cpu" => Device::flex(),
            other => return Err(JsError::new(&format!("unknown backend `{other}`"))),
        };
        let loaded = weights::from_bytes(bytes, &device).map_err(js_error)?;
        Ok(Model {
            segmenter: Rc::new(Segmenter::new(loaded, device)),
            backend,
            view: RefCell::new(None),
            drawn: RefCell::new(None),
        })
    }

    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// The model's metadata (classes, palette, normalisation, ...) as JSON.
    #[wasm_bindgen(js_name = infoJson)]
    pub fn info_json(&self) -> Result<String, JsError> {
        serde_json::to_string(&self.segmenter.info).map_err(js_error)
    }

    /// How [`Self::refine`] labels a still, for the page to show and to weigh against one pass:
    /// `{ "scales": [0.75, ...], "flip": true, "passes": 12, "cost": 24.875 }`, the cost in
    /// one-pass units of input pixels.
    #[wasm_bindgen(js_name = refinedJson)]
    pub fn refined_json() -> String {
        let tta = TestTimeAugmentation::multi_scale_flip();
        serde_json::json!({
            "scales": tta.scales(),
            "flip": tta.flip(),
            "passes": tta.passes(),
            "cost": tta.relative_cost(),
        })
        .to_string()
    }

    /// Uploads an RGBA frame (canvas `ImageData` bytes) of `width x height` as the network
    /// input, normalised and resized to `inference_width x inference_height` on the device.
    pub fn upload(
        &self,
        rgba: &[u8],
        width: usize,
        height: usize,
        inference_width: usize,
        inference_height: usize,
    ) -> Result<Input, JsError> {
        let (frame, size) = frame_at(rgba, [width, height], [inference_width, inference_height])?;
        Ok(Input {
            tensor: self.segmenter.input(&frame, Some(size)),
            width,
            height,
        })
    }

    /// Runs the network on an uploaded frame; resolves to the class ids at the frame's size
    /// (`Uint8Array`, row-major).
    pub fn run(&self, input: Input) -> js_sys::Promise {
        let Input {
            tensor,
            width,
            height,
        } = input;
        let out_size = [height, width];
        let logits = self.segmenter.logits(tensor, out_size);
        // On the CPU backend the low-resolution logits come back and become labels here; on
        // WebGPU the GPU makes the labels and only they come back.
        let segmenter = Rc::clone(&self.segmenter);
        wasm_bindgen_futures::future_to_promise(async move {
            let data = match segmenter.labels_on_cpu {
                true => logits.into_data_async().await,
                false => logits.argmax(1).into_data_async().await,
            };
            let data = data.map_err(read_back_error)?;
            let labels = segmenter.labels_from_data(&data, out_size);
            Ok(js_sys::Uint8Array::from(labels.ids.as_slice()).into())
        })
    }

    /// Labels an RGBA frame of `width x height` averaged over six scales of
    /// `inference_width x inference_height` and their mirror images (twelve passes: for stills,
    /// a few points more accurate); resolves to the class ids at the frame's size.
    pub fn refine(
        &self,
        rgba: &[u8],
        width: usize,
        height: usize,
        inference_width: usize,
        inference_height: usize,
    ) -> Result<js_sys::Promise, JsError> {
        let (frame, size) = frame_at(rgba, [width, height], [inference_width, inference_height])?;
        let tta = TestTimeAugmentation::multi_scale_flip();
        let ids = self.segmenter.averaged_ids(&frame, Some(size), &tta);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let data = ids.into_data_async().await.map_err(read_back_error)?;
            Ok(js_sys::Uint8Array::from(ids_from_data(&data).as_slice()).into())
        }))
    }

    /// The colour mask of a result (RGBA, opaque): the page draws it over the frame itself, so
    /// the frame never has to come back from the worker.
    pub fn colorize(
        &self,
        labels: Vec<u8>,
        width: usize,
        height: usize,
    ) -> Result<Vec<u8>, JsError> {
        let labels = label_map(labels, width, height)?;
        Ok(colorize(&labels, &self.segmenter.info.classes))
    }

    /// The colour mask blended over the frame with opacity `alpha` (RGBA).
    pub fn overlay(
        &self,
        rgba: &[u8],
        width: usize,
        height: usize,
        labels: Vec<u8>,
        alpha: f32,
    ) -> Result<Vec<u8>, JsError> {
        let labels = label_map(labels, width, height)?;
        let frame = Frame::new(rgba, width, height, PixelFormat::Rgba8).map_err(js_error)?;
        Ok(overlay(
            &frame,
            &labels,
            &self.segmenter.info.classes,
            alpha,
        ))
    }

    /// The label map as an 8-bit grayscale PNG of class ids (as `bisenet segment --output labels`).
    #[wasm_bindgen(js_name = labelsPng)]
    pub fn labels_png(
        &self,
        labels: Vec<u8>,
        width: usize,
        height: usize,
    ) -> Result<Vec<u8>, JsError> {
        labels_png(&label_map(labels, width, height)?).map_err(js_error)
    }

    /// Share of the pixels of each class, in class order.
    #[wasm_bindgen(js_name = classShares)]
    pub fn class_shares(&self, labels: Vec<u8>) -> Vec<f64> {
        let labels = LabelMap {
            width: labels.len(),
            height: 1,
            ids: labels,
        };
        labels.class_shares(self.segmenter.info.num_classes)
    }
}

fn read_back_error(e: impl std::fmt::Debug) -> JsValue {
    JsValue::from(JsError::new(&format!("reading the result back: {e:?}")))
}

/// An RGBA frame of `[width, height]` and the inference size `[height, width]` it is to run at.
fn frame_at(
    rgba: &[u8],
    [width, height]: [usize; 2],
    [inference_width, inference_height]: [usize; 2],
) -> Result<(Frame<'_>, [usize; 2]), JsError> {
    let frame = Frame::new(rgba, width, height, PixelFormat::Rgba8).map_err(js_error)?;
    check_inference_size(inference_width, inference_height)?;
    Ok((frame, [inference_height, inference_width]))
}

/// Refuses an inference size under 8x8 (a single cell of the 1/8 feature map).
fn check_inference_size(width: usize, height: usize) -> Result<(), JsError> {
    if width < 8 || height < 8 {
        return Err(JsError::new("the inference size must be at least 8x8"));
    }
    Ok(())
}

fn label_map(ids: Vec<u8>, width: usize, height: usize) -> Result<LabelMap, JsError> {
    if ids.len() != width * height {
        return Err(JsError::new(&format!(
            "{} labels for a {width}x{height} frame",
            ids.len()
        )));
    }
    Ok(LabelMap { width, height, ids })
}
