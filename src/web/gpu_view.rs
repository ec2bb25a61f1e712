//! The WebGPU path of a frame, which never leaves the GPU: in, the frame (an `ImageBitmap`) is
//! copied GPU to GPU into a texture and a compute pass (`gpu_input.rs`) writes the resized,
//! normalised network input into the buffer of a burn tensor; out, the label map that burn's
//! argmax left in a GPU buffer is copied GPU to GPU into this view's own buffer, and one render
//! pass (`gpu_view.wgsl`) colours the labels with the palette and blends them over the frame
//! straight into the canvas's current texture. Nothing is read back per frame: on a real GPU the
//! read-back of the label map (`mapAsync`), not the network, would bound the frame rate.
//!
//! Shares the device and queue burn runs on (registered through `init_with_setup_async`), so
//! burn's buffers can be bound here; the copy into this view's buffer, queued behind burn's work
//! on the same queue, keeps a frame's labels valid whatever burn does with its memory next.
//!
//! Here, the per-frame work; the pipeline's set-up is in `pipeline.rs`, the picture's read-back
//! (a download, never per frame) in `readback.rs`.

mod pipeline;
mod readback;

use burn::backend::wgpu::{WgpuSetup, wgpu};

use super::gpu_input::InputPass;
use crate::preprocess::Normalization;
use pipeline::ViewPipeline;

/// How the result is shown, as the page's view menu names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewMode {
    Overlay = 0,
    Mask = 1,
    SideBySide = 2,
}

impl ViewMode {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "overlay" => Some(Self::Overlay),
            "mask" => Some(Self::Mask),
            "side" => Some(Self::SideBySide),
            _ => None,
        }
    }
}

/// A texture or buffer that is re-created only when the size it needs changes.
pub(super) struct SizedResource<T> {
    pub size: (u32, u32),
    pub value: T,
}

impl<T> SizedResource<T> {
    /// What `slot` holds for `size`, made anew by `make` when it is empty or sized otherwise.
    pub fn ensure(slot: &mut Option<Self>, size: (u32, u32), make: impl FnOnce() -> T) -> &T {
        if slot.as_ref().is_some_and(|held| held.size != size) {
            *slot = None;
        }
        &slot
            .get_or_insert_with(|| Self {
                size,
                value: make(),
            })
            .value
    }
}

/// Where a view draws: the page's canvas, or (without one) a texture of its own.
enum Target {
    Canvas {
        surface: wgpu::Surface<'static>,
        size: (u32, u32),
    },
    Offscreen,
}

pub struct GpuView {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: wgpu::Adapter,
    target: Target,
    /// The texture drawn into without a canvas, and for [`GpuView::pixels`].
    offscreen: Option<SizedResource<wgpu::Texture>>,
    format: wgpu::TextureFormat,
    pipeline: ViewPipeline,
    frame: Option<SizedResource<wgpu::Texture>>,
    labels: Option<SizedResource<wgpu::Buffer>>,
    input: InputPass,
}

/// Where burn keeps a tensor: a range of a GPU buffer.
pub struct GpuSlice<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
}

/// Where burn keeps a frame's labels: one `i32` per pixel, `width x height`, row-major.
pub struct LabelBuffer<'a> {
    pub slice: GpuSlice<'a>,
    pub width: u32,
    pub height: u32,
}

impl GpuView {
    /// A view drawing on `canvas` (or, without one, into a texture of its own) with burn's
    /// device; `palette` holds one RGB colour per class.
    pub fn new(
        setup: &WgpuSetup,
        canvas: Option<web_sys::OffscreenCanvas>,
        palette: &[[u8; 3]],
    ) -> Result<Self, String> {
        let (target, format) = match canvas {
            Some(canvas) => {
                let surface = setup
                    .instance
                    .create_surface(wgpu::SurfaceTarget::OffscreenCanvas(canvas))
                    .map_err(|e| format!("the canvas cannot show WebGPU output: {e}"))?;
                let format = surface
                    .get_capabilities(&setup.adapter)
                    .formats
                    .first()
                    .copied()
                    .ok_or("the canvas offers no WebGPU texture format")?;
                let size = (0, 0);
                (Target::Canvas { surface, size }, format)
            }
            None => (Target::Offscreen, wgpu::TextureFormat::Rgba8Unorm),
        };
        let device = setup.device.clone();
        let pipeline = ViewPipeline::new(&device, format, palette);
        Ok(Self {
            device,
            queue: setup.queue.clone(),
            adapter: setup.adapter.clone(),
            target,
            offscreen: None,
            format,
            pipeline,
            frame: None,
            labels: None,
            input: InputPass::new(&setup.device),
        })
    }

    /// Draws `frame` with `labels` coloured over it on the canvas (or this view's own texture
    /// without one), sized to the frame: twice as wide side by side.
    pub fn draw(&mut self, labels: LabelBuffer, view: ViewMode, alpha: f32) -> Result<(), String> {
        let size = self.canvas_size(view)?;
        let canvas_texture = match &mut self.target {
            Target::Canvas {
                surface,
                size: configured,
            } => {
                if *configured != size {
                    let mut config = surface
                        .get_default_config(&self.adapter, size.0, size.1)
                        .ok_or("the canvas cannot be configured for this GPU")?;
                    config.format = self.format;
                    config.usage = wgpu::TextureUsages::RENDER_ATTACHMENT;
                    surface.configure(&self.device, &config);
                    *configured = size;
                }
                match surface.get_current_texture() {
                    wgpu::CurrentSurfaceTexture::Success(t)
                    | wgpu::CurrentSurfaceTexture::Suboptimal(t) => Some(t),
                    other => {
                        return Err(format!("the canvas has no texture to draw on ({other:?})"));
                    }
                }
            }
            Target::Offscreen => None,
        };
        match canvas_texture {
            Some(texture) => {
                let target = texture.texture.create_view(&Default::default());
                let commands = self.render(&labels, view, alpha, &target);
                self.queue.submit([commands]);
                self.queue.present(texture);
            }
            None => {
                let target = self.offscreen_texture(size);
                let commands = self.render(&labels, view, alpha, &target);
                self.queue.submit([commands]);
            }
        }
        Ok(())
    }

    /// Records the label copy and the render pass of one picture into `target`.
    fn render(
        &mut self,
        labels: &LabelBuffer,
        view: ViewMode,
        alpha: f32,
        target: &wgpu::TextureView,
    ) -> wgpu::CommandBuffer {
        let label_bytes = u64::from(labels.width) * u64::from(labels.height) * 4;
        let device = &self.device;
        let label_copy =
            SizedResource::ensure(&mut self.labels, (labels.width, labels.height), || {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("labels"),
                    size: label_bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            });
        let frame = self.frame.as_ref().expect("checked by canvas_size");
        let frame_view = frame.value.create_view(&Default::default());
        let label_size = (labels.width, labels.height);
        self.pipeline
            .write_params(&self.queue, frame.size, label_size, view, alpha);
        let bind_group = self
            .pipeline
            .bind_group(&self.device, &frame_view, label_copy);
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gpu view"),
            });
        encoder.copy_buffer_to_buffer(
            labels.slice.buffer,
            labels.slice.offset,
            label_copy,
            0,
            label_bytes,
        );
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("gpu view"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: target,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                ..Default::default()
            });
            pass.set_pipeline(&self.pipeline.render);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.draw(0..3, 0..1);
        }
        encoder.finish()
    }

    /// This view's own render target at `size`, in the pipeline's format.
    fn offscreen_texture(&mut self, size: (u32, u32)) -> wgpu::TextureView {
        let (device, format) = (&self.device, self.format);
        let texture = SizedResource::ensure(&mut self.offscreen, size, || {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some("picture"),
                size: wgpu::Extent3d {
                    width: size.0,
                    height: size.1,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
                view_formats: &[],
            })
        });
        texture.create_view(&Default::default())
    }

    /// Copies `frame` GPU to GPU into this view's frame texture: what the input is made from and
    /// what the labels are drawn over, until the next frame.
    pub fn load_frame(&mut self, frame: &web_sys::ImageBitmap) -> Result<(), String> {
        let (width, height) = (frame.width(), frame.height());
        if width == 0 || height == 0 {
            return Err("the frame is empty (0 pixels)".into());
        }
        let device = &self.device;
        let texture = SizedResource::ensure(&mut self.frame, (width, height), || {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some("frame"),
                size: wgpu::Extent3d {
                    width,
                    height,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::Rgba8Unorm,
                // `copy_external_image_to_texture` needs RENDER_ATTACHMENT on its destination.
                usage: wgpu::TextureUsages::TEXTURE_BINDING
                    | wgpu::TextureUsages::COPY_DST
                    | wgpu::TextureUsages::RENDER_ATTACHMENT,
                view_formats: &[],
            })
        });
        self.queue.copy_external_image_to_texture(
            &wgpu::CopyExternalImageSourceInfo {
                source: wgpu::ExternalImageSource::ImageBitmap(frame.clone()),
                origin: wgpu::Origin2d::ZERO,
                flip_y: false,
            },
            wgpu::CopyExternalImageDestInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
                color_space: wgpu::PredefinedColorSpace::Srgb,
                premultiplied_alpha: false,
            },
            wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
        );
        Ok(())
    }

    /// Writes the network input of the loaded frame, resized to `size = (width, height)` and
    /// normalised, into `target` (a burn tensor `[1, 3, height, width]` of `f32`).
    pub fn write_input(&mut self, norm: &Normalization, size: (u32, u32), target: GpuSlice) {
        let frame = &self.frame.as_ref().expect("a frame is loaded");
        self.input.write(
            &self.device,
            &self.queue,
            &frame.value,
            frame.size,
            norm,
            size,
            target,
        );
    }

    /// The size of the picture in `view`: the loaded frame's, twice as wide side by side.
    fn canvas_size(&self, view: ViewMode) -> Result<(u32, u32), String> {
        let (width, height) = self.frame.as_ref().ok_or("no frame has been loaded")?.size;
        Ok(match view {
            ViewMode::SideBySide => (width * 2, height),
            _ => (width, height),
        })
    }

    /// Resolves when the GPU has finished the work submitted so far (no read-back involved).
    pub fn work_done(&self) -> impl std::future::Future<Output = ()> + use<> {
        let (sender, receiver) = async_channel::bounded(1);
        self.queue.on_submitted_work_done(move || {
            let _ = sender.try_send(());
        });
        async move {
            let _ = receiver.recv().await;
        }
    }
}
