//! BiSeNet: real-time semantic segmentation in Rust, natively and in the browser.
//!
//! - [`model`]: the network, one module per block of the paper.
//! - [`weights`]: the self-describing safetensors weights file.
//! - [`preprocess`], [`render`], [`classes`]: pixels in and out, shared by every front end.
//! - [`segmenter`]: a loaded model ready to label frames.

pub mod classes;
pub mod model;
pub mod preprocess;
pub mod render;
pub mod segmenter;
pub mod weights;
