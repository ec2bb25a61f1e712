// Counts the GPU work this worker asks of WebGPU: compute dispatches and queue submits, and the
// dispatches per kernel (the pipeline's label). At batch 1 a small network's GPU time is set by
// how many kernels it launches, not by their arithmetic, so this count is the figure to drive
// down (kernel fusion) and the one a test guards. Wrapping the two prototype methods costs a
// counter increment per call.

const counts = { dispatches: 0, submits: 0, kernels: new Map() };
const pipelineOf = new WeakMap(); // compute pass -> the label of the pipeline it has set

/** Starts counting (once per worker; a browser without WebGPU has nothing to count). */
export function countGpuWork() {
  if (typeof GPUComputePassEncoder === 'undefined' || countGpuWork.started) return;
  countGpuWork.started = true;
  const pass = GPUComputePassEncoder.prototype;
  const wrap = (proto, name, before) => {
    const original = proto[name];
    proto[name] = function (...args) {
      before(this, args);
      return original.apply(this, args);
    };
  };
  wrap(pass, 'setPipeline', (encoder, [pipeline]) => pipelineOf.set(encoder, pipeline.label || '(unlabelled)'));
  const dispatched = (encoder) => {
    counts.dispatches += 1;
    const kernel = pipelineOf.get(encoder) ?? '(unknown)';
    counts.kernels.set(kernel, (counts.kernels.get(kernel) ?? 0) + 1);
  };
  wrap(pass, 'dispatchWorkgroups', dispatched);
  wrap(pass, 'dispatchWorkgroupsIndirect', dispatched);
  wrap(GPUQueue.prototype, 'submit', () => { counts.submits += 1; });
}

/**
 * The work counted since the last call (`{ dispatches, submits, kernels }`, `kernels` the
 * dispatches per pipeline label, most first), and a fresh count from here.
 */
export function takeGpuWork() {
  const taken = {
    dispatches: counts.dispatches,
    submits: counts.submits,
    kernels: [...counts.kernels].sort((a, b) => b[1] - a[1]),
  };
  counts.dispatches = 0;
  counts.submits = 0;
  counts.kernels.clear();
  return taken;
}
