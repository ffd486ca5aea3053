// The web SDK agrees with the shared capture-bundle test vectors
// (contracts/test-vectors/capture-bundle.json; the server checks the same file
// in tests/unit/test_capture_vectors.py).

import { createVerify } from "node:crypto";
import { describe, expect, it } from "vitest";

import { fromBase64, toHex, utf8 } from "../src/bytes.js";
import { buildSignedBundle, type FrameCapture } from "../src/bundle.js";
import { derToP1363 } from "../src/der.js";
import { DeviceKey } from "../src/device.js";
import { bundleSha256, canonicalText, rfc3339Seconds, sha256Hex } from "../src/digest.js";
import { encodeSensorData, normaliseSensorData } from "../src/sensors.js";
import { importKeys, VECTORS, type Vector } from "./helpers.js";

const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" } as const;

function digestInput(v: Vector) {
  return {
    challengeId: v.challenge_id,
    nonce: v.bundle.attestation.nonce,
    deviceId: v.bundle.attestation.deviceId,
    capturedAt: v.bundle.attestation.capturedAt,
    frames: v.bundle.frames.map((f) => fromBase64(f.image.data)),
    sensors: encodeSensorData(v.bundle.sensors),
  };
}

/** The server's check, done with WebCrypto: DER only, over the lowercase hex. */
async function serverAccepts(v: Vector, publicKey: CryptoKey): Promise<boolean> {
  let raw: Uint8Array;
  try {
    raw = derToP1363(fromBase64(v.bundle.attestation.signature));
  } catch {
    return false;
  }
  const message = utf8(v.bundle.attestation.bundleSha256.toLowerCase());
  return crypto.subtle.verify(
    ECDSA_SHA256,
    publicKey,
    raw as Uint8Array<ArrayBuffer>,
    message as Uint8Array<ArrayBuffer>,
  );
}

describe.each(VECTORS.vectors.map((v) => [v.name, v] as const))("vector %s", (_, v) => {
  it("encodes SensorData to the server's bytes", async () => {
    const bytes = encodeSensorData(v.bundle.sensors);
    expect(toHex(bytes)).toBe(v.expected.sensors_serialized_hex);
    expect(await sha256Hex(bytes)).toBe(v.expected.sensors_sha256);
  });

  it("builds the same canonical text and digest", async () => {
    expect(rfc3339Seconds(v.bundle.attestation.capturedAt)).toBe(
      v.expected.captured_at_digest_form,
    );
    const input = digestInput(v);
    for (const [i, frame] of input.frames.entries()) {
      expect(await sha256Hex(frame)).toBe(v.expected.frame_sha256[i]);
    }
    expect(await canonicalText(input)).toBe(v.expected.canonical_text);
    const digest = await bundleSha256(input);
    expect(digest).toBe(v.expected.bundle_sha256);
    expect(digest === v.bundle.attestation.bundleSha256).toBe(v.expect.digest_matches);
  });

  it("judges the signature as the server does", async () => {
    const { publicKey } = await importKeys(v.key);
    expect(await serverAccepts(v, publicKey)).toBe(v.expect.signature_valid);
  });
});

describe("the SDK's own bundles", () => {
  const positives = VECTORS.vectors.filter(
    (v) => v.expect.digest_matches && v.expect.signature_valid,
  );

  it.each(positives.map((v) => [v.name, v] as const))(
    "%s: same digest, and a DER signature OpenSSL verifies",
    async (_, v) => {
      const keys = await importKeys(v.key);
      const signer = DeviceKey.fromKeys({
        customerId: "cus_vectors",
        deviceId: v.bundle.attestation.deviceId,
        ...keys,
      });
      const frames: FrameCapture[] = v.bundle.frames.map((f) => ({
        bytes: fromBase64(f.image.data),
        mediaType: f.image.mediaType,
        offsetMs: f.offsetMs,
        baseline: f.baseline,
      }));
      const signed = await buildSignedBundle({
        challengeId: v.challenge_id,
        frames,
        signer,
        sensors: v.bundle.sensors,
        nonce: v.bundle.attestation.nonce,
        capturedAt: new Date(Date.parse(v.bundle.attestation.capturedAt)),
      });
      // The SDK sends -0 as 0 (JSON has no negative zero; see normaliseSensorData),
      // so only the vector that carries a -0.0 reaches the server changed.
      const sentUnchanged =
        toHex(encodeSensorData(v.bundle.sensors)) ===
        toHex(encodeSensorData(v.bundle.sensors && normaliseSensorData(v.bundle.sensors)));
      expect(sentUnchanged).toBe(v.name !== "sensor-encoding-edges");
      expect(signed.digest === v.expected.bundle_sha256).toBe(sentUnchanged);
      expect(signed.bundle.attestation.bundleSha256).toBe(signed.digest);
      expect(signed.bundle.frames.map((f) => f.image.data)).toEqual(
        v.bundle.frames.map((f) => f.image.data),
      );
      const der = fromBase64(signed.bundle.attestation.signature);
      expect(der[0]).toBe(0x30);
      const verifier = createVerify("sha256");
      verifier.update(utf8(signed.digest));
      expect(
        verifier.verify({ key: keys.publicKeyPem, dsaEncoding: "der" }, der),
      ).toBe(true);
    },
  );

  it("sends exactly the sensor values it digests", () => {
    for (const v of VECTORS.vectors) {
      if (!v.bundle.sensors) continue;
      const normalised = normaliseSensorData(v.bundle.sensors);
      const onTheWire = JSON.parse(JSON.stringify(normalised));
      expect(toHex(encodeSensorData(onTheWire))).toBe(toHex(encodeSensorData(normalised)));
    }
  });
});
