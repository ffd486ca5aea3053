// Ready-made capture screens: the view, the camera, the flash warning and a
// retry loop around the capture flows of session.ts.

import { CARD_CAMERA, FACE_CAMERA, FullScreenFlash, VideoCamera, browserClock } from "../browser.js";
import { type Camera, CaptureError } from "../capture.js";
import type { FacePurpose } from "../client.js";
import { SafeDisplay } from "../flash.js";
import { guidanceForCodes, type Locale } from "../guidance.js";
import {
  captureFace,
  captureKtp,
  type CaptureContext,
  type CaptureOutcome,
  type FlashOptions,
} from "../session.js";
import { prompt } from "./texts.js";
import { CaptureView } from "./view.js";

export interface WidgetOptions {
  /** Attempts before giving up (each a new challenge). */
  maxAttempts?: number;
}

// One safe display per page: the three-flashes limit holds across widgets.
let sharedDisplay: SafeDisplay | undefined;
function flashDisplay(): SafeDisplay {
  sharedDisplay ??= new SafeDisplay(new FullScreenFlash(), browserClock);
  return sharedDisplay;
}

async function withRetries(
  ctx: CaptureContext,
  view: CaptureView,
  attempt: () => Promise<CaptureOutcome>,
  maxAttempts: number,
): Promise<CaptureOutcome> {
  const locale = ctx.locale ?? "id";
  for (let n = 1; ; n++) {
    const result = await attempt();
    if (result.passed) {
      view.setState("passed");
      view.showPrompt(prompt("passed", locale));
      return result;
    }
    view.setState("failed");
    view.showGuidance(result.guidance);
    if (!result.retry || n >= maxAttempts) return result;
    await view.waitForButton(prompt("retry", locale));
  }
}

async function openCamera(ctx: CaptureContext, view: CaptureView, profile = FACE_CAMERA) {
  try {
    return await VideoCamera.open(profile, view.video);
  } catch (error) {
    if (!(error instanceof CaptureError)) throw error;
    view.setState("failed");
    view.showGuidance(guidanceForCodes([error.code], ctx.locale));
    return error;
  }
}

function failed(ctx: CaptureContext, error: CaptureError): CaptureOutcome {
  const guidance = guidanceForCodes([error.code], ctx.locale);
  return { passed: false, codes: [error.code], guidance, retry: false, metadata: {} };
}

/** The page's side of a flash capture: the shared display, and the warning before the flashes. */
function flashOptions(camera: Camera, view: CaptureView, locale: Locale): FlashOptions {
  return {
    camera,
    display: flashDisplay(),
    clock: browserClock,
    confirmFlashWarning: (plan) =>
      view.confirm(
        prompt("flashWarning", locale, {
          count: plan.steps.length,
          seconds: Math.max(1, Math.round(plan.totalMs / 1000)),
        }),
        prompt("continue", locale),
        prompt("cancel", locale),
      ),
  };
}

/** A selfie screen in `container`: liveness (onboarding) or step-up. */
export async function runFaceCapture(
  container: HTMLElement,
  ctx: CaptureContext,
  options: WidgetOptions & { purpose?: FacePurpose; action?: string } = {},
): Promise<CaptureOutcome> {
  const locale = ctx.locale ?? "id";
  const view = new CaptureView(container, "face");
  const state = ctx.onState;
  const viewCtx: CaptureContext = { ...ctx, onState: (s) => (view.setState(s), state?.(s)) };
  const camera = await openCamera(ctx, view);
  if (camera instanceof CaptureError) return failed(ctx, camera);
  try {
    view.setState("framing");
    view.showPrompt(prompt("faceFrame", locale));
    await view.waitForButton(prompt("capture", locale));
    return await withRetries(
      viewCtx,
      view,
      () => {
        view.showPrompt(prompt("holdStill", locale));
        return captureFace(viewCtx, {
          purpose: options.purpose ?? "face_liveness",
          action: options.action ?? "",
          ...flashOptions(camera, view, locale),
        });
      },
      options.maxAttempts ?? 3,
    );
  } finally {
    camera.close();
  }
}

/** A KTP card screen in `container`. */
export async function runKtpCapture(
  container: HTMLElement,
  ctx: CaptureContext,
  options: WidgetOptions & { ocrFields?: Record<string, string> } = {},
): Promise<CaptureOutcome> {
  const locale = ctx.locale ?? "id";
  const view = new CaptureView(container, "card");
  const state = ctx.onState;
  const viewCtx: CaptureContext = { ...ctx, onState: (s) => (view.setState(s), state?.(s)) };
  const camera = await openCamera(ctx, view, CARD_CAMERA);
  if (camera instanceof CaptureError) return failed(ctx, camera);
  try {
    view.setState("framing");
    view.showPrompt(prompt("cardFrame", locale));
    await view.waitForButton(prompt("capture", locale));
    return await withRetries(
      viewCtx,
      view,
      () => {
        view.showPrompt(prompt("holdStill", locale));
        return captureKtp(viewCtx, {
          ocrFields: options.ocrFields ?? {},
          ...flashOptions(camera, view, locale),
        });
      },
      options.maxAttempts ?? 3,
    );
  } finally {
    camera.close();
  }
}
