// Browser adapters of the capture ports: the camera (getUserMedia + canvas
// JPEG), the full-screen flash and the clock.

import type { Camera, Snapshot } from "./capture.js";
import { CaptureError } from "./capture.js";
import type { CameraParameters } from "./consent.js";
import type { Clock, FlashDisplay } from "./flash.js";

/** What a capture kind needs of the camera (see capture-quality's limits). */
export interface CameraProfile {
  facingMode: "user" | "environment";
  idealWidth: number;
  idealHeight: number;
  /** Shorter side of the frames sent; below it the camera is refused. */
  minShortSide: number;
  /** Longer side of the frames sent; larger pictures are scaled down. */
  maxLongSide: number;
  /** JPEG quality, at least 0.8 (seed 000). */
  jpegQuality: number;
}

// A selfie: capture-quality wants a short side of at least 480 px and an
// inter-eye distance of 90 px; 1280 px keeps five frames well under 1 MB.
export const FACE_CAMERA: CameraProfile = {
  facingMode: "user",
  idealWidth: 1280,
  idealHeight: 720,
  minShortSide: 480,
  maxLongSide: 1280,
  jpegQuality: 0.9,
};

// A KTP: the card must be at least 600 px wide in the photo. The frame guide
// is 80 % of a 4:3 preview, which shows the middle 75 % of a 16:9 picture: a
// card filling it is 60 % of the frame's width, 768 px at 1280 x 720.
export const CARD_CAMERA: CameraProfile = {
  facingMode: "environment",
  idealWidth: 1920,
  idealHeight: 1080,
  minShortSide: 720,
  maxLongSide: 1920,
  jpegQuality: 0.92,
};

export const MIN_JPEG_QUALITY = 0.8;

/** The frame size sent for a camera picture of `width` x `height`. */
export function frameSize(width: number, height: number, profile: CameraProfile) {
  if (Math.min(width, height) < profile.minShortSide) {
    throw new CaptureError(
      "RESOLUTION_TOO_LOW",
      `the camera gives ${width}x${height}; at least ${profile.minShortSide} px are needed`,
    );
  }
  const scale = Math.min(1, profile.maxLongSide / Math.max(width, height));
  const size = { width: Math.round(width * scale), height: Math.round(height * scale) };
  if (Math.min(size.width, size.height) < profile.minShortSide) {
    // A very elongated picture: keep the short side rather than the long one.
    const keep = profile.minShortSide / Math.min(width, height);
    return { width: Math.round(width * keep), height: Math.round(height * keep) };
  }
  return size;
}

function cameraError(error: unknown): CaptureError {
  const name = (error as { name?: string } | undefined)?.name ?? "";
  if (name === "NotAllowedError" || name === "SecurityError") {
    return new CaptureError("CAMERA_PERMISSION_DENIED", "camera access was refused");
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    return new CaptureError("CAMERA_NOT_FOUND", "no suitable camera");
  }
  return new CaptureError("CAMERA_UNAVAILABLE", "the camera could not be started");
}

export class VideoCamera implements Camera {
  private constructor(
    readonly video: HTMLVideoElement,
    private readonly stream: MediaStream,
    readonly profile: CameraProfile,
  ) {}

  /** Opens the camera into `video` (created when not given) and waits for a picture. */
  static async open(profile: CameraProfile, video?: HTMLVideoElement): Promise<VideoCamera> {
    if (profile.jpegQuality < MIN_JPEG_QUALITY || profile.jpegQuality > 1) {
      throw new RangeError(`jpegQuality must be in [${MIN_JPEG_QUALITY}, 1]`);
    }
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: {
          facingMode: profile.facingMode,
          width: { ideal: profile.idealWidth },
          height: { ideal: profile.idealHeight },
        },
      });
    } catch (error) {
      throw cameraError(error);
    }
    const element = video ?? document.createElement("video");
    element.muted = true;
    element.playsInline = true;
    element.srcObject = stream;
    await element.play();
    if (!element.videoWidth) {
      await new Promise((resolve) => element.addEventListener("loadedmetadata", resolve, { once: true }));
    }
    const camera = new VideoCamera(element, stream, profile);
    frameSize(element.videoWidth, element.videoHeight, profile);
    return camera;
  }

  snapshot(): Snapshot {
    const { width, height } = frameSize(this.video.videoWidth, this.video.videoHeight, this.profile);
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    canvas.getContext("2d")!.drawImage(this.video, 0, 0, width, height);
    const quality = this.profile.jpegQuality;
    return {
      encode: () =>
        new Promise((resolve, reject) =>
          canvas.toBlob(
            (blob) => {
              if (!blob) return reject(new CaptureError("CAMERA_UNAVAILABLE", "no JPEG"));
              void blob.arrayBuffer().then((buffer) =>
                resolve({ bytes: new Uint8Array(buffer), mediaType: "image/jpeg", width, height }),
              );
            },
            "image/jpeg",
            quality,
          ),
        ),
    };
  }

  /** Camera parameters for consented metadata (no device id or label). */
  parameters(): CameraParameters {
    const settings = this.stream.getVideoTracks()[0]?.getSettings() ?? {};
    const kept: Record<string, string | number> = {};
    for (const key of ["width", "height", "frameRate", "facingMode", "aspectRatio"] as const) {
      const value = settings[key];
      if (value !== undefined) kept[key] = value;
    }
    return kept as CameraParameters;
  }

  close(): void {
    for (const track of this.stream.getTracks()) track.stop();
    this.video.srcObject = null;
  }
}

/** A full-viewport element above everything, in the flash colour. */
export class FullScreenFlash implements FlashDisplay {
  private readonly element: HTMLDivElement;

  constructor(parent: HTMLElement = document.body) {
    this.element = document.createElement("div");
    this.element.setAttribute("data-identity-flash", "");
    this.element.setAttribute("aria-hidden", "true");
    Object.assign(this.element.style, {
      position: "fixed",
      inset: "0",
      zIndex: "2147483647",
      display: "none",
      pointerEvents: "none",
    });
    parent.appendChild(this.element);
  }

  show(colour: string): void {
    this.element.style.background = colour;
    this.element.style.display = "block";
    this.element.dataset.colour = colour;
  }

  clear(): void {
    this.element.style.display = "none";
    delete this.element.dataset.colour;
  }

  remove(): void {
    this.element.remove();
  }
}

export const browserClock: Clock = {
  now: () => performance.now(),
  async sleepUntil(time: number) {
    for (;;) {
      const left = time - performance.now();
      if (left <= 0) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(left, 50)));
    }
  },
  nextPaint: () =>
    new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve()))),
};
