//! The WebGPU path of the browser API: a frame goes in, is labelled and drawn on the canvas
//! without leaving the GPU (see [`super::gpu_view`]); the labels stay on the GPU for the small
//! read-backs a user asks for.

use std::rc::Rc;

use burn::backend::Wgpu;
use burn::backend::wgpu::{CubeBackend, CubeTensor, WgpuResource, WgpuRuntime};
use burn::prelude::*;
use cubecl_runtime::runtime::Runtime;
use cubecl_runtime::storage::ManagedResource;
use wasm_bindgen::prelude::*;

use super::gpu_view::{GpuSlice, GpuView, LabelBuffer, ViewMode};
use super::{Model, check_inference_size, read_back_error, webgpu};

#[wasm_bindgen]
impl Model {
    /// Makes `canvas` the GPU path's output: results drawn with [`Model::present`] go there
    /// without leaving the GPU. Without a canvas they are drawn into a texture of the view's
    /// own (what [`Model::rendered_pixels`] reads, and what a browser that cannot show WebGPU
    /// on a canvas is tested with). WebGPU only; the error says why the path is unavailable.
    #[wasm_bindgen(js_name = attachCanvas)]
    pub async fn attach_canvas(
        &self,
        canvas: Option<web_sys::OffscreenCanvas>,
    ) -> Result<(), JsError> {
        if self.backend != "webgpu" {
            return Err(JsError::new("the GPU view needs the WebGPU backend"));
        }
        let gpu = webgpu().await?;
        let palette = &self.segmenter.info.classes.palette;
        let view = GpuView::new(&gpu.setup, canvas, palette).map_err(|e| JsError::new(&e))?;
        *self.view.borrow_mut() = Some(view);
        Ok(())
    }

    /// The GPU path, first half: copies `frame` into a texture, makes the network input from
    /// it at `inference_width x inference_height` on the GPU, runs the network and keeps the
    /// labels on the GPU (at the inference size) for [`Model::present`] and the read-backs
    /// below. Nothing crosses to the CPU. Returns the labels' `[width, height]` (the inference
    /// size, rounded up to the model's size multiple if it has one).
    #[wasm_bindgen(js_name = labelFrame)]
    pub fn label_frame(
        &self,
        frame: &web_sys::ImageBitmap,
        inference_width: usize,
        inference_height: usize,
    ) -> Result<Vec<u32>, JsError> {
        check_inference_size(inference_width, inference_height)?;
        let mut gpu_view = self.view.borrow_mut();
        let gpu_view = attached(&mut gpu_view)?;
        gpu_view.load_frame(frame).map_err(|e| JsError::new(&e))?;
        let info = &self.segmenter.info;
        let [height, width] = info.inference_size([inference_height, inference_width]);
        let input = Tensor::<4>::zeros([1, 3, height, width], &self.segmenter.device);
        {
            let managed = gpu_resource(float_on_gpu(input.clone())?)?;
            let resource = managed.resource();
            let target = GpuSlice {
                buffer: &resource.buffer,
                offset: resource.offset,
            };
            gpu_view.write_input(&info.normalization, (width as u32, height as u32), target);
        }
        let labels = self
            .segmenter
            .model
            .logits(input, [height, width])
            .argmax(1);
        *self.drawn.borrow_mut() = Some(labels);
        Ok(vec![width as u32, height as u32])
    }

    /// The GPU path, second half: draws the labels of the last [`Model::label_frame`] over
    /// its frame on the attached canvas (`view`: "overlay", "mask" or "side"; the mask at opacity
    /// `alpha`; the labels are scaled to the frame). Nothing is read back; resolves when the
    /// GPU has finished, so that a caller keeps one frame in flight. Called again with another
    /// view or opacity, it redraws without running the network.
    pub fn present(&self, view: &str, alpha: f32) -> Result<js_sys::Promise, JsError> {
        let done = self.with_drawn(view, |gpu_view, labels, mode| {
            gpu_view.draw(labels, mode, alpha)?;
            Ok(gpu_view.work_done())
        })?;
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            done.await;
            Ok(JsValue::UNDEFINED)
        }))
    }

    /// The picture [`Model::present`] draws, read back (RGBA bytes, `Uint8Array`): for a
    /// download of the result and for tests, never per frame.
    #[wasm_bindgen(js_name = renderedPixels)]
    pub fn rendered_pixels(&self, view: &str, alpha: f32) -> Result<js_sys::Promise, JsError> {
        let pixels = self.with_drawn(view, |gpu_view, labels, mode| {
            gpu_view.pixels(labels, mode, alpha)
        })?;
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let rgba = pixels.await.map_err(|e| JsValue::from(JsError::new(&e)))?;
            Ok(js_sys::Uint8Array::from(rgba.as_slice()).into())
        }))
    }

    /// Reads back the labels of the last [`Model::label_frame`] (`Uint8Array`, row-major at the
    /// inference size): for a download or a test, never per frame.
    #[wasm_bindgen(js_name = readDrawnLabels)]
    pub fn read_drawn_labels(&self) -> Result<js_sys::Promise, JsError> {
        let labels = self.drawn_labels()?;
        let segmenter = Rc::clone(&self.segmenter);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let [_, _, height, width] = labels.dims();
            let data = labels.into_data_async().await.map_err(read_back_error)?;
            let ids = segmenter.labels_from_data(&data, [height, width]).ids;
            Ok(js_sys::Uint8Array::from(ids.as_slice()).into())
        }))
    }

    /// The share of each class in the labels last drawn, reduced on the GPU: one small
    /// read-back (a float per class), a few times a second for the legend.
    #[wasm_bindgen(js_name = drawnClassShares)]
    pub fn drawn_class_shares(&self) -> Result<js_sys::Promise, JsError> {
        let labels = self.drawn_labels()?;
        let classes = self.segmenter.info.num_classes;
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let pixels = labels.shape().num_elements();
            // [1, 1, H, W] ids against [classes, 1] ids -> [classes, H * W] matches -> counts.
            let ids = labels.reshape([1, pixels]);
            let classes_column =
                Tensor::<1, Int>::arange(0..classes as i64, &ids.device()).reshape([classes, 1]);
            let counts = classes_column
                .equal(ids)
                .int()
                .sum_dim(1)
                .float()
                .div_scalar(pixels as f32);
            let data = counts.into_data_async().await.map_err(read_back_error)?;
            let shares: Vec<f64> = data.iter::<f32>().map(f64::from).collect();
            Ok(js_sys::Float64Array::from(shares.as_slice()).into())
        }))
    }

    /// The class id at (`x`, `y`) of the labels last drawn (inference-size coordinates): a
    /// read-back of one value, for the class under the pointer.
    #[wasm_bindgen(js_name = drawnLabelAt)]
    pub fn drawn_label_at(&self, x: usize, y: usize) -> Result<js_sys::Promise, JsError> {
        let labels = self.drawn_labels()?;
        let [_, _, height, width] = labels.dims();
        if x >= width || y >= height {
            return Err(JsError::new(&format!(
                "({x}, {y}) is outside the {width}x{height} labels"
            )));
        }
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let one = labels.slice([0..1, 0..1, y..y + 1, x..x + 1]);
            let data = one.into_data_async().await.map_err(read_back_error)?;
            let id = data.iter::<i64>().next().unwrap_or(0);
            Ok(JsValue::from(id as f64))
        }))
    }

    /// Runs `draw` with the attached view, the GPU buffer of the last labels and the parsed
    /// `view` mode: what drawing on the canvas and reading the picture back share.
    fn with_drawn<R>(
        &self,
        view: &str,
        draw: impl FnOnce(&mut GpuView, LabelBuffer, ViewMode) -> Result<R, String>,
    ) -> Result<R, JsError> {
        let mode =
            ViewMode::parse(view).ok_or_else(|| JsError::new(&format!("unknown view `{view}`")))?;
        let labels = self.drawn_labels()?;
        let [_, _, height, width] = labels.dims();
        let mut gpu_view = self.view.borrow_mut();
        let gpu_view = attached(&mut gpu_view)?;
        let managed = gpu_resource(int_on_gpu(labels)?)?;
        draw(
            gpu_view,
            label_buffer(managed.resource(), width, height),
            mode,
        )
        .map_err(|e| JsError::new(&e))
    }

    fn drawn_labels(&self) -> Result<Tensor<4, Int>, JsError> {
        self.drawn
            .borrow()
            .clone()
            .ok_or_else(|| JsError::new("nothing has been drawn on the GPU yet"))
    }
}

/// The view of the canvas the page attached, or an error that says to attach one.
fn attached(view: &mut Option<GpuView>) -> Result<&mut GpuView, JsError> {
    view.as_mut()
        .ok_or_else(|| JsError::new("no canvas is attached (attachCanvas)"))
}

/// The GPU tensor under a float tensor of the WebGPU backend. Kernel fusion defers work, so this
/// first runs what the tensor still waits on; the buffer is then the one the fused graph goes
/// on to read, so what is written into it is the network's input.
fn float_on_gpu<const D: usize>(tensor: Tensor<D>) -> Result<CubeTensor, JsError> {
    let fused = tensor.try_into_primitive::<Wgpu>().map_err(not_on_webgpu)?;
    let client = fused.client.clone();
    Ok(client.resolve_tensor_float::<CubeBackend>(fused))
}

/// [`float_on_gpu`] for the labels (an int tensor).
fn int_on_gpu<const D: usize>(tensor: Tensor<D, Int>) -> Result<CubeTensor, JsError> {
    let fused = tensor.try_into_primitive::<Wgpu>().map_err(not_on_webgpu)?;
    let client = fused.client.clone();
    Ok(client.resolve_tensor_int::<CubeBackend>(fused))
}

fn not_on_webgpu(e: burn::tensor::PrimitiveConversionError) -> JsError {
    JsError::new(&format!("the tensor is not on WebGPU: {e:?}"))
}

/// The GPU buffer range holding a tensor of burn's wgpu runtime (contiguous, 32-bit elements),
/// reached through the CubeCL client: getting it also submits the work that writes it.
fn gpu_resource(tensor: CubeTensor) -> Result<ManagedResource<WgpuResource>, JsError> {
    if !tensor.is_contiguous() || tensor.dtype.size() != 4 {
        return Err(JsError::new(&format!(
            "the tensor is not contiguous 32-bit data ({:?})",
            tensor.dtype
        )));
    }
    tensor
        .client
        .get_resource::<<WgpuRuntime as Runtime>::Server>(tensor.handle.clone())
        .map_err(|e| JsError::new(&format!("the tensor's GPU buffer cannot be reached: {e:?}")))
}

fn label_buffer(resource: &WgpuResource, width: usize, height: usize) -> LabelBuffer<'_> {
    LabelBuffer {
        slice: GpuSlice {
            buffer: &resource.buffer,
            offset: resource.offset,
        },
        width: width as u32,
        height: height as u32,
    }
}
