// Whether this browser can show WebGPU output on a canvas. Headless Chromium with its software
// WebGPU (SwiftShader) and default flags cannot: configuring the canvas loses the device. The check uses
// a device of its own, so that the device burn runs on is never the one lost.

const errorText = (e) => (e instanceof Error ? e.message : String(e));

/**
 * Whether WebGPU output can be shown on `canvas` here, tried with a device of its own (a
 * browser that cannot loses the device: burn's must not be the one lost). Returns '' or why not.
 */
export async function canvasProblem(canvas) {
  if (!('gpu' in navigator)) return 'this browser has no WebGPU here';
  let device = null;
  try {
    const adapter = await navigator.gpu.requestAdapter();
    device = await adapter.requestDevice();
    const context = canvas.getContext('webgpu');
    context.configure({ device, format: navigator.gpu.getPreferredCanvasFormat(), alphaMode: 'opaque' });
    const encoder = device.createCommandEncoder();
    encoder.beginRenderPass({
      colorAttachments: [{ view: context.getCurrentTexture().createView(), loadOp: 'clear', storeOp: 'store', clearValue: [0, 0, 0, 1] }],
    }).end();
    device.queue.submit([encoder.finish()]);
    const late = new Promise((_, reject) => setTimeout(() => reject(new Error('the check did not finish in 5 s')), 5000));
    await Promise.race([device.queue.onSubmittedWorkDone(), device.lost.then((info) => { throw new Error(info.message); }), late]);
    context.unconfigure();
    return '';
  } catch (e) {
    return `this browser cannot show WebGPU output on a canvas (${errorText(e)})`;
  } finally {
    device?.destroy();
  }
}
