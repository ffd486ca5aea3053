// A capture bundle in the gateway's JSON mapping (CaptureBundle,
// protos/identity/kyc_tier/v1/resources.proto), digested and signed.

import { randomHex, toBase64, utf8 } from "./bytes.js";
import type { BundleSigner } from "./device.js";
import { bundleSha256, canonicalText, DigestInputError, rfc3339Seconds } from "./digest.js";
import { encodeSensorData, normaliseSensorData, type SensorData } from "./sensors.js";

export interface FrameCapture {
  /** Encoded image bytes (JPEG). */
  bytes: Uint8Array;
  mediaType: string;
  /** Milliseconds since the first flash colour appeared (negative before it). */
  offsetMs: number;
  /** Captured under ambient light before the flash sequence. */
  baseline: boolean;
}

export interface CaptureBundleJson {
  frames: { image: { data: string; mediaType: string }; offsetMs: number; baseline: boolean }[];
  sensors?: SensorData;
  attestation: {
    deviceId: string;
    nonce: string;
    bundleSha256: string;
    signature: string;
    capturedAt: string;
  };
}

export interface SignedBundle {
  bundle: CaptureBundleJson;
  digest: string;
  canonicalText: string;
}

export interface BuildBundleInput {
  challengeId: string;
  frames: readonly FrameCapture[];
  signer: BundleSigner;
  sensors?: SensorData;
  /** Defaults to now; sent and digested in whole seconds. */
  capturedAt?: Date;
  /** Defaults to 32 random hex characters; 8 to 128 characters. */
  nonce?: string;
}

export const MAX_FRAMES = 16;

export async function buildSignedBundle(input: BuildBundleInput): Promise<SignedBundle> {
  if (input.frames.length < 1 || input.frames.length > MAX_FRAMES) {
    throw new DigestInputError(`a bundle carries 1 to ${MAX_FRAMES} frames`);
  }
  const nonce = input.nonce ?? randomHex(16);
  if (nonce.length < 8 || nonce.length > 128) {
    throw new DigestInputError("nonce: 8 to 128 characters");
  }
  const capturedAt = rfc3339Seconds(input.capturedAt ?? new Date());
  const sensors = input.sensors ? normaliseSensorData(input.sensors) : undefined;
  const digestInput = {
    challengeId: input.challengeId,
    nonce,
    deviceId: input.signer.deviceId,
    capturedAt,
    frames: input.frames.map((f) => f.bytes),
    sensors: encodeSensorData(sensors),
  };
  const text = await canonicalText(digestInput);
  const digest = await bundleSha256(digestInput);
  const signature = await input.signer.sign(utf8(digest));
  const bundle: CaptureBundleJson = {
    frames: input.frames.map((f) => ({
      image: { data: toBase64(f.bytes), mediaType: f.mediaType },
      offsetMs: Math.round(f.offsetMs),
      baseline: f.baseline,
    })),
    attestation: {
      deviceId: input.signer.deviceId,
      nonce,
      bundleSha256: digest,
      signature: toBase64(signature),
      capturedAt,
    },
  };
  if (sensors) bundle.sensors = sensors;
  return { bundle, digest, canonicalText: text };
}
