//! Frame in, on the GPU: the network input made from the frame texture by a compute pass
//! (`gpu_input.wgsl`: bilinear resize as the CLI's, per-channel normalisation, NCHW planes) and
//! copied into the buffer of a burn tensor.

use burn::backend::wgpu::wgpu;

use super::gpu_view::{GpuSlice, SizedResource};
use crate::preprocess::Normalization;

pub struct InputPass {
    pipeline: wgpu::ComputePipeline,
    params: wgpu::Buffer,
    planes: Option<SizedResource<wgpu::Buffer>>,
}

impl InputPass {
    pub fn new(device: &wgpu::Device) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("gpu input"),
            source: wgpu::ShaderSource::Wgsl(include_str!("gpu_input.wgsl").into()),
        });
        // The layout is the shader's own (uniform, texture, storage).
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("gpu input"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("gpu input params"),
            size: 48,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self {
            pipeline,
            params,
            planes: None,
        }
    }

    /// Writes the network input of `frame` (`frame_size`), resized to `size = (width,
    /// height)` and normalised, into `target` (a burn tensor `[1, 3, height, width]` of `f32`):
    /// a compute pass into this pass's buffer, then a copy into burn's (whose offset a storage
    /// binding might not accept), queued before any of burn's work that reads it.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        frame: &wgpu::Texture,
        frame_size: (u32, u32),
        norm: &Normalization,
        size: (u32, u32),
        target: GpuSlice,
    ) {
        let (in_width, in_height) = frame_size;
        let bytes = u64::from(size.0) * u64::from(size.1) * 3 * 4;
        let planes = SizedResource::ensure(&mut self.planes, size, || {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("input planes"),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        });
        let mut words = [0u8; 48];
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / norm.std[c]);
        let offset: [f32; 3] = std::array::from_fn(|c| norm.mean[c] / norm.std[c]);
        let fields = [
            in_width,
            in_height,
            size.0,
            size.1,
            scale[0].to_bits(),
            scale[1].to_bits(),
            scale[2].to_bits(),
            0,
            offset[0].to_bits(),
            offset[1].to_bits(),
            offset[2].to_bits(),
            0,
        ];
        for (chunk, word) in words.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        queue.write_buffer(&self.params, 0, &words);
        let frame_view = frame.create_view(&Default::default());
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("gpu input"),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&frame_view),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: planes.as_entire_binding(),
                },
            ],
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(size.0.div_ceil(8), size.1.div_ceil(8), 1);
        }
        encoder.copy_buffer_to_buffer(planes, 0, target.buffer, target.offset, bytes);
        queue.submit([encoder.finish()]);
    }
}
