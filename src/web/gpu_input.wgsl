// The network input from a frame on the GPU: the frame texture (RGBA8) resized bilinearly to the
// inference size (PyTorch's align_corners = false: src = (dst + 0.5) * in / out - 0.5, clamped
// at 0, as the CLI's resize) and normalised per channel, written as NCHW f32 planes.

struct Prep {
    in_size: vec2<u32>,
    out_size: vec2<u32>,
    scale: vec4<f32>,  // 1 / std per channel
    offset: vec4<f32>, // mean / std per channel
};

@group(0) @binding(0) var<uniform> prep: Prep;
@group(0) @binding(1) var frame: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> planes: array<f32>;

fn pixel(x: u32, y: u32) -> vec3<f32> {
    return textureLoad(frame, vec2<u32>(x, y), 0).rgb;
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= prep.out_size.x || id.y >= prep.out_size.y {
        return;
    }
    let ratio = vec2<f32>(prep.in_size) / vec2<f32>(prep.out_size);
    let source = max((vec2<f32>(id.xy) + 0.5) * ratio - 0.5, vec2<f32>(0.0));
    let low = vec2<u32>(floor(source));
    let high = min(low + 1u, prep.in_size - 1u);
    let t = source - floor(source);
    let top = mix(pixel(low.x, low.y), pixel(high.x, low.y), t.x);
    let bottom = mix(pixel(low.x, high.y), pixel(high.x, high.y), t.x);
    let value = mix(top, bottom, t.y) * prep.scale.rgb - prep.offset.rgb;
    let plane = prep.out_size.x * prep.out_size.y;
    let i = id.y * prep.out_size.x + id.x;
    planes[i] = value.r;
    planes[plane + i] = value.g;
    planes[2u * plane + i] = value.b;
}
