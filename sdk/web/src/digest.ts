// The canonical capture-bundle digest (protos/identity/kyc_tier/v1/CAPTURE_SIGNING.md):
//
//   SHA-256 over the UTF-8 text
//     "identity-bundle-v1\n" + challenge_id + "\n" + nonce + "\n" + device_id + "\n"
//     + captured_at (RFC 3339, UTC, whole seconds truncated, "Z") + "\n"
//     + for each frame in bundle order: hex SHA-256 of its encoded bytes + "\n"
//     + hex SHA-256 of the deterministic protobuf encoding of SensorData + "\n"
//
// and the device signs the UTF-8 bytes of the lowercase hex result.

import { toHex, utf8 } from "./bytes.js";

export const DIGEST_PREFIX = "identity-bundle-v1";

export interface DigestInput {
  challengeId: string;
  nonce: string;
  deviceId: string;
  /** A Date, or an RFC 3339 timestamp as the bundle's JSON carries it. */
  capturedAt: Date | string;
  /** Encoded frames (JPEG bytes) in bundle order, the baseline included. */
  frames: readonly Uint8Array[];
  /** The deterministic SensorData encoding (empty when there is none). */
  sensors: Uint8Array;
}

export class DigestInputError extends TypeError {}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch of an RFC 3339 timestamp, fraction dropped. */
export function parseRfc3339(text: string): number {
  const m = RFC3339.exec(text);
  if (!m) throw new DigestInputError("capturedAt: not an RFC 3339 timestamp");
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number, number, number, number, number, number,
  ];
  let ms = Date.UTC(year, month - 1, day, hour, minute, second);
  if (!m[8]) {
    const sign = m[9] === "-" ? -1 : 1;
    ms -= sign * (Number(m[10]) * 60 + Number(m[11])) * 60_000;
  }
  return ms;
}

/** RFC 3339 in UTC with whole seconds (truncated) and "Z": the digest's form. */
export function rfc3339Seconds(moment: Date | string): string {
  const ms = typeof moment === "string" ? parseRfc3339(moment) : moment.getTime();
  if (!Number.isFinite(ms)) throw new DigestInputError("capturedAt: not a valid time");
  const date = new Date(Math.floor(ms / 1000) * 1000);
  const year = date.getUTCFullYear();
  if (year < 1970 || year > 9999) throw new DigestInputError("capturedAt: year out of range");
  return date.toISOString().slice(0, 19) + "Z";
}

export async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return toHex(new Uint8Array(digest));
}

function checkLine(value: string, field: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new DigestInputError(`${field}: required`);
  }
  // A line break inside a field would let two different bundles share one text.
  if (/[\r\n]/.test(value)) throw new DigestInputError(`${field}: must not contain line breaks`);
  return value;
}

export async function canonicalText(input: DigestInput): Promise<string> {
  const lines = [
    DIGEST_PREFIX,
    checkLine(input.challengeId, "challengeId"),
    checkLine(input.nonce, "nonce"),
    checkLine(input.deviceId, "deviceId"),
    rfc3339Seconds(input.capturedAt),
  ];
  for (const frame of input.frames) lines.push(await sha256Hex(frame));
  lines.push(await sha256Hex(input.sensors));
  return lines.map((line) => line + "\n").join("");
}

/** Lowercase hex SHA-256 of the canonical text. */
export async function bundleSha256(input: DigestInput): Promise<string> {
  return sha256Hex(utf8(await canonicalText(input)));
}
