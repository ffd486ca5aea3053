import { describe, expect, it } from "vitest";

import { CARD_CAMERA, FACE_CAMERA, frameSize, MIN_JPEG_QUALITY } from "../src/browser.js";
import { CaptureError } from "../src/capture.js";

describe("frame sizes (capture-quality's limits)", () => {
  it.each([
    [1280, 720, 1280, 720],
    [1920, 1080, 1280, 720],
    [720, 1280, 720, 1280],
    [640, 480, 640, 480],
  ])("a %ix%i selfie camera gives %ix%i frames", (w, h, fw, fh) => {
    expect(frameSize(w, h, FACE_CAMERA)).toEqual({ width: fw, height: fh });
  });

  it("keeps the short side when scaling an elongated picture would go below it", () => {
    const size = frameSize(2560, 500, FACE_CAMERA);
    expect(Math.min(size.width, size.height)).toBe(480);
  });

  it.each([
    [640, 360, FACE_CAMERA],
    [1280, 640, CARD_CAMERA],
  ] as const)("refuses a %ix%i camera", (w, h, profile) => {
    expect(() => frameSize(w, h, profile)).toThrow(CaptureError);
    try {
      frameSize(w, h, profile);
    } catch (error) {
      expect((error as CaptureError).code).toBe("RESOLUTION_TOO_LOW");
    }
  });

  it("keeps a KTP photo large enough for a 600 px card", () => {
    expect(frameSize(3840, 2160, CARD_CAMERA)).toEqual({ width: 1920, height: 1080 });
    // The card guide is 80 % of the 4:3 preview, which shows 75 % of a 16:9 frame.
    expect(0.8 * 0.75 * frameSize(1280, 720, CARD_CAMERA).width).toBeGreaterThanOrEqual(600);
  });

  it("encodes JPEG at quality 0.8 or better", () => {
    expect(MIN_JPEG_QUALITY).toBe(0.8);
    expect(FACE_CAMERA.jpegQuality).toBeGreaterThanOrEqual(0.8);
    expect(CARD_CAMERA.jpegQuality).toBeGreaterThanOrEqual(0.8);
  });
});
