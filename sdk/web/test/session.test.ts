// The capture flows against a fake gateway (fetch) that checks what a real
// one would: the registration body, the bundle digest and the DER signature.

import { createVerify } from "node:crypto";
import { describe, expect, it } from "vitest";

import { fromBase64, utf8 } from "../src/bytes.js";
import type { CaptureBundleJson } from "../src/bundle.js";
import { IdentityClient } from "../src/client.js";
import { ConsentLedger } from "../src/consent.js";
import { bundleSha256 } from "../src/digest.js";
import { SafeDisplay } from "../src/flash.js";
import { MemoryKeyStore } from "../src/keystore.js";
import { encodeSensorData } from "../src/sensors.js";
import { captureFace, captureKtp, type CaptureContext } from "../src/session.js";
import { ColourCamera, FakeClock, RecordingDisplay } from "./fakes.js";

type Answer = { status: number; body: unknown };

class FakeGateway {
  readonly calls: { path: string; body: any; auth: string }[] = [];
  readonly devices = new Map<string, string>();
  verdict: (path: string, body: any) => Answer | undefined = () => undefined;

  fetch = async (url: string | URL | Request, init?: RequestInit) => {
    const path = new URL(String(url)).pathname;
    const body = JSON.parse(String(init?.body));
    const auth = new Headers(init?.headers).get("authorization") ?? "";
    this.calls.push({ path, body, auth });
    const answer = this.verdict(path, body) ?? (await this.answer(path, body));
    return new Response(JSON.stringify(answer.body), { status: answer.status });
  };

  private error(status: number, reason: string): Answer {
    return { status, body: { error: { code: status, status: "X", reason, message: reason } } };
  }

  private async answer(path: string, body: any): Promise<Answer> {
    if (path === "/api/identity/devices/register") {
      const known = this.devices.get(body.deviceId);
      if (known && known !== body.publicKeyPem) return this.error(409, "DEVICE_ALREADY_REGISTERED");
      this.devices.set(body.deviceId, body.publicKeyPem);
      return {
        status: 200,
        body: { ...body, keyFingerprint: "ab", registeredAt: "2025-06-01T10:00:00Z", created: !known },
      };
    }
    if (path.endsWith("challenge")) {
      return {
        status: 200,
        body: {
          challenge: {
            challengeId: `chl_${this.calls.length}`,
            purpose: body.purpose ?? "CHALLENGE_PURPOSE_KTP_CAPTURE",
            sequence: ["#FF0000", "#00FF00", "#0000FF", "#FFFF00"].map((hex) => ({ hex })),
            flashDurationMs: 400,
          },
        },
      };
    }
    const bundle: CaptureBundleJson = body.bundle;
    const a = bundle.attestation;
    const pem = this.devices.get(a.deviceId);
    if (!pem) return this.error(404, "DEVICE_NOT_FOUND");
    const digest = await bundleSha256({
      challengeId: body.challengeId,
      nonce: a.nonce,
      deviceId: a.deviceId,
      capturedAt: a.capturedAt,
      frames: bundle.frames.map((f) => fromBase64(f.image.data)),
      sensors: encodeSensorData(bundle.sensors),
    });
    if (digest !== a.bundleSha256) return this.error(400, "BUNDLE_HASH_MISMATCH");
    const verifier = createVerify("sha256");
    verifier.update(utf8(a.bundleSha256));
    if (!verifier.verify({ key: pem, dsaEncoding: "der" }, fromBase64(a.signature))) {
      return this.error(403, "BUNDLE_SIGNATURE_INVALID");
    }
    const verification = { outcome: "VERIFICATION_OUTCOME_PASSED", reasons: [] };
    if (path.endsWith("step-up")) return { status: 200, body: { allow: true, reasons: [] } };
    return { status: 200, body: { verification, qualityReasons: [] } };
  }
}

function setup(extra: Partial<CaptureContext> = {}) {
  const gateway = new FakeGateway();
  const clock = new FakeClock();
  const recording = new RecordingDisplay(clock);
  const ctx: CaptureContext = {
    client: new IdentityClient({
      baseUrl: "https://gateway.test",
      sessionToken: "sdk_token",
      fetch: gateway.fetch as typeof fetch,
    }),
    customerId: "cus_1",
    keyStore: new MemoryKeyStore(),
    locale: "en",
    ...extra,
  };
  const face = {
    purpose: "face_liveness" as const,
    camera: new ColourCamera(clock, recording),
    display: new SafeDisplay(recording, clock),
    clock,
    confirmFlashWarning: async () => true,
  };
  return { gateway, ctx, face, recording };
}

describe("captureFace", () => {
  it("registers the device once and posts a signed bundle the gateway accepts", async () => {
    const { gateway, ctx, face } = setup();
    const first = await captureFace(ctx, face);
    expect(first.passed).toBe(true);
    const second = await captureFace(ctx, face);
    expect(second.passed).toBe(true);
    const paths = gateway.calls.map((c) => c.path);
    expect(paths.filter((p) => p.endsWith("/register"))).toHaveLength(1);
    const register = gateway.calls[0]!.body;
    expect(Object.keys(register).sort()).toEqual(
      ["algorithm", "customerId", "deviceId", "platform", "publicKeyPem"].sort(),
    );
    expect(register.algorithm).toBe("KEY_ALGORITHM_ECDSA_P256_SHA256");
    expect(register.platform).toBe("web");
    expect(register.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
    expect(gateway.calls.every((c) => c.auth === "Bearer sdk_token")).toBe(true);
    const liveness = gateway.calls.find((c) => c.path === "/api/identity/face/liveness")!.body;
    expect(liveness.bundle.frames).toHaveLength(5);
    expect(liveness.bundle.frames[0].baseline).toBe(true);
    expect(liveness.bundle.sensors).toBeUndefined();
    expect(first.signed?.bundle.attestation.nonce).not.toBe(second.signed?.bundle.attestation.nonce);
  });

  it("turns the server's reasons into guidance with a retry", async () => {
    const { gateway, ctx, face } = setup();
    gateway.verdict = (path) =>
      path.endsWith("/liveness")
        ? {
            status: 200,
            body: {
              verification: {
                outcome: "VERIFICATION_OUTCOME_FAILED",
                reasons: [{ code: "FLASH_RESPONSE_MISSING", message: "..." }],
              },
              qualityReasons: [{ code: "UNDEREXPOSED", message: "..." }],
            },
          }
        : undefined;
    const result = await captureFace(ctx, face);
    expect(result.passed).toBe(false);
    expect(result.codes).toEqual(["FLASH_RESPONSE_MISSING", "UNDEREXPOSED"]);
    expect(result.guidance.map((g) => g.code)).toEqual(["UNDEREXPOSED", "FLASH_RESPONSE_MISSING"]);
    expect(result.retry).toBe(true);
  });

  it("reports a refused bundle by its reason", async () => {
    const { gateway, ctx, face } = setup();
    gateway.verdict = (path) =>
      path.endsWith("/liveness")
        ? { status: 409, body: { error: { status: "ALREADY_EXISTS", reason: "NONCE_REPLAYED" } } }
        : undefined;
    const result = await captureFace(ctx, face);
    expect(result.codes).toEqual(["NONCE_REPLAYED"]);
    expect(result.guidance[0]!.message).toMatch(/already used/);
  });

  it("registers a new key after the server forgot the device", async () => {
    const { gateway, ctx, face } = setup();
    await captureFace(ctx, face);
    gateway.devices.clear();
    const refused = await captureFace(ctx, face);
    expect(refused.codes).toEqual(["DEVICE_NOT_FOUND"]);
    const again = await captureFace(ctx, face);
    expect(again.passed).toBe(true);
    expect(gateway.calls.filter((c) => c.path.endsWith("/register"))).toHaveLength(2);
  });

  it("starts over with a new key when the device id is taken by another key", async () => {
    const { gateway, ctx, face } = setup();
    await captureFace(ctx, face);
    const stored = (await ctx.keyStore.get("cus_1"))!;
    await ctx.keyStore.put({ ...stored, registeredAt: undefined, publicKeyPem: "other" } as never);
    const result = await captureFace(ctx, face);
    expect(result.passed).toBe(true);
    expect((await ctx.keyStore.get("cus_1"))!.deviceId).not.toBe(stored.deviceId);
  });

  it("posts a step-up with its action", async () => {
    const { gateway, ctx, face } = setup();
    const result = await captureFace(ctx, { ...face, purpose: "step_up", action: "transfer" });
    expect(result.passed).toBe(true);
    const call = gateway.calls.find((c) => c.path === "/api/identity/auth/step-up")!;
    expect(call.body.action).toBe("transfer");
    const challenge = gateway.calls.find((c) => c.path.endsWith("flash-challenge"))!;
    expect(challenge.body.purpose).toBe("CHALLENGE_PURPOSE_STEP_UP");
  });

  it("shows nothing and sends nothing when the flash warning is declined", async () => {
    const { gateway, ctx, face, recording } = setup();
    const result = await captureFace(ctx, { ...face, confirmFlashWarning: async () => false });
    expect(result.codes).toEqual(["FLASH_WARNING_DECLINED"]);
    expect(recording.events).toHaveLength(0);
    expect(gateway.calls.some((c) => c.path.endsWith("/liveness"))).toBe(false);
  });

  it("reads the location only with consent, and never sends it", async () => {
    let asked = 0;
    const location = async () => {
      asked++;
      return { latitude: -6.2, longitude: 106.8, accuracyM: 15 };
    };
    const without = setup({ location });
    const plain = await captureFace(without.ctx, without.face);
    expect(asked).toBe(0);
    expect(plain.metadata).toEqual({});

    const consent = new ConsentLedger();
    await consent.grant(["location"], "Saya setuju lokasi saya dicatat.", "v1");
    const withConsent = setup({ location, consent });
    const result = await captureFace(withConsent.ctx, withConsent.face);
    expect(asked).toBe(1);
    expect(result.metadata.location?.latitude).toBe(-6.2);
    expect(result.metadata.consent?.scopes).toEqual(["location"]);
    const posted = withConsent.gateway.calls.find((c) => c.path.endsWith("/liveness"))!;
    expect(JSON.stringify(posted.body)).not.toMatch(/106\.8|latitude/);
  });
});

describe("captureKtp", () => {
  it("posts the unflashed card frame and one frame per flash colour, signed, with the typed fields", async () => {
    const { gateway, ctx, face, recording } = setup();
    const result = await captureKtp(ctx, { ...face, ocrFields: { nik: "3171" } });
    expect(result.passed).toBe(true);
    const call = gateway.calls.find((c) => c.path === "/api/identity/document/ktp/capture")!;
    const frames = call.body.bundle.frames;
    expect(frames).toHaveLength(5);
    expect(frames[0].baseline).toBe(true);
    expect(frames.slice(1).map((f: any) => Math.floor(f.offsetMs / 400))).toEqual([0, 1, 2, 3]);
    expect(call.body.ocrFields).toEqual({ nik: "3171" });
    expect(recording.events.length).toBeGreaterThan(0);
  });

  it("turns card reasons into card guidance", async () => {
    const { gateway, ctx, face } = setup({ locale: "id" });
    gateway.verdict = (path) =>
      path.endsWith("/ktp/capture")
        ? {
            status: 200,
            body: {
              verification: {
                outcome: "VERIFICATION_OUTCOME_FAILED",
                reasons: [{ code: "CARD_GLARE", message: "" }, { code: "CARD_TOO_BLURRY", message: "" }],
              },
            },
          }
        : undefined;
    const result = await captureKtp(ctx, face);
    expect(result.guidance.map((g) => g.message)).toEqual([
      expect.stringMatching(/pantulan cahaya/),
      expect.stringMatching(/buram/),
    ]);
  });
});
