//! BiSeNet V1 and V2: real-time semantic segmentation in Rust, natively (the `bisenet` tool)
//! and in the browser (wasm32, WebGPU or CPU).
//!
//! - [`model`]: both networks, one file per block of their papers;
//! - [`weights`]: the self-describing safetensors weights file; [`import`]: PyTorch BiSeNet V1
//!   and V2 checkpoints into it (native);
//! - [`preprocess`], [`postprocess`], [`render`], [`classes`]: pixels in and out, shared by
//!   every front end;
//! - [`segmenter`]: a loaded model ready to label frames; [`tta`]: multi-scale + flip
//!   inference; [`eval`]: confusion matrix, mIoU and dataset evaluation;
//! - native only (feature `native`): [`train`], [`data`] (CamVid, Cityscapes, folders),
//!   [`image_io`], [`plot`] (training curves), [`bench`] (per-stage timings);
//! - wasm32 only: `web`, the browser API;
//! - `kernels`: the CPU kernels the model runs on burn's flex backend (convolutions forward
//!   and backward, BatchNorm, pooling, resizes, cross-entropy), and differentiable forms for
//!   the GPU backends where theirs are missing or slow.

#[cfg(feature = "native")]
pub mod bench;
pub mod classes;
#[cfg(feature = "native")]
pub mod data;
pub mod eval;
#[cfg(feature = "native")]
pub mod image_io;
#[cfg(not(target_arch = "wasm32"))]
pub mod import;
mod kernels;
pub mod model;
#[cfg(feature = "native")]
pub mod plot;
pub mod postprocess;
pub mod preprocess;
pub mod render;
pub mod segmenter;
#[cfg(feature = "native")]
pub mod train;
pub mod tta;
#[cfg(target_arch = "wasm32")]
pub mod web;
pub mod weights;
