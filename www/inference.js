// The page's side of the inference worker (worker.js): requests become promises. The page keeps
// at most one frame in flight, so nothing queues here.

export class InferenceWorker {
  /** `onProgress(received, total)` and `onNotice(text)` follow a model load. */
  constructor({ onProgress = () => {}, onNotice = () => {} } = {}) {
    this.pending = new Map();
    this.nextId = 1;
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.worker.onmessage = ({ data }) => {
      if (data.type === 'progress') return onProgress(data.received, data.total);
      if (data.type === 'notice') return onNotice(data.text);
      const request = this.pending.get(data.id);
      if (!request) return;
      this.pending.delete(data.id);
      if ('error' in data) request.reject(new Error(data.error));
      else request.resolve(data.value);
    };
    // The worker script itself failed (cannot load, or crashed): every request in flight fails,
    // and so does every later one, at once, rather than wait for a worker that is gone.
    this.dead = null;
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.dead = new Error(`the inference worker stopped (${event.message || 'it could not be loaded'}); reload the page`);
      this.failAll(this.dead);
    };
    this.worker.onmessageerror = () => this.failAll(new Error('a message from the inference worker could not be read'));
  }

  failAll(error) {
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
  }

  call(type, args = {}, transfer = []) {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, type, ...args }, transfer);
    });
  }

  /** Loads the weights at `url` (absolute) on `backend`, or on the best one when it is null. */
  load(url, backend) { return this.call('load', { url, backend }); }

  useBackend(backend) { return this.call('backend', { backend }); }

  /** Labels `bitmap` (transferred: the caller no longer owns it); see worker.js `segment`. */
  segment(bitmap, width, height, inferenceWidth, inferenceHeight, refined = false) {
    return this.call('segment', { bitmap, width, height, inferenceWidth, inferenceHeight, refined }, [bitmap]);
  }

  /** Hands `canvas` (an OffscreenCanvas) to the worker for the GPU path; resolves to its state. */
  attachCanvas(canvas) { return this.call('attachCanvas', { canvas }, [canvas]); }

  /** The GPU path: `frame` (transferred) is labelled at the inference size and drawn. */
  draw(frame, inferenceWidth, inferenceHeight, view, alpha) {
    return this.call('draw', { frame, inferenceWidth, inferenceHeight, view, alpha }, [frame]);
  }

  labelsPng(labels, width, height) { return this.call('labelsPng', { labels, width, height }); }
}
