// Onboarding to premium with the types openapi-typescript generates from the
// published OpenAPI document (./schema.d.ts, written by
// tests/e2e/test_generated_clients.py) and openapi-fetch; compiled with
// tsc --strict, then run by node against the gateway. The test is the
// customer's phone: this backend prints each challenge as a JSON line and
// reads back the signed bundle.
import * as readline from "node:readline";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];

const [baseUrl, apiKey, nik, deviceId, publicKeyPem] = process.argv.slice(2);
if (!baseUrl || !apiKey || !nik || !deviceId || !publicKeyPem) {
  throw new Error("usage: flow.js BASE_URL API_KEY NIK DEVICE_ID PUBLIC_KEY_PEM");
}

const lines = readline.createInterface({ input: process.stdin });
const queued: string[] = [];
let waiting: ((line: string) => void) | undefined;
lines.on("line", (line) => {
  const resolve = waiting;
  waiting = undefined;
  if (resolve) resolve(line);
  else queued.push(line);
});

function hear(): Promise<Record<string, unknown>> {
  const next = queued.shift();
  if (next !== undefined) return Promise.resolve(JSON.parse(next) as Record<string, unknown>);
  return new Promise((resolve) => {
    waiting = (line) => resolve(JSON.parse(line) as Record<string, unknown>);
  });
}

function say(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(fields)}\n`);
}

function ok<T>(result: { data?: T; error?: Schemas["Error"] }): T {
  if (result.data === undefined) {
    const error = result.error?.error;
    throw new Error(`refused: ${error?.code} ${error?.status} ${error?.reason}`);
  }
  return result.data;
}

async function bundleFor(challenge: Schemas["FlashChallenge"]): Promise<Schemas["CaptureBundle"]> {
  say({ challenge });
  return (await hear()).bundle as Schemas["CaptureBundle"];
}

const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${apiKey}` } });

const created = ok(
  await client.POST("/api/customers", {
    body: { externalId: "typescript-1", fullName: "Siti Rahayu", nik },
  }),
);
const customerId = created.customer?.customerId;
if (!customerId) throw new Error("no customer");
const tiers: Schemas["KycTier"][] = [created.customer?.tier ?? "KYC_TIER_UNSPECIFIED"];
ok(
  await client.POST("/api/identity/devices/register", {
    body: {
      customerId,
      deviceId,
      algorithm: "KEY_ALGORITHM_ECDSA_P256_SHA256",
      publicKeyPem,
      platform: "web",
    },
  }),
);

const ktp = ok(await client.POST("/api/identity/document/ktp/challenge", { body: { customerId } }));
if (!ktp.challenge) throw new Error("no challenge");
const captured = ok(
  await client.POST("/api/identity/document/ktp/capture", {
    body: {
      customerId,
      challengeId: ktp.challenge.challengeId,
      bundle: await bundleFor(ktp.challenge),
      ocrFields: { nik, fullName: "SITI RAHAYU", birthDate: "1995-07-01" },
    },
  }),
);
tiers.push(captured.tier);

const flash = ok(
  await client.POST("/api/identity/face/flash-challenge", {
    body: { customerId, purpose: "CHALLENGE_PURPOSE_FACE_LIVENESS" },
  }),
);
if (!flash.challenge) throw new Error("no challenge");
const live = ok(
  await client.POST("/api/identity/face/liveness", {
    body: {
      customerId,
      challengeId: flash.challenge.challengeId,
      bundle: await bundleFor(flash.challenge),
    },
  }),
);
const verificationId = live.verification?.verificationId;
if (!verificationId) throw new Error("no verification");
const matched = ok(
  await client.POST("/api/identity/face/match", {
    body: { customerId, livenessVerificationId: verificationId },
  }),
);
tiers.push(matched.tier);

// A refusal: the error body, its reason an open string.
const missing = await client.GET("/api/identity/customers/{customerId}", {
  params: { path: { customerId: "cus_unknown" } },
});
const reason: string | undefined = missing.error?.error.reason;
say({ tiers, reason });
lines.close();
