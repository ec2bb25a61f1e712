// Which backend runs the model: WebGPU when a real GPU adapter is there, the CPU otherwise, with
// the reason the user sees. Asked where the model runs (the worker: it has `navigator.gpu` too).

/** `{ backend: 'webgpu' | 'cpu', reason }`; `forced` (from `?backend=`) wins when it is valid. */
export async function chooseBackend(forced) {
  if (forced === 'cpu' || forced === 'webgpu') return { backend: forced, reason: '' };
  if (!('gpu' in navigator)) {
    return { backend: 'cpu', reason: 'This browser has no WebGPU, so the model runs on the CPU (slower).' };
  }
  let adapter = null;
  try { adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' }); } catch (e) { /* none */ }
  if (!adapter) {
    return { backend: 'cpu', reason: 'WebGPU found no usable GPU here, so the model runs on the CPU (slower).' };
  }
  const fallback = adapter.isFallbackAdapter ?? adapter.info?.isFallbackAdapter ?? false;
  if (fallback) {
    return {
      backend: 'cpu',
      reason: 'WebGPU only offers a software (CPU-emulated) adapter here, which is slower than the ' +
        'CPU backend, so the model runs on the CPU. You can still switch to WebGPU.',
    };
  }
  return { backend: 'webgpu', reason: '' };
}
