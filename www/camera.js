// The camera: opening it with messages a user can act on, listing the cameras, and waiting
// for the video's next frame so that no frame is labelled twice.

const CAMERA_ERRORS = {
  NotAllowedError: 'Camera permission was denied. Allow the camera for this page in the browser settings, or open an image instead.',
  NotFoundError: 'No camera was found. Connect one, or open an image or video instead.',
  NotReadableError: 'The camera is in use by another application.',
  OverconstrainedError: 'The selected camera cannot deliver video.',
};

/** The camera's stream (`deviceId`, or the default camera); throws an Error the user can read. */
export async function openCamera(deviceId) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error('This browser cannot open a camera here (camera access needs https or localhost).');
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      video: deviceId ? { deviceId: { exact: deviceId } } : { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
  } catch (e) {
    throw new Error(CAMERA_ERRORS[e.name] ?? `The camera could not start: ${e?.message ?? e}`);
  }
}

/** The video input devices. */
export async function listCameras() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices.filter((d) => d.kind === 'videoinput');
}

/**
 * Counts the frames a video presents, so that a loop faster than the camera waits for a new
 * frame instead of labelling the same one again. Without `requestVideoFrameCallback` it waits
 * for the next animation frame.
 */
export class FrameClock {
  constructor(video) {
    this.video = video;
    this.presented = 0;
    this.taken = -1;
    this.waiters = [];
    this.hasCallback = 'requestVideoFrameCallback' in HTMLVideoElement.prototype;
    if (this.hasCallback) {
      const tick = () => {
        this.presented += 1;
        for (const wake of this.waiters.splice(0)) wake();
        this.handle = video.requestVideoFrameCallback(tick);
      };
      this.handle = video.requestVideoFrameCallback(tick);
    }
  }

  /** Resolves when the video has a frame not taken before (and takes it). */
  async next() {
    if (!this.hasCallback) {
      await new Promise((r) => requestAnimationFrame(r));
    } else if (this.presented === this.taken) {
      await new Promise((r) => this.waiters.push(r));
    }
    this.taken = this.presented;
  }

  stop() {
    if (this.hasCallback) this.video.cancelVideoFrameCallback(this.handle);
    for (const wake of this.waiters.splice(0)) wake();
  }
}
