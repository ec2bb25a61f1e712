//! The view's set-up, made once per canvas: the render pipeline of `gpu_view.wgsl`, its bind
//! group layout, the uniform block and the palette.

use burn::backend::wgpu::wgpu;
use wgpu::util::DeviceExt;

use super::ViewMode;

/// The uniform block of `gpu_view.wgsl` (16-byte aligned, as WGSL lays it out).
#[repr(C)]
#[derive(Clone, Copy)]
struct Params {
    frame_size: [u32; 2],
    label_size: [u32; 2],
    view: u32,
    alpha: f32,
    num_classes: u32,
    pad: u32,
}

impl Params {
    fn bytes(&self) -> [u8; 32] {
        let words = [
            self.frame_size[0],
            self.frame_size[1],
            self.label_size[0],
            self.label_size[1],
            self.view,
            self.alpha.to_bits(),
            self.num_classes,
            self.pad,
        ];
        let mut bytes = [0; 32];
        for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }
}

/// The render pipeline drawing into `format`, with the buffers every frame binds.
pub(super) struct ViewPipeline {
    pub render: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    params: wgpu::Buffer,
    palette: wgpu::Buffer,
    num_classes: u32,
}

impl ViewPipeline {
    /// The pipeline drawing into `format`; `palette` holds one RGB colour per class.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat, palette: &[[u8; 3]]) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("gpu view"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../gpu_view.wgsl").into()),
        });
        let storage = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: true },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("gpu view"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                storage(2),
                storage(3),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("gpu view"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let render = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("gpu view"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        let colours: Vec<u8> = palette
            .iter()
            .flat_map(|rgb| {
                [rgb[0], rgb[1], rgb[2], 255]
                    .map(|c| f32::from(c) / 255.0)
                    .into_iter()
                    .flat_map(f32::to_le_bytes)
            })
            .collect();
        let palette_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("palette"),
            contents: &colours,
            usage: wgpu::BufferUsages::STORAGE,
        });
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("gpu view params"),
            size: 32,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self {
            render,
            layout,
            params,
            palette: palette_buffer,
            num_classes: palette.len() as u32,
        }
    }

    /// Writes the uniform block of the next picture: the frame's size (in canvas pixels), the
    /// labels' (scaled to the frame when drawn), how it is shown.
    pub fn write_params(
        &self,
        queue: &wgpu::Queue,
        frame_size: (u32, u32),
        label_size: (u32, u32),
        view: ViewMode,
        alpha: f32,
    ) {
        let params = Params {
            frame_size: [frame_size.0, frame_size.1],
            label_size: [label_size.0, label_size.1],
            view: view as u32,
            alpha: alpha.clamp(0.0, 1.0),
            num_classes: self.num_classes,
            pad: 0,
        };
        queue.write_buffer(&self.params, 0, &params.bytes());
    }

    /// Binds the uniform block, the frame texture, the labels and the palette.
    pub fn bind_group(
        &self,
        device: &wgpu::Device,
        frame: &wgpu::TextureView,
        labels: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("gpu view"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(frame),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: labels.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: self.palette.as_entire_binding(),
                },
            ],
        })
    }
}
