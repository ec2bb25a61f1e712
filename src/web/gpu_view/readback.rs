//! The one read-back of the view: the drawn picture, for a download of the result and for
//! tests, never per frame.

use burn::backend::wgpu::wgpu;

use super::{GpuView, LabelBuffer, ViewMode};

impl GpuView {
    /// Draws like [`GpuView::draw`] into this view's own texture and reads the picture back
    /// (RGBA, row-major).
    pub fn pixels(
        &mut self,
        labels: LabelBuffer,
        view: ViewMode,
        alpha: f32,
    ) -> Result<impl std::future::Future<Output = Result<Vec<u8>, String>> + use<>, String> {
        let size = self.canvas_size(view)?;
        let texture = self.offscreen_texture(size);
        let commands = self.render(&labels, view, alpha, &texture);
        let texture = &self.offscreen.as_ref().expect("made above").value;
        // Rows of a texture-to-buffer copy are padded to 256 bytes.
        let row = size.0 * 4;
        let padded_row = row.div_ceil(256) * 256;
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("picture read-back"),
            size: u64::from(padded_row) * u64::from(size.1),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded_row),
                    rows_per_image: None,
                },
            },
            wgpu::Extent3d {
                width: size.0,
                height: size.1,
                depth_or_array_layers: 1,
            },
        );
        self.queue.submit([commands, encoder.finish()]);
        let (sender, receiver) = async_channel::bounded(1);
        readback
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |result| {
                let _ = sender.try_send(result);
            });
        let bgra = self.format == wgpu::TextureFormat::Bgra8Unorm;
        Ok(async move {
            receiver
                .recv()
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("reading the picture back: {e}"))?;
            let mapped = readback
                .slice(..)
                .get_mapped_range()
                .map_err(|e| format!("reading the picture back: {e:?}"))?;
            let mut rgba = Vec::with_capacity((row * size.1) as usize);
            for line in mapped.chunks_exact(padded_row as usize) {
                rgba.extend_from_slice(&line[..row as usize]);
            }
            if bgra {
                rgba.chunks_exact_mut(4).for_each(|px| px.swap(0, 2));
            }
            Ok(rgba)
        })
    }
}
