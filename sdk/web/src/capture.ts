// Taking the frames of a capture: an unflashed baseline, then one frame per
// flash colour at its planned offset (face), or one still frame (KTP card).

import type { FrameCapture } from "./bundle.js";
import {
  type Clock,
  type FlashChallenge,
  type FlashPlan,
  planFlash,
  SafeDisplay,
} from "./flash.js";

/** A picture taken now, encoded later (encoding must not delay the next frame). */
export interface Snapshot {
  encode(): Promise<{ bytes: Uint8Array; mediaType: string; width: number; height: number }>;
}

export interface Camera {
  snapshot(): Snapshot;
}

/** Why a capture stopped on this device (not a server reason). */
export class CaptureError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface FlashCaptureOptions {
  challenge: FlashChallenge;
  camera: Camera;
  display: SafeDisplay;
  clock: Clock;
  /**
   * Shows the photosensitivity warning and resolves true once the person
   * chose to go on. Nothing flashes before it resolves true.
   */
  confirmFlashWarning: (plan: FlashPlan) => Promise<boolean>;
  captureFraction?: number;
  /** Called as each colour appears (progress, tests). */
  onColour?: (colour: string, index: number) => void;
}

export interface FlashCaptureResult {
  frames: FrameCapture[];
  plan: FlashPlan;
  /** Clock time at which the first colour was on screen (offset 0). */
  flashStartedAt: number;
}

async function encodeAll(taken: { snapshot: Snapshot; offsetMs: number; baseline: boolean }[]) {
  const frames: FrameCapture[] = [];
  for (const t of taken) {
    const encoded = await t.snapshot.encode();
    frames.push({
      bytes: encoded.bytes,
      mediaType: encoded.mediaType,
      // Whole milliseconds, rounded down: a frame taken in the last half
      // millisecond of its colour's slot must not be sent as the next slot's
      // (the server assigns slots by floor(offset / duration), and one past
      // the last colour is left out of the evidence).
      offsetMs: Math.floor(t.offsetMs),
      baseline: t.baseline,
    });
  }
  return frames;
}

export async function captureFlashFrames(options: FlashCaptureOptions): Promise<FlashCaptureResult> {
  const { challenge, camera, display, clock } = options;
  const plan = planFlash(challenge, options.captureFraction);
  if (!(await options.confirmFlashWarning(plan))) {
    throw new CaptureError("FLASH_WARNING_DECLINED", "the person chose not to see the flashes");
  }
  const d = challenge.flashDurationMs;
  // A retry right after a capture waits here until the screen may change again.
  await clock.sleepUntil(display.nextAllowed());
  const baseline = { snapshot: camera.snapshot(), at: clock.now() };
  const taken: { snapshot: Snapshot; offsetMs: number; baseline: boolean }[] = [];
  let t0 = Number.NaN;
  try {
    display.change(plan.steps[0]!.colour);
    await clock.nextPaint();
    t0 = clock.now();
    taken.push({ snapshot: baseline.snapshot, offsetMs: baseline.at - t0, baseline: true });
    for (const step of plan.steps) {
      if (step.index > 0) {
        await clock.sleepUntil(t0 + step.startMs);
        if (!display.change(step.colour)) {
          throw new CaptureError("FLASH_TIMING_MISSED", "the screen could not change in time");
        }
      }
      options.onColour?.(step.colour, step.index);
      await clock.sleepUntil(t0 + step.captureAtMs);
      const offset = clock.now() - t0;
      if (Math.floor(offset / d) !== step.index) {
        throw new CaptureError("FLASH_TIMING_MISSED", "a frame was taken outside its colour");
      }
      taken.push({ snapshot: camera.snapshot(), offsetMs: offset, baseline: false });
    }
    await clock.sleepUntil(t0 + plan.totalMs);
  } finally {
    await display.clear();
  }
  return { frames: await encodeAll(taken), plan, flashStartedAt: t0 };
}

/** One still frame under ambient light (a KTP card: frames[0] is the card). */
export async function captureStill(camera: Camera): Promise<FrameCapture[]> {
  return encodeAll([{ snapshot: camera.snapshot(), offsetMs: 0, baseline: true }]);
}
