import { describe, expect, it } from "vitest";

import { collectOptionalMetadata, ConsentError, ConsentLedger } from "../src/consent.js";

const TEXT = "Saya setuju lokasi dan parameter kamera dicatat untuk verifikasi.";

function sources(calls: string[]) {
  return {
    location: async () => {
      calls.push("location");
      return { latitude: -6.2, longitude: 106.8, accuracyM: 20 };
    },
    cameraParameters: () => {
      calls.push("camera");
      return { width: 1280, height: 720 };
    },
    motion: () => {
      calls.push("motion");
      return [{ sensor: "accelerometer", offsetMs: 10, x: 0, y: 9.8, z: 0 }];
    },
  };
}

describe("consent", () => {
  it("reads nothing optional without a recorded consent", async () => {
    const calls: string[] = [];
    expect(await collectOptionalMetadata(undefined, sources(calls))).toEqual({});
    expect(await collectOptionalMetadata(new ConsentLedger(), sources(calls))).toEqual({});
    expect(calls).toEqual([]);
  });

  it("reads only the consented scopes and passes the record on", async () => {
    const ledger = new ConsentLedger();
    const record = await ledger.grant(["location"], TEXT, "v1", new Date("2025-06-01T10:00:00Z"));
    expect(record.textSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(record.grantedAt).toBe("2025-06-01T10:00:00.000Z");
    const calls: string[] = [];
    const metadata = await collectOptionalMetadata(ledger, sources(calls));
    expect(calls).toEqual(["location"]);
    expect(metadata.consent).toEqual(record);
    expect(metadata.location?.latitude).toBe(-6.2);
    expect(metadata.cameraParameters).toBeUndefined();
    expect(metadata.motion).toBeUndefined();
  });

  it("stops reading after revocation", async () => {
    const ledger = new ConsentLedger();
    await ledger.grant(["location", "camera_parameters", "motion_sensors"], TEXT, "v1");
    const calls: string[] = [];
    await collectOptionalMetadata(ledger, sources(calls));
    expect(calls).toEqual(["location", "camera", "motion"]);
    ledger.revoke();
    calls.length = 0;
    expect(await collectOptionalMetadata(ledger, sources(calls))).toEqual({});
    expect(calls).toEqual([]);
  });

  it("refuses a consent without its text, version or scopes", async () => {
    const ledger = new ConsentLedger();
    await expect(ledger.grant(["location"], "", "v1")).rejects.toThrow(ConsentError);
    await expect(ledger.grant(["location"], TEXT, " ")).rejects.toThrow(ConsentError);
    await expect(ledger.grant([], TEXT, "v1")).rejects.toThrow(ConsentError);
    await expect(ledger.grant(["microphone" as never], TEXT, "v1")).rejects.toThrow(ConsentError);
    expect(ledger.current()).toBeUndefined();
  });
});
