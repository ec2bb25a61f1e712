// Draws a result on the canvas, all on the GPU: the camera frame (a texture copied from an
// ImageBitmap), the class ids (i32, one per pixel, at the inference size) coloured by the
// palette and blended over the frame. One full-screen triangle; each fragment is a canvas pixel.

struct Params {
    frame_size: vec2<u32>, // the frame, in canvas pixels (the canvas is twice as wide side by side)
    label_size: vec2<u32>, // the label map, scaled to the frame (nearest)
    view: u32,             // 0 overlay, 1 mask only, 2 side by side
    alpha: f32,            // the mask's opacity in the overlay
    num_classes: u32,
    pad: u32,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var frame: texture_2d<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> palette: array<vec4<f32>>;

@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let corner = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    return vec4<f32>(corner * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    var x = u32(position.x);
    let y = u32(position.y);
    if params.view == 2u {
        if x < params.frame_size.x {
            return vec4<f32>(textureLoad(frame, vec2<u32>(x, y), 0).rgb, 1.0);
        }
        x -= params.frame_size.x;
    }
    let lx = min(x * params.label_size.x / params.frame_size.x, params.label_size.x - 1u);
    let ly = min(y * params.label_size.y / params.frame_size.y, params.label_size.y - 1u);
    let id = u32(clamp(labels[ly * params.label_size.x + lx], 0, i32(params.num_classes) - 1));
    let mask = palette[id].rgb;
    if params.view != 0u {
        return vec4<f32>(mask, 1.0);
    }
    let pixel = textureLoad(frame, vec2<u32>(x, y), 0).rgb;
    return vec4<f32>(mix(pixel, mask, params.alpha), 1.0);
}
