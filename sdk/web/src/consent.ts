// Consent for optional capture metadata (seed: GPS and camera parameters only
// with the user's consent). Nothing optional is read before the person has
// explicitly agreed, and the agreement itself is recorded: which text (its
// version and SHA-256), which scopes, when.
//
// On the wire today: motion readings travel in SensorData (signed with the
// bundle). GPS and camera parameters have no field in CaptureBundle yet (see
// CAPTURE_SIGNING.md, "Notes for the lead"): the SDK hands them, with the
// consent record, to the partner page in the capture result and sends nothing.

import { sha256Hex } from "./digest.js";
import { utf8 } from "./bytes.js";
import type { SensorReading } from "./sensors.js";

export type ConsentScope = "location" | "camera_parameters" | "motion_sensors";
export const CONSENT_SCOPES: readonly ConsentScope[] = [
  "location",
  "camera_parameters",
  "motion_sensors",
];

export interface ConsentRecord {
  /** The partner's version label of the consent text shown. */
  textVersion: string;
  /** Lowercase hex SHA-256 of the exact text shown. */
  textSha256: string;
  scopes: ConsentScope[];
  /** RFC 3339, when the person agreed. */
  grantedAt: string;
}

export class ConsentError extends Error {}

export class ConsentLedger {
  private record: ConsentRecord | undefined;

  /**
   * Records an explicit agreement. Call it from the person's own action (a
   * button they pressed after reading `text`), never by default.
   */
  async grant(
    scopes: readonly ConsentScope[],
    text: string,
    textVersion: string,
    now = new Date(),
  ): Promise<ConsentRecord> {
    if (!text.trim() || !textVersion.trim()) {
      throw new ConsentError("consent needs the text shown and its version");
    }
    const unknown = scopes.filter((s) => !CONSENT_SCOPES.includes(s));
    if (unknown.length || scopes.length === 0) {
      throw new ConsentError(`unknown or no consent scopes: ${unknown.join(", ")}`);
    }
    this.record = {
      textVersion,
      textSha256: await sha256Hex(utf8(text)),
      scopes: [...new Set(scopes)],
      grantedAt: now.toISOString(),
    };
    return this.current()!;
  }

  revoke(): void {
    this.record = undefined;
  }

  allows(scope: ConsentScope): boolean {
    return this.record?.scopes.includes(scope) ?? false;
  }

  current(): ConsentRecord | undefined {
    return this.record && { ...this.record, scopes: [...this.record.scopes] };
  }
}

export interface Location {
  latitude: number;
  longitude: number;
  accuracyM: number;
}

export interface CameraParameters {
  width?: number;
  height?: number;
  frameRate?: number;
  facingMode?: string;
  /** The browser's media-track settings we kept (no device label or id). */
  [key: string]: string | number | boolean | undefined;
}

/** Readers of optional metadata; each is called only with the matching consent. */
export interface MetadataSources {
  location?: () => Promise<Location | undefined>;
  cameraParameters?: () => CameraParameters | undefined;
  motion?: () => SensorReading[];
}

export interface OptionalMetadata {
  consent?: ConsentRecord;
  location?: Location;
  cameraParameters?: CameraParameters;
  /** Goes into SensorData (on the wire, signed). */
  motion?: SensorReading[];
}

export async function collectOptionalMetadata(
  consent: ConsentLedger | undefined,
  sources: MetadataSources,
): Promise<OptionalMetadata> {
  const record = consent?.current();
  if (!consent || !record) return {};
  const out: OptionalMetadata = { consent: record };
  if (consent.allows("location") && sources.location) {
    const location = await sources.location().catch(() => undefined);
    if (location) out.location = location;
  }
  if (consent.allows("camera_parameters") && sources.cameraParameters) {
    const parameters = sources.cameraParameters();
    if (parameters) out.cameraParameters = parameters;
  }
  if (consent.allows("motion_sensors") && sources.motion) {
    const readings = sources.motion();
    if (readings.length) out.motion = readings;
  }
  return out;
}

/** The browser's geolocation, once, with a short timeout. */
export function browserLocation(timeoutMs = 5000): () => Promise<Location | undefined> {
  return () =>
    new Promise((resolve) => {
      if (!globalThis.navigator?.geolocation) return resolve(undefined);
      navigator.geolocation.getCurrentPosition(
        (p) =>
          resolve({
            latitude: p.coords.latitude,
            longitude: p.coords.longitude,
            accuracyM: p.coords.accuracy,
          }),
        () => resolve(undefined),
        { timeout: timeoutMs, maximumAge: 60_000 },
      );
    });
}

/**
 * Records device motion during a capture. Listening starts only when consent
 * allows motion_sensors; offsets are made relative to the first flash colour
 * when the capture stops.
 */
export class MotionRecorder {
  private readonly recorded: { at: number; reading: Omit<SensorReading, "offsetMs"> }[] = [];
  private listener: ((e: DeviceMotionEvent) => void) | undefined;

  constructor(private readonly max = 64) {}

  start(consent: ConsentLedger | undefined): void {
    if (!consent?.allows("motion_sensors") || typeof window === "undefined") return;
    this.listener = (e) => {
      if (this.recorded.length >= this.max) return;
      const at = performance.now();
      const a = e.accelerationIncludingGravity;
      if (a && a.x !== null && a.y !== null && a.z !== null) {
        this.recorded.push({ at, reading: { sensor: "accelerometer", x: a.x, y: a.y, z: a.z } });
      }
      const r = e.rotationRate;
      if (r && r.alpha !== null && r.beta !== null && r.gamma !== null) {
        this.recorded.push({
          at,
          reading: { sensor: "gyroscope", x: r.beta, y: r.gamma, z: r.alpha },
        });
      }
    };
    window.addEventListener("devicemotion", this.listener);
  }

  stop(): void {
    if (this.listener) window.removeEventListener("devicemotion", this.listener);
    this.listener = undefined;
  }

  /** What was recorded, with offsets from `origin` (a performance.now() time). */
  readings(origin: number): SensorReading[] {
    return this.recorded.map(({ at, reading }) => ({
      ...reading,
      offsetMs: Math.round(at - origin),
    }));
  }
}
