// The capture flows: device registration, a selfie (liveness or step-up)
// and a KTP card, each ending in an outcome a page can show.

import { buildSignedBundle, type SignedBundle } from "./bundle.js";
import { type Camera, CaptureError, captureFlashFrames } from "./capture.js";
import { ApiError, type FacePurpose, type IdentityClient, type Reason } from "./client.js";
import {
  type CameraParameters,
  collectOptionalMetadata,
  type ConsentLedger,
  type Location,
  MotionRecorder,
  type OptionalMetadata,
} from "./consent.js";
import { DeviceKey } from "./device.js";
import {
  type Clock,
  type FlashChallenge,
  type FlashPlan,
  FlashSafetyError,
  type SafeDisplay,
} from "./flash.js";
import { type Guidance, guidanceForCodes, type Locale } from "./guidance.js";
import type { DeviceKeyStore } from "./keystore.js";

export type CaptureState = "starting" | "warning" | "flashing" | "sending" | "passed" | "failed";

export interface CaptureContext {
  client: IdentityClient;
  customerId: string;
  keyStore: DeviceKeyStore;
  consent?: ConsentLedger;
  locale?: Locale;
  location?: () => Promise<Location | undefined>;
  onState?: (state: CaptureState) => void;
}

export interface CaptureOutcome {
  passed: boolean;
  /** Reason codes from the server (or the SDK), most important first. */
  codes: string[];
  guidance: Guidance[];
  /** Whether a new attempt can help. */
  retry: boolean;
  response?: unknown;
  signed?: SignedBundle;
  /** Consented optional metadata not carried by the bundle (see consent.ts). */
  metadata: OptionalMetadata;
}

/** The customer's device key on this browser, registered once. */
export async function ensureDeviceRegistered(
  client: IdentityClient,
  store: DeviceKeyStore,
  customerId: string,
): Promise<DeviceKey> {
  for (let attempt = 0; ; attempt++) {
    const key = await DeviceKey.loadOrCreate(store, customerId);
    if (key.registered) return key;
    try {
      const answer = await client.registerDevice(key.registrationBody());
      await key.markRegistered(store, answer.registeredAt, answer.keyFingerprint);
      return key;
    } catch (error) {
      // The id is taken by another key (a lost store): start over with a new key, once.
      if (error instanceof ApiError && error.reason === "DEVICE_ALREADY_REGISTERED" && !attempt) {
        await store.delete(customerId);
        continue;
      }
      throw error;
    }
  }
}

function outcome(
  ctx: CaptureContext,
  passed: boolean,
  reasons: readonly Reason[],
  extra: Partial<CaptureOutcome>,
): CaptureOutcome {
  const codes = reasons.map((r) => r.code);
  const guidance = passed ? [] : guidanceForCodes(codes.length ? codes : ["UNKNOWN"], ctx.locale);
  ctx.onState?.(passed ? "passed" : "failed");
  return {
    passed,
    codes,
    guidance,
    retry: !passed && guidance.every((g) => g.retry),
    metadata: {},
    ...extra,
  };
}

/** Turns the errors a person can act on into an outcome; rethrows the rest. */
async function asOutcome(
  ctx: CaptureContext,
  run: () => Promise<CaptureOutcome>,
): Promise<CaptureOutcome> {
  try {
    return await run();
  } catch (error) {
    let code: string;
    if (error instanceof ApiError) code = error.reason;
    else if (error instanceof CaptureError || error instanceof FlashSafetyError) code = error.code;
    else throw error;
    if (code === "DEVICE_NOT_FOUND") await ctx.keyStore.delete(ctx.customerId);
    return outcome(ctx, false, [{ code, message: (error as Error).message }], {});
  }
}

/** What a flash capture needs of the page: the camera, a safe display, a clock, consent to the flashes. */
export interface FlashOptions {
  camera: Camera & { parameters?: () => CameraParameters };
  display: SafeDisplay;
  clock: Clock;
  confirmFlashWarning: (plan: FlashPlan) => Promise<boolean>;
}

export interface FaceCaptureOptions extends FlashOptions {
  purpose: FacePurpose;
  /** The protected action of a step-up ("transfer", ...). */
  action?: string;
}

/** The challenge's flashes, reporting the warning and flashing states. */
function flashFrames(ctx: CaptureContext, options: FlashOptions, challenge: FlashChallenge) {
  return captureFlashFrames({
    challenge,
    camera: options.camera,
    display: options.display,
    clock: options.clock,
    confirmFlashWarning: async (plan) => {
      ctx.onState?.("warning");
      const go = await options.confirmFlashWarning(plan);
      if (go) ctx.onState?.("flashing");
      return go;
    },
  });
}

export function captureFace(ctx: CaptureContext, options: FaceCaptureOptions) {
  return asOutcome(ctx, async () => {
    ctx.onState?.("starting");
    const key = await ensureDeviceRegistered(ctx.client, ctx.keyStore, ctx.customerId);
    const challenge = await ctx.client.issueFaceChallenge(ctx.customerId, options.purpose);
    const motion = new MotionRecorder();
    motion.start(ctx.consent);
    let frames;
    try {
      frames = await flashFrames(ctx, options, challenge);
    } finally {
      motion.stop();
    }
    const readings = motion.readings(frames.flashStartedAt);
    const metadata = await collectOptionalMetadata(ctx.consent, {
      location: ctx.location,
      cameraParameters: options.camera.parameters?.bind(options.camera),
      motion: () => readings,
    });
    ctx.onState?.("sending");
    const signed = await buildSignedBundle({
      challengeId: challenge.challengeId,
      frames: frames.frames,
      signer: key,
      ...(metadata.motion ? { sensors: { readings: metadata.motion } } : {}),
    });
    const { motion: _sent, ...kept } = metadata;
    if (options.purpose === "step_up") {
      const answer = await ctx.client.stepUp(
        ctx.customerId,
        challenge.challengeId,
        signed.bundle,
        options.action ?? "",
      );
      return outcome(ctx, answer.allow, answer.reasons ?? [], {
        response: answer,
        signed,
        metadata: kept,
      });
    }
    const answer = await ctx.client.checkFaceLiveness(
      ctx.customerId,
      challenge.challengeId,
      signed.bundle,
    );
    const reasons = [...(answer.verification?.reasons ?? []), ...(answer.qualityReasons ?? [])];
    const passed = answer.verification?.outcome === "VERIFICATION_OUTCOME_PASSED";
    return outcome(ctx, passed, reasons, { response: answer, signed, metadata: kept });
  });
}

export interface KtpCaptureOptions extends FlashOptions {
  /** Fields the person typed or on-device OCR read (nik, fullName, ...). */
  ocrFields?: Record<string, string>;
}

export function captureKtp(ctx: CaptureContext, options: KtpCaptureOptions) {
  return asOutcome(ctx, async () => {
    ctx.onState?.("starting");
    const key = await ensureDeviceRegistered(ctx.client, ctx.keyStore, ctx.customerId);
    const challenge = await ctx.client.issueKtpChallenge(ctx.customerId);
    // The card is read on the unflashed baseline frame; the flash frames show
    // the server that a physical card answers the screen's light (a card
    // shown on another screen barely does).
    const { frames } = await flashFrames(ctx, options, challenge);
    const metadata = await collectOptionalMetadata(ctx.consent, {
      location: ctx.location,
      cameraParameters: options.camera.parameters?.bind(options.camera),
    });
    ctx.onState?.("sending");
    const signed = await buildSignedBundle({
      challengeId: challenge.challengeId,
      frames,
      signer: key,
    });
    const answer = await ctx.client.submitKtpCapture(
      ctx.customerId,
      challenge.challengeId,
      signed.bundle,
      options.ocrFields,
    );
    const passed = answer.verification?.outcome === "VERIFICATION_OUTCOME_PASSED";
    return outcome(ctx, passed, answer.verification?.reasons ?? [], {
      response: answer,
      signed,
      metadata,
    });
  });
}
