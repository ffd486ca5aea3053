import { describe, expect, it } from "vitest";

import { utf8 } from "../src/bytes.js";
import { buildSignedBundle } from "../src/bundle.js";
import {
  bundleSha256,
  canonicalText,
  DigestInputError,
  parseRfc3339,
  rfc3339Seconds,
} from "../src/digest.js";
import { DeviceKey } from "../src/device.js";
import { MemoryKeyStore } from "../src/keystore.js";
import { encodeSensorData, SensorDataError } from "../src/sensors.js";

const base = {
  challengeId: "chl_1",
  nonce: "0123456789abcdef",
  deviceId: "web_1",
  capturedAt: "2025-06-01T10:04:05Z",
  frames: [utf8("frame")],
  sensors: new Uint8Array(0),
};

describe("captured_at", () => {
  it.each([
    ["2025-06-01T10:04:05Z", "2025-06-01T10:04:05Z"],
    ["2025-06-01T10:04:05.999Z", "2025-06-01T10:04:05Z"],
    ["2025-06-01t17:04:05.5+07:00", "2025-06-01T10:04:05Z"],
    ["2025-06-01T00:30:00-01:30", "2025-06-01T02:00:00Z"],
  ])("%s is digested as %s (UTC, seconds truncated)", (text, digested) => {
    expect(rfc3339Seconds(text)).toBe(digested);
  });

  it("truncates a Date's milliseconds", () => {
    expect(rfc3339Seconds(new Date(Date.UTC(2025, 5, 1, 10, 4, 5, 999)))).toBe(
      "2025-06-01T10:04:05Z",
    );
  });

  it.each(["2025-06-01 10:04:05Z", "2025-06-01T10:04:05", "yesterday", "1969-12-31T23:59:59Z"])(
    "refuses %s",
    (text) => {
      expect(() => rfc3339Seconds(text)).toThrow(DigestInputError);
    },
  );

  it("parses offsets both ways", () => {
    expect(parseRfc3339("1970-01-01T01:00:00+01:00")).toBe(0);
  });
});

describe("canonical text", () => {
  it("lays the fields out one per line", async () => {
    const text = await canonicalText(base);
    const lines = text.split("\n");
    expect(lines.slice(0, 5)).toEqual([
      "identity-bundle-v1",
      "chl_1",
      "0123456789abcdef",
      "web_1",
      "2025-06-01T10:04:05Z",
    ]);
    expect(lines[6]).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(lines[7]).toBe("");
    expect(text.endsWith("\n")).toBe(true);
  });

  it.each(["challengeId", "nonce", "deviceId"] as const)(
    "refuses a line break in %s (two bundles could share one text)",
    async (field) => {
      await expect(canonicalText({ ...base, [field]: "a\nb" })).rejects.toThrow(
        DigestInputError,
      );
      await expect(canonicalText({ ...base, [field]: "" })).rejects.toThrow(DigestInputError);
    },
  );

  it("changes with every input", async () => {
    const digests = new Set(
      await Promise.all(
        [
          base,
          { ...base, challengeId: "chl_2" },
          { ...base, nonce: "0123456789abcdeX" },
          { ...base, deviceId: "web_2" },
          { ...base, capturedAt: "2025-06-01T10:04:06Z" },
          { ...base, frames: [utf8("frame"), utf8("frame")] },
          { ...base, sensors: encodeSensorData({ ambientLux: 1 }) },
        ].map(bundleSha256),
      ),
    );
    expect(digests.size).toBe(7);
  });
});

describe("sensor data", () => {
  it.each([
    [{ ambientLux: Number.NaN }],
    [{ ambientLux: Infinity }],
    [{ screenBrightness: 3.5e38 }],
    [{ readings: [{ sensor: "gyroscope", offsetMs: 1.5, x: 0, y: 0, z: 0 }] }],
    [{ readings: [{ sensor: "gyroscope", offsetMs: 2 ** 31, x: 0, y: 0, z: 0 }] }],
  ])("refuses what the server's JSON parser would refuse: %j", (data) => {
    expect(() => encodeSensorData(data)).toThrow(SensorDataError);
  });
});

describe("buildSignedBundle", () => {
  it("sends whole-second UTC time, a fresh nonce and base64 frames", async () => {
    const signer = await DeviceKey.loadOrCreate(new MemoryKeyStore(), "cus_1");
    const frames = [{ bytes: utf8("jpeg"), mediaType: "image/jpeg", offsetMs: 0, baseline: true }];
    const a = await buildSignedBundle({
      challengeId: "chl_1",
      frames,
      signer,
      capturedAt: new Date(Date.UTC(2025, 5, 1, 10, 4, 5, 700)),
    });
    const b = await buildSignedBundle({ challengeId: "chl_1", frames, signer });
    expect(a.bundle.attestation.capturedAt).toBe("2025-06-01T10:04:05Z");
    expect(a.bundle.attestation.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(a.bundle.attestation.nonce).not.toBe(b.bundle.attestation.nonce);
    expect(a.bundle.frames[0]!.image.data).toBe("anBlZw==");
    expect(a.bundle.sensors).toBeUndefined();
    expect(a.canonicalText.split("\n")[3]).toBe(signer.deviceId);
  });

  it("refuses an empty bundle, too many frames and a short nonce", async () => {
    const signer = await DeviceKey.loadOrCreate(new MemoryKeyStore(), "cus_1");
    const frame = { bytes: utf8("x"), mediaType: "image/jpeg", offsetMs: 0, baseline: false };
    await expect(buildSignedBundle({ challengeId: "c", frames: [], signer })).rejects.toThrow();
    await expect(
      buildSignedBundle({ challengeId: "c", frames: Array(17).fill(frame), signer }),
    ).rejects.toThrow();
    await expect(
      buildSignedBundle({ challengeId: "c", frames: [frame], signer, nonce: "short" }),
    ).rejects.toThrow();
  });
});
