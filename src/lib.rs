//! BiSeNet: real-time semantic segmentation in Rust, natively and in the browser.
//!
//! - [`model`]: the network, one module per block of the paper.
//! - [`weights`]: the self-describing safetensors weights file.
//! - [`preprocess`], [`render`], [`classes`]: pixels in and out, shared by every front end.
//! - [`segmenter`]: a loaded model ready to label frames; [`tta`]: multi-scale + flip
//!   inference for stills and evaluation.
//! - [`import`]: PyTorch BiSeNet V1 and V2 checkpoints into the weights file (native only).
//! - `kernels`: the CPU convolution (forward and backward) the model runs on flex.

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
